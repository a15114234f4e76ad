"""TypeScript types through the REAL postgres-meta 0.91.6 on the sandbox (issue 15): the service's own request
(platform/typegen.py, with studiogate.role_connection) run inside the guest, as the project's read-only role.

The two modules are copied into the guest and run with the host venv's Python (its installed package supplies the
rest: the engine's secret store for the role's password, studiogate's CryptoJS encryption), so the request is
exactly the one the service makes: the header encrypted with postgres-meta's CRYPTO_KEY, the connection its
read-only login into its own database, the schemas it may read. No password leaves the guest."""

from __future__ import annotations

import base64
import json

import pytest

from tests.e2e.conftest import Sandbox
from tests.e2e.test_sandbox import group_data
from tests.support.repo import REPO

pytestmark = pytest.mark.e2e

FOLDER = "/tmp/nm-types-e2e"
PROBE = r"""
import json, os, subprocess, sys
from pathlib import Path
sys.path.insert(0, "/tmp/nm-types-e2e")
import psycopg
from studiogate import role_connection
from typegen import OWN_SCHEMAS, TypesFailed, listable, typescript_types
from nextmavens.engine.session import Engine, EngineConfig

meta_url, pg_port = sys.argv[1], int(sys.argv[2])
config = EngineConfig(dsn=os.environ["NEXTMAVENS_DSN"], master_key_path=Path(os.environ["NEXTMAVENS_MASTER_KEY"]))
engine = Engine(config)
with engine.secrets() as store:
    password = store.project_secrets("shop").passwords["readonly_shop"]
def printenv(name):
    return subprocess.run(["docker", "exec", "nextmavens-meta", "printenv", name], capture_output=True, text=True,
                          check=True).stdout.strip()
key, db_host, db_port = printenv("CRYPTO_KEY"), printenv("PG_META_DB_HOST"), int(printenv("PG_META_DB_PORT"))
# the schemas as the service reads them: as the read-only role, in its own database
with psycopg.connect(host="127.0.0.1", port=pg_port, user="readonly_shop", password=password, dbname="shop") as conn:
    schemas = listable([row[0] for row in conn.execute(OWN_SCHEMAS).fetchall()])
    superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
connection = role_connection(db_host, db_port, "shop", "readonly_shop", password, "nextmavens-types")
types = typescript_types(meta_url, key, connection, schemas, secrets=[password])
refusals = {}
for name, other in (("crm", connection.replace("/shop?", "/crm?")), ("wrong key", None)):
    try:
        typescript_types(meta_url, key + "x" if other is None else key, other or connection, schemas,
                         secrets=[password])
        refusals[name] = None
    except TypesFailed as exc:
        refusals[name] = exc.message
print(json.dumps({
    "schemas": schemas, "superuser": superuser, "types": types, "refusals": refusals,
    "password_shown": any(password in (m or "") for m in refusals.values()) or password in types,
}))
"""


def put(sandbox: Sandbox, path: str, text: str) -> None:
    encoded = base64.b64encode(text.encode()).decode()
    sandbox.check(f"mkdir -p {FOLDER} && echo {encoded} | base64 -d > {path}")


def test_the_real_postgres_meta_generates_types_as_the_read_only_role(sandbox: Sandbox) -> None:
    data = group_data(sandbox)
    platform_dir = data["platform_dir"]
    for module in ("typegen.py", "studiogate.py"):
        put(sandbox, f"{FOLDER}/{module}", (REPO / "nextmavens" / "platform" / module).read_text())
    put(sandbox, f"{FOLDER}/probe.py", PROBE)
    meta_url = f"http://127.0.0.1:{data['loopback_ports']['postgres_meta']}"
    try:
        out = sandbox.check(
            f"{platform_dir}/bin/nextmavens-env {platform_dir}/venv/bin/python {FOLDER}/probe.py {meta_url} "
            f"{data['loopback_ports']['postgres']}",
            timeout=180,
        )
    finally:
        sandbox.run(f"rm -rf {FOLDER}")
    found = json.loads(out)
    assert found["password_shown"] is False
    assert found["superuser"] is False
    # acme/shop declares schema `catalog` (projects/acme/shop.yaml): the read-only role reads it and public only
    assert found["schemas"] == ["catalog", "public"], found["schemas"]
    types = found["types"]
    assert "export type Database = {" in types and "  catalog: {" in types and "  public: {" in types, types[:800]
    assert "  auth: {" not in types and "  storage: {" not in types
    # PostgreSQL refuses the read-only role in another project's database; postgres-meta refuses another key
    assert "permission denied for database" in (found["refusals"]["crm"] or ""), found["refusals"]
    assert "upstream connection details" in (found["refusals"]["wrong key"] or ""), found["refusals"]


def test_the_deployed_service_answers_types_for_its_token_only(sandbox: Sandbox) -> None:
    """The same through the unit the deploy renders (its postgres-meta URL, key copy and database address): a
    project-scoped token gets its project's types, and another project's are 404 to it."""
    data = group_data(sandbox)
    wrapper = f"{data['platform_dir']}/bin/nextmavens-env"
    created = sandbox.check(
        f"{wrapper} nextmavens token create --member ana@acme.example --project acme/shop --expires 1d --json"
    )
    token = json.loads(created)["token"]
    base = f"http://127.0.0.1:{data['loopback_ports']['platform']}/v1/projects/acme"
    answers = {}
    for ref in ("shop", "crm"):
        out = sandbox.check(
            f"curl -sS -m 60 -o /tmp/nm-types.json -w '%{{http_code}}' -H 'Authorization: Bearer {token}' "
            f"{base}/{ref}/types/typescript; echo; cat /tmp/nm-types.json; rm -f /tmp/nm-types.json",
            timeout=90,
        )
        code, _, body = out.partition("\n")
        answers[ref] = (code.strip(), body)
    code, body = answers["shop"]
    assert code == "200", answers["shop"]
    found = json.loads(body)
    assert found["project"] == "acme/shop" and found["schemas"] == ["catalog", "public"], found
    assert "export type Database = {" in found["types"] and "  auth: {" not in found["types"]
    assert answers["crm"][0] == "404", answers["crm"]
