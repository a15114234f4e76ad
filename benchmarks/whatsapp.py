"""Benchmark of the webhook receiver: Evolution's signed `messages.upsert` webhooks through the running platform
service into a real PostgreSQL, from a second process.

    python benchmarks/whatsapp.py [--concurrency 8] [--requests 10000] [--warmup 500] [--resend-every 20]
                                  [--time-cap-s 60] [--fast] [--port N] [--tmp DIR]

1. a throwaway PostgreSQL (initdb + pg_ctl, loopback only) with fsync and synchronous_commit ON, as in
   production: every webhook is answered after its commit reached the disk (`--fast` turns them off);
2. two projects with two WhatsApp instances each, applied for real by the engine (which seals each instance's
   webhook secret and creates the `whatsapp` tables);
3. `nextmavens platform serve` as its own process on a loopback port, as the host runs it (uvicorn);
4. a second process, the client: `--concurrency` threads, each with its own keep-alive HTTP/1.1 connection
   (the standard library's http.client), round-robin over the four instances. Each webhook is a realistic
   `messages.upsert` body (~1 KB) with a distinct message id and its own token, minted as Evolution mints it
   (HS256 with the instance's secret, {iat, exp, app, action}); every `--resend-every`-th request instead
   sends an earlier webhook again, byte for byte, as Evolution does after a timeout. Answers 429 and 503 are
   sent again after 0.2 s (as Evolution would, sooner), at most 5 times. `--warmup` requests are not counted,
   then `--requests` requests or `--time-cap-s` seconds, whichever ends first.

Afterwards the rows are counted: `lost` = webhooks answered 200 whose row is missing, plus webhooks never
answered 200; `duplicates` = rows beyond one per message id, plus resends answered `"stored": true` although
their first sending had been. It prints cores, load, the disk, latency percentiles, the server's CPU per request,
and the cost of the receiver's pure steps measured in-process; then exactly one last line:
`webhooks_per_s=<n> p99_ms=<x> lost=<n> duplicates=<n>`.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder is first on the path, and its email.py and platform.py would shadow the
# standard library's modules (http.client imports email): drop the folder before anything else is imported.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This folder is first on the path when run as a script, and its platform.py would shadow the standard library's.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.serving import (  # noqa: E402
    latency_line,
    load_line,
    percentile,
    process_cpu_s,
    run_client,
    run_in_workdir,
    run_workers,
    start_service,
    stop_service,
)

ORG = "bench"
PROJECTS = {"shop": ("sales", "support"), "news": ("alerts", "desk")}
RETRIES = 5
RETRY_DELAY_S = 0.2


def say(text: str = "") -> None:
    print(text, flush=True)


def write_manifests(root: Path) -> None:
    import yaml

    folder = root / ORG
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "org.yaml").write_text(yaml.safe_dump({"name": "Bench", "members": []}))
    for ref, instances in PROJECTS.items():
        # No webhook_url: the service's forwarder stays idle (it would post each row on), so only the receiver
        # is measured.
        declared = [{"name": instance} for instance in instances]
        manifest = {
            "ref": ref,
            "name": f"Bench {ref}",
            "auth": {"site_url": f"https://{ref}.example"},
            "whatsapp": {"instances": declared},
        }
        (folder / f"{ref}.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))


def webhook_body(ref: str, instance: str, message_id: str, n: int) -> bytes:
    """A messages.upsert as Evolution 2.3.7 sends it (reference/evolution.md section 2)."""
    now = int(time.time())
    body = {
        "event": "messages.upsert",
        "instance": f"{ref}--{instance}",
        "data": {
            "key": {"remoteJid": f"55119{n % 100000:08d}@s.whatsapp.net", "fromMe": n % 3 == 0, "id": message_id},
            "pushName": f"Customer {n % 997}",
            "status": "DELIVERY_ACK",
            "message": {
                "conversation": f"Hello, I would like to know whether order {n} has shipped yet. Thanks!",
                "messageContextInfo": {"deviceListMetadataVersion": 2},
            },
            "contextInfo": None,
            "messageType": "conversation",
            "messageTimestamp": now,
            "instanceId": "a1b2c3d4-0000-4000-8000-000000000000",
            "source": "android",
        },
        "destination": f"https://platform.example/hooks/evolution/{ORG}/{ref}/{instance}",
        "date_time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now)),
        "sender": "5511900000000@s.whatsapp.net",
        "server_url": "http://evolution:8080",
        "apikey": None,
    }
    return json.dumps(body).encode()


# -- the client (its own process) ---------------------------------------------------------------------------


Planned = tuple[str, bytes, dict[str, str], str]  # path, body, headers, message id


def plan_requests(secrets: dict[str, str], total: int, resend_every: int) -> list[Planned]:
    """(path, body, headers, message id) of every request, made before the clock starts so the client's CPU
    stays off the two cores the server needs. Each has its own token, as Evolution mints one per event; the
    resends repeat an earlier request's body (an earlier one, possibly still in flight: a concurrent resend)."""
    import jwt

    targets = sorted(secrets)
    planned: list[Planned] = []
    firsts: list[int] = []
    for n in range(total):
        if resend_every > 0 and n % resend_every == resend_every - 1 and firsts:
            path, body, _, message_id = planned[firsts[(n * 7919) % len(firsts)]]
            target = "/".join(path.rsplit("/", 2)[-2:])
        else:
            target = targets[n % len(targets)]
            message_id = f"BENCH{n:09d}"
            path = f"/hooks/evolution/{ORG}/{target}"
            ref, instance = target.split("/")
            body = webhook_body(ref, instance, message_id, n)
            firsts.append(n)
        now = int(time.time())
        claims = {"iat": now, "exp": now + 600, "app": "evolution", "action": "webhook"}
        token = jwt.encode(claims, secrets[target], algorithm="HS256")
        planned.append(
            (path, body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, message_id)
        )
    return planned


def client_main(args: argparse.Namespace) -> int:
    """Post webhooks; print one JSON object: latencies (ms) of counted requests, wall time, ids, failures."""
    secrets: dict[str, str] = json.loads(sys.stdin.readline())  # "ref/instance" -> secret; not on the command line
    total = args.warmup + args.requests
    planned = plan_requests(secrets, total, args.resend_every)
    lock = threading.Lock()
    issued = {"n": 0}
    latencies: list[float] = []
    stored_first: dict[str, bool] = {}  # message id -> its first 200's "stored"
    resend_stored_again: list[str] = []
    failed: list[str] = []
    unexpected: list[str] = []
    retried = [0]
    started_at: list[float] = []
    stop = threading.Event()
    cpu_at_start: list[float] = []

    def take() -> int | None:
        with lock:
            if stop.is_set() or issued["n"] >= total:
                return None
            issued["n"] += 1
            n = issued["n"] - 1
            if n == args.warmup:
                started_at.append(time.perf_counter())
                cpu_at_start.append(time.process_time())
            return n

    def worker() -> None:
        conn = http.client.HTTPConnection(args.host, args.port, timeout=30)
        try:
            while (n := take()) is not None:
                path, body, headers, message_id = planned[n]
                for attempt in range(RETRIES + 1):
                    t0 = time.perf_counter()
                    conn.request("POST", path, body=body, headers=headers)
                    response = conn.getresponse()
                    answer = response.read()
                    elapsed_ms = (time.perf_counter() - t0) * 1000
                    if n >= args.warmup:
                        with lock:
                            latencies.append(elapsed_ms)
                    if response.status in (429, 503) and attempt < RETRIES:
                        with lock:
                            retried[0] += 1
                        time.sleep(RETRY_DELAY_S)
                        continue
                    break
                with lock:
                    if response.status != 200:
                        failed.append(message_id)
                        if response.status not in (429, 503):
                            unexpected.append(f"{response.status}: {answer[:200]!r}")
                            stop.set()
                        continue
                    stored = json.loads(answer)["stored"]
                    if message_id not in stored_first:
                        stored_first[message_id] = stored
                    elif stored and stored_first[message_id]:
                        resend_stored_again.append(message_id)
        finally:
            conn.close()

    run_workers(worker, args.concurrency, args.time_cap_s, stop)
    wall_s = time.perf_counter() - started_at[0] if started_at else 0.0
    client_cpu_s = time.process_time() - cpu_at_start[0] if cpu_at_start else 0.0
    acknowledged = sorted(message_id for message_id in stored_first)
    never = sorted(set(failed) - set(stored_first))
    print(
        json.dumps(
            {
                "latencies_ms": latencies,
                "wall_s": wall_s,
                "acknowledged": acknowledged,
                "never_acknowledged": never,
                "resend_stored_again": resend_stored_again,
                "retried": retried[0],
                "unexpected": unexpected[:5],
                "issued": issued["n"],
                "client_cpu_s": client_cpu_s,
            }
        )
    )
    return 0


# -- the driver ----------------------------------------------------------------------------------------------


def postgres_cpu_s(data_dir: Path) -> float:
    """CPU time of the postmaster and its children now alive (the service's pooled backends stay alive)."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(entry.name) == postmaster or int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def pure_steps_us(secret: str) -> dict[str, float]:
    """Microseconds per call of the receiver's CPU-only steps, in this process: what a request costs before
    its insert, besides HTTP and the framework."""
    import jwt

    from nextmavens.platform.hookauth import webhook_token_problem
    from nextmavens.platform.hookreceiver import parse_body
    from nextmavens.whatsapp.rows import row_from_webhook

    raw = webhook_body("shop", "sales", "PROBE", 1)
    now = int(time.time())
    authorization = "Bearer " + jwt.encode(
        {"iat": now, "exp": now + 600, "app": "evolution", "action": "webhook"}, secret, algorithm="HS256"
    )
    body = parse_body(raw)
    assert body is not None
    steps = {
        "token check": lambda: webhook_token_problem(authorization, secret, time.time()),
        "JSON parse": lambda: parse_body(raw),
        "row": lambda: row_from_webhook(body, raw, "sales"),
    }
    result = {}
    for name, step in steps.items():
        rounds = 5000
        t0 = time.perf_counter()
        for _ in range(rounds):
            step()
        result[name] = (time.perf_counter() - t0) / rounds * 1e6
    return result


def run(args: argparse.Namespace, workdir: Path) -> str:
    import psycopg

    from devkit.localdb.server import LocalPostgres, free_port
    from nextmavens.engine.session import Engine, EngineConfig
    from nextmavens.manifest.loader import load_manifests

    server = LocalPostgres(base=workdir / "server", fast=args.fast)
    server.start()
    service: subprocess.Popen[bytes] | None = None
    try:
        projects = workdir / "projects"
        master_key = workdir / "keys" / "master.key"
        write_manifests(projects)
        engine = Engine(EngineConfig(dsn=server.dsn, master_key_path=master_key, lock_timeout_s=60, actor="bench"))
        engine.apply(load_manifests(projects))
        secrets: dict[str, str] = {}
        with engine.secrets() as store:
            for ref, instances in PROJECTS.items():
                for instance in instances:
                    pair = store.whatsapp_secrets(ref, instance)
                    assert pair is not None
                    secrets[f"{ref}/{instance}"] = pair[1]
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            settings: dict[str, str] = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit')"
                ).fetchall()
            )
        filesystem = subprocess.run(
            ["df", "--output=fstype", str(server.data_dir)], capture_output=True, text=True, check=False
        ).stdout.split()[-1:]
        say(
            f"PostgreSQL: fsync={settings.get('fsync')} synchronous_commit={settings.get('synchronous_commit')}, "
            f"data on {filesystem[0] if filesystem else '?'}"
        )

        port = args.port or free_port()
        service = start_service(server.dsn, master_key, projects, workdir, port)

        say(f"cores: {os.cpu_count()} (client and server share them); {load_line('before')}")
        say(
            f"load: POST /hooks/evolution/... from a second process, {args.concurrency} threads with one keep-alive "
            f"connection each, over {len(secrets)} instances of {len(PROJECTS)} projects; {args.warmup} warm-up "
            f"requests not counted, then {args.requests} or {args.time_cap_s:.0f} s; every {args.resend_every}th "
            "an earlier webhook sent again"
        )
        cpu_before = process_cpu_s(service.pid)
        pg_cpu_before = postgres_cpu_s(server.data_dir)
        options = {"concurrency": args.concurrency, "requests": args.requests, "warmup": args.warmup}
        options |= {"resend_every": args.resend_every, "time_cap_s": args.time_cap_s}
        result = run_client(__file__, port, options, json.dumps(secrets) + "\n", args.time_cap_s + 180)
        cpu_after = process_cpu_s(service.pid)
        pg_cpu_after = postgres_cpu_s(server.data_dir)
        if result["unexpected"]:
            raise RuntimeError(f"the service answered wrongly: {result['unexpected']}")
        latencies = sorted(result["latencies_ms"])
        if not latencies:
            raise RuntimeError("no request was counted (the time cap ended the warm-up?)")

        rows: dict[str, int] = {}
        for ref in PROJECTS:
            with psycopg.connect(server.dsn_for(ref), autocommit=True) as conn:
                for message_id, copies in conn.execute(
                    "SELECT message_id, count(*) FROM whatsapp.messages GROUP BY message_id"
                ):
                    rows[message_id] = rows.get(message_id, 0) + copies
        acknowledged = set(result["acknowledged"])
        lost = len(acknowledged - set(rows)) + len(result["never_acknowledged"])
        duplicates = sum(copies - 1 for copies in rows.values()) + len(result["resend_stored_again"])

        count = len(latencies)
        rate = count / result["wall_s"]
        p99 = percentile(latencies, 0.99)
        say(
            f"counted {count} requests in {result['wall_s']:.2f} s"
            + (" (stopped by the time cap)" if result["issued"] < args.warmup + args.requests else "")
            + f"; {len(rows)} rows for {len(acknowledged)} acknowledged message ids; "
            f"{result['retried']} answers 429/503 sent again"
        )
        say(latency_line(latencies))
        issued = result["issued"]
        say(
            f"CPU per request: server {(cpu_after - cpu_before) * 1000 / issued:.2f} ms (warm-up included), "
            f"PostgreSQL {(pg_cpu_after - pg_cpu_before) * 1000 / issued:.2f} ms (warm-up included), "
            f"client {result['client_cpu_s'] * 1000 / count:.2f} ms (counted part)"
        )
        steps = pure_steps_us(secrets["shop/sales"])
        say("receiver's pure steps per request (in-process): " + ", ".join(f"{k} {v:.0f} us" for k, v in steps.items()))
        say(load_line("after"))
        return f"webhooks_per_s={rate:.0f} p99_ms={p99:.1f} lost={lost} duplicates={duplicates}"
    finally:
        stop_service(service)
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=10000, help="counted requests (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--resend-every", type=int, default=20, help="every n-th request resends an earlier one")
    parser.add_argument("--time-cap-s", type=float, default=60.0)
    parser.add_argument("--fast", action="store_true", help="fsync and synchronous_commit off (not production)")
    parser.add_argument("--port", type=int, default=0, help="the service's loopback port (default: a free one)")
    parser.add_argument("--tmp", default=None, help="folder for the temporary files (default: the system's)")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(args)
    if args.concurrency < 1 or args.requests < 1 or args.warmup < 0 or args.resend_every < 0:
        parser.error("--concurrency and --requests must be at least 1, --warmup and --resend-every at least 0")
    return run_in_workdir("nextmavens-bench-whatsapp-", args.tmp, lambda workdir: run(args, workdir))


if __name__ == "__main__":
    sys.exit(main())
