"""What the doctor expects of the host beyond the edge settings: the shared containers and their pinned images,
whether images are substitutes (the sandbox), where postgres-meta and Evolution answer, and the platform service's
unit and address.

The deploy renders it (tasks/doctor.py) from the same group data and stack templates that start the containers,
next to the edge settings file; `nextmavens doctor` reads it. No secrets in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nextmavens.naming import PLATFORM_UNIT

if TYPE_CHECKING:  # the deploy side renders the file; `nextmavens doctor` on the host only reads it
    from nextmavens.host.hostdata import HostData

FILE_NAME = "doctor.yaml"


class DoctorConfigError(Exception):
    pass


class DoctorHostConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    shared_containers: dict[str, str] = Field(description="container_name -> the image its stack pins")
    images_are_substitutes: bool = False
    postgres_meta_url: str = ""  # empty: no postgres-meta on this host
    evolution_url: str = ""  # empty: no Evolution API on this host
    platform_unit: str = ""  # the platform service's systemd unit; empty: not on this host (or an older file)
    platform_url: str = ""  # where it listens (loopback), for /healthz


def doctor_file(config: HostData) -> PurePosixPath:
    """Beside the edge settings file (HostData.edge_config_file)."""
    return PurePosixPath(config.edge_config_file).parent / FILE_NAME


def default_path(env: dict[str, str]) -> Path | None:
    """NEXTMAVENS_DOCTOR_CONFIG, else doctor.yaml beside NEXTMAVENS_EDGE_CONFIG (as the deploy writes it)."""
    if env.get("NEXTMAVENS_DOCTOR_CONFIG"):
        return Path(env["NEXTMAVENS_DOCTOR_CONFIG"])
    if env.get("NEXTMAVENS_EDGE_CONFIG"):
        return Path(env["NEXTMAVENS_EDGE_CONFIG"]).parent / FILE_NAME
    return None


def shared_containers(stacks: Iterable[tuple[str, str]]) -> dict[str, str]:
    """container_name -> image from rendered stack compose files ((stack name, compose text) pairs)."""
    found: dict[str, str] = {}
    for stack, text in stacks:
        document = yaml.safe_load(text) or {}
        for service, body in sorted((document.get("services") or {}).items()):
            name = body.get("container_name")
            if not name:
                raise ValueError(
                    f"stacks/{stack}: service {service} has no container_name (the doctor finds it by name)"
                )
            found[str(name)] = str(body["image"])
    return found


def doctor_document(config: HostData, stacks: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """From a validated HostData and its rendered stacks. Pure."""
    ports = config.loopback_ports
    return {
        "shared_containers": shared_containers(stacks),
        "images_are_substitutes": bool(config.images_are_substitutes),
        "postgres_meta_url": f"http://127.0.0.1:{ports.postgres_meta}",
        "evolution_url": f"http://127.0.0.1:{ports.evolution}",
        "platform_unit": PLATFORM_UNIT,
        "platform_url": f"http://127.0.0.1:{ports.platform}",
    }


def render_doctor_config(config: HostData, stacks: Iterable[tuple[str, str]]) -> str:
    header = "# Managed by NextMavens (tasks/doctor.py) from group data and the stacks; read by `nextmavens doctor`.\n"
    return header + yaml.safe_dump(doctor_document(config, stacks), sort_keys=True, default_flow_style=False)


def load_doctor_config(path: Path) -> DoctorHostConfig:
    try:
        raw = yaml.safe_load(path.read_text())
        return DoctorHostConfig.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise DoctorConfigError(f"{path}: cannot read the doctor's settings (written by the deploy): {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise DoctorConfigError(f"{path}: {problems}") from None
