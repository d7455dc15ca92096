"""Throwaway servers, databases and processes for the benchmark and the load test: a gunicorn portal on a
free loopback port, a PostgreSQL database of the run's own, and stopping what was started."""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from .client import http_request

SERVER_SECRET = "bench-" + secrets.token_hex(16)
PORTAL_APP = "portal.cli:app_from_environment()"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def portal_env(database_url: str, instance_path: Path, **extra: str) -> dict:
    """The environment of a production-like portal process: sandbox processor (no STRIPE_* inherited),
    plain HTTP on loopback, and login limits that a benchmark logging in many users never trips."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PORTAL_"))}
    env.update(PORTAL_DATABASE_URL=database_url, PORTAL_SECRET_KEY=SERVER_SECRET, PORTAL_SECURE_COOKIES="0",
               PORTAL_INSTANCE_PATH=str(instance_path), PORTAL_LOGIN_LIMIT_PER_IP="100000 per minute",
               PORTAL_LOGIN_LIMIT_PER_ACCOUNT="100000 per minute", PORTAL_LOGIN_LIMIT_PER_ACCOUNT_AND_IP="100000 per minute",
               PORTAL_BASE_URL="http://127.0.0.1")
    env.update(extra)
    return env


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM (gunicorn finishes requests in flight), then SIGKILL for the process group we started."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        # The group is the one start_new_session gave this process: its workers, nothing else.
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


@contextmanager
def gunicorn_server(database_url: str, workdir: Path, *, workers: int = 4, env: dict | None = None,
                    app: str = PORTAL_APP, ready_path: str = "/healthz"):
    """``gunicorn -w N 'portal.cli:app_from_environment()'`` (or ``app``) on a free loopback port; yields its
    base URL once ``ready_path`` answers, and always stops it (with its workers) afterwards."""
    port = free_port()
    log_path = workdir / f"gunicorn-{port}.log"
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
               "--timeout", "120", "--graceful-timeout", "5", "--error-logfile", str(log_path),
               app]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, env=env or portal_env(database_url, workdir), cwd=workdir,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_health(base_url, process, log_path, path=ready_path)
        yield base_url
    finally:
        stop_process(process)


def _wait_for_health(base_url: str, process: subprocess.Popen, log_path: Path, timeout: float = 60,
                     path: str = "/healthz") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            status, _, _ = http_request(base_url, "GET", path, timeout=2)
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not answer {path} within {timeout:.0f}s:\n{_tail(log_path)}")
        time.sleep(0.1)


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@contextmanager
def throwaway_postgres(server_url: str, prefix: str = "portal_bench"):
    """A database of this run's own on the PostgreSQL server of ``server_url``, dropped afterwards, so a
    benchmark never reads or writes anyone else's data and leaves nothing behind."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def bench_database(database_url: str | None, postgres_url: str | None, workdir: Path):
    """The URL to measure on: the given one, a throwaway PostgreSQL database, or a SQLite file in workdir."""
    if database_url and postgres_url:
        raise ValueError("give --database-url or --postgres-url, not both")
    if postgres_url:
        with throwaway_postgres(postgres_url) as url:
            yield url
    else:
        yield database_url or f"sqlite:///{workdir / 'bench.db'}"
