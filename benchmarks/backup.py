"""Backup pipeline and restore drill against bare pg_dump / pg_restore, on a generated ~1 GB database.

    python benchmarks/backup.py [--rows N] [--keep]

A throwaway PostgreSQL (initdb/pg_ctl, fsync off) gets a generated database of realistic shape (24 tables
in four schemas, random bytea, md5 text, jsonb, json, indexes). In the same run, interleaved twice with the
faster of each kept (the host is shared, single runs are noisy), it times:
  * bare `pg_dump -Fc > /dev/null`, and the backup pipeline (pg_dump | age | 19 MB chunks | sendDocument
    to the local Telegram contract stand-in, records in the control database);
  * bare `pg_restore` of a -Fc file into a new database, and the restore drill (getFile + download,
    sha256, age -d | pg_restore, every table counted and checksummed, scratch database dropped).
The pipeline runs in a child process so its peak RSS is its own; it also runs on a small database, to show
memory does not grow with the database. The stand-in runs as a separate process. Ends with one line:
    backup_ratio=<ratio> restore_ratio=<ratio> peak_rss_mb=<n>
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nextmavens.backup.pipeline import Target, backup_target  # noqa: E402
from nextmavens.backup.settings import BackupSettings, TelegramSettings  # noqa: E402
from nextmavens.backup.verify import restore_drill  # noqa: E402
from nextmavens.control.db import connect_control, dsn_for_database, dsn_without_password  # noqa: E402
from nextmavens.localdb import LocalPostgres  # noqa: E402
from tests.integration.backup.datagen import generate  # noqa: E402

BIG = "bench_big"
SMALL = "bench_small"


def scratch(prefix: str) -> Path:
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.chmod(0o711)
    return base


def create_db(server: LocalPostgres, name: str, rows: int) -> int:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(server.dsn_for(name), autocommit=True) as conn:
        generate(conn, tables=24, rows=rows, blob_kb=4, text_kb=4)
        conn.execute("VACUUM ANALYZE")
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    assert row is not None
    return int(row[0])


def tool_env(dsn: str) -> tuple[str, dict[str, str]]:
    bare, password = dsn_without_password(dsn)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = password
    return bare, env


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def settings_for(config: dict[str, str]) -> BackupSettings:
    return BackupSettings(
        dsn=config["dsn"],
        recipient=config["recipient"],
        telegram=TelegramSettings(Path(config["token_file"]), config["chat_id"], config["api"]),
        work_dir=Path(config["work_dir"]),
        pg_bin=Path(config["pg_bin"]),
    )


def child(mode: str, config_path: Path) -> None:
    """Runs in its own process: one backup ('backup', 'stats-backup') or one drill ('drill')."""
    config = json.loads(config_path.read_text())
    settings = settings_for(config)
    client = settings.telegram.client()
    conn = connect_control(settings.dsn)
    target = Target(key=f"bench/{config['database']}", database=config["database"])
    started = time.monotonic()
    out: dict[str, object] = {}
    if mode == "backup":
        result = backup_target(settings, conn, client, target)
        out = {"ok": result.ok, "error": result.error, "chunks": result.chunks, "bytes": result.bytes}
    elif mode == "stats-backup":
        # A drill-able backup: figures in the dump's snapshot, and an extra recipient whose identity the
        # benchmark keeps in its private folder so separate drill processes can use it (verify itself
        # keeps it only for the drill's lifetime).
        identity = Path(config["drill_identity"])
        subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
        public = subprocess.run(["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True)
        made = backup_target(settings, conn, client, target, with_stats=True, drill_recipient=public.stdout.strip())
        out = {"ok": made.ok, "error": made.error, "backup_id": made.backup_id}
    elif mode == "drill":
        # The timed drill: download, sha256, decrypt, pg_restore, compare every table, drop.
        drill = restore_drill(settings, conn, client, int(config["backup_id"]), Path(config["drill_identity"]))
        out = {"ok": drill.ok, "error": drill.error, "tables": drill.tables, "phases": drill.phases}
    out["seconds"] = time.monotonic() - started
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["children_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(out))


def run_child(mode: str, config: dict[str, str], folder: Path) -> dict:
    path = folder / f"config-{mode}-{config['database']}.json"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--config", str(path)], check=True, capture_output=True, text=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result.get("ok"):
        raise SystemExit(f"{mode} on {config['database']} failed: {result.get('error')}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=4400, help="rows per table (24 tables, ~11 KB a row: ~1.1 GB)")
    parser.add_argument("--child")
    parser.add_argument("--config", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.config)
        return

    base = scratch("nextmavens-backup-bench-")
    server = LocalPostgres(base / "server", fast=True)
    standin_proc = None
    try:
        server.start()
        print(f"generating data ({args.rows} rows x 24 tables)...", flush=True)
        t0 = time.monotonic()
        big_size = create_db(server, BIG, args.rows)
        small_size = create_db(server, SMALL, max(50, args.rows // 20))
        print(
            f"  {BIG}: {big_size / 1e9:.2f} GB, {SMALL}: {small_size / 1e6:.0f} MB ({time.monotonic() - t0:.0f}s)",
            flush=True,
        )
        connect_control(server.dsn).close()

        # The Telegram contract stand-in, in its own process.
        folder = base / "bench"
        folder.mkdir()
        token_file = folder / "token"
        token_file.write_text("424242:bench-token\n")
        token_file.chmod(0o600)
        port_file = folder / "api-url"
        standin_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nextmavens.backup.standin",
                "--dir",
                str(folder / "telegram"),
                "--token-file",
                str(token_file),
                "--chat-id",
                "-100777",
                "--port-file",
                str(port_file),
            ],
            cwd=ROOT,
        )
        for _ in range(100):
            if port_file.exists() and port_file.read_text().strip():
                break
            time.sleep(0.1)
        keygen = subprocess.run(["age-keygen"], check=True, capture_output=True, text=True).stdout
        recipient = next(line.split(": ", 1)[1] for line in keygen.splitlines() if "public key" in line)
        del keygen  # the operator's private half is not needed: drills use their own extra key
        config = {
            "dsn": server.dsn,
            "recipient": recipient,
            "token_file": str(token_file),
            "chat_id": "-100777",
            "api": port_file.read_text().strip(),
            "work_dir": str(folder / "work"),
            "pg_bin": str(server.bin_dir),
        }

        bin_dir = server.bin_dir
        dump_dsn, env = tool_env(dsn_for_database(server.dsn, BIG))
        bare_argv = [str(bin_dir / "pg_dump"), "-Fc", f"--dbname={dump_dsn}"]  # stdout: /dev/null
        print("backup pipeline (small database, for memory)...", flush=True)
        small = run_child("backup", config | {"database": SMALL}, folder)
        print(f"  {small['seconds']:.1f}s, peak RSS {small['peak_rss_mb']:.0f} MB", flush=True)
        # Interleaved twice, the faster of each kept: the host is shared, so single runs are noisy.
        bare_dumps, pipelines = [], []
        for round_number in (1, 2):
            print(f"round {round_number}: bare pg_dump -Fc > /dev/null...", flush=True)
            bare_dumps.append(timed(bare_argv, env))
            print(f"  {bare_dumps[-1]:.1f}s", flush=True)
            print(f"round {round_number}: backup pipeline...", flush=True)
            pipelines.append(run_child("backup", config | {"database": BIG}, folder))
            run = pipelines[-1]
            print(
                f"  {run['seconds']:.1f}s, {run['chunks']} chunks, {run['bytes'] / 1e6:.0f} MB, "
                f"peak RSS {run['peak_rss_mb']:.0f} MB (children {run['children_peak_rss_mb']:.0f} MB)",
                flush=True,
            )
        bare_dump = min(bare_dumps)
        big = min(pipelines, key=lambda run: run["seconds"])
        big["peak_rss_mb"] = max(run["peak_rss_mb"] for run in pipelines)

        dump_file = folder / "bare.dump"
        subprocess.run(
            [str(bin_dir / "pg_dump"), "-Fc", "-f", str(dump_file), f"--dbname={dump_dsn}"], check=True, env=env
        )
        restore_dsn, env = tool_env(dsn_for_database(server.dsn, "bench_bare_restore"))
        print("a drill-able backup (figures in the dump's snapshot)...", flush=True)
        drill_config = config | {"database": BIG, "drill_identity": str(folder / "drill.key")}
        made = run_child("stats-backup", drill_config, folder)
        print(f"  {made['seconds']:.1f}s", flush=True)
        drill_config["backup_id"] = str(made["backup_id"])
        bare_restores, drills = [], []
        for round_number in (1, 2):
            with psycopg.connect(server.dsn, autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench_bare_restore")
            print(f"round {round_number}: bare pg_restore...", flush=True)
            bare_restores.append(timed([str(bin_dir / "pg_restore"), f"--dbname={restore_dsn}", str(dump_file)], env))
            print(f"  {bare_restores[-1]:.1f}s", flush=True)
            with psycopg.connect(server.dsn, autocommit=True) as conn:
                conn.execute("DROP DATABASE bench_bare_restore")
            print(f"round {round_number}: restore drill...", flush=True)
            drills.append(run_child("drill", drill_config, folder))
            one = drills[-1]
            print(
                f"  {one['seconds']:.1f}s ({one['tables']} tables identical), peak RSS {one['peak_rss_mb']:.0f} MB;"
                " phases: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in one["phases"].items()),
                flush=True,
            )
        bare_restore = min(bare_restores)
        drill = min(drills, key=lambda run: run["seconds"])
        drill["peak_rss_mb"] = max(run["peak_rss_mb"] for run in drills)
        dump_file.unlink()

        peak = max(big["peak_rss_mb"], drill["peak_rss_mb"])
        print(
            f"memory: small database {small['peak_rss_mb']:.0f} MB, {big_size / 1e9:.2f} GB database "
            f"{big['peak_rss_mb']:.0f} MB (pipeline process)"
        )
        print(
            f"backup_ratio={big['seconds'] / bare_dump:.2f} restore_ratio={drill['seconds'] / bare_restore:.2f} "
            f"peak_rss_mb={peak:.0f}"
        )
    finally:
        if standin_proc is not None:
            standin_proc.terminate()
            standin_proc.wait(timeout=30)
        server.stop()
        if "--keep" not in sys.argv:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
