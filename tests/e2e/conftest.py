"""Browser tests: Playwright drives Debian's Chromium against a live portal on a loopback port.

Playwright's own browser download does not work offline, so the system Chromium is launched directly
(``PORTAL_TEST_CHROMIUM`` overrides its path).
"""
from __future__ import annotations

import os
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from portal import create_app
from portal.config import load_settings
from portal.extensions import limiter

CHROMIUM = os.environ.get("PORTAL_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        # A short poll interval: shutting the server down waits for one poll.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def live_server_factory(database, database_url, tmp_path):
    """Start a portal with extra settings (e.g. Stripe mode); stopped at the end of the test."""
    servers = []

    def start(**overrides) -> LiveServer:
        values = {"database_url": database_url, "secret_key": "e2e-secret", "testing": True, "secure_cookies": False,
                  "instance_path": tmp_path / "instance", "ratelimit_storage_url": "memory://"}
        values.update(overrides)
        app = create_app(load_settings(overrides=values), database=database)
        limiter.reset()
        server = LiveServer(app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def live_server(live_server_factory):
    return live_server_factory()


@pytest.fixture(scope="session")
def chromium():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}; install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, request):
    """A fresh browser context per test; console errors and failed page scripts fail the test."""
    context = chromium.new_context(viewport={"width": 1100, "height": 900},
                                   java_script_enabled=not request.node.get_closest_marker("nojs"))
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def settled(page) -> None:
    """Wait until htmx has no request in flight and nothing left settling, before the next click."""
    from playwright.sync_api import expect

    expect(page.locator(".htmx-request, .htmx-settling, .htmx-swapping")).to_have_count(0)
