"""The host's settings for app deployments (nextmavens/apps/release.py), as the edge settings file carries them
(`apps:`): here, beside the edge's other settings, because the file's model holds them.

The knobs the operator tunes (base images, health timing, drain, the build's memory) come from group data
(`app_deploys` in group_data/all.py, their one default) through nextmavens/host/edgeconfig.py and have no default
here; the paths are the release flow's own, with their default next to their meaning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class AppImages(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    node: str
    python: str
    static: str


class AppDeploySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- From host data (group_data/all.py `app_deploys`) ---
    images: AppImages  # base images of the rendered Dockerfiles, pinned
    health_timeout_s: Annotated[float, Field(gt=0, le=900)]  # a release never healthy by then is stopped
    health_interval_s: Annotated[float, Field(gt=0, le=60)]  # between two health requests
    health_request_timeout_s: Annotated[float, Field(gt=0, le=60)]  # one request's own bound
    drain_s: Annotated[float, Field(ge=0, le=600)]  # the old release serves its open requests this long
    build_memory_mb: Annotated[int, Field(ge=256, le=65536)]  # each build step's container
    lock_timeout_s: Annotated[float, Field(ge=0, le=3600)]  # a second deploy of one app waits this long
    pids_limit: Annotated[int, Field(ge=32, le=1_000_000)]  # processes (threads) in each release container

    # --- The release flow's own ---
    state_dir: Path = Path("/var/lib/nextmavens/apps")  # per app: state.json, the deploy lock, build logs
    secrets_dir: Path = Path("/var/lib/nextmavens/app-secrets")  # per release: its 0600 secrets file (root 0700)
    nginx_dir: Path = Path("/etc/nginx/conf.d")  # per app: nextmavens-app-<ref>--<app>.conf
    stop_timeout_s: int = 30  # docker stop's grace before SIGKILL
