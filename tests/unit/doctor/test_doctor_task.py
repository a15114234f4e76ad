"""The deploy's doctor step (tasks/doctor.py): the command it runs on the host always exits 0 and ends with the
doctor's exit code; a failing doctor is asked again a bounded number of times (services the deploy just started
may still be coming up), and the deploy's verdict names the failed checks."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from nextmavens.doctor import checks as c
from tasks.doctor import DoctorRun

FAILED = json.dumps([c.failed("kong config", "kong", "no declarative config loaded", "run nextmavens apply").as_json()])
PASSED = json.dumps([c.passed("kong config", "kong", "loaded").as_json(), c.certificates_off().as_json()])


def wrapper(tmp_path: Path, passes_on_call: int | None) -> Path:
    """A stand-in for nextmavens-env + doctor: fails until call number `passes_on_call` (never when None)."""
    calls = tmp_path / "calls"
    script = tmp_path / "nextmavens-env"
    script.write_text(
        "#!/bin/sh\n"
        f"echo x >> {calls}\n"
        f"n=$(wc -l < {calls})\n"
        f"if [ {passes_on_call or 0} -gt 0 ] && [ $n -ge {passes_on_call or 0} ]; then echo '{PASSED}'; exit 0; fi\n"
        "echo 'warning: [noise] on stderr' >&2\n"
        f"echo '{FAILED}'; exit 1\n"
    )
    script.chmod(0o755)
    return script


def run(command: str) -> list[str]:
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def calls(tmp_path: Path) -> int:
    return len((tmp_path / "calls").read_text().splitlines())


def test_a_doctor_that_passes_after_services_come_up_is_no_failure(tmp_path: Path) -> None:
    fact = DoctorRun()
    lines = run(fact.command(str(wrapper(tmp_path, passes_on_call=3)), attempts=5, delay_s=0))
    verdict = fact.process(lines)
    assert verdict.ok and "1 checks ok" in verdict.message and calls(tmp_path) == 3


def test_a_doctor_that_keeps_failing_fails_the_deploy_after_the_bounded_attempts(tmp_path: Path) -> None:
    fact = DoctorRun()
    lines = run(fact.command(str(wrapper(tmp_path, passes_on_call=None)), attempts=2, delay_s=0))
    verdict = fact.process(lines)
    assert not verdict.ok and calls(tmp_path) == 2
    assert "kong config kong: no declarative config loaded -> run nextmavens apply" in verdict.message


def test_a_healthy_host_is_asked_once(tmp_path: Path) -> None:
    fact = DoctorRun()
    assert fact.process(run(fact.command(str(wrapper(tmp_path, passes_on_call=1))))).ok
    assert calls(tmp_path) == 1
