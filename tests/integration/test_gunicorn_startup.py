"""Starting the portal with `gunicorn wsgi:app`, as the README says: a missing or short secret key stops it
at once with one clear line (no traceback per worker, no workers started again and again); a good key serves."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from portal.perf.servers import free_port

from ..helpers import OWN_PROCESSES

pytestmark = OWN_PROCESSES

ROOT = Path(__file__).resolve().parents[2]


def _environment(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "STRIPE_"))}
    env.update(PYTHONPATH=str(ROOT), PORTAL_INSTANCE_PATH=str(tmp_path),
               PORTAL_DATABASE_URL=f"sqlite:///{tmp_path / 'portal.db'}", **extra)
    return env


def _gunicorn(port: int) -> list[str]:
    # Several workers: a check that ran in each of them would print its complaint several times.
    return [sys.executable, "-m", "gunicorn", "-w", "3", "-b", f"127.0.0.1:{port}", "wsgi:app"]


@pytest.mark.parametrize("key, complaint", [
    (None, "portal: PORTAL_SECRET_KEY is not set"),
    ("k" * 31, "portal: PORTAL_SECRET_KEY is 31 bytes long; use at least 32 random bytes"),
], ids=["no key", "31-byte key"])
def test_gunicorn_without_a_long_enough_secret_key_exits_at_once_with_one_line(tmp_path, key, complaint):
    extra = {"PORTAL_SECRET_KEY": key} if key else {}
    # The timeout is a guard against the crash loop this test is about, which would never exit by itself.
    result = subprocess.run(_gunicorn(free_port()), cwd=ROOT, env=_environment(tmp_path, **extra),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(complaint)


def test_gunicorn_with_a_32_byte_secret_key_starts_and_answers_healthz(tmp_path):
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(_gunicorn(port), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   env=_environment(tmp_path, PORTAL_SECRET_KEY=secrets.token_hex(16)),
                                   start_new_session=True)
    try:
        status = None
        deadline = time.monotonic() + 60  # only so a broken start fails the test instead of hanging it
        while status != 200 and process.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    status = response.status
            except OSError:
                time.sleep(0.2)
        assert status == 200, log_path.read_text(errors="replace")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group start_new_session gave it: its workers only
            process.wait()
