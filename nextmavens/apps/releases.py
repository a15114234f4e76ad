"""The release plan of one app: names, labels, numbers, and which releases pruning removes.

A release is one image and one container, both labelled with the project, the app, the git commit and the release
number; the containers on the host are the record of what exists (as Kamal keeps them), the app's state file says
which one nginx serves (`active`) and which it served before (`previous`). Pure: plain values in and out.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from nextmavens.naming import app_stem
from nextmavens.validation import check_domain

LABEL_PREFIX = "io.nextmavens"
LABEL_ORG = f"{LABEL_PREFIX}.org"
LABEL_PROJECT = f"{LABEL_PREFIX}.project"
LABEL_APP = f"{LABEL_PREFIX}.app"
LABEL_COMMIT = f"{LABEL_PREFIX}.commit"
LABEL_RELEASE = f"{LABEL_PREFIX}.release"
LABEL_PREVIEW = f"{LABEL_PREFIX}.preview"  # set on a preview's release only: its name
_COMMIT = re.compile(r"[0-9a-f]{7,64}|upload-[0-9a-f]{12}")


@dataclass(frozen=True)
class ReleaseNames:
    container: str
    image: str  # repository:tag


def release_names(ref: str, app: str, release: int) -> ReleaseNames:
    """`nm-app-<ref>--<app>-r<n>` and `nextmavens-app/<ref>--<app>:r<n>` (naming.app_stem: ref `shop` + app `api-v2`
    and ref `shop-api` + app `v2` stay apart). No host holds names of the earlier single-hyphen spelling (the
    feature is new today, nothing was deployed in production with it), so no migration of old names exists."""
    stem = app_stem(ref, app)
    return ReleaseNames(container=f"nm-app-{stem}-r{release}", image=f"{image_repository(ref, app)}:r{release}")


def image_repository(ref: str, app: str) -> str:
    return f"nextmavens-app/{app_stem(ref, app)}"


def release_labels(
    org: str, ref: str, app: str, commit: str, release: int, preview: str | None = None
) -> dict[str, str]:
    if not _COMMIT.fullmatch(commit):
        raise ValueError(f"not a commit id: {commit!r}")
    labels = {
        LABEL_ORG: org,
        LABEL_PROJECT: ref,
        LABEL_APP: app,
        LABEL_COMMIT: commit,
        LABEL_RELEASE: str(release),
    }
    if preview is not None:
        labels[LABEL_PREVIEW] = check_preview_name(preview)
    return labels


# A preview's name is one DNS label in front of each of the app's domains (`NAME.<domain>`), in nginx's
# server_name, file and upstream names and a Docker label: lowercase letters, digits, single inner hyphens.
PREVIEW_NAME_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
PREVIEW_NAME_MAX = 30


def check_preview_name(name: str) -> str:
    if len(name) > PREVIEW_NAME_MAX or not PREVIEW_NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"preview name {name[:40]!r} is not a DNS label of at most {PREVIEW_NAME_MAX} characters (lowercase "
            "letters, digits, single hyphens inside)"
        )
    return name


def preview_hosts(name: str, domains: Iterable[str]) -> list[str]:
    """`NAME.<domain>` for each of the app's domains, each a valid host name (ValueError otherwise)."""
    check_preview_name(name)
    return [check_domain(f"{name}.{domain}") for domain in domains]


def preview_of(labels: Mapping[str, str]) -> str:
    """The preview a container belongs to, "" for the app's own releases."""
    return labels.get(LABEL_PREVIEW, "")


def orphans(
    numbers: Iterable[int], served: Collection[int] | None, active: int | None, keep: Collection[int] = ()
) -> list[int]:
    """Releases an interrupted deploy left behind: never switched to (not in `served`), not active, not `keep` (a
    release in flight). `served` None (a state file written before it was recorded): none is an orphan."""
    if served is None:
        return []
    return sorted(n for n in set(numbers) if n not in served and n != active and n not in keep)


# Label namespaces the platform reads as truth about a container (the metrics collector, memory admission, compose
# drift): an image may carry them only as the release flow's own build labels.
RESERVED_LABEL_PREFIXES = ("com.docker.compose.", f"{LABEL_PREFIX}.")


def foreign_labels(image_labels: Mapping[str, str], ours: Mapping[str, str]) -> list[str]:
    """Keys of `image_labels` in a reserved namespace that the build did not set to exactly these values (a
    tenant's Dockerfile LABEL, or its base image's), sorted."""
    return sorted(
        key
        for key, value in image_labels.items()
        if key.startswith(RESERVED_LABEL_PREFIXES) and ours.get(key) != value
    )


def app_filter(ref: str, app: str) -> dict[str, list[str]]:
    """The docker SDK's `filters` that select one app's containers or images."""
    return {"label": [f"{LABEL_PROJECT}={ref}", f"{LABEL_APP}={app}"]}


def release_of(labels: Mapping[str, str]) -> int | None:
    value = labels.get(LABEL_RELEASE, "")
    return int(value) if value.isdigit() else None


def next_release(existing: Iterable[int], last_known: int = 0) -> int:
    """One above every release that exists or ever did (the state file remembers the highest number given, so a
    pruned number is never given again)."""
    return max([last_known, *existing], default=0) + 1


@dataclass(frozen=True)
class Release:
    number: int
    commit: str
    created: str  # ISO time, as docker reports it
    running: bool
    image_present: bool = True

    def role(self, active: int | None, previous: int | None) -> str:
        if self.number == active:
            return "active"
        if self.number == previous:
            return "previous"
        return "retained"


def to_prune(releases: Iterable[int], retain: int, active: int | None, previous: int | None) -> list[int]:
    """Releases beyond `retain` that pruning removes (container and image), oldest first. Kept always: the active
    release and the previous one (a rollback target even when retain is 1); then the `retain` newest others."""
    numbers = sorted(set(releases), reverse=True)
    kept = {n for n in (active, previous) if n is not None}
    others = [n for n in numbers if n not in kept]
    # `retain` counts the old releases kept for rollback; the previous one is one of them when there is one
    room = max(retain - (1 if previous is not None and previous != active else 0), 0)
    return sorted(others[room:])


def rollback_target(releases: Iterable[int], active: int | None, previous: int | None, wanted: int | None) -> int:
    """The release a rollback switches to: `wanted`, else the previous one."""
    present = set(releases)
    target = wanted if wanted is not None else previous
    if target is None:
        raise LookupError("no previous release to roll back to; name one (nextmavens releases lists them)")
    if target == active:
        raise LookupError(f"release {target} is already active")
    if target not in present:
        raise LookupError(f"release {target} is not retained on this host (pruned or never built)")
    return target
