"""Property-based requests generated from the service's own OpenAPI document (schemathesis), as an owner and
with no token: no answer is a 500, every answer matches its documented schema, every error is the JSON error
shape, and no body holds a JWT secret, a database password or the calling token."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import response_schema_conformance

from tests.integration.platform.harness import PlatformStage

EXAMPLES = 25  # per operation, each sent with the owner's token and with none


@pytest.fixture(scope="module")
def owner_token(platform_stage: PlatformStage) -> str:
    return platform_stage.issue("owner@acme.test")[1]


@pytest.fixture(scope="module")
def never_shown(platform_stage: PlatformStage, owner_token: str) -> list[str]:
    """What no endpoint ever returns: the token itself, JWT secrets and database passwords."""
    found = [owner_token]
    with platform_stage.stage.engine().secrets() as store:
        for ref in ("shop", "crm", "web"):
            project = store.project_secrets(ref)
            assert project is not None
            found += [project.jwt_secret, *project.passwords.values()]
    return found


def test_no_server_error_and_no_secret(platform_stage: PlatformStage, owner_token: str, never_shown: list[str]) -> None:
    api = schemathesis.openapi.from_url(f"{platform_stage.url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 10
    # DELETE /v1/me/token revokes the owner's token it is sent with: last, so every other operation is fuzzed
    # with a valid token first.
    operations.sort(key=lambda operation: (operation.method.upper(), operation.path) == ("DELETE", "/v1/me/token"))
    assert (operations[-1].method.upper(), operations[-1].path) == ("DELETE", "/v1/me/token")

    def check(case: Any) -> None:
        for headers in ({"Authorization": f"Bearer {owner_token}"}, {}):
            response = case.call(headers=headers, timeout=60)
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
            case.validate_response(response, checks=[response_schema_conformance])
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
            for secret in never_shown:
                assert secret not in response.text

    for operation in operations:
        fuzz = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        fuzz(given(case=operation.as_strategy())(check))()
    assert not any(line for line in platform_stage.logs.lines if any(s in line for s in never_shown))
    sent = sum(' HTTP/1.1" ' in line for line in platform_stage.logs.lines)
    assert sent >= 20 * len(operations)  # the access log saw the generated requests
