"""Backup pipeline and restore drill against bare pg_dump / pg_restore, on generated databases of two sizes.

    python benchmarks/backup.py [--rows 400,1600] [--rounds 3] [--tmp /tmp] [--keep]

A throwaway PostgreSQL (initdb/pg_ctl, fsync off) gets one generated database per --rows value, of realistic
shape (24 tables in four schemas, random bytea, md5 text, jsonb, json, indexes; ~11 KB a row: 400 rows is
~0.1 GB, 1600 ~0.4 GB, 4400 ~1.1 GB). For each size, in --rounds interleaved rounds (medians reported: the
host is shared with other work, single runs are noisy), it times:
  * bare `pg_dump -Fc > /dev/null`, and the backup pipeline (pg_dump | age | 19 MB chunks | sendDocument,
    records in the control database);
  * bare `pg_restore` of a -Fc file into a new database, and the restore drill (getFile + download,
    sha256, age -d | pg_restore, every table counted and checksummed, scratch database dropped).
Uploads and downloads go to a LOCAL STAND-IN of the Telegram Bot API (`devkit.standins.telegram`, its own
process on 127.0.0.1), not to Telegram: no network time to the real service is in these figures.
Each pipeline and drill runs in a child process whose whole tree (Python, pg_dump or pg_restore, age) is
sampled from /proc every 20 ms: the peak of the summed RSS is the memory figure, with each program's own peak.
Ends with one line (ratios and memory of the largest size):
    backup_ratio=<ratio> restore_ratio=<ratio> peak_rss_mb=<n> largest_gb=<size>
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devkit.localdb.datagen import generate  # noqa: E402
from devkit.localdb.server import LocalPostgres  # noqa: E402
from nextmavens.backup.pipeline import Target, backup_target  # noqa: E402
from nextmavens.backup.settings import BackupSettings, TelegramSettings  # noqa: E402
from nextmavens.backup.verify import restore_drill  # noqa: E402
from nextmavens.control.db import connect_control, dsn_for_database, dsn_without_password  # noqa: E402


def scratch(prefix: str, parent: Path) -> Path:
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
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


def tree_rss_kb(root: int) -> dict[int, tuple[str, int]]:
    """pid -> (command name, VmRSS in KiB) for `root` and all its descendants, read from /proc."""
    found: dict[int, tuple[str, int]] = {}
    pending = [root]
    while pending and len(found) < 256:
        pid = pending.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss = int(fields.get("VmRSS", "0 kB").split()[0])
        found[pid] = (fields.get("Name", "?").strip(), rss)
    return found


def run_child(mode: str, config: dict[str, str], folder: Path) -> dict:
    """One pipeline or drill in its own process; its whole process tree (Python, pg_dump or pg_restore, age)
    sampled from /proc every 20 ms: the peak of the summed RSS, and each program's own peak."""
    path = folder / f"config-{mode}-{config['database']}.json"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", mode, "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak_total_kb, by_program = 0, dict[str, int]()
    while proc.poll() is None:
        tree = tree_rss_kb(proc.pid)
        peak_total_kb = max(peak_total_kb, sum(rss for _, rss in tree.values()))
        for name, rss in tree.values():
            by_program[name] = max(by_program.get(name, 0), rss)
        time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=60)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} on {config['database']} exited {proc.returncode}: {stderr[-2000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    if not result.get("ok"):
        raise SystemExit(f"{mode} on {config['database']} failed: {result.get('error')}")
    result["tree_peak_mb"] = peak_total_kb / 1024
    result["program_peak_mb"] = {name: kb / 1024 for name, kb in sorted(by_program.items())}
    # Sampling can miss a short peak: Python's own peak from getrusage plus the other programs' sampled
    # peaks, as if they all coincided, bounds it from above.
    others = sum(mb for name, mb in result["program_peak_mb"].items() if not name.startswith("python"))
    result["bound_mb"] = max(result["tree_peak_mb"], result["peak_rss_mb"] + others)
    return result


def memory_text(run: dict) -> str:
    programs = ", ".join(f"{name} {mb:.0f}" for name, mb in run["program_peak_mb"].items())
    return (
        f"process tree peak {run['tree_peak_mb']:.0f} MB sampled, {run['bound_mb']:.0f} MB bound (programs' own"
        f" peaks, MB: {programs}; Python's from getrusage {run['peak_rss_mb']:.0f})"
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def measure_size(server: LocalPostgres, config: dict[str, str], folder: Path, database: str, rounds: int) -> dict:
    """Interleaved rounds on one database: bare pg_dump vs the pipeline, bare pg_restore vs the drill."""
    bin_dir = server.bin_dir
    dump_dsn, env = tool_env(dsn_for_database(server.dsn, database))
    bare_argv = [str(bin_dir / "pg_dump"), "-Fc", f"--dbname={dump_dsn}"]  # stdout: /dev/null
    bare_dumps, pipelines = [], []
    for round_number in range(1, rounds + 1):
        bare_dumps.append(timed(bare_argv, env))
        pipelines.append(run_child("backup", config | {"database": database}, folder))
        run = pipelines[-1]
        print(
            f"  round {round_number}: bare pg_dump -Fc {bare_dumps[-1]:.1f}s; pipeline {run['seconds']:.1f}s,"
            f" {run['chunks']} chunks, {run['bytes'] / 1e6:.0f} MB; {memory_text(run)}",
            flush=True,
        )
    dump_file = folder / "bare.dump"
    subprocess.run([str(bin_dir / "pg_dump"), "-Fc", "-f", str(dump_file), f"--dbname={dump_dsn}"], check=True, env=env)
    restore_dsn, restore_env = tool_env(dsn_for_database(server.dsn, "bench_bare_restore"))
    drill_config = config | {"database": database, "drill_identity": str(folder / f"drill-{database}.key")}
    made = run_child("stats-backup", drill_config, folder)
    drill_config["backup_id"] = str(made["backup_id"])
    bare_restores, drills = [], []
    for round_number in range(1, rounds + 1):
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench_bare_restore")
        bare_restores.append(
            timed([str(bin_dir / "pg_restore"), f"--dbname={restore_dsn}", str(dump_file)], restore_env)
        )
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("DROP DATABASE bench_bare_restore")
        drills.append(run_child("drill", drill_config, folder))
        one = drills[-1]
        print(
            f"  round {round_number}: bare pg_restore {bare_restores[-1]:.1f}s; drill {one['seconds']:.1f}s"
            f" ({one['tables']} tables identical; phases: "
            + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in one["phases"].items())
            + f"); {memory_text(one)}",
            flush=True,
        )
    dump_file.unlink()
    return {
        "bare_dump": median(bare_dumps),
        "pipeline": median([run["seconds"] for run in pipelines]),
        "bare_restore": median(bare_restores),
        "drill": median([run["seconds"] for run in drills]),
        "backup_peak_mb": max(run["bound_mb"] for run in pipelines),
        "drill_peak_mb": max(run["bound_mb"] for run in drills),
        "python_peak_mb": max(run["peak_rss_mb"] for run in pipelines + drills),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--rows",
        default="400,1600",
        help="rows per table for each database size, comma-separated (24 tables, ~11 KB a row; default 400,1600:"
        " ~0.1 and ~0.4 GB; 4400 is ~1.1 GB)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per size (median; default 3)")
    parser.add_argument("--tmp", type=Path, default=Path("/tmp"), help="where the throwaway server goes")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--config", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.config)
        return
    sizes = [int(rows) for rows in args.rows.split(",")]

    base = scratch("nextmavens-backup-bench-", args.tmp)
    server = LocalPostgres(base / "server", fast=True)
    standin_proc = None
    started = time.monotonic()
    print(f"the host is shared with other work (load average {load()}): each figure is a median of {args.rounds}")
    print(
        "uploads go to a LOCAL STAND-IN of the Telegram Bot API (devkit.standins.telegram, its own process on"
        " 127.0.0.1), not to Telegram: network time to the real service is not in these figures"
    )
    print(
        f"the server runs with fsync off, its data and the stand-in's files under {args.tmp} (tmpfs under /dev/shm:"
        " in memory); the restores write to throwaway databases"
    )
    try:
        server.start()
        databases = {}
        for rows in sizes:
            name = f"bench_{rows}"
            t0 = time.monotonic()
            databases[name] = create_db(server, name, rows)
            print(f"generated {name}: {databases[name] / 1e9:.2f} GB ({time.monotonic() - t0:.0f}s)", flush=True)
        connect_control(server.dsn).close()

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
                "devkit.standins.telegram",
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

        results = {}
        for name in databases:
            print(f"== {name} ({databases[name] / 1e9:.2f} GB) ==", flush=True)
            results[name] = measure_size(server, config, folder, name, args.rounds)

        print()
        print(f"RESULTS (medians of {args.rounds} interleaved rounds; uploads to the local stand-in; load {load()})")
        print(
            f"  {'database':>10}  {'pg_dump':>8}  {'pipeline':>8}  {'ratio':>5}  {'pg_restore':>10}  {'drill':>7}"
            f"  {'ratio':>5}  {'backup tree peak':>16}  {'drill tree peak':>15}"
        )
        for name, r in results.items():
            print(
                f"  {databases[name] / 1e9:>8.2f}GB  {r['bare_dump']:>7.1f}s  {r['pipeline']:>7.1f}s"
                f"  {r['pipeline'] / r['bare_dump']:>5.2f}  {r['bare_restore']:>9.1f}s  {r['drill']:>6.1f}s"
                f"  {r['drill'] / r['bare_restore']:>5.2f}  {r['backup_peak_mb']:>13.0f} MB"
                f"  {r['drill_peak_mb']:>12.0f} MB"
            )
        print(
            "  tree peak = the memory of the pipeline's whole process tree (Python + pg_dump + age, or Python + age +"
            " pg_restore): the larger of the summed RSS sampled every 20 ms and Python's getrusage peak plus the"
            " other programs' sampled peaks (a bound). The stand-in's and PostgreSQL's memory are not in it."
            " (getrusage's figure for children is not used: a child counts the Python image it had between fork"
            " and exec.)"
        )
        print(f"(benchmark wall time {time.monotonic() - started:.0f} s)")
        largest = max(results, key=lambda name: databases[name])
        r = results[largest]
        peak = max(max(x["backup_peak_mb"], x["drill_peak_mb"]) for x in results.values())
        print(
            f"backup_ratio={r['pipeline'] / r['bare_dump']:.2f} restore_ratio={r['drill'] / r['bare_restore']:.2f} "
            f"peak_rss_mb={peak:.0f} largest_gb={databases[largest] / 1e9:.2f}"
        )
    finally:
        if standin_proc is not None:
            standin_proc.terminate()
            standin_proc.wait(timeout=30)
        server.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
