"""Previews: the name (one DNS label), its host names, labels, nginx file and upstream names, the rendered server
block, orphans an interrupted deploy leaves, name claims and memory admission."""

from __future__ import annotations

import pytest

from nextmavens.apps.previews import host_conflicts, preview_admission
from nextmavens.apps.releases import (
    LABEL_PREVIEW,
    check_preview_name,
    orphans,
    preview_hosts,
    preview_of,
    release_labels,
)
from nextmavens.apps.upstream import conf_filename, render_app_nginx, upstream_name
from tests.support.edgesamples import BUDGET_MB, SHARED_MB, manifest, settings


@pytest.mark.parametrize("name", ["pr-7", "feature-x", "a", "0", "x" * 30])
def test_a_preview_name_is_one_dns_label(name: str) -> None:
    assert check_preview_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "PR-7", "-a", "a-", "a--b", "a.b", "a_b", "x" * 31, "a b", "a\nb", "a;b", "é", "a/b", "${x}", "a'b"],
)
def test_anything_else_is_refused_before_it_reaches_a_name_or_config(name: str) -> None:
    with pytest.raises(ValueError, match="preview name"):
        check_preview_name(name)
    with pytest.raises(ValueError):
        preview_hosts(name, ["web.acme.test"])
    with pytest.raises(ValueError):
        conf_filename("shop", "web", name)
    with pytest.raises(ValueError):
        release_labels("acme", "shop", "web", "0123abc", 3, name)


def test_hosts_labels_and_names_of_a_preview() -> None:
    assert preview_hosts("pr-7", ["web.acme.test", "acme.test"]) == ["pr-7.web.acme.test", "pr-7.acme.test"]
    labels = release_labels("acme", "shop", "web", "0123abc", 3, "pr-7")
    assert labels[LABEL_PREVIEW] == "pr-7" and preview_of(labels) == "pr-7"
    assert preview_of(release_labels("acme", "shop", "web", "0123abc", 3)) == ""
    assert conf_filename("shop", "web", "pr-7") == "nextmavens-app-shop--web--preview-pr-7.conf"
    assert conf_filename("shop", "web") == "nextmavens-app-shop--web.conf"
    assert upstream_name("shop", "web", "pr-7") == "nm_app_shop__web__p_pr_7"
    assert upstream_name("shop", "web", "pr-7") != upstream_name("shop", "web")


def test_a_host_name_longer_than_dns_allows_is_refused() -> None:
    long_domain = ".".join(["a" * 60] * 3) + ".test"  # 188 characters, valid alone
    with pytest.raises(ValueError, match="longer than 253"):
        preview_hosts("x" * 30, [long_domain + "." + "b" * 40])


def test_the_rendered_preview_serves_its_own_names_through_its_own_upstream() -> None:
    text = render_app_nginx(settings(), "shop", "web", ["web.acme.test"], 40123, 5, (), preview="pr-7")
    assert "server_name pr-7.web.acme.test;" in text
    assert "server_name web.acme.test;" not in text
    assert "upstream nm_app_shop__web__p_pr_7 {" in text and "server 127.0.0.1:40123;" in text
    assert "proxy_pass http://nm_app_shop__web__p_pr_7;" in text
    assert "preview pr-7, release 5" in text
    own = render_app_nginx(settings(), "shop", "web", ["web.acme.test"], 40001, 4)
    assert "preview" not in own and "server_name web.acme.test;" in own


def test_a_preview_with_a_certificate_gets_https() -> None:
    text = render_app_nginx(
        settings(), "shop", "web", ["web.acme.test"], 40123, 5, {"pr-7.web.acme.test"}, preview="pr-7"
    )
    assert "return 308 https://" in text and "/live/pr-7.web.acme.test/fullchain.pem" in text


def test_orphans_are_releases_never_served() -> None:
    # 1..3 served, 3 active; 4 left by an interrupted deploy; 5 the deploy in flight
    assert orphans([1, 2, 3, 4, 5], [1, 2, 3], 3, keep={5}) == [4]
    # after a rollback to 1, the newer served releases are not orphans
    assert orphans([1, 2, 3], [1, 2, 3], 1) == []
    # a state file written before `served` was recorded: nothing is an orphan
    assert orphans([1, 2, 7], None, 2) == []


def test_a_preview_may_not_take_a_name_a_manifest_claims() -> None:
    shop = manifest("shop", apps=[{"name": "web", "domains": ["web.acme.test"]}])
    other = manifest("blog", domains=["pr-7.web.acme.test"])
    assert host_conflicts("pr-7", ["web.acme.test"], [shop, other]) == ["pr-7.web.acme.test (blog)"]
    assert host_conflicts("pr-8", ["web.acme.test"], [shop, other]) == []


def test_memory_admission_counts_running_previews() -> None:
    shop = manifest("shop", resources={"memory_mb": 1000}, apps=[{"name": "web", "memory_mb": 500}])
    available = BUDGET_MB - SHARED_MB
    used = 1500
    room = available - used
    assert preview_admission(settings(), [shop], [], room) is None
    assert preview_admission(settings(), [shop], [256], room) is not None
    refused = preview_admission(settings(), [shop], [256, 256], room - 511)
    assert refused is not None and "running previews 512 MiB" in refused and "nothing was built" in refused
    suspended = manifest("shop", state="suspended", apps=[{"name": "web", "memory_mb": 500}])
    assert preview_admission(settings(), [suspended], [], available) is None
