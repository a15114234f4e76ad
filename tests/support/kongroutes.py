"""Who each route of a rendered Kong document lets through: the tests' isolation analysis, computed from the
document alone (what Kong would be given), not from the renderer's own model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RouteAdmission:
    """Who a route lets through, computed from a rendered document alone."""

    service: str
    route: str
    hosts: frozenset[str]
    paths: tuple[str, ...]
    terminated: bool  # request-termination answers every request
    open: bool  # no key-auth: any caller, with or without a key
    admitted_consumers: frozenset[str]  # consumers whose ACL groups the route's acl allows


def route_admissions(document: Mapping[str, Any]) -> list[RouteAdmission]:
    groups_of: dict[str, set[str]] = {
        c["username"]: {a["group"] for a in c.get("acls", [])} for c in document.get("consumers", [])
    }
    result: list[RouteAdmission] = []
    for service in document.get("services", []):
        plugins = {p["name"]: p.get("config", {}) for p in service.get("plugins", [])}
        terminated = "request-termination" in plugins
        protected = "key-auth" in plugins
        allow = set(plugins.get("acl", {}).get("allow", [])) if protected else set()
        admitted = frozenset(c for c, groups in groups_of.items() if groups & allow) if protected else frozenset()
        if terminated:
            admitted = frozenset()
        for route in service.get("routes", []):
            result.append(
                RouteAdmission(
                    service=service["name"],
                    route=route["name"],
                    hosts=frozenset(route.get("hosts", [])),
                    paths=tuple(route.get("paths", [])),
                    terminated=terminated,
                    open=not protected and not terminated,
                    admitted_consumers=admitted,
                )
            )
    return result


def consumer_with_key(document: Mapping[str, Any], key: str) -> str | None:
    for consumer in document.get("consumers", []):
        if any(c.get("key") == key for c in consumer.get("keyauth_credentials", [])):
            return str(consumer["username"])
    return None
