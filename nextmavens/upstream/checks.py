"""Checks of rendered configuration against the pinned facts (nextmavens.upstream.facts).

The same functions serve the product (kong.py refuses to emit what the pinned Kong refuses), the tests, and the
stand-ins (both the sandbox image's and the integration tests'): one place says what a pinned program refuses.
Pure; standard library and facts.py only (this file is shipped into the stand-in image beside facts.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from nextmavens.upstream.facts import Facts, KongFacts

# Kong's own words (kong/db/schema/entities/plugins.lua, subschema_error), so a stand-in's refusal reads the same.
KONG_NOT_ENABLED = "plugin '{}' not enabled; add it to the 'plugins' configuration property"
# PostgREST's admin host values that `--ready` cannot turn into an address (src/PostgREST/Network.hs).
POSTGREST_SPECIAL_HOSTS = frozenset({"*", "*4", "!4", "*6", "!6"})


def kong_enabled_plugins(value: str | None, facts: KongFacts) -> frozenset[str]:
    """KONG_PLUGINS as Kong 2.8.1 reads it: comma list, `bundled` expands, `off` loads none; unset = bundled."""
    names = [n.strip() for n in (value if value is not None else "bundled").split(",") if n.strip()]
    if not names or names[0] == "off":
        return frozenset()
    enabled: set[str] = set()
    for name in names:
        if name == "bundled":
            enabled |= facts.bundled_plugins
        elif name != "off":
            enabled.add(name)
    return frozenset(enabled)


def _plugins(document: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, plugin) for every plugin in a declarative config: top level, services, routes, consumers."""
    for plugin in document.get("plugins") or []:
        yield "plugins", plugin
    for service in document.get("services") or []:
        for plugin in service.get("plugins") or []:
            yield f"services.{service.get('name')}", plugin
        for route in service.get("routes") or []:
            for plugin in route.get("plugins") or []:
                yield f"routes.{route.get('name')}", plugin
    for consumer in document.get("consumers") or []:
        for plugin in consumer.get("plugins") or []:
            yield f"consumers.{consumer.get('username')}", plugin


def _config_fields(config: Mapping[str, Any]) -> set[str]:
    fields: set[str] = set()
    for key, value in config.items():
        fields.add(key)
        if isinstance(value, Mapping):
            fields |= {f"{key}.{sub}" for sub in value}
    return fields


def kong_config_problems(document: Any, enabled: frozenset[str], facts: KongFacts) -> list[str]:
    """Why the pinned Kong would refuse this declarative config (empty: it would load it).

    Checks what the pinned facts know: the format version, that every plugin is enabled (KONG_PLUGINS), that
    each plugin's config fields exist in its schema, and no consumer carries a plugin whose schema forbids one.
    Never quotes a config value (credentials live in the same document).
    """
    if not isinstance(document, Mapping):
        return ["declarative config must be a table"]
    problems: list[str] = []
    version = document.get("_format_version")
    if version is None:
        problems.append("_format_version: required field missing")
    elif version not in facts.format_versions:
        problems.append(f"_format_version: expected one of: {', '.join(sorted(facts.format_versions))}")
    for where, plugin in _plugins(document):
        name = plugin.get("name") if isinstance(plugin, Mapping) else None
        if not isinstance(name, str):
            problems.append(f"{where}: plugin without a name")
            continue
        if name not in enabled:
            problems.append(f"{where}: " + KONG_NOT_ENABLED.format(name))
            continue
        if where.startswith("consumers.") and name in facts.consumer_plugins_forbidden:
            problems.append(f"{where}: plugin '{name}': consumer: value must be null")
        known = facts.plugin_fields.get(name)
        config = plugin.get("config") or {}
        if known is not None and isinstance(config, Mapping):
            for unknown in sorted(_config_fields(config) - known):
                problems.append(f"{where}: plugin '{name}': config.{unknown}: unknown field")
    return problems


def postgrest_ready_url(env: Mapping[str, str], facts: Facts) -> tuple[str | None, str]:
    """What `postgrest --ready` does with this environment: (URL it GETs, "") or (None, why it fails).

    src/PostgREST/Client.hs (v14): no admin-server-port -> fails; admin-server-host (defaulting to server-host,
    defaulting to "!4") special -> fails; else http://<host>:<port>/ready. Before v14 the flag does not exist.
    """
    if "--ready" not in facts.flags:
        return None, f"{facts.image}: unknown option --ready (it exists from PostgREST v14.0)"
    port = env.get("PGRST_ADMIN_SERVER_PORT")
    if not port:
        return None, "Admin server is not running. Please check admin-server-port config."
    host = env.get("PGRST_ADMIN_SERVER_HOST") or env.get("PGRST_SERVER_HOST") or "!4"
    if host in POSTGREST_SPECIAL_HOSTS:
        return None, f'The `--ready` flag cannot be used when server-host is configured as "{host}".'
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/ready", ""
