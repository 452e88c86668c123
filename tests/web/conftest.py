"""Browser end-to-end tests: the real server (`iatro serve`, real KB, a fresh SQLite database with the
demo organisation) driven by Debian's Chromium through Playwright, headless.

One server and one browser per test module (each module gets its own database); one browser
context per test, so cookies never leak from one test to the next.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from iatro.settings import get_settings
from tests.serving import free_port, stop, wait_ready

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package, installed by scripts/setup
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT_S = 90
DEMO_PASSWORD = "demo-iatro"


@pytest.fixture(scope="session")
def built_kb() -> Path:
    """The compiled KB must exist for the server to load it (built on demand, as tests/conftest.py does);
    the test process itself never loads it."""
    kb_dir = get_settings().kb_dir
    if not (kb_dir / "manifest.json").exists():
        subprocess.run([sys.executable, "-m", "cli.main", "kb", "build"], check=True, cwd=ROOT)
    return kb_dir


@pytest.fixture(scope="module")
def server(built_kb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`iatro serve` on a free loopback port, with a database of its own and the demo seeded."""
    directory = tmp_path_factory.mktemp("web")
    port = free_port()
    env = {
        **os.environ,
        "IATRO_DATABASE_URL": f"sqlite:///{directory / 'workflow.sqlite'}",
        "IATRO_DEMO_SEED": "1",
    }
    log_path = directory / "serve.log"
    with log_path.open("w+") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(process, base, STARTUP_TIMEOUT_S)
            yield base
        except AssertionError:
            log.seek(0)
            print(log.read())
            raise
        finally:
            stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), (
        "Debian's chromium is needed: scripts/setup installs it (apt-get install chromium)"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser, server: str) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=server, viewport={"width": 1366, "height": 900}, locale="fr-FR")
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def log_in(page: Page, email: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/connexion")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/dossiers")
