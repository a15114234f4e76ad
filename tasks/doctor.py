"""Last step: `nextmavens doctor` on the host. A healthy host is no change; any failed check fails the deploy,
naming the check and what to look at. Its settings file (expected containers and pins) is rendered here."""

import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import FactBase, deploy, operation
from pyinfra.api.exceptions import OperationError
from pyinfra.operations import files

from nextmavens.doctor.hostfile import doctor_file, render_doctor_config
from nextmavens.doctor.verdict import EXIT_MARK, verdict
from nextmavens.host.context import host_config
from nextmavens.host.dist import resolve_wheel, wheel_has_module
from nextmavens.host.operations import notice
from nextmavens.host.render import render_stack, template_context
from tasks.stacks import STACKS

# Services this deploy just (re)started (`compose up -d` does not wait for them) may need a moment to answer: a
# failing doctor is asked again, at most ATTEMPTS times DELAY_S apart, before the deploy fails. A healthy host
# passes the first time, with no wait.
ATTEMPTS = 12
DELAY_S = 5


class DoctorRun(FactBase):
    """`nextmavens doctor --json` through the wrapper; always exits 0 (the doctor's code is the last line)."""

    def command(self, wrapper: str, attempts: int = ATTEMPTS, delay_s: int = DELAY_S) -> str:
        doctor = shlex.join([wrapper, "nextmavens", "doctor", "--json"])
        return (
            f"n=0; while :; do out=$({doctor} 2>&1); code=$?; n=$((n+1)); "
            f"if [ $code -eq 0 ] || [ $n -ge {int(attempts)} ]; then break; fi; sleep {int(delay_s)}; done; "
            f'printf "%s\\n" "$out"; echo "{EXIT_MARK}$code"'
        )

    def process(self, output):
        return verdict(list(output))


@operation()
def doctor_passes(wrapper: str):
    """Runs only at execute time, after every other step (at prepare, a first deploy has nothing running yet).
    Yields no command: a healthy host reports no change, a failing one raises."""
    if not host.state.is_executing:
        host.noop("nextmavens doctor runs after every other step")
        return
    result = host.get_fact(DoctorRun, wrapper=wrapper)
    if not result.ok:
        raise OperationError(result.message)
    host.noop(result.message)
    yield from ()


@deploy("Doctor")
def doctor():
    config = host_config()
    if not config.edge_enabled:
        notice(name="SKIPPED nextmavens doctor: edge_enabled is off", message="the doctor checks the edge")
        return
    if not wheel_has_module(resolve_wheel(config.nextmavens_wheel), "nextmavens/doctor/cli.py"):
        notice(name="SKIPPED nextmavens doctor: this build has no doctor", message="no nextmavens/doctor/cli.py")
        return
    context = template_context(config)
    stacks = [(stack, render_stack(stack, context)["compose.yaml"]) for stack in STACKS]
    files.put(
        name=f"Doctor settings {doctor_file(config)}",
        src=StringIO(render_doctor_config(config, stacks)),
        dest=str(doctor_file(config)),
        mode="644",
        user="root",
        group="root",
    )
    doctor_passes(
        name="nextmavens doctor: every service answers as it should (fails the deploy otherwise)",
        wrapper=f"{config.platform_dir}/bin/nextmavens-env",
    )
