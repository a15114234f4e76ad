"""Every host knob with its default, the only place host defaults live. Group files (production.py,
sandbox.py) override; nothing else. The edge's settings file is rendered from these (nextmavens/host/edgeconfig.py):
the edge's code holds no second default for what is decided here.

nextmavens.host.hostdata.HostData validates the merged result before pyinfra connects: an unknown key,
a wrong type, an unpinned image or a port out of range stops the run with the file and key named.
A value of None below means "required: the group file must set it".
"""

# --- identity and edge ---------------------------------------------------------------------------
api_domain = None  # REQUIRED. Projects are served at <project>.<api_domain> (wildcard DNS).
studio_domain = None  # REQUIRED. Supabase Studio for the operator, behind nginx auth.
platform_service_domain = None  # REQUIRED. The platform service (the /v1 API), HTTPS through nginx to its loopback
#                                 port (loopback_ports.platform); production: platform.<NEXTMAVENS_DOMAIN>.
admin_email = None  # REQUIRED. Let's Encrypt account and alert address.
timezone = "Etc/UTC"  # Host clock zone, as /etc/localtime resolves it ("Etc/UTC", not "UTC":
#                       pyinfra compares with the resolved link, so "UTC" would change every run).
# The edge: `nextmavens apply` (the deploy's last step) also converges each project's PostgREST/GoTrue
# containers, Kong's declarative config, the nginx vhosts, certificates and the pooler/realtime tenants,
# from a settings file the deploy renders (edge_config_file, 0600; secrets in 0600 files beside it).
edge_enabled = True
edge_issue_certificates = True  # certbot HTTP-01 per served name, after a DNS check against edge_host_ipv4
edge_host_ipv4 = ""  # The host's public IPv4 every served name must resolve to; empty: no name passes the
#                      DNS check, so no certificate is requested (the vhosts stay plain HTTP + ACME path).
edge_config_file = "/etc/nextmavens/edge.yaml"

# --- base ----------------------------------------------------------------------------------------
base_packages = [  # Installed on every host before anything else.
    "ca-certificates",
    "curl",
    "gnupg",
    "sudo",
    "openssh-server",
    "python3",
    "python3-venv",
    "rsync",
    "jq",
    "postgresql-client",  # pg_dump/pg_restore for backups and destroy (the server itself runs in a container)
    "age",  # backups are encrypted to the operator's age recipient
    "git",  # the platform service commits each manifest change to the manifest repository (projects_dir)
]
unattended_upgrades = True  # Security updates applied daily by unattended-upgrades.
time_sync = True  # systemd-timesyncd enabled and running.
swap_size_mb = -1  # Swap file /swapfile: -1 sizes it for the host (RAM up to 2 GiB: 2x RAM, else
#                    half of RAM capped at 4 GiB); 0 means no swap file; N means N MiB.
journald_max_use = "500M"  # journald SystemMaxUse: caps the disk used by logs.

# --- admin user and SSH --------------------------------------------------------------------------
admin_user = "nextmavens"  # Login user with passwordless sudo; deploys connect as this user.
platform_user = "nextmavens-platform"  # The platform service's own unprivileged system user (no login, no sudo
#                                       but the narrow rules tasks/ grant it); it owns the manifest repository.
admin_ssh_public_keys = None  # REQUIRED. Public keys (one string each) for the admin user.
ssh_port = 22  # sshd's port, always allowed by the firewall. It is also pyinfra's connection port, and
#               the inventory's NEXTMAVENS_*_PORT (host data) wins over this default: sshd stays on the
#               port the deploy connects to, so a deploy can never move SSH away from itself.
ssh_permit_root_login = "no"  # sshd PermitRootLogin: "no" or "prohibit-password" (keys only).

# --- firewall (ufw) ------------------------------------------------------------------------------
firewall_allowed_ports = ["80/tcp", "443/tcp"]  # Allowed inbound besides SSH; add, never replace.
firewall_prune_unknown_rules = True  # Delete ufw rules nobody declared (SSH is never deleted).

# --- docker --------------------------------------------------------------------------------------
docker_source = "docker-ce"  # "docker-ce": Docker's apt repo (signed-by keyring); "distro": the
#                              distribution's docker.io + compose v2 packages (Debian 13).
docker_apt_url = "https://download.docker.com/linux"  # + /<os id>; used when docker_source="docker-ce"
docker_ce_packages = [
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker-buildx-plugin",
    "docker-compose-plugin",
]
docker_distro_packages = ["docker.io", "docker-compose"]  # Debian 13; Ubuntu 24.04: docker-compose-v2
docker_log_max_size = "10m"  # json-file log rotation: size of one file...
docker_log_max_file = 3  # ...and how many are kept per container.
docker_network = "nextmavens"  # Bridge network every stack joins; services find each other by name.

# --- nginx and certbot ---------------------------------------------------------------------------
nginx_acme_webroot = "/var/www/acme"  # HTTP-01 challenges are served from here on every name.
nginx_ipv6 = True  # Also listen on [::] (turn off on a host without IPv6, or nginx will not start).
nginx_worker_connections = 1024
nginx_client_max_body_size = "50m"

# --- stacks --------------------------------------------------------------------------------------
platform_dir = "/opt/nextmavens"  # stacks/<name>/, venv/, dist/ live under it.
secrets_file = "/etc/nextmavens/secrets.env"  # Generated on the host once, 0600; never leaves it.
# Image pins: a tag or a digest, never :latest. Supabase's pins follow supabase/docker's compose file.
# Each configured pin has a facts table for that exact tag (nextmavens/upstream/facts.py: what it accepts, read
# from its source); tests/unit/upstream/ fails when a pin here has none. Read the new tag's source first.
images = {
    "postgres": "supabase/postgres:15.8.1.060",
    "kong": "kong:2.8.1",
    "realtime": "supabase/realtime:v2.34.47",
    "supavisor": "supabase/supavisor:2.5.7",
    "studio": "supabase/studio:2025.06.30-sha-6f5982d",
    # 0.91.6: the 0.91.x release whose memory was measured (D5); 0.91.0 was never published to npm.
    "postgres_meta": "supabase/postgres-meta:v0.91.6",
    "gotrue": "supabase/gotrue:v2.177.0",
    # v14.5 as Supabase's compose now pins it: `postgrest --ready` (the per-project health check) exists only
    # from v14.0, and the v12 image (one static binary) can run no other in-container check.
    "postgrest": "postgrest/postgrest:v14.5",
    "storage_api": "supabase/storage-api:v1.25.7",
    "imgproxy": "darthsim/imgproxy:v3.8.0",
    "logflare": "supabase/logflare:1.14.2",
    "vector": "timberio/vector:0.28.1-alpine",
    "evolution": "evoapicloud/evolution-api:v2.3.7",  # stay on 2.3.7: 2.4 needs a license server
    "redis": "redis:7-alpine",
}
# App deployments (`nextmavens deploy`, issue 16): the rendered Dockerfiles' base images (pinned), the release's
# health check (a release not answering 2xx on its health_path within health_timeout_s is stopped and nothing
# switches; one request every health_interval_s, each bounded by health_request_timeout_s), how long the old
# release keeps serving its open requests after nginx switched (drain_s), each build step's memory, and how long a
# second deploy of the same app waits for the first (lock_timeout_s); each release container's process limit
# (pids_limit: a fork bomb in tenant code stops there, not at the host's).
app_deploys = {
    "images": {"node": "node:22.12-bookworm-slim", "python": "python:3.12.8-slim-bookworm", "static": "nginx:1.27.3"},
    "health_timeout_s": 60.0,
    "health_interval_s": 1.0,
    "health_request_timeout_s": 5.0,
    "drain_s": 5.0,
    "build_memory_mb": 2048,
    "lock_timeout_s": 600.0,
    "pids_limit": 512,
}
images_are_substitutes = False  # True only where images are local stand-ins (the sandbox).
image_pull_policy = "missing"  # compose pull_policy; "never" with local substitutes.
loopback_ports = {  # Published on 127.0.0.1 only: Docker bypasses ufw for published ports.
    "postgres": 5432,
    "kong_http": 8000,
    "kong_admin": 8001,  # Kong's admin API: `nextmavens apply` loads the declarative config there
    "studio": 3000,
    "postgres_meta": 5480,
    "realtime": 4000,
    "supavisor_api": 4001,
    "supavisor_pooler": 6543,
    "evolution": 8080,
    "platform": 8100,  # the platform service (`nextmavens platform serve`, a systemd unit, not a container)
}  # Redis publishes nothing: only the docker network reaches it.
kong_worker_processes = 2  # Kong's default is one per core at ~100 MB each.
supabase_analytics_enabled = False  # Logflare + Vector (~2.4 GB together): off on an 8 GB host.
max_projects = 20  # Projects this host is sized for: the shared Postgres gets a replication slot pair and a
#                   walsender per project for Realtime (nextmavens/host/pgsizing.py), above the image's own.
postgres_admin_user = "postgres"  # Role the engine and the stacks' bootstrap connect as.
evolution_database = "evolution"  # Evolution API's own database (and role) in the shared Postgres.
evolution_server_url = "http://127.0.0.1:8080"  # Public URL Evolution echoes in webhooks.
evolution_client_name = "nextmavens"  # DATABASE_CONNECTION_CLIENT_NAME: scopes instances to this host.
evolution_qrcode_limit = 30  # QR refreshes before Evolution gives up on a pairing (~20 min).
# Evolution's webhooks reach the platform service (loopback only) through a host nginx server that proxies
# /hooks/evolution/ alone, from one address: the Evolution container's on a small docker network of its own
# (nextmavens/host/evolutionhooks.py says why). ufw opens evolution_hooks_port to that subnet only.
evolution_hooks_network = "nextmavens-hooks"  # only the Evolution container joins it (created once, never recreated)
evolution_hooks_subnet = "10.254.213.0/29"  # fixed: .1 is the host (gateway), .2 the Evolution container. Pick
#                                           another when a network the host routes overlaps it.
evolution_hooks_port = 8101  # nginx's webhook server (every address; ufw: the subnet above only)
# The platform service as the Evolution container reaches it (scheme://host:port, no path): each WhatsApp
# instance's webhook posts to <this>/hooks/evolution/<org>/<ref>/<instance>. Inside the Evolution container
# host.docker.internal is the host's address on evolution_hooks_network; the port is evolution_hooks_port.
evolution_hooks_url = "http://host.docker.internal:8101"

# Studio for a project (README "Studio for a project", issue 14): admins open one project's Studio from the
# dashboard, at this name, as that project's owner role. None: off (the operator's Studio behind basic auth,
# studio_domain, is the only one). The same name as studio_domain replaces that one on the public name (the
# operator's own Studio then stays on loopback_ports.studio, through an SSH tunnel). Each project's Studio is a
# container started on demand and stopped after project_studio_idle_minutes unused, at most
# project_studio_max_running at once, each limited to memory_limits_mb["studio"] (Studio's published median is 133 MiB):
# their total counts against memory_budget_mb. They join project_studio_network (fixed subnet: .1 is the host) and
# reach postgres-meta through the meta gate, nginx on studio_meta_gate_port (ufw: that subnet only).
project_studio_domain = None
project_studio_max_running = 2
project_studio_idle_minutes = 15
project_studio_network = "nextmavens-studios"
project_studio_subnet = "10.254.214.0/28"
studio_meta_gate_port = 8102

# --- memory budget (MiB) ---------------------------------------------------------------------------
memory_budget_mb = 6144  # What containers may use on an 8 GiB host; the rest is OS, nginx, cache.
memory_limits_mb = {  # Per shared service (compose mem_limit); must add up to <= memory_budget_mb.
    "postgres": 1536,
    "kong": 256,
    "realtime": 384,
    "supavisor": 384,
    "studio": 256,
    "postgres_meta": 256,  # the real 0.91.6 on Node 20 measured 173 MiB RSS under the sandbox; 256 = 1.25x + room
    "evolution": 1024,
    "redis": 256,
}

# --- the nextmavens package on the host ----------------------------------------------------------
nextmavens_wheel = None  # None: build a wheel of this checkout on each deploy (reproducible, so the
#                         host reinstalls only when the code changed); or a path to a prebuilt wheel.
#                         Installed in <platform_dir>/venv on the host.
nextmavens_deps_from = "pypi"  # Where the venv's dependencies come from; either way exactly the versions and
#                                hashes requirements/host.lock pins (scripts/lock-host-deps makes it), installed
#                                in a fresh venv swapped in only once it works. "pypi": the host's pip fetches
#                                them from its package index. "wheelhouse": the deploying machine fetches the
#                                wheels for the host's Python and uploads them (a host that reaches no index).
projects_dir = "/opt/nextmavens/projects"  # The host's manifest repository: a git work tree the engine reads,
#                                          owned by platform_user (the service commits there). The deploy
#                                          publishes manifest_source's HEAD to it, fast-forward only. The
#                                          nextmavens-env wrapper exports it as NEXTMAVENS_PROJECTS, so every
#                                          command below (and an operator's shell) reads it there.
manifest_source = "projects"  # The operator's manifest repository (relative to this checkout, or absolute): the
#                               root of its own git repository, <org>/org.yaml and <org>/<ref>.yaml at its root.
#                               The checkout's projects/ (examples) is not one: point this at yours.
# Metrics (issue 18): nextmavens-metrics.service, the resident collector (python -m nextmavens.metrics.collectd, through
# the nextmavens-env wrapper, as root: it reads the containers' cgroup files, the Docker socket and nginx's log).
# Once a minute it stores every container's CPU and memory, each project's database and traffic figures and the host's
# in the control database (raw 48 h, 5-minute 30 days, hourly a year). False: the unit is stopped and disabled.
# Email and media (issue 17). The platform service's secrets come from the secrets file, each copied to its own 0600
# file of platform_user and named in its unit once present (tasks/platform.py; add KEY=value lines, unquoted, then
# deploy): RESEND_API_KEY (re_...), RESEND_WEBHOOK_SECRET (whsec_...), CLOUDINARY_KEY (api_key:api_secret). The
# inbound worker's INBOUND_EMAIL_SECRET is generated there (give the worker the same value: wrangler secret put).
cloudinary_cloud = None  # the Cloudinary account's cloud name; None: nothing is uploaded (CLOUDINARY_KEY unused)
metrics_collector = True
metrics_log = "/var/log/nginx/nextmavens-metrics.log"  # the edge's structured access log (JSON lines; logrotate's
#                                                        nginx rule rotates it with the others)
# systemd jobs: one service+timer pair each, rendered from templates/systemd/job.*.j2, run through the
# nextmavens-env wrapper (secrets file, NEXTMAVENS_DSN, NEXTMAVENS_PROJECTS, NEXTMAVENS_EDGE_CONFIG).
# Add a dict here (in a group file) to add a job.
timers = [
    {
        "name": "reconcile",
        "description": "Apply project manifests to the host",
        "command": ["nextmavens", "apply", "--yes"],
        "on_calendar": "*:0/5",
        "randomized_delay_s": 30,
        "enabled": True,
    },
    # Backups and monitors (tests/unit/monitor/test_timers.py checks each names a real command).
    # Off until the host's secrets file names the Telegram bot (NEXTMAVENS_TELEGRAM_TOKEN_FILE,
    # NEXTMAVENS_TELEGRAM_CHAT_ID) and the backups' age recipient (NEXTMAVENS_BACKUP_RECIPIENT):
    # set "enabled": True in the group file then.
    {
        "name": "backup",
        "description": "Encrypted backups to Telegram (what each schedule makes due)",
        # only what each manifest's schedule makes due; daily/weekly at NEXTMAVENS_BACKUP_HOUR (3 UTC unless set)
        "command": ["env", "NEXTMAVENS_BACKUP_ONLY_DUE=1", "nextmavens", "backup", "run"],
        "on_calendar": "*-*-* *:05:00",
        "randomized_delay_s": 120,
        "enabled": False,
    },
    {
        "name": "backup-verify",
        "description": "Weekly restore drill of every backup target",
        "command": ["nextmavens", "backup", "verify"],
        "on_calendar": "Sun *-*-* 04:30:00",
        "randomized_delay_s": 600,
        "enabled": False,
    },
    {
        "name": "storage-monitor",
        "description": "Disk alerts at 80/90/95% and safe prune at 92%",
        "command": ["nextmavens", "monitor", "storage"],  # NEXTMAVENS_MONITOR_PATHS: "/" unless set
        "on_calendar": "*:0/5",
        "randomized_delay_s": 0,
        "enabled": False,
    },
    # Off until Cloudinary is set up (cloudinary_cloud below and CLOUDINARY_KEY in the secrets file: the
    # nextmavens-env wrapper then names root's 0600 copy); it moves only what manifests' media_offload asks.
    {
        "name": "media-offload",
        "description": "Offload old project files to Cloudinary (projects declaring media_offload)",
        "command": ["nextmavens", "media", "offload"],
        "on_calendar": "*-*-* 02:30:00",
        "randomized_delay_s": 600,
        "enabled": False,
    },
    {
        "name": "health",
        "description": "Container and endpoint health, alerts on change",
        "command": ["nextmavens", "monitor", "health"],
        "on_calendar": "*:0/5",
        "randomized_delay_s": 30,
        "enabled": False,
    },
    {
        "name": "uptime",
        "description": "Every project's public names fetched as a user would; alerts on change, uptime per day",
        "command": ["nextmavens", "monitor", "uptime"],  # the API domain: from the edge settings the wrapper names
        "on_calendar": "*:0/2",
        "randomized_delay_s": 10,
        "enabled": False,
    },
    {
        "name": "summary",
        "description": "Daily summary: disk, databases, backups, drills, containers",
        "command": ["nextmavens", "monitor", "summary"],
        "on_calendar": "*-*-* 07:00:00",
        "randomized_delay_s": 300,
        "enabled": False,
    },
]
