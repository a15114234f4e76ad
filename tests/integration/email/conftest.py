"""One applied cluster, one Resend STAND-IN and one running platform service per test module: acme/shop declares
email (with templates in acme's templates folder), acme/crm does not, globex/web declares its own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devkit.standins.cloudinary import CloudinaryStandin
from devkit.standins.resend import ResendStandin, new_signing_secret
from tests.integration.platform.harness import (
    PlatformStage,
    captured_logs,
    running_service,
    service_settings,
    write_manifests,
)
from tests.support.engine import Stage
from tests.support.projects import write_project, write_raw
from tests.support.scratch import cloned_server

RESEND_KEY = "re_platform_standin_key_0123456789"
CLOUDINARY_SECRET = "cloudinary-standin-secret-for-email"
INBOUND_SECRET = "inbound-worker-secret-0123456789abcdef"
SHOP_EMAIL = {
    "from_domain": "mail.shop.example",
    "from_name": "Acme Shop",
    "reply_to": "care@shop.example",
    "inbound_addresses": ["help@shop.example", "orders@shop.example"],
}
# globex/web's send budget is small: tests/integration/email/test_email_send.py reaches it
WEB_EMAIL = {
    "from_domain": "web.example",
    "from_name": "Globex",
    "inbound_addresses": ["hi@web.example"],
    "send_per_minute": 2,
}
TEMPLATES = {
    "welcome.html": "<p>Hello {{ name }}, welcome to {{ shop }}.</p>\n",
    "welcome.txt": "Hello {{ name }}, welcome to {{ shop }}.\n",
    "receipt.txt": "Order {{ order.id }}: {{ order.total }}\n",
    "escape.html": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
}


@dataclass
class EmailStage:
    platform: PlatformStage
    resend: ResendStandin
    webhook_secret: str
    cloudinary: CloudinaryStandin

    @property
    def stage(self) -> Stage:
        return self.platform.stage

    @property
    def url(self) -> str:
        return self.platform.url

    def rows(self, query: str, dbname: str = "shop") -> list[tuple[Any, ...]]:
        return self.stage.sql(query, dbname=dbname)


def secret_file(path: Path, value: str) -> Path:
    path.write_text(value + "\n")
    os.chmod(path, 0o600)
    return path


@pytest.fixture(scope="module")
def email_stage(pg_template: Any) -> Iterator[EmailStage]:
    with cloned_server(pg_template, "nextmavens-email-") as (server, base):
        projects = base / "projects"
        write_manifests(projects)
        write_project(projects, "acme", "shop", email=SHOP_EMAIL)
        write_project(projects, "globex", "web", email=WEB_EMAIL)
        for name, text in TEMPLATES.items():
            write_raw(projects / "acme", "templates", name, text)
        stage = Stage(server=server, projects=projects, master_key=base / "keys" / "master.key")
        stage.apply()
        secrets = base / "secrets"
        secrets.mkdir(mode=0o700)
        webhook_secret = new_signing_secret()
        with (
            ResendStandin(RESEND_KEY, {"mail.shop.example", "web.example"}) as resend,
            CloudinaryStandin("demo", "4242", CLOUDINARY_SECRET) as cloudinary,
        ):
            settings = service_settings(
                stage,
                resend_url=resend.base_url,
                resend_key_file=secret_file(secrets / "resend.key", RESEND_KEY),
                resend_webhook_secret_file=secret_file(secrets / "resend-webhook.secret", webhook_secret),
                inbound_email_secret_file=secret_file(secrets / "inbound.secret", INBOUND_SECRET),
                cloudinary_cloud="demo",
                cloudinary_key_file=secret_file(secrets / "cloudinary.key", f"4242:{CLOUDINARY_SECRET}"),
                cloudinary_url=cloudinary.base_url,
                forward_poll_s=3600.0,
            )
            with captured_logs() as logs, running_service(settings) as url:
                yield EmailStage(PlatformStage(stage, url, logs), resend, webhook_secret, cloudinary)
