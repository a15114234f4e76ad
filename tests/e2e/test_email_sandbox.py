"""End-to-end (issue 17): the deploy places the email and media secrets the operator adds to the host's secrets file.

On the booted sandbox (run alone, under the sandbox lock, with NEXTMAVENS_E2E_REUSE_SANDBOX=1 on a converged guest):
stand-in values of RESEND_API_KEY, RESEND_WEBHOOK_SECRET and CLOUDINARY_KEY are written into the guest's secrets file
(generated there, never read back here), the deploy converges, and then: each is the platform service's own 0600 copy
holding exactly its value (compared on the guest), root's Cloudinary copy is 0600 for the jobs' wrapper, the unit names
the copies, no value is in the deploy's log, and the service's email hooks answer as configured ones do (a correctly
signed report 200, a forged one 401; a signed inbound message for no project 404, a forged one 401). Without the
secrets these hooks answer 404 before any signature check. The stand-in values stay in the guest's secrets file (a
later converge keeps the copies as they are).
"""

from __future__ import annotations

import json
from shlex import quote
from typing import Any

import pytest

from .conftest import Sandbox
from .test_sandbox import converge, group_data

pytestmark = pytest.mark.e2e

# secrets-file key -> a shell expression generating a stand-in value on the guest
STAND_INS = {
    "RESEND_API_KEY": "re_sandbox_$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \\n')",
    "RESEND_WEBHOOK_SECRET": "whsec_$(head -c 24 /dev/urandom | base64 | tr -d '\\n')",
    "CLOUDINARY_KEY": "sandbox$(head -c 4 /dev/urandom | od -An -tu4 | tr -d ' \\n'):"
    "$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \\n')",
}
COPIES = {
    "RESEND_API_KEY": ("resend.key", "NEXTMAVENS_RESEND_KEY_FILE"),
    "RESEND_WEBHOOK_SECRET": ("resend-webhook.secret", "NEXTMAVENS_RESEND_WEBHOOK_SECRET_FILE"),
    "INBOUND_EMAIL_SECRET": ("inbound-email.secret", "NEXTMAVENS_INBOUND_EMAIL_SECRET_FILE"),
    "CLOUDINARY_KEY": ("cloudinary.key", "NEXTMAVENS_CLOUDINARY_KEY_FILE"),
}

# Run on the guest as root: signs with the service's own copies and prints status codes only, never a secret.
HOOKS = r"""
import base64, hashlib, hmac, json, time, urllib.error, urllib.request
base, own = {base!r}, {own!r}

def post(path, body, headers):
    req = urllib.request.Request(base + path, data=body, headers={{"Content-Type": "application/json", **headers}})
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code

now = str(int(time.time()))
report = json.dumps({{"type": "email.delivered", "data": {{"email_id": "x", "from": "a@nobody.invalid"}}}}).encode()
key = base64.b64decode(open(own + "/resend-webhook.secret").read().strip().removeprefix("whsec_"))
good = base64.b64encode(hmac.new(key, b"msg_e2e." + now.encode() + b"." + report, hashlib.sha256).digest()).decode()
svix = {{"svix-id": "msg_e2e", "svix-timestamp": now}}
inbound = json.dumps({{"delivery_id": "e2e-1", "to": "nobody@nobody.invalid", "from": "a@b.example"}}).encode()
secret = open(own + "/inbound-email.secret").read().strip().encode()
signed = hmac.new(secret, now.encode() + b"." + inbound, hashlib.sha256).hexdigest()
mail = "x-nextmavens-signature"
print(json.dumps({{
    "report": post("/hooks/resend", report, {{**svix, "svix-signature": "v1," + good}}),
    "forged_report": post("/hooks/resend", report, {{**svix, "svix-signature": "v1," + good[::-1]}}),
    "inbound": post("/hooks/email/inbound", inbound, {{mail: f"t={{now}},v1={{signed}}"}}),
    "forged_inbound": post("/hooks/email/inbound", inbound, {{mail: f"t={{now}},v1={{signed[::-1]}}"}}),
}}))
"""


def test_the_deploy_places_the_email_secrets_and_the_service_uses_them(sandbox: Sandbox) -> None:
    data: dict[str, Any] = group_data(sandbox)
    secrets, user = data["secrets_file"], data["platform_user"]
    own = f"/etc/{user}"
    for key, value in STAND_INS.items():
        line = f"{key}={value}"
        sandbox.check(f"grep -q '^{key}=' {quote(secrets)} || printf '%s\\n' \"{line}\" >> {quote(secrets)}")
    result = converge(sandbox, pull_host_commits=True)
    pattern = "s/^\\(RESEND_[A-Z_]*\\|INBOUND_EMAIL_SECRET\\|CLOUDINARY_KEY\\)=//p"
    values = [v for v in sandbox.check(f"sed -n '{pattern}' {quote(secrets)}").splitlines() if v]
    assert len(values) == 4
    assert not [v for v in values if v in result["log"]], "a secret value is in the deploy's output"
    for key, (name, _) in COPIES.items():
        path = f"{own}/{name}"
        value = f"$(sed -n 's/^{key}=//p' {quote(secrets)} | head -n1)"
        same = sandbox.check(
            f"[ \"$(stat -c '%a %U' {path})\" = '600 {user}' ] && [ \"$(cat {path})\" = \"{value}\" ] "
            "&& echo same || echo differs"
        )
        assert same.strip() == "same", f"{path} is not {user}'s 0600 copy of {key}"
    root_copy = f"{secrets.rsplit('/', 1)[0]}/cloudinary.key"
    assert sandbox.check(f"stat -c '%a %U' {root_copy}").strip() == "600 root"
    # root's jobs (media-offload, storage-monitor) get the variables through the wrapper
    wrapper = f"{data['platform_dir']}/bin/nextmavens-env"
    seen = sandbox.check(f"{wrapper} env | grep '^NEXTMAVENS_CLOUDINARY_' | sort").splitlines()
    cloud = data["cloudinary_cloud"]
    assert seen == [f"NEXTMAVENS_CLOUDINARY_CLOUD={cloud}", f"NEXTMAVENS_CLOUDINARY_KEY_FILE={root_copy}"]
    environment = sandbox.check("systemctl show -p Environment --value nextmavens-platform.service")
    for _, (name, variable) in COPIES.items():
        assert f"{variable}={own}/{name}" in environment.split(), environment
    assert sandbox.check("systemctl is-active nextmavens-platform.service").strip() == "active"
    base = f"http://127.0.0.1:{data['loopback_ports']['platform']}"
    script = HOOKS.format(base=base, own=own)
    answers = json.loads(sandbox.check(f"python3 - <<'PY'\n{script}PY", timeout=120))
    assert answers == {"report": 200, "forged_report": 401, "inbound": 404, "forged_inbound": 401}, answers
