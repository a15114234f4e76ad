"""Everything the project renders for an upstream program is checked against the facts table of the pinned image
(nextmavens/upstream/facts.py, read from each program's source at the pinned tag).

These would have caught D1-D4 of reference/upstream-facts.md: Kong 2.8.1 refusing `_format_version: "3.0"` and a
plugin missing from KONG_PLUGINS, `postgrest --ready` on a v12 pin, and dead settings such as
PGRST_DB_USE_LEGACY_GUCS.
"""

from __future__ import annotations

import json
import re
import runpy
import shlex
from typing import Any

import pytest
import yaml

from nextmavens.edge.kong import PLUGIN_CONFIGS, render_kong
from nextmavens.edge.services import render_project_services
from nextmavens.host.edgeconfig import edge_settings
from nextmavens.host.hostdata import HostData
from nextmavens.host.render import render_stack, template_context
from nextmavens.manifest.models import ALLOWED_EXTENSIONS
from nextmavens.upstream.checks import (
    kong_config_problems,
    kong_enabled_plugins,
    postgrest_ready_url,
)
from nextmavens.upstream.facts import (
    FACTS,
    NOT_READ,
    PINNED,
    POSTGREST_V12_2_12,
    POSTGREST_V14_5,
    REALTIME_SLOTS_PER_TENANT,
    REALTIME_WAL_SENDERS_PER_TENANT,
    Facts,
    pinned,
    pinned_kong,
)
from tasks.stacks import STACKS
from tests.support.edgesamples import manifest, sample_projects, secrets_for, settings
from tests.support.groupdata import group_configs
from tests.support.repo import REPO

STANDIN_ENV = re.compile(r"^STANDIN_")


@pytest.fixture
def configs(tmp_path, monkeypatch) -> dict[str, HostData]:
    return group_configs(tmp_path, monkeypatch)


def _services(config: HostData, stack: str) -> dict[str, dict[str, Any]]:
    raw = yaml.safe_load(render_stack(stack, template_context(config))["compose.yaml"])
    return raw["services"]


def _production_services(config: HostData) -> dict[str, dict[str, Any]]:
    return {f"{stack}/{name}": s for stack in STACKS for name, s in _services(config, stack).items()}


def _commands(service: dict[str, Any]) -> list[list[str]]:
    """Every argv the service makes the image run: its health check and its command."""
    argvs = []
    test = (service.get("healthcheck") or {}).get("test")
    if test:
        argvs.append(["sh", *test[1:]] if test[0] == "CMD-SHELL" else list(test[1:]))
    command = service.get("command")
    if command:
        argvs.append(shlex.split(command) if isinstance(command, str) else list(command))
    return argvs


# ---------------------------------------------------------------- pins


def test_every_configured_pin_has_a_facts_table_for_its_exact_tag():
    images = runpy.run_path(str(REPO / "group_data" / "all.py"))["images"]
    assert set(images) == set(PINNED) | set(NOT_READ), "a pin is neither checked nor listed as not read"
    for key, image in images.items():
        if key in NOT_READ:
            continue
        assert image == PINNED[key], f"group_data/all.py images[{key!r}] moved: read {image}'s source into facts.py"
        assert image in FACTS and FACTS[image].image == image


def test_production_edge_settings_carry_the_pins(configs):
    settings = edge_settings(configs["production"])
    assert settings.postgrest_image == PINNED["postgrest"]
    assert settings.gotrue_image == PINNED["gotrue"]
    assert settings.storage_image == PINNED["storage_api"]


def test_not_read_pins_are_rendered_nowhere_by_default(configs):
    production = configs["production"]
    rendered = {s["image"] for s in _production_services(production).values()}
    for key in NOT_READ:
        assert getattr(production.images, key) not in rendered


def test_every_fact_names_its_source():
    for facts in FACTS.values():
        assert facts.source and "@" in facts.source
        assert facts.env_source if facts.env else True
        assert facts.flags_source if facts.flags else True
        assert facts.commands_source if facts.commands else True
        assert facts.config_source if facts.config_keys else True
        assert facts.config_defaults_source if facts.config_defaults else True
        assert facts.cmd_source if facts.cmd else True


# ---------------------------------------------------------------- Kong (D1, D2)


def _compose_kong_plugins(config: HostData) -> str:
    return str(_services(config, "supabase")["kong"]["environment"]["KONG_PLUGINS"])


@pytest.mark.parametrize("group", ["production", "sandbox"])
def test_rendered_kong_config_is_accepted_by_the_pinned_kong(configs, group):
    enabled = kong_enabled_plugins(_compose_kong_plugins(configs[group]), pinned_kong())
    document = render_kong(settings(), sample_projects()).document()
    assert kong_config_problems(document, enabled, pinned_kong()) == []


def test_kong_plugins_is_exactly_what_the_config_uses(configs):
    enabled = kong_enabled_plugins(_compose_kong_plugins(configs["production"]), pinned_kong())
    document = render_kong(settings(), sample_projects()).document()
    used = {p["name"] for s in document["services"] for p in s["plugins"]}
    used |= {p["name"] for c in document["consumers"] for p in c["plugins"]}
    assert used <= enabled and enabled == set(PLUGIN_CONFIGS) and used == set(PLUGIN_CONFIGS)
    assert enabled <= pinned_kong().bundled_plugins


def test_kong_plugin_models_only_know_fields_the_pinned_schemas_have():
    facts = pinned_kong()
    for name, model in PLUGIN_CONFIGS.items():
        fields = set(model.model_fields)
        nested = {f"{f}.{sub}" for f, info in model.model_fields.items() for sub in _nested_fields(info.annotation)}
        assert fields | nested <= facts.plugin_fields[name], name


def _nested_fields(annotation: Any) -> set[str]:
    return set(getattr(annotation, "model_fields", {}))


def test_the_pinned_kong_refuses_what_2_8_1_refuses():
    facts, enabled = pinned_kong(), frozenset(PLUGIN_CONFIGS)
    document = render_kong(settings(), sample_projects()).document()
    assert kong_config_problems({**document, "_format_version": "3.0"}, enabled, facts) == [
        "_format_version: expected one of: 1.1, 2.1"
    ]
    without = kong_enabled_plugins("request-transformer,cors,key-auth,acl,rate-limiting", facts)
    problems = kong_config_problems(document, without, facts)
    assert problems and all("plugin 'request-termination' not enabled" in p for p in problems)
    odd = {"_format_version": "2.1", "services": [{"name": "s", "plugins": [{"name": "cors", "config": {"x": 1}}]}]}
    assert kong_config_problems(odd, enabled, facts) == ["services.s: plugin 'cors': config.x: unknown field"]
    on_consumer = {"_format_version": "2.1", "consumers": [{"username": "u", "plugins": [{"name": "acl"}]}]}
    assert kong_config_problems(on_consumer, enabled, facts) == [
        "consumers.u: plugin 'acl': consumer: value must be null"
    ]


def test_kong_plugins_value_is_read_as_kong_reads_it():
    facts = pinned_kong()
    assert kong_enabled_plugins(None, facts) == facts.bundled_plugins
    assert kong_enabled_plugins("bundled,my-plugin", facts) == facts.bundled_plugins | {"my-plugin"}
    assert kong_enabled_plugins("off", facts) == frozenset()
    assert kong_enabled_plugins(" cors , acl ", facts) == {"cors", "acl"}


# ---------------------------------------------------------------- shared stacks


def unknown_env(names: set[str], facts: Facts) -> list[str]:
    """The names the pinned program does not read."""
    return sorted(n for n in names if not facts.reads_env(n))


def test_rendered_stacks_set_only_what_the_pinned_programs_read(configs):
    for where, service in _production_services(configs["production"]).items():
        facts = FACTS[service["image"]]
        # A name the service's own command or health check reads ($NAME in its shell script) is ours, not the program's.
        own = {n for argv in _commands(service) for n in re.findall(r"\$([A-Z_][A-Z0-9_]*)", " ".join(argv))}
        names = set(service.get("environment") or {}) - own
        assert unknown_env(names, facts) == [], f"{where} ({facts.image}, {facts.env_source})"


def test_analytics_when_enabled_sets_only_what_the_pinned_logflare_reads(configs):
    config = configs["production"].model_copy(update={"supabase_analytics_enabled": True})
    analytics = _services(config, "supabase")["analytics"]
    facts = FACTS[analytics["image"]]
    assert facts is pinned("logflare")
    assert unknown_env(set(analytics["environment"]), facts) == [], facts.env_source
    # Vector stays unread: it is rendered without the config file that would make it ship anything
    assert "vector" in NOT_READ and "command" not in _services(config, "supabase")["vector"]


def test_rendered_stacks_run_only_commands_the_pinned_images_have(configs):
    for where, service in _production_services(configs["production"]).items():
        facts = FACTS[service["image"]]
        for argv in _commands(service):
            assert argv[0] in facts.commands, f"{where}: {argv[0]} is not in {facts.image} ({facts.commands_source})"


def test_redis_directives_exist_in_the_pinned_redis(configs):
    redis = _services(configs["production"], "redis")["redis"]
    script = redis["command"][-1]
    directives = set(re.findall(r"--([a-z-]+)", script)) | set(re.findall(r'printf "([a-z-]+) ', script))
    assert directives and directives <= pinned("redis").config_keys


def test_sandbox_stand_ins_get_the_same_settings_as_production(configs):
    production, sandbox = _production_services(configs["production"]), _production_services(configs["sandbox"])
    assert set(production) == set(sandbox)
    for where, service in production.items():
        ours = {k for k in sandbox[where].get("environment") or {} if not STANDIN_ENV.match(k)}
        assert ours == set(service.get("environment") or {}), where


# ---------------------------------------------------------------- per-project services (D3, D4)


def _project_services() -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    rendered = render_project_services(settings(), manifest("shop", storage={"enabled": True}), secrets_for("shop"))
    document = yaml.safe_load(rendered.compose)
    return document["services"], rendered.env_files


def test_project_services_set_only_what_the_pinned_programs_read():
    services, env_files = _project_services()
    assert set(services) == {"rest", "auth", "storage"}
    for name, service in services.items():
        facts = FACTS[service["image"]]
        names = {k for f in service["env_file"] for k in env_files[f]}
        assert unknown_env(names, facts) == [], f"{name} ({facts.image}, {facts.env_source})"


def test_project_health_checks_work_in_the_pinned_images():
    services, env_files = _project_services()
    for name, service in services.items():
        facts = FACTS[service["image"]]
        for argv in _commands(service):
            assert argv[0] in facts.commands, f"{name}: {argv[0]} is not in {facts.image}"
            if argv[0] == "postgrest":
                assert set(argv[1:]) <= facts.flags, f"{name}: {argv[1:]} ({facts.flags_source})"
    rest_env = {k: v for f in services["rest"]["env_file"] for k, v in env_files[f].items()}
    url, error = postgrest_ready_url(rest_env, FACTS[services["rest"]["image"]])
    assert url == "http://127.0.0.1:3001/ready", error


def test_postgrest_ready_as_each_version_does_it():
    env = {"PGRST_ADMIN_SERVER_PORT": "3001", "PGRST_ADMIN_SERVER_HOST": "127.0.0.1"}
    assert postgrest_ready_url(env, POSTGREST_V12_2_12)[0] is None  # no --ready before v14.0
    assert postgrest_ready_url(env, POSTGREST_V14_5) == ("http://127.0.0.1:3001/ready", "")
    assert "admin-server-port" in postgrest_ready_url({}, POSTGREST_V14_5)[1]
    default_host = postgrest_ready_url({"PGRST_ADMIN_SERVER_PORT": "3001"}, POSTGREST_V14_5)
    assert default_host[0] is None and '"!4"' in default_host[1]
    assert postgrest_ready_url({**env, "PGRST_ADMIN_SERVER_HOST": "::1"}, POSTGREST_V14_5)[0] == (
        "http://[::1]:3001/ready"
    )


def test_postgrest_settings_dropped_upstream_are_known_dead():
    # PGRST_DB_USE_LEGACY_GUCS was removed in 12.0.0; jwt-cache-max-lifetime became jwt-cache-max-entries in 14.0.
    assert not POSTGREST_V12_2_12.reads_env("PGRST_DB_USE_LEGACY_GUCS")
    assert POSTGREST_V12_2_12.reads_env("PGRST_JWT_CACHE_MAX_LIFETIME")
    assert not POSTGREST_V14_5.reads_env("PGRST_JWT_CACHE_MAX_LIFETIME")
    assert POSTGREST_V14_5.reads_env("PGRST_APP_SETTINGS_JWT_EXP")


def test_gotrue_table_reads_names_as_envconfig_derives_them():
    """Every name envconfig derives from GoTrue's config structs at the tag, not a hand-picked few: nested
    prefixes, split words, `envconfig` tags read both prefixed and bare, and names that look right but are not."""
    gotrue = pinned("gotrue")
    assert len(gotrue.env) > 300
    for name in (
        "GOTRUE_DB_DATABASE_URL",  # DB.URL, tag DATABASE_URL under the DB prefix...
        "DATABASE_URL",  # ...and the tag alone
        "PORT",
        "GOTRUE_MAILER_URLPATHS_INVITE",  # no split_words on URLPaths
        "GOTRUE_EXTERNAL_GOOGLE_SKIP_NONCE_CHECK",
        "GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI",
        "GOTRUE_JWT_VALIDMETHODS",
        "GOTRUE_INTERNAL_HTTP_TIMEOUT",  # os.Getenv, outside the config structs
    ):
        assert gotrue.reads_env(name), name
    for name in ("GOTRUE_EXTERNAL_SKIP_NONCE_CHECK", "GOTRUE_JWT_VALID_METHODS", "GOTRUE_DATABASE_URL"):
        assert not gotrue.reads_env(name), name


# ---------------------------------------------------------------- memory (D5)

HEADROOM = 1.25  # a limit at the measured RSS is an OOM kill at the first request spike


def test_memory_limits_leave_room_above_what_was_measured(configs):
    for group, config in configs.items():
        for key, limit in config.memory_limits_mb.items():
            measured = pinned(key).measured_rss_mb if key in PINNED else 0
            assert limit >= measured * HEADROOM, (
                f"{group}: memory_limits_mb[{key!r}]={limit} vs {measured} MiB measured"
            )
    assert pinned("postgres_meta").measured_rss_mb and pinned("postgres_meta").measured_source


# ---------------------------------------------------------------- Postgres image (D6, D7)


def test_allowed_extensions_exist_in_the_pinned_postgres():
    assert set(ALLOWED_EXTENSIONS) <= pinned("postgres").config_keys


def test_sandbox_postgres_has_wal2json_for_realtime():
    dockerfile = (REPO / "devkit/sandbox/images/postgres/Dockerfile").read_text()
    installs = re.findall(r"apt-get install -y --no-install-recommends ([^\\\n&]+)", dockerfile)
    packages = {p for line in installs for p in line.split()}
    assert "postgresql-15-wal2json" in packages
    assert "wal2json" in pinned("postgres").config_keys  # what the pinned supabase/postgres has too


def test_facts_module_imports_only_the_standard_library():
    # It is shipped into the stand-in image, which has python3 and nothing else.
    for name in ("facts.py", "checks.py", "__init__.py"):
        text = (REPO / "nextmavens/upstream" / name).read_text()
        imports = re.findall(r"^(?:from|import) ([a-z_.]+)", text, re.M)
        allowed = {"__future__", "collections", "dataclasses", "typing", "nextmavens"}
        assert all(i.split(".")[0] in allowed for i in imports), name
        assert all(i == "nextmavens.upstream.facts" for i in imports if i.startswith("nextmavens")), name


# ---------------------------------------------------------------- Postgres replication capacity


def _postgres_settings(config: HostData) -> tuple[list[str], dict[str, int]]:
    """The shared Postgres's argv and its `-c name=value` settings, as the rendered compose runs it."""
    argv = _services(config, "supabase")["db"]["command"]
    settings = dict(a.split("=", 1) for a, flag in zip(argv[1:], argv[:-1], strict=True) if flag == "-c")
    return argv, {k: int(v) for k, v in settings.items()}


@pytest.mark.parametrize("max_projects", [None, 1, 6, 200])
def test_production_postgres_has_a_slot_and_walsender_for_every_realtime_tenant(configs, max_projects):
    config = configs["production"]
    if max_projects is not None:
        config = config.model_copy(update={"max_projects": max_projects})
    facts = pinned("postgres")
    argv, settings = _postgres_settings(config)
    # the image's own CMD first (its config directory holds supautils, the preloads, hba), then only flags and
    # settings the pinned image knows
    assert tuple(argv[: len(facts.cmd)]) == facts.cmd, argv
    assert {a for a in argv[len(facts.cmd) :] if a.startswith("-")} <= facts.flags
    assert set(settings) <= set(facts.config_defaults), settings
    image_slots, image_senders = (int(facts.config_defaults[k]) for k in ("max_replication_slots", "max_wal_senders"))
    tenants = config.max_projects
    assert settings["max_replication_slots"] - image_slots >= REALTIME_SLOTS_PER_TENANT * tenants, settings
    assert settings["max_wal_senders"] - image_senders >= REALTIME_WAL_SENDERS_PER_TENANT * tenants, settings


def test_the_images_own_replication_figures_would_starve_a_sixth_project():
    # why the command exists: 5 slots at two a tenant, and the image's defaults read at the source
    facts = pinned("postgres")
    assert facts.config_defaults["max_replication_slots"] == "5" and facts.config_defaults["max_wal_senders"] == "10"
    assert int(facts.config_defaults["max_replication_slots"]) // REALTIME_SLOTS_PER_TENANT < 6


def test_sandbox_postgres_image_runs_the_pinned_images_command():
    """The sandbox renders the same `command:`: its image keeps its config under the same directory."""
    image_dir = REPO / "devkit/sandbox/images/postgres"
    dockerfile = (image_dir / "Dockerfile").read_text()
    config_dir = pinned("postgres").cmd[-1]
    assert f"CMD {json.dumps(list(pinned('postgres').cmd))}" in dockerfile
    assert f"{config_dir}/postgresql.conf" in dockerfile
    conf = (image_dir / "postgresql.conf").read_text()
    assert f"data_directory = '{pinned('postgres').config_defaults['data_directory']}'" in conf
