#!/usr/bin/python3
"""Sandbox stand-in (nextmavens-local/standin:1) for services whose upstream images cannot be pulled or
built here. NOT the real services: each role implements only the documented behaviour the platform uses.

Roles (STANDIN_ROLE, else detected from the service's own environment):
- plain      : every port in STANDIN_PORTS answers JSON; /health is {"status": "ok"}.
- postgrest  : (PGRST_DB_URI set) port 3000 answers any path with JSON naming the project and service;
               the admin port (PGRST_ADMIN_SERVER_PORT) answers /ready and /live, as `postgrest --ready` checks.
- gotrue     : (GOTRUE_API_PORT set) that port answers /health and any path with JSON naming the project.
- storage    : (STORAGE_BACKEND set) PORT (5000) answers /status and any path with JSON naming the project.
- kong       : Kong DB-less. Admin (8001): POST /config {"config": "<json>"} with ?check_hash=1 (304 for an
               identical config), 400 code 14 for an invalid one (running config kept), GET /status with
               configuration_hash. Proxy (8000): routes by hosts + paths (longest prefix), strip_path,
               upstreams, plugins request-termination, key-auth (key_names; header, query when key_in_query),
               acl (allow groups of the consumer), cors, request-transformer (add.headers), then forwards.
               rate-limiting is accepted and not enforced.
- evolution  : (AUTHENTICATION_API_KEY set) Evolution API 2.3.7's instance, webhook and settings routes on
               8080 (create, fetchInstances, connectionState, connect, restart, logout, delete, webhook/set|find,
               settings/set|find, message/sendText) behind the `apikey` header (the global key, or an instance's
               own token on its routes). Pairing: connect answers {count: 0} first, then a new QR code each call
               (a pairingCode with ?number=), and opens after STANDIN_EVOLUTION_OPEN_AFTER calls (default 3) or
               is refused after STANDIN_EVOLUTION_REFUSE_AFTER (default 0: never). sendText needs an open session
               (500 Connection Closed). Refuses what 2.3.7 refuses (a taken name 403, a bad integration or body
               400, a flat webhook body 400, a webhook without events 500) and answers restart on a closed instance with
               HTTP 200 {"error": true}, as 2.3.7 does.
- supavisor / realtime : the tenant APIs (GET/PUT/DELETE /api/tenants/<id>) behind an HS256 bearer JWT
               signed with API_JWT_SECRET; views never return passwords (Realtime drops db_password and
               jwt_secret).
Every role answers GET /__standin/health (the image's HEALTHCHECK).

Stand-ins refuse what the pinned programs refuse: they read the pinned facts tables (nextmavens/upstream/facts.py
and checks.py, shipped in this image's build context under /opt/standin). Kong refuses a `_format_version`, a
plugin missing from KONG_PLUGINS (read from this container's environment) or an unknown plugin config field,
as the pinned Kong 2.8.1 does; `postgrest --ready` behaves as the pinned PostgREST's (absent before v14; fails
without an admin port or with a special admin host).
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from nextmavens.upstream import checks, facts

ENV = os.environ
NAME = ENV.get("STANDIN_NAME", "standin")
BIND = ENV.get("STANDIN_BIND", "0.0.0.0")  # noqa: S104 - every address inside the container; tests use loopback
HEALTH = "/__standin/health"


def detect_role():
    role = ENV.get("STANDIN_ROLE", "")
    if role:
        return role
    if "PGRST_DB_URI" in ENV:
        return "postgrest"
    if "GOTRUE_API_PORT" in ENV:
        return "gotrue"
    if "STORAGE_BACKEND" in ENV:
        return "storage"
    if "AUTHENTICATION_API_KEY" in ENV:
        return "evolution"
    return "plain"


ROLE = detect_role()


def _bind_host(value):
    """PostgREST's host values: the special ones mean every address (stand-in: IPv4 only)."""
    return BIND if value in checks.POSTGREST_SPECIAL_HOSTS else value


def listeners():
    """(address, port) pairs this role serves."""
    if ROLE == "postgrest":
        host = ENV.get("PGRST_SERVER_HOST", "!4")
        admin_host = ENV.get("PGRST_ADMIN_SERVER_HOST") or host
        main = (_bind_host(host), int(ENV.get("PGRST_SERVER_PORT", "3000")))
        if not ENV.get("PGRST_ADMIN_SERVER_PORT"):
            return [main]
        return [main, (_bind_host(admin_host), int(ENV["PGRST_ADMIN_SERVER_PORT"]))]
    return [(BIND, p) for p in ports()]


def ports():
    if ROLE == "postgrest":
        return [p for _, p in listeners()]
    if ROLE == "gotrue":
        return [int(ENV["GOTRUE_API_PORT"])]
    if ROLE == "storage":
        return [int(ENV.get("PORT", "5000"))]
    return [int(p) for p in ENV.get("STANDIN_PORTS", "8080").replace(" ", "").split(",") if p]


def project_name():
    """The project a per-project service serves: its database (PostgREST) or its public URL (GoTrue)."""
    if ROLE == "postgrest":
        return urlsplit(ENV["PGRST_DB_URI"]).path.lstrip("/")
    if ROLE == "gotrue":
        return (urlsplit(ENV.get("API_EXTERNAL_URL", "")).hostname or "").split(".")[0]
    if ROLE == "storage":
        return ENV.get("TENANT_ID", "")
    if ROLE == "studio":
        return ENV.get("DEFAULT_PROJECT_NAME", "")
    return ""


# --- HS256 bearer tokens (the tenant APIs) ---------------------------------------------------------------
def _b64decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def jwt_valid(header, secret):
    if not secret:
        return True
    if not header or not header.startswith("Bearer "):
        return False
    try:
        head, payload, sig = header[7:].split(".")
        if json.loads(_b64decode(head)).get("alg") != "HS256":
            return False
        want = hmac.new(secret.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(want, _b64decode(sig)):
            return False
        exp = json.loads(_b64decode(payload)).get("exp")
        return isinstance(exp, int | float) and exp > time.time()
    except (ValueError, TypeError):
        return False


# --- Evolution API 2.3.7's webhooks -------------------------------------------------------------------------
# integrations/event/webhook/webhook.controller.ts (emit, retryWebhookRequest) and channel.service.ts
# (sendDataWebhook) at 2.3.7: the envelope, the JWT minted from the instance's `jwt_key` header once per event and
# reused on every retry, the retries WEBHOOK_RETRY_* configure. A workshop-only route makes an instance send one.
SIMULATE = "/standin/evolution/simulate/"
WEBHOOK_TOKEN_LIFETIME_S = 600


def _b64encode(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def webhook_token(secret, now):
    """Evolution's webhook JWT: HS256 over {iat, exp: iat+600, app, action}, signed with the jwt_key string."""
    iat = int(now)
    head = _b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"iat": iat, "exp": iat + WEBHOOK_TOKEN_LIFETIME_S, "app": "evolution", "action": "webhook"}
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{_b64encode(sig)}"


def webhook_headers(custom, now):
    """The instance's custom headers as sent: `jwt_key` removed and replaced by its bearer token."""
    headers = {str(k): str(v) for k, v in (custom or {}).items() if k != "jwt_key"}
    if (custom or {}).get("jwt_key"):
        headers["Authorization"] = f"Bearer {webhook_token(str(custom['jwt_key']), now)}"
    headers["Content-Type"] = "application/json"
    return headers


def webhook_envelope(event, instance, data, destination, server_url, now):
    """{event, instance, data, destination, date_time, sender, server_url, apikey}; `sender` only when known."""
    body = {"event": event, "instance": instance["name"], "data": data, "destination": destination,
            "date_time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
            "sender": instance.get("ownerJid"), "server_url": server_url, "apikey": None}  # fmt: skip
    if body["sender"] is None:
        del body["sender"]
    return body


def webhook_retry_config(env):
    """WEBHOOK_REQUEST_TIMEOUT_MS and WEBHOOK_RETRY_*, with 2.3.7's defaults (src/config/env.config.ts)."""
    return {
        "timeout_s": int(env.get("WEBHOOK_REQUEST_TIMEOUT_MS", "30000")) / 1000,
        "attempts": int(env.get("WEBHOOK_RETRY_MAX_ATTEMPTS", "10")),
        "initial_s": float(env.get("WEBHOOK_RETRY_INITIAL_DELAY_SECONDS", "5")),
        "exponential": env.get("WEBHOOK_RETRY_USE_EXPONENTIAL_BACKOFF", "true") == "true",
        "max_delay_s": float(env.get("WEBHOOK_RETRY_MAX_DELAY_SECONDS", "300")),
        "jitter": float(env.get("WEBHOOK_RETRY_JITTER_FACTOR", "0.2")),
        "final": {int(c) for c in env.get("WEBHOOK_RETRY_NON_RETRYABLE_STATUS_CODES", "400,401,403,404,422").split(",")
                  if c.strip()},
    }  # fmt: skip


def webhook_delay(config, attempt, random_unit):
    """The wait after failed try `attempt` (1-based): exponential from initial_s, capped, with +-jitter."""
    base = config["initial_s"] * 2 ** (attempt - 1) if config["exponential"] else config["initial_s"]
    base = min(base, config["max_delay_s"])
    return max(config["initial_s"], base * (1 + config["jitter"] * (2 * random_unit - 1)))


def post_once(url, headers, raw, timeout_s):
    """(status, answer text); status None for a timeout or a network error (retried, as 2.3.7 does)."""
    request = urllib.request.Request(url, data=raw, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310 - the instance's own URL
            return answer.status, answer.read(4096).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(4096).decode("utf-8", "replace")
    except OSError as exc:
        return None, str(exc)


def deliver_webhook(url, headers, raw, config, post=post_once, sleep=time.sleep, random_unit=None, on_try=None):
    """Every try of one event, the same headers (token) each time; stops at a 2xx or a non-retryable status.
    `on_try(attempt, status, answer)` is called after each try."""
    import random

    tries = []
    for attempt in range(1, config["attempts"] + 1):
        status, text = post(url, headers, raw, config["timeout_s"])
        tries.append({"status": status, "answer": text})
        if on_try is not None:
            on_try(attempt, status, text)
        if status is not None and (200 <= status < 300 or status in config["final"]):
            break
        if attempt < config["attempts"]:
            sleep(webhook_delay(config, attempt, random.random() if random_unit is None else random_unit))
    return tries


def simulated_message(instance, text, now):
    """A messages.upsert `data` as 2.3.7 sends one for an incoming text (conversation) message."""
    return {
        "key": {"remoteJid": "5511999990000@s.whatsapp.net", "fromMe": False, "id": uuid.uuid4().hex[:20].upper()},
        "pushName": "Stand-in Sender", "status": "DELIVERY_ACK", "message": {"conversation": text},
        "contextInfo": None, "messageType": "conversation", "messageTimestamp": int(now),
        "instanceId": instance["id"], "source": "android",
    }  # fmt: skip


def evolution_simulate(evolution, method, path, headers, raw, env=ENV, deliver=deliver_webhook):
    """POST /standin/evolution/simulate/<instance> {"event": "messages.upsert", "text": ...} (the global key):
    the instance sends that event to its webhook; the answer holds the first try (later ones run in the background)."""
    if method != "POST" or headers.get("apikey") != evolution.key:
        return evolution_error(401, "Unauthorized")
    name = urllib.parse.unquote(path[len(SIMULATE):])
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return evolution_error(400, "Unexpected token in JSON")
    with evolution.lock:
        instance = evolution.instances.get(name)
        hook = (instance or {}).get("webhook") or {}
    if instance is None:
        return evolution_error(404, f'The "{name}" instance does not exist')
    event = body.get("event", "messages.upsert")
    if event != "messages.upsert":
        return evolution_error(400, "stand-in: only messages.upsert is simulated")
    if not hook.get("enabled") or event.upper().replace(".", "_") not in hook.get("events", []):
        return 200, {"sent": False, "reason": "the instance's webhook is off or not subscribed to " + event}
    now = time.time()
    url = hook["url"] + ("/" + event.replace(".", "-") if hook.get("webhookByEvents") else "")
    envelope = webhook_envelope(event, instance, simulated_message(instance, str(body.get("text", "")), now),
                                hook["url"], env.get("SERVER_URL", ""), now)  # fmt: skip
    sent = webhook_headers(hook.get("headers"), now)
    first, answered = [], threading.Event()

    def note(attempt, status, text):
        if attempt == 1:
            first.append((status, text))
            answered.set()

    config = webhook_retry_config(env)
    args = (url, sent, json.dumps(envelope).encode(), config)
    threading.Thread(target=deliver, args=args, kwargs={"on_try": note}, daemon=True).start()
    answered.wait(config["timeout_s"] + 5)
    status, text = first[0] if first else (None, "no answer yet")
    retrying = status is None or not (200 <= status < 300 or status in config["final"])
    return 200, {"sent": True, "url": url, "status": status, "answer": text, "retrying": retrying,
                 "message_id": envelope["data"]["key"]["id"]}  # fmt: skip


# --- tenant APIs ------------------------------------------------------------------------------------------
# Supavisor (lib/supavisor_web/controllers/tenant_controller.ex, tenant_view.ex, user_view.ex at v2.5.7) and
# Realtime (lib/realtime_web/controllers/tenant_controller.ex, views/tenant_view.ex at v2.34.47).
SUPAVISOR_FIELDS = (
    "db_host", "db_port", "db_database", "ip_version", "upstream_ssl", "upstream_verify", "enforce_ssl",
    "require_user", "auth_query", "sni_hostname", "default_pool_size", "default_max_clients",
    "client_idle_timeout", "default_pool_strategy",
)  # fmt: skip
SUPAVISOR_DEFAULTS = {"default_pool_size": 15, "default_max_clients": 1000, "require_user": True}
ENCRYPTED_REALTIME_SETTINGS = ("db_host", "db_name", "db_user", "db_port")


def supavisor_view(t):
    data = {"id": t["id"], "external_id": t["external_id"]}
    data.update({k: t.get(k, SUPAVISOR_DEFAULTS.get(k)) for k in SUPAVISOR_FIELDS})
    data["users"] = [
        {
            "db_user_alias": u["db_user"],
            "db_user": u["db_user"],
            "pool_size": u.get("pool_size"),
            "is_manager": u.get("is_manager", False),
            "mode_type": u.get("mode_type", "transaction"),
            "pool_checkout_timeout": 60000,
            "max_clients": None,
        }
        for u in t.get("users", [])
    ]
    return data


def realtime_view(t):
    extensions = []
    for ext in t.get("extensions", []):
        settings = {k: v for k, v in ext["settings"].items() if k != "db_password"}
        for key in ENCRYPTED_REALTIME_SETTINGS:
            if key in settings:
                settings[key] = base64.b64encode(hashlib.sha256(str(settings[key]).encode()).digest()).decode()
        extensions.append({"type": ext["type"], "settings": settings, "inserted_at": "2026-01-01T00:00:00"})
    return {
        "id": t["id"], "external_id": t["external_id"], "name": t.get("name"),
        "max_concurrent_users": t.get("max_concurrent_users", 200), "max_channels_per_client": 100,
        "max_events_per_second": 100, "max_joins_per_second": 100, "inserted_at": "2026-01-01T00:00:00",
        "extensions": extensions, "private_only": False,
    }  # fmt: skip


class Tenants:
    """GET/PUT/DELETE /api/tenants/<external_id> of Supavisor ("supavisor") or Realtime ("realtime")."""

    def __init__(self, kind):
        self.kind = kind
        self.tenants = {}
        self.lock = threading.Lock()

    def view(self, tenant):
        return supavisor_view(tenant) if self.kind == "supavisor" else realtime_view(tenant)

    def handle(self, method, path, body):
        parts = path.strip("/").split("/")
        if parts[:2] != ["api", "tenants"] or len(parts) != 3:
            return 404, {"error": "not found"}
        ref = parts[2]
        with self.lock:
            if method == "GET":
                t = self.tenants.get(ref)
                return (200, {"data": self.view(t)}) if t else (404, {"error": "not found"})
            if method == "PUT":
                params = (body or {}).get("tenant") if isinstance(body, dict) else None
                if not isinstance(params, dict):
                    return 400, {"error": "missing tenant"}
                if self.kind == "supavisor" and any("db_password" not in u for u in params.get("users", [])):
                    return 422, {"errors": {"users": ["db_password can't be blank"]}}
                if ref in self.tenants:
                    self.tenants[ref].update(params)
                    return 200, {"data": self.view(self.tenants[ref])}
                if self.kind == "realtime" and ("extensions" not in params or not params.get("jwt_secret")):
                    return 422, {"errors": {"jwt_secret": ["can't be blank"]}}
                self.tenants[ref] = {**params, "external_id": ref, "id": str(uuid.uuid4())}
                return 201, {"data": self.view(self.tenants[ref])}
            if method == "DELETE":
                found = self.tenants.pop(ref, None) is not None
                # Realtime answers 204 for an unknown tenant too; Supavisor 404.
                return (204, None) if found or self.kind == "realtime" else (404, None)
        return 405, {"error": "method not allowed"}


# --- Evolution API 2.3.7 ----------------------------------------------------------------------------------
# src/api/routes/instance.router.ts, guards/auth.guard.ts and instance.guard.ts, controllers/instance.controller.ts,
# integrations/event/webhook/*, validate/*.schema.ts, exceptions/* at 2.3.7: names and shapes from the pinned facts.
def evolution_error(status, message):
    names = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}
    return status, {"status": status, "error": names.get(status, "Error"), "response": {"message": [message]}}


class Evolution:
    """The instance routes the platform uses. `fail_creates`: that many creates fail with 400 after the name
    was taken, and the name stays taken for one more create (2.3.7 removes a failed create asynchronously).
    With `state_file`, instances outlive a restart of the container (2.3.7 keeps them in its database)."""

    def __init__(self, api_key, client_name, state_file=None, open_after=None, refuse_after=None):
        self.facts = facts.pinned_evolution()
        # Pairing (see _connect): connect calls until the phone scans, or until the QR limit; 0 never.
        self.open_after = int(ENV.get("STANDIN_EVOLUTION_OPEN_AFTER", "3") if open_after is None else open_after)
        refuse = ENV.get("STANDIN_EVOLUTION_REFUSE_AFTER", "0") if refuse_after is None else refuse_after
        self.refuse_after = int(refuse)
        self.phone_number = ENV.get("STANDIN_EVOLUTION_PHONE", "15550001234")
        self.profile_name = "Stand-in phone"
        self.not_on_whatsapp = set()  # numbers sendText answers {exists: false}
        self.sent = []  # the messages sendText accepted
        self.connects = {}  # instance -> connect calls since its session started
        self.key = api_key
        self.client_name = client_name
        self.state_file = state_file
        self.instances = {}
        if state_file and os.path.exists(state_file):
            with open(state_file) as f:
                self.instances = json.load(f)
        self.dying = set()
        self.fail_creates = 0
        self.lock = threading.Lock()

    def _save(self):
        if self.state_file:
            with open(self.state_file + ".tmp", "w") as f:
                json.dump(self.instances, f)
            os.replace(self.state_file + ".tmp", self.state_file)

    def _authorised(self, key, name, route):
        if not key:
            return False
        if key == self.key:
            return True
        if route == "create":
            return False
        if name:
            return name in self.instances and self.instances[name]["token"] == key
        return route == "fetch_instances" and any(i["token"] == key for i in self.instances.values())

    def _route(self, method, path):
        """(route, instance name) for a path the facts table names."""
        for route, (want_method, pattern) in self.facts.routes.items():
            if method != want_method:
                continue
            prefix = pattern.split("{name}")[0]
            if "{name}" not in pattern and path.rstrip("/") == pattern:
                return route, ""
            if "{name}" in pattern and path.startswith(prefix) and "/" not in path[len(prefix):] and path[len(prefix):]:
                return route, urllib.parse.unquote(path[len(prefix):])
        return None, ""

    def handle(self, method, path, query, headers, raw):
        route, name = self._route(method, path)
        if route is None:
            return evolution_error(404, f"Cannot {method} {path}")
        with self.lock:
            if not self._authorised(headers.get("apikey"), name, route):
                return evolution_error(401, "Unauthorized")
            if name and name not in self.instances:
                return evolution_error(404, f'The "{name}" instance does not exist')
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return evolution_error(400, "Unexpected token in JSON")
            answer = getattr(self, "_" + route)(name, body, query, headers.get("apikey"))
            if method != "GET":
                self._save()
            return answer

    def _create(self, _, body, query, key):
        if not isinstance(body, dict) or not isinstance(body.get("instanceName"), str) or not body["instanceName"]:
            return evolution_error(400, 'instance requires property "instanceName"')
        name = body["instanceName"]
        if name in self.instances or name in self.dying:
            self.dying.discard(name)
            return evolution_error(403, f'This name "{name}" is already in use.')
        if body.get("integration") not in self.facts.integrations:
            return evolution_error(400, "Invalid integration")
        for setting in self.facts.settings_required:
            if setting in body and not isinstance(body[setting], bool):
                return evolution_error(400, f'instance.{setting} is not of a type(s) boolean')
        webhook = body.get("webhook")
        if webhook is not None:
            problem = self._webhook_problem(webhook)
            if problem:
                return problem
        if self.fail_creates > 0:
            self.fail_creates -= 1
            self.dying.add(name)
            return evolution_error(400, "stand-in: create failed")
        token = body.get("token") or str(uuid.uuid4()).upper()
        instance_id = str(uuid.uuid4())
        settings = {k: body.get(k) is True for k in sorted(self.facts.settings_required)}
        settings.update(msgCall=body.get("msgCall") or "", wavoipToken=body.get("wavoipToken") or "")
        self.instances[name] = {
            "id": instance_id, "name": name, "connectionStatus": "close", "ownerJid": None, "profileName": None,
            "integration": body["integration"], "number": body.get("number"), "token": token,
            "clientName": self.client_name, "Setting": settings, "webhook": None,
        }  # fmt: skip
        if webhook is not None:
            self._store_webhook(name, webhook)
        hook = webhook or {}
        return 201, {
            "instance": {"instanceName": name, "instanceId": instance_id, "integration": body["integration"],
                         "status": "close"},
            "hash": token,
            "webhook": {"webhookUrl": hook.get("url"), "webhookHeaders": hook.get("headers"),
                        "webhookByEvents": hook.get("byEvents"), "webhookBase64": hook.get("base64")},
            "settings": settings,
        }  # fmt: skip

    def _fetch_instances(self, _, body, query, key):
        rows = [i for i in self.instances.values() if i["clientName"] == self.client_name]
        if key != self.key:
            rows = [i for i in rows if i["token"] == key]
        wanted = query.get("instanceName", [None])[0]
        if wanted is not None:
            if wanted not in self.instances:
                return evolution_error(404, f'Instance "{wanted}" not found')
            rows = [i for i in rows if i["name"] == wanted]
        return 200, [{k: v for k, v in i.items() if k != "webhook"} for i in rows]

    def _connection_state(self, name, body, query, key):
        instance = self.instances[name]
        state = instance["connectionStatus"]
        if state == "refused":  # shown once: 2.3.7 then logs the session out and resets its QR count
            instance["connectionStatus"] = "close"
        return 200, {"instance": {"instanceName": name, "state": state}}

    def _connect(self, name, body, query, key):
        """Pairing as a phone would see it, in connect calls: the first starts the socket and answers {count: 0},
        each later one a new QR code (and with ?number= a pairing code); after `open_after` calls the phone has
        scanned (state open, ownerJid set); after `refuse_after` the QR limit is reached (refused, then close).
        0 means never."""
        instance = self.instances[name]
        if instance["connectionStatus"] == "open":
            return self._connection_state(name, body, query, key)
        if instance["connectionStatus"] == "close":
            instance["connectionStatus"] = "connecting"
            self.connects[name] = 0
            return 200, {"count": 0}
        self.connects[name] = count = self.connects.get(name, 0) + 1
        number = query.get("number", [None])[0]
        if self.open_after and count >= self.open_after:
            owner = number or self.phone_number
            instance.update(connectionStatus="open", ownerJid=f"{owner}@s.whatsapp.net", profileName=self.profile_name)
            return 200, {"instance": {"instanceName": name, "state": "open"}}
        if self.refuse_after and count >= self.refuse_after:
            instance["connectionStatus"] = "refused"
            return 200, {"count": 0}
        code = f"2@standin{count}{hashlib.sha256(f'{name}:{count}'.encode()).hexdigest()},{name},{count}"
        pairing = hashlib.sha256(f"{name}:{number}".encode()).hexdigest()[:8].upper() if number else None
        return 200, {"pairingCode": pairing, "code": code, "base64": "data:image/png;base64,", "count": count}

    def _send_text(self, name, body, query, key):
        for field in sorted(self.facts.send_text_required):
            if not isinstance(body, dict) or field not in body:
                return evolution_error(400, f'instance requires property "{field}"')
            if not isinstance(body[field], str):
                return evolution_error(400, f"instance.{field} is not of a type(s) string")
        if not body["text"].strip():
            return evolution_error(400, "Text is required")
        if self.instances[name]["connectionStatus"] != "open":
            return evolution_error(500, "Error: Connection Closed")
        number = body["number"].split("@")[0]
        if not number.isdigit() or number in self.not_on_whatsapp:
            return 400, {"status": 400, "error": "Bad Request",
                         "response": {"message": [{"exists": False, "jid": f"{number}@s.whatsapp.net",
                                                   "number": body["number"]}]}}  # fmt: skip
        message_id = "3EB0" + uuid.uuid4().hex[:16].upper()
        self.sent.append({"instance": name, "number": number, "text": body["text"], "id": message_id})
        return 201, {
            "key": {"remoteJid": f"{number}@s.whatsapp.net", "fromMe": True, "id": message_id},
            "pushName": "", "status": "PENDING", "message": {"conversation": body["text"]},
            "messageType": "conversation", "messageTimestamp": int(time.time()),
            "instanceId": self.instances[name]["id"], "source": "unknown",
        }  # fmt: skip

    def _restart(self, name, body, query, key):
        if self.instances[name]["connectionStatus"] == "close":
            return 200, {"error": True, "message": "[object Object]"}
        return 200, {"instance": {"instanceName": name, "state": self.instances[name]["connectionStatus"]}}

    def _logout(self, name, body, query, key):
        instance = self.instances[name]
        if instance["connectionStatus"] == "close":
            return evolution_error(400, f'The "{name}" instance is not connected')
        instance["connectionStatus"] = "close"
        return 200, {"status": "SUCCESS", "error": False, "response": {"message": "Instance logged out"}}

    def _delete(self, name, body, query, key):
        self.instances.pop(name)
        return 200, {"status": "SUCCESS", "error": False, "response": {"message": "Instance deleted"}}

    def _webhook_problem(self, webhook):
        if not isinstance(webhook, dict):
            return evolution_error(400, 'instance requires property "webhook"')
        for required in sorted(self.facts.webhook_required):
            if required not in webhook:
                return evolution_error(400, f'instance.webhook requires property "{required}"')
        unknown = set(webhook) - self.facts.webhook_fields
        if unknown:
            extra = sorted(unknown)[0]
            return evolution_error(400, f"instance.webhook is not allowed to have the additional property {extra!r}")
        if webhook.get("enabled") and "events" not in webhook:
            return evolution_error(500, "Cannot read properties of undefined (reading 'length')")
        bad = [e for e in webhook.get("events") or [] if e not in self.facts.webhook_events]
        if bad:
            return evolution_error(400, f"instance.webhook.events[0] is not one of enum values: {bad[0]}")
        return None

    def _store_webhook(self, name, webhook):
        events = list(webhook.get("events") or []) if webhook.get("enabled") else []
        if webhook.get("enabled") and not events:
            events = sorted(self.facts.webhook_events)
        row = {
            "id": (self.instances[name]["webhook"] or {}).get("id") or str(uuid.uuid4()), "url": webhook["url"],
            "headers": webhook.get("headers"), "enabled": webhook["enabled"], "events": events,
            "webhookByEvents": webhook.get("byEvents"), "webhookBase64": webhook.get("base64"),
            "instanceId": self.instances[name]["id"],
        }  # fmt: skip
        self.instances[name]["webhook"] = row
        return row

    def _webhook_set(self, name, body, query, key):
        if not isinstance(body, dict) or "webhook" not in body:
            return evolution_error(400, 'instance requires property "webhook"')
        problem = self._webhook_problem(body["webhook"])
        if problem:
            return problem
        return 201, self._store_webhook(name, body["webhook"])

    def _webhook_find(self, name, body, query, key):
        return 200, self.instances[name]["webhook"]

    def _settings_set(self, name, body, query, key):
        for setting in sorted(self.facts.settings_required):
            if not isinstance(body, dict) or not isinstance(body.get(setting), bool):
                return evolution_error(400, f'instance requires property "{setting}"')
        settings = {k: body[k] for k in sorted(self.facts.settings_required)}
        settings.update(msgCall=body.get("msgCall") or "", wavoipToken=body.get("wavoipToken") or "")
        self.instances[name]["Setting"] = settings
        return 201, {"settings": {"instanceName": name, "settings": body}}

    def _settings_find(self, name, body, query, key):
        return 200, self.instances[name]["Setting"]


# --- Kong (DB-less) ---------------------------------------------------------------------------------------
def invalid(message):
    return 400, {"code": 14, "name": "invalid declarative configuration", "message": message}


class KongAdmin:
    """Kong 2.8.1's DB-less admin API: POST /config (check_hash=1: 304 when identical; an invalid config is
    refused with code 14 and the running one kept), GET /status with configuration_hash. It refuses what the
    pinned Kong refuses (checks.kong_config_problems), with KONG_PLUGINS read as Kong reads it."""

    def __init__(self, kong_plugins):
        self.facts = facts.pinned_kong()
        self.plugins = checks.kong_enabled_plugins(kong_plugins, self.facts)
        self.lock = threading.Lock()
        self.text = None  # the running declarative config, as loaded
        self.compiled = None  # the same, compiled for the proxy
        self.hash = "0" * 32
        self.loads = 0
        self.busy = 0  # answer this many POSTs with 429 first (a reload in progress)

    def handle(self, method, path, query, raw):
        with self.lock:
            if method == "GET" and path == "/status":
                return 200, {"configuration_hash": self.hash, "server": {"connections_active": 1}}
            if method != "POST" or path != "/config":
                return 404, {"message": "Not found"}
            if self.busy > 0:
                self.busy -= 1
                return 429, {"message": "Currently loading previous configuration"}
            try:
                text = json.loads(raw).get("config")
            except (ValueError, AttributeError):
                text = None
            if not isinstance(text, str):
                return invalid("expected a declarative config in 'config'")
            new_hash = hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - Kong's configuration_hash is md5
            if query.get("check_hash") == ["1"] and new_hash == self.hash:
                return 304, None
            try:
                doc = json.loads(text)
            except ValueError:
                return invalid("config is not valid JSON")
            problems = checks.kong_config_problems(doc, self.plugins, self.facts)
            if problems:
                return invalid("declarative config is invalid: " + "; ".join(problems))
            self.text, self.compiled, self.hash = text, compile_kong(doc), new_hash
            self.loads += 1
            return 201, doc


def compile_kong(doc):
    keys, groups = {}, {}
    for c in doc.get("consumers", []):
        for k in c.get("keyauth_credentials", []):
            keys[k["key"]] = c["username"]
        groups[c["username"]] = {a["group"] for a in c.get("acls", [])}
    upstreams = {u["name"]: [t["target"] for t in u.get("targets", [])] for u in doc.get("upstreams", [])}
    routes = []
    for s in doc.get("services", []):
        for r in s.get("routes", []):
            plugins = {p["name"]: p.get("config", {}) for p in s.get("plugins", [])}
            plugins.update({p["name"]: p.get("config", {}) for p in r.get("plugins", [])})
            for path in r.get("paths") or ["/"]:
                routes.append({"hosts": r.get("hosts") or [], "path": path, "strip": r.get("strip_path", True),
                               "preserve_host": r.get("preserve_host", False), "url": s["url"],
                               "plugins": plugins, "name": r.get("name", s.get("name"))})  # fmt: skip
    # Kong's router: routes with hosts before those without, then the longest path
    routes.sort(key=lambda r: (not r["hosts"], -len(r["path"])))
    return {"keys": keys, "groups": groups, "upstreams": upstreams, "routes": routes}


def kong_match(cfg, host, path):
    for r in cfg["routes"]:
        if r["hosts"] and host not in r["hosts"]:
            continue
        if path.startswith(r["path"]):
            return r
    return None


def kong_admit(cfg, method, host, path, query, headers):
    """Kong's router and its auth plugins, as the pinned config uses them (no I/O): the matched route, the
    consumer, extra response headers, and either (status, body) to answer at once or None to forward.
    `headers` is a case-insensitive mapping (an http.client message)."""
    route = kong_match(cfg, host, path) if cfg else None
    if route is None:
        return None, None, {}, (404, {"message": "no Route matched with those values"})
    plugins, extra = route["plugins"], {}
    cors = plugins.get("cors")
    if cors is not None:
        extra["Access-Control-Allow-Origin"] = (cors.get("origins") or ["*"])[0]
        if method == "OPTIONS":
            extra["Access-Control-Allow-Methods"] = ",".join(cors.get("methods", []))
            extra["Access-Control-Allow-Headers"] = ",".join(cors.get("headers", []))
            return route, None, extra, (200, None)
    term = plugins.get("request-termination")
    if term is not None:
        return route, None, extra, (term.get("status_code", 503), {"message": term.get("message", "")})
    consumer = None
    auth = plugins.get("key-auth")
    if auth is not None:
        key = None
        for name in auth.get("key_names", ["apikey"]):
            key = headers.get(name)
            if key is None and auth.get("key_in_query", True) and name in query:
                key = query[name][0]
            if key is not None:
                break
        if key is None:
            return route, None, extra, (401, {"message": "No API key found in request"})
        consumer = cfg["keys"].get(key)
        if consumer is None:
            return route, None, extra, (401, {"message": "Invalid authentication credentials"})
    acl = plugins.get("acl")
    if acl is not None:
        if consumer is None:
            return route, None, extra, (401, {"message": "Unauthorized"})
        if not cfg["groups"].get(consumer, set()) & set(acl.get("allow", [])):
            return route, consumer, extra, (403, {"message": "You cannot consume this service"})
    return route, consumer, extra, None


def kong_proxy(handler, method, raw):
    cfg = STATE["kong"].compiled
    url = urlsplit(handler.path)
    host = (handler.headers.get("Host") or "").split(":")[0].lower()
    query = parse_qs(url.query, keep_blank_values=True)
    route, consumer, extra, answer = kong_admit(cfg, method, host, url.path, query, handler.headers)
    if answer is not None:
        return answer[0], answer[1], extra
    plugins = route["plugins"]
    headers = {k: v for k, v in handler.headers.items()}
    transformer = plugins.get("request-transformer")
    if transformer is not None:
        for item in transformer.get("add", {}).get("headers", []):
            name, _, value = item.partition(":")
            if value.startswith("Bearer $(headers.") and value.endswith(")"):
                value = "Bearer " + (handler.headers.get(value[len("Bearer $(headers.") : -1]) or "")
            headers.setdefault(name, value)
    # forward: service URL + the path left after the matched prefix
    service = urlsplit(route["url"])
    rest = url.path[len(route["path"].rstrip("/")) :] if route["strip"] else url.path
    upstream_path = (service.path.rstrip("/") + "/" + rest.lstrip("/")) if rest else (service.path or "/")
    if url.query:
        upstream_path += "?" + url.query
    target = service.netloc
    if service.hostname in cfg["upstreams"] and cfg["upstreams"][service.hostname]:
        target = cfg["upstreams"][service.hostname][0]
    if not route["preserve_host"]:
        headers["Host"] = target
    if consumer is not None:
        headers["X-Consumer-Username"] = consumer
    headers.pop("Connection", None)
    hostname, _, port = target.partition(":")
    try:
        conn = http.client.HTTPConnection(hostname, int(port or 80), timeout=30)
        conn.request(method, upstream_path, body=raw or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out = {k: v for k, v in resp.getheaders() if k.lower() not in ("transfer-encoding", "connection")}
        out.update(extra)
        conn.close()
        return resp.status, data, out
    except OSError as exc:
        return 502, {"message": f"An invalid response was received from the upstream server: {exc}"}, extra


# --- HTTP -------------------------------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, body, headers=None):
        if isinstance(body, bytes):
            data = body
        else:
            data = b"" if body is None or status in (204, 304) else json.dumps(body).encode()
        self.send_response(status)
        headers = dict(headers or {})
        headers.pop("Content-Length", None)
        if data and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _reply(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        port = self.server.server_address[1]
        if url.path == HEALTH:
            return self._send(200, {"status": "ok", "service": NAME, "role": ROLE})
        if ROLE == "kong":
            if port == int(ENV.get("KONG_ADMIN_PORT", "8001")):
                status, body = STATE["kong"].handle(self.command, url.path, parse_qs(url.query), raw)
                return self._send(status, body)
            return self._send(*kong_proxy(self, self.command, raw))
        if ROLE in ("supavisor", "realtime") and url.path.startswith("/api/tenants"):
            if not jwt_valid(self.headers.get("Authorization"), ENV.get("API_JWT_SECRET", "")):
                return self._send(401, {"message": "unauthorized"})
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            return self._send(*STATE["tenants"].handle(self.command, url.path, body))
        if ROLE == "evolution" and url.path.startswith(SIMULATE):
            return self._send(*evolution_simulate(STATE["evolution"], self.command, url.path, self.headers, raw))
        if ROLE == "evolution":
            status, body = STATE["evolution"].handle(self.command, url.path, parse_qs(url.query), self.headers, raw)
            return self._send(status, body)
        if ROLE == "studio" and url.path.startswith(STUDIO_PG_META):
            return self._send(*studio_pg_meta(self.command, url, raw))
        if ROLE == "postgrest" and len(ports()) > 1 and port == ports()[1]:
            ok = url.path in ("/ready", "/live")
            return self._send(200 if ok else 404, None if ok else {"message": "not found"})
        if url.path.rstrip("/") in ("/health", "/status"):
            return self._send(200, {"status": "ok", "service": NAME, "role": ROLE})
        body = {"standin": True, "service": ROLE if ROLE != "plain" else NAME, "project": project_name(),
                "method": self.command, "path": self.path}  # fmt: skip
        if ROLE == "studio":  # which cookies reached Studio (names only): the platform's must not
            body["cookies"] = sorted(c.split("=", 1)[0].strip() for c in self.headers.get("Cookie", "").split(";") if c)
        return self._send(200, body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _reply

    def log_message(self, fmt, *args):  # one line per request on stderr; never the query (it may hold keys)
        sys.stderr.write(f"{NAME} {self.command} {urlsplit(self.path).path}\n")


def check():
    """The image's health check, `standin --check`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{ports()[0]}{HEALTH}", timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)


def postgrest_ready():
    """`postgrest --ready` (this file installed as postgrest), as the pinned PostgREST does it."""
    url, error = checks.postgrest_ready_url(ENV, facts.pinned("postgrest"))
    if url is None:
        sys.stderr.write(f"ERROR: {error}\n")
        sys.exit(1)
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            ok = 200 <= r.status < 300
    except OSError:
        ok = False
    sys.stdout.write(f"OK: {url}\n" if ok else "")
    sys.stderr.write("" if ok else f"ERROR: connection refused to {url}\n")
    sys.exit(0 if ok else 1)


# --- Studio (self-hosted), only its pg-meta API: started with STANDIN_ROLE=studio (the tests' per-project Studios) --
STUDIO_PG_META = "/api/platform/pg-meta/"
# apps/studio/pages/api/platform/pg-meta/[ref]/*.ts: each answers GET only (405 otherwise); query/index.ts POST only
STUDIO_GET_ONLY = frozenset(
    {"tables", "schemas", "extensions", "views", "columns", "policies", "triggers", "types", "publications",
     "materialized-views", "foreign-tables", "column-privileges"}
)  # fmt: skip


def studio_connection_header():
    """What self-hosted Studio sends postgres-meta, built from its own environment whatever the browser sent
    (lib/api/self-hosted/query.ts, util.ts, constants.ts): postgres://postgres:POSTGRES_PASSWORD@POSTGRES_HOST:
    POSTGRES_PORT/POSTGRES_DB, CryptoJS AES with PG_META_CRYPTO_KEY (default SAMPLE_KEY). The encryption is the
    product's (the image's python has no `cryptography`: the sandbox never starts this role)."""
    from urllib.parse import quote

    from nextmavens.platform.studiogate import cryptojs_encrypt

    password, database = ENV.get("POSTGRES_PASSWORD", "postgres"), ENV.get("POSTGRES_DB", "postgres")
    address = f"{ENV.get('POSTGRES_HOST', 'db')}:{ENV.get('POSTGRES_PORT', '5432')}"
    url = f"postgresql://postgres:{quote(password, safe='')}@{address}/{quote(database, safe='')}"
    return cryptojs_encrypt(url, ENV.get("PG_META_CRYPTO_KEY") or "SAMPLE_KEY")


def studio_pg_meta(method, url, raw):
    """/api/platform/pg-meta/<ref>/<endpoint>: passed on to STUDIO_PG_META_URL with Studio's own connection."""
    ref, _, endpoint = url.path[len(STUDIO_PG_META) :].partition("/")
    allowed = "POST" if endpoint == "query" else "GET" if endpoint in STUDIO_GET_ONLY else None
    if not ref or allowed is None:
        return 404, {"message": "not found"}, {}
    if method != allowed:
        return 405, {"error": {"message": f"Method {method} Not Allowed"}}, {"Allow": allowed}
    target = ENV["STUDIO_PG_META_URL"].rstrip("/") + "/" + endpoint + (f"?{url.query}" if url.query else "")
    headers = {"Content-Type": "application/json", "x-connection-encrypted": studio_connection_header()}
    request = urllib.request.Request(target, data=raw if allowed == "POST" else None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read(), {"Content-Type": r.headers.get("Content-Type", "application/json")}
    except urllib.error.HTTPError as e:
        return e.code, e.read(), {"Content-Type": e.headers.get("Content-Type", "application/json")}


# This process's state, made in main() for its role (importing this file starts nothing: the tests reuse it).
STATE: dict[str, object] = {}


def main():
    if sys.argv[1:] == ["--check"]:
        check()
    if sys.argv[1:] == ["--ready"]:
        postgrest_ready()
    if ROLE == "kong":
        STATE["kong"] = KongAdmin(ENV.get("KONG_PLUGINS"))  # as the pinned Kong reads its environment
    if ROLE in ("supavisor", "realtime"):
        STATE["tenants"] = Tenants(ROLE)
    if ROLE == "evolution":
        STATE["evolution"] = Evolution(
            ENV["AUTHENTICATION_API_KEY"],
            ENV.get("DATABASE_CONNECTION_CLIENT_NAME", ""),
            ENV.get("STANDIN_STATE_FILE", "/tmp/standin-evolution.json"),  # noqa: S108 - the container's own /tmp
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    servers = [ThreadingHTTPServer(address, Handler) for address in listeners()]
    for s in servers:
        s.daemon_threads = True
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    sys.stderr.write(f"{NAME} stand-in ({ROLE}) listening on {ports()}\n")
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
