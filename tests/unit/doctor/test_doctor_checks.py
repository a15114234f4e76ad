"""The doctor's pure checks: each kind of failure gives a failed check naming its target and what to look at;
skipped checks are never counted as passed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nextmavens.doctor import checks as c
from nextmavens.doctor.checks import Answer, Container, Exec, Expected
from nextmavens.doctor.verdict import EXIT_MARK, verdict

NOW = datetime(2026, 12, 1, tzinfo=UTC)
KONG = Expected("nextmavens-kong", "kong:2.8.1", name="nextmavens-kong")
REST = Expected("shop rest", "postgrest/postgrest:v14.5", project="nm-shop", service="rest")


def container(**overrides: object) -> Container:
    values: dict[str, object] = {
        "name": "nextmavens-kong",
        "image": "kong:2.8.1",
        "memory": 256 * 1024 * 1024,
        "status": "running",
        "health": None,
    }
    values.update(overrides)
    return Container(**values)  # type: ignore[arg-type]


def assert_failed(check: c.Check, target: str, *hint_words: str) -> None:
    assert check.status == "failed" and check.ok is False, check
    assert check.target == target and check.hint, check
    for word in hint_words:
        assert word in check.hint, (word, check.hint)


def test_container_inspect_shape_is_read_as_docker_reports_it() -> None:
    attrs = {
        "Name": "/nm-shop-rest-1",
        "Config": {
            "Image": "postgrest/postgrest:v14.5",
            "Labels": {"com.docker.compose.project": "nm-shop", "com.docker.compose.service": "rest"},
        },
        "State": {"Status": "running", "Health": {"Status": "healthy"}},
        "HostConfig": {"Memory": 201326592},
    }
    found = Container.from_inspect(attrs)
    assert found == Container(
        "nm-shop-rest-1", "postgrest/postgrest:v14.5", 201326592, "running", "healthy", "nm-shop", "rest"
    )
    assert c.find(REST, [container(), found]) is found
    assert c.find(KONG, [found]) is None


def test_missing_stopped_and_unhealthy_containers_fail() -> None:
    assert_failed(c.container_check(KONG, None), "nextmavens-kong", "does not exist")
    assert_failed(c.container_check(REST, None), "shop rest", "nextmavens apply")
    assert_failed(c.container_check(KONG, container(status="exited")), "nextmavens-kong", "docker logs nextmavens-kong")
    assert_failed(c.container_check(KONG, container(health="unhealthy")), "nextmavens-kong", "health check")
    assert c.container_check(KONG, container(health="healthy")).ok is True


def test_a_container_without_memory_limit_fails() -> None:
    assert_failed(c.memory_check(KONG, container(memory=0)), "nextmavens-kong", "mem_limit")
    assert c.memory_check(KONG, container()).detail == "256 MiB"


def test_an_image_other_than_the_pin_fails_and_substitutes_are_skipped_not_passed() -> None:
    assert_failed(c.image_check(KONG, container(image="kong:3.0"), False), "nextmavens-kong", "pin")
    assert c.image_check(KONG, container(), False).ok is True
    skipped = c.image_check(KONG, container(image="nextmavens-local/standin:1"), True)
    assert skipped.status == "skipped" and skipped.ok is None and "substitutes" in skipped.detail
    assert c.healthy([skipped]) and skipped.as_json()["ok"] is None


def test_kong_status_and_config_failures() -> None:
    assert_failed(c.kong_status_check(Answer(None, error="refused")), "kong", "docker logs nextmavens-kong")
    assert_failed(c.kong_status_check(Answer(500)), "kong")
    assert_failed(c.kong_status_check(Answer(200, {"database": {"reachable": False}})), "kong")
    assert c.kong_status_check(Answer(200, {"database": {"reachable": True}})).ok is True
    assert_failed(c.kong_config_check(None, "a" * 32), "kong", "nextmavens apply")
    assert_failed(c.kong_config_check("0" * 32, "a" * 32), "kong", "restarted")
    assert_failed(c.kong_config_check("b" * 32, "a" * 32), "kong", "refuses")
    assert c.kong_config_check("a" * 32, "a" * 32).ok is True


def test_postgrest_and_gotrue_failures() -> None:
    assert_failed(c.postgrest_ready_check("shop", None), "shop", "nextmavens apply")
    failed = c.postgrest_ready_check("shop", Exec(1, "ERROR: connection refused to http://127.0.0.1:3001/ready"))
    assert_failed(failed, "shop", "docker logs nm-shop-rest-1")
    assert "connection refused" in failed.detail
    assert c.postgrest_ready_check("shop", Exec(0, "OK")).ok is True
    assert_failed(c.gotrue_health_check("shop", None), "shop")
    assert_failed(c.gotrue_health_check("shop", Exec(1, "wget: server returned error")), "shop", "nm-shop-auth-1")
    assert c.gotrue_health_check("shop", Exec(0, "{}")).ok is True


def test_tenant_failures() -> None:
    assert_failed(c.tenant_check("realtime", "shop", None, []), "shop", "nextmavens apply")
    differs = c.tenant_check("supavisor", "shop", {"external_id": "shop"}, ["default_pool_size: 5 -> 10"])
    assert_failed(differs, "shop", "nextmavens apply")
    assert "default_pool_size" in differs.detail
    assert c.tenant_check("supavisor", "shop", {"external_id": "shop"}, []).ok is True
    assert_failed(c.tenant_absent_check("supavisor", "desk", {"external_id": "desk"}), "desk")
    assert c.tenant_absent_check("supavisor", "desk", None).ok is True


def test_postgres_meta_and_evolution_failures() -> None:
    assert_failed(c.postgres_meta_check(Answer(None, error="refused")), "nextmavens-meta", "docker logs")
    assert c.postgres_meta_check(Answer(200)).ok is True
    assert_failed(c.evolution_check(Answer(None), key_known=False), "nextmavens-evolution", "nextmavens-env")
    assert_failed(c.evolution_check(Answer(401), key_known=True), "nextmavens-evolution", "AUTHENTICATION_API_KEY")
    assert_failed(c.evolution_check(Answer(502), key_known=True), "nextmavens-evolution", "docker logs")
    assert c.evolution_check(Answer(200), key_known=True).ok is True


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (Answer(None, error="closed"), "no vhost"),
        (Answer(401), "anon key"),
        (Answer(404), "no route"),
        (Answer(502), "nextmavens-kong"),
        (Answer(503), "nm-shop-rest-1"),
    ],
)
def test_nginx_failures_name_what_to_look_at(answer: Answer, words: str) -> None:
    assert_failed(c.nginx_check("shop.api.example.test", "shop", "active", answer), "shop.api.example.test", words)


def test_nginx_serving_active_and_suspended_projects() -> None:
    assert c.nginx_check("shop.api.example.test", "shop", "active", Answer(200)).ok is True
    assert c.nginx_check("shop.api.example.test", "shop", "active", Answer(308)).ok is True  # to HTTPS
    assert c.nginx_check("desk.api.example.test", "desk", "suspended", Answer(503)).ok is True
    assert_failed(c.nginx_check("desk.api.example.test", "desk", "suspended", Answer(200)), "desk.api.example.test")


def test_certificates_missing_or_expiring_fail_and_off_is_skipped() -> None:
    assert_failed(c.certificate_check("shop.api.example.test", None, NOW, 14), "shop.api.example.test", "resolve")
    soon = c.certificate_check("shop.api.example.test", NOW + timedelta(days=13), NOW, 14)
    assert_failed(soon, "shop.api.example.test", "letsencrypt")
    assert_failed(c.certificate_check("x", NOW + timedelta(days=14), NOW, 14), "x")
    assert c.certificate_check("x", NOW + timedelta(days=60), NOW, 14).ok is True
    off = c.certificates_off()
    assert off.status == "skipped" and off.ok is None and "edge_issue_certificates" in off.detail


def test_healthy_is_false_on_any_failure_only() -> None:
    assert c.healthy([c.passed("a", "t", "ok"), c.skipped("b", "t", "off")])
    assert not c.healthy([c.passed("a", "t", "ok"), c.failed("b", "t", "bad", "look here")])


def test_the_deploy_reads_the_doctors_json_and_exit_code() -> None:
    ok = [c.passed("kong config", "kong", "loaded").as_json(), c.certificates_off().as_json()]
    import json

    good = verdict([*json.dumps(ok, indent=2).splitlines(), f"{EXIT_MARK}0"])
    assert good.ok and "1 checks ok" in good.message and "certificates are off" in good.message
    bad = [*ok, c.failed("postgrest ready", "shop", "exited 1", "docker logs nm-shop-rest-1").as_json()]
    failing = verdict([*json.dumps(bad).splitlines(), f"{EXIT_MARK}1"])
    assert not failing.ok and "postgrest ready shop: exited 1 -> docker logs nm-shop-rest-1" in failing.message
    warned = verdict(["warning: [x] before the list", *json.dumps(bad, indent=2).splitlines(), f"{EXIT_MARK}1"])
    assert not warned.ok and "postgrest ready shop" in warned.message
    crashed = verdict(["error: no database connection: set NEXTMAVENS_DSN", f"{EXIT_MARK}1"])
    assert not crashed.ok and "NEXTMAVENS_DSN" in crashed.message
    # exit 0 with a failed check in the list (never expected) still fails the deploy
    assert not verdict([*json.dumps(bad).splitlines(), f"{EXIT_MARK}0"]).ok


def test_the_platform_service_must_be_active_and_healthy() -> None:
    unit = "nextmavens-platform.service"
    ok = c.platform_service_check(unit, "active", Answer(200, {"status": "ok"}))
    assert ok.status == "ok" and ok.target == unit
    stopped = c.platform_service_check(unit, "failed", Answer(None, error="connection refused"))
    assert stopped.status == "failed" and "systemd: failed" in stopped.detail and "journalctl -u" in stopped.hint
    no_database = c.platform_service_check(unit, "active", Answer(503))
    assert no_database.status == "failed" and "control database" in no_database.hint
    unknown = c.platform_service_check(unit, "", Answer(200))
    assert unknown.status == "failed" and "unknown" in unknown.detail


def test_the_platform_name_answers_through_nginx() -> None:
    name = "platform.example.test"
    assert c.platform_vhost_check(name, Answer(200)).status == "ok"
    assert c.platform_vhost_check(name, Answer(301)).detail == "HTTP 301 (to HTTPS)"
    behind = c.platform_vhost_check(name, Answer(502))
    assert behind.status == "failed" and "platform service" in behind.hint
    assert "no vhost" in c.platform_vhost_check(name, Answer(None, error="closed")).hint
