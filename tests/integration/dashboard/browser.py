"""Debian's chromium driven by Playwright for Python (never `playwright install`): a fresh profile per test,
headless, no network beyond loopback, a fixed window so screenshots compare."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, Playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
# Set to write the screenshots into the repository (docs/screenshots/); otherwise they go to the test's folder.
SCREENSHOTS_ENV = "DASHBOARD_SCREENSHOTS"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


@contextmanager
def browser(playwright: Playwright, profile: Path, viewport: dict[str, int] = VIEWPORT) -> Iterator[BrowserContext]:
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=ARGS,
        viewport=viewport,  # type: ignore[arg-type]
        locale="en-US",
        timezone_id="UTC",
        reduced_motion="reduce",
    )
    context.set_default_timeout(30_000)
    try:
        yield context
    finally:
        context.close()


def sign_in(page: Page, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def screenshot(page: Page, folder: Path, name: str) -> Path:
    """A full-page PNG in `folder`, copied to docs/screenshots/ when DASHBOARD_SCREENSHOTS is set."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    if os.environ.get(SCREENSHOTS_ENV):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / path.name)
    return path
