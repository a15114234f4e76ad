"""The local sandbox host (a Debian 13 guest booted by `nextmavens sandbox up`).

It cannot reach public image registries, so every image below is a SUBSTITUTE built locally inside the
guest (devkit/sandbox/images/), never the pinned upstream image: Postgres and Redis are real (from
Debian's packages, Postgres with PostGIS, pgaudit, pg_cron and wal2json); postgres-meta is the REAL
@supabase/postgres-meta at the production pin's version (installed with npm on the host, run on Debian 13's
Node.js 20); the other services are STAND-INS (nextmavens-local/standin:1) that implement only what
the platform uses and refuse what the pinned programs refuse (the facts tables in nextmavens/upstream/facts.py:
Kong's format versions and KONG_PLUGINS, `postgrest --ready`). The deploy prints this. Production never reads
this file.
"""

import os

ssh_permit_root_login = "prohibit-password"  # the sandbox deploy logs in as root with its key
ssh_port = int(os.environ.get("NEXTMAVENS_SANDBOX_PORT", "22"))  # sshd keeps the port we connect to
swap_size_mb = 0  # a container guest cannot swapon
time_sync = False  # systemd-timesyncd does not run in a container guest (the host keeps time)
docker_source = "distro"  # Debian 13: docker.io 26 and docker-compose 2.26 (the compose v2 plugin)
nextmavens_deps_from = "wheelhouse"  # the guest reaches Debian's mirror only (the sandbox proxy): wheels uploaded

api_domain = "api.sandbox.test"
studio_domain = "studio.sandbox.test"
platform_service_domain = "platform.sandbox.test"
admin_email = "operator@sandbox.test"
# The public half of the key `sandbox up` made; no key file means the sandbox is not up (an error).
# The operator's manifest repository: the one `sandbox up` seeds from the checkout's examples.
manifest_source = os.environ.get("NEXTMAVENS_SANDBOX_MANIFESTS") or "projects"
admin_ssh_public_keys = [
    open(path, encoding="utf-8").read().strip()
    for path in [f"{os.environ.get('NEXTMAVENS_SANDBOX_KEY', '')}.pub"]
    if os.path.isfile(path)
] or None

# The edge runs with the stand-ins below (Kong's admin and proxy, PostgREST, GoTrue, the tenant APIs are
# nextmavens-local/standin:1 roles). No public DNS reaches the guest: certificates are OFF here.
edge_issue_certificates = False
edge_host_ipv4 = os.environ.get("NEXTMAVENS_SANDBOX_HOST", "")

images_are_substitutes = True
image_pull_policy = "never"
images = {
    "postgres": "nextmavens-local/postgres:15",  # SUBSTITUTE: Debian's PostgreSQL, not supabase/postgres
    "redis": "nextmavens-local/redis:7",  # SUBSTITUTE: Debian's redis-server
    "kong": "nextmavens-local/standin:1",  # STAND-IN: Kong DB-less admin /config + proxy (routes, key-auth, acl)
    "realtime": "nextmavens-local/standin:1",  # STAND-IN
    "supavisor": "nextmavens-local/standin:1",  # STAND-IN
    "studio": "nextmavens-local/standin:1",  # STAND-IN
    "postgres_meta": "nextmavens-local/postgres-meta:0.91.6",  # REAL: npm @supabase/postgres-meta, the pin's version
    "gotrue": "nextmavens-local/standin:1",  # STAND-IN: per project, answers JSON naming it
    "postgrest": "nextmavens-local/standin:1",  # STAND-IN: per project, answers JSON naming it
    "storage_api": "nextmavens-local/standin:1",  # STAND-IN
    "imgproxy": "nextmavens-local/standin:1",  # STAND-IN
    "logflare": "nextmavens-local/standin:1",  # STAND-IN (analytics stay off)
    "vector": "nextmavens-local/standin:1",  # STAND-IN (analytics stay off)
    "evolution": "nextmavens-local/standin:1",  # STAND-IN: no Evolution API here
}
# App builds use the one local base built from Debian's packages (devkit/sandbox/images/app), never a registry.
app_deploys = {
    "images": {kind: "nextmavens-local/app:1" for kind in ("node", "python", "static")},
    "health_timeout_s": 30.0,
    "health_interval_s": 0.5,
    "health_request_timeout_s": 2.0,
    "drain_s": 2.0,
    "build_memory_mb": 512,
    "lock_timeout_s": 300.0,
    "pids_limit": 512,
}
memory_budget_mb = 3072  # the guest shares the development machine's memory
memory_limits_mb = {
    "postgres": 512,
    "kong": 128,
    "realtime": 128,
    "supavisor": 128,
    "studio": 128,
    "postgres_meta": 256,  # the real 0.91.6 on Node 20 measured 173 MiB RSS under the sandbox; 256 = 1.25x + room
    "evolution": 256,
    "redis": 128,
}
# A cloud name for the deploy's Cloudinary placement (tests/e2e/test_email_sandbox.py adds a stand-in CLOUDINARY_KEY);
# no Cloudinary is reachable from the guest, so nothing is offloaded unless a manifest asks.
cloudinary_cloud = "nextmavens-sandbox"
