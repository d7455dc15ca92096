"""Browser tests: Playwright drives Debian's Chromium against a live portal on a loopback port.

Playwright's own browser download does not work offline, so the system Chromium is launched directly
(``PORTAL_TEST_CHROMIUM`` overrides its path). The live server (``live_server``, ``live_server_factory``) is
in ``tests/conftest.py``: the API's integration tests call it over HTTP too.
"""
from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("PORTAL_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


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
