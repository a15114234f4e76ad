"""The release plan: names, labels, numbering, what pruning removes, and rollback targets."""

from __future__ import annotations

import pytest

from nextmavens.apps.releases import (
    foreign_labels,
    next_release,
    release_labels,
    release_names,
    release_of,
    rollback_target,
    to_prune,
)


def test_names_of_two_projects_apps_never_collide() -> None:
    # both allow single hyphens: ref `shop` + app `api-v2` and ref `shop-api` + app `v2` must stay apart
    one, other = release_names("shop", "api-v2", 1), release_names("shop-api", "v2", 1)
    assert one.container != other.container and one.image != other.image
    assert one.container == "nm-app-shop--api-v2-r1" and other.image == "nextmavens-app/shop-api--v2:r1"


def test_foreign_labels_are_reserved_keys_the_build_did_not_set() -> None:
    ours = release_labels("acme", "shop", "web", "0123abc", 7)
    assert foreign_labels({**ours, "maintainer": "me", "org.opencontainers.image.title": "x"}, ours) == []
    image = {**ours, "com.docker.compose.service": "rest", "io.nextmavens.memory_mb": "1", "io.nextmavens.app": "db"}
    assert foreign_labels(image, ours) == ["com.docker.compose.service", "io.nextmavens.app", "io.nextmavens.memory_mb"]


def test_names_and_labels() -> None:
    names = release_names("shop", "web", 7)
    assert (names.container, names.image) == ("nm-app-shop--web-r7", "nextmavens-app/shop--web:r7")
    labels = release_labels("acme", "shop", "web", "0123abc", 7)
    assert labels == {
        "io.nextmavens.org": "acme",
        "io.nextmavens.project": "shop",
        "io.nextmavens.app": "web",
        "io.nextmavens.commit": "0123abc",
        "io.nextmavens.release": "7",
    }
    assert release_of(labels) == 7 and release_of({}) is None
    with pytest.raises(ValueError, match="not a commit"):
        release_labels("acme", "shop", "web", "main; rm -rf /", 1)


def test_numbers_never_come_back() -> None:
    assert next_release([]) == 1
    assert next_release([1, 2, 5]) == 6
    assert next_release([2], last_known=9) == 10  # 3..9 were pruned: never given again


def test_prune_keeps_active_previous_and_retain() -> None:
    assert to_prune([1, 2, 3, 4, 5, 6], retain=3, active=6, previous=5) == [1, 2]
    assert to_prune([1, 2, 3], retain=3, active=3, previous=2) == []
    # retain 1: the previous release is the one kept
    assert to_prune([1, 2, 3, 4], retain=1, active=4, previous=3) == [1, 2]
    # after a rollback to 2, the newer 4 and 3 are old releases too; the previous (4) is never pruned
    assert to_prune([1, 2, 3, 4], retain=1, active=2, previous=4) == [1, 3]
    assert to_prune([1, 2], retain=1, active=None, previous=None) == [1]


def test_rollback_targets() -> None:
    assert rollback_target([1, 2, 3], active=3, previous=2, wanted=None) == 2
    assert rollback_target([1, 2, 3], active=3, previous=2, wanted=1) == 1
    with pytest.raises(LookupError, match="already active"):
        rollback_target([1, 2, 3], active=3, previous=2, wanted=3)
    with pytest.raises(LookupError, match="not retained"):
        rollback_target([2, 3], active=3, previous=2, wanted=1)
    with pytest.raises(LookupError, match="no previous release"):
        rollback_target([3], active=3, previous=None, wanted=None)
