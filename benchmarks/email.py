"""Benchmark of email sending: templated sends per second through the platform service to the Resend stand-in.

    python benchmarks/email.py [--sends 600] [--concurrency 8] [--repeat-every 5] [--time-cap-s 90] [--tmp DIR]

1. a throwaway PostgreSQL (initdb + pg_ctl, loopback only, fsync off), one project declaring `email`, applied for
   real by the engine, with a template `welcome.{html,txt}` in its org's templates folder;
2. the Resend STAND-IN (devkit/standins/resend.py) on a loopback port, which keeps each idempotency key 24 h and
   sends nothing for a key it has seen;
3. `nextmavens platform serve` as its own process, given the stand-in's URL and a 0600 key file;
4. `--concurrency` threads of this process, each with a keep-alive connection, POST
   /v1/projects/acme/shop/email with a developer's token: `--sends` templated sends, each with its own
   idempotency key, and every `--repeat-every`th key sent a second time (a client retrying: it must not send again).

Duplicates: emails the stand-in sent beyond one per distinct key, plus keys with more than one row in the
project's email.messages. It prints how it measured, then exactly one last line: `emails_per_s=<n> duplicates=<n>`.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
# Run as a script, this file's folder comes first on the path, and its name would shadow the standard library's
# `email` package (http.client imports it): look modules up from the repository instead, before importing any.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks.serving import latency_line, load_line, run_in_workdir, start_service, stop_service  # noqa: E402

MEMBER = "bench@example.test"
RESEND_KEY = "re_benchmark_standin_key_0123456789"
# the highest send budget a manifest may declare: the benchmark measures the service, not the project's limit
EMAIL = {"from_domain": "mail.shop.example", "from_name": "Shop", "send_per_minute": 6000}


def say(text: str = "") -> None:
    print(text, flush=True)


def setup(dsn: str, workdir: Path) -> tuple[Path, Path, str]:
    import yaml

    from nextmavens.control.db import connect_control
    from nextmavens.engine.session import Engine, EngineConfig
    from nextmavens.manifest.loader import load_manifests
    from nextmavens.platform.issuing import issue_token

    projects = workdir / "projects"
    org = projects / "acme"
    (org / "templates").mkdir(parents=True)
    (org / "org.yaml").write_text(yaml.safe_dump({"name": "Acme", "members": [{"email": MEMBER, "role": "developer"}]}))
    manifest = {"ref": "shop", "name": "Shop", "auth": {"site_url": "https://shop.example"}, "email": EMAIL}
    (org / "shop.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (org / "templates" / "welcome.html").write_text("<p>Hello {{ name }}, your order {{ order }} is on its way.</p>\n")
    (org / "templates" / "welcome.txt").write_text("Hello {{ name }}, your order {{ order }} is on its way.\n")
    master_key = workdir / "keys" / "master.key"
    engine = Engine(EngineConfig(dsn=dsn, master_key_path=master_key, lock_timeout_s=60, actor="bench"))
    engine.apply(load_manifests(projects))
    with connect_control(dsn) as conn:
        token = issue_token(
            conn,
            member=MEMBER,
            org="acme",
            project=None,
            read_only=False,
            name="benchmark",
            expires_at=datetime.now(UTC) + timedelta(hours=2),
            created_by="bench",
        ).token
    return projects, master_key, token


def load(port: int, token: str, keys: list[str], concurrency: int, time_cap_s: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    lock = threading.Lock()
    queue = list(reversed(keys))
    latencies: list[float] = []
    failures: list[str] = []
    deadline = time.monotonic() + time_cap_s

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while time.monotonic() < deadline:
                with lock:
                    if not queue or failures:
                        return
                    key = queue.pop()
                body = {
                    "to": [f"{key}@customer.example"],
                    "subject": "Your order",
                    "template": "welcome",
                    "data": {"name": "Ann <Lee>", "order": key},
                    "idempotency_key": key,
                }
                t0 = time.perf_counter()
                conn.request("POST", "/v1/projects/acme/shop/email", body=json.dumps(body), headers=headers)
                response = conn.getresponse()
                answer = response.read()
                elapsed = (time.perf_counter() - t0) * 1000
                with lock:
                    if response.status not in (200, 201):
                        failures.append(f"{response.status}: {answer[:200]!r}")
                        return
                    latencies.append(elapsed)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(time_cap_s + 60)
    return {"latencies": latencies, "wall_s": time.perf_counter() - started, "failures": failures}


def run(args: argparse.Namespace, workdir: Path) -> str:
    from devkit.localdb.server import LocalPostgres, free_port
    from devkit.standins.resend import ResendStandin

    server = LocalPostgres(base=workdir / "server", fast=True)
    server.start()
    service = None
    try:
        projects, master_key, token = setup(server.dsn, workdir)
        key_file = workdir / "resend.key"
        key_file.write_text(RESEND_KEY + "\n")
        key_file.chmod(0o600)
        with ResendStandin(RESEND_KEY, {EMAIL["from_domain"]}) as resend:
            port = free_port()
            extra = {"NEXTMAVENS_RESEND_URL": resend.base_url, "NEXTMAVENS_RESEND_KEY_FILE": str(key_file)}
            service = start_service(server.dsn, master_key, projects, workdir, port, extra)
            distinct = [f"order-{i:06d}" for i in range(args.sends)]
            repeated = distinct[:: args.repeat_every] if args.repeat_every else []
            keys = distinct + repeated  # the repeats come last, after their first send was answered
            say(f"cores: {os.cpu_count()} (client, service, stand-in and PostgreSQL share them); {load_line('before')}")
            say(
                f"load: {args.concurrency} threads with one keep-alive connection each, {len(distinct)} templated "
                f"sends with their own idempotency keys, then {len(repeated)} of those keys sent again"
            )
            warm = load(port, token, ["warm-up-1", "warm-up-2"], 1, 30)
            if warm["failures"]:
                raise RuntimeError(f"the service refused the warm-up: {warm['failures'][:1]}")
            result = load(port, token, keys, args.concurrency, args.time_cap_s)
            if result["failures"]:
                raise RuntimeError(f"the service answered wrongly: {result['failures'][:3]}")
            sent = [s for s in resend.state.sent if s.idempotency_key and s.idempotency_key.startswith("shop/order-")]
            answered = len(result["latencies"])
            per_key: dict[str, int] = {}
            for item in sent:
                per_key[str(item.idempotency_key)] = per_key.get(str(item.idempotency_key), 0) + 1
            rows = server_rows(server.dsn)
            duplicates = sum(n - 1 for n in per_key.values()) + rows["duplicated_keys"]
            say(
                f"answered {answered} requests in {result['wall_s']:.2f} s; the stand-in sent {len(sent)} emails for "
                f"{len(per_key)} keys; email.messages: {rows['rows']} rows, {rows['sent']} sent"
            )
            say(latency_line(sorted(result["latencies"])))
            say(load_line("after"))
            emails_per_s = len(per_key) / result["wall_s"]
            return f"emails_per_s={emails_per_s:.0f} duplicates={duplicates}"
    finally:
        stop_service(service)
        server.stop()


def server_rows(dsn: str) -> dict[str, int]:
    import psycopg

    from nextmavens.control.db import dsn_for_database

    with psycopg.connect(dsn_for_database(dsn, "shop"), autocommit=True) as conn:
        total, sent = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'sent') FROM email.messages"
            " WHERE idempotency_key LIKE 'order-%'"
        ).fetchone() or (0, 0)
        duplicated = conn.execute(
            "SELECT count(*) FROM (SELECT idempotency_key FROM email.messages GROUP BY 1 HAVING count(*) > 1) d"
        ).fetchone()
    return {"rows": int(total), "sent": int(sent), "duplicated_keys": int(duplicated[0] if duplicated else 0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sends", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat-every", type=int, default=5, help="send every Nth key twice (0: none)")
    parser.add_argument("--time-cap-s", type=float, default=90.0)
    parser.add_argument("--tmp", default=None, help="folder for the temporary files (default: the system's)")
    args = parser.parse_args()
    if args.sends < 1 or args.concurrency < 1 or args.repeat_every < 0:
        parser.error("--sends and --concurrency must be at least 1, --repeat-every at least 0")
    return run_in_workdir("nextmavens-bench-email-", args.tmp, lambda workdir: run(args, workdir))


if __name__ == "__main__":
    sys.exit(main())
