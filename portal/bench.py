"""``portal bench``: the project's performance report, measured on a fresh database.

Seeding goes through the same services as production (invoices through build/issue), so the figures
describe the code that runs, not a shortcut. One run measures, side by side:

* SQL statements and bytes of the Billing details page (5 and 2,000 invoices);
* requests per second and p50/p99 latency of Billing details and of the HTMX set-default partial, served
  by gunicorn with several workers and loaded by wrk, each also as a ratio to ``/healthz`` served by the
  same server in the same minute (so the figures travel between machines better than raw numbers);
* PDF rendering, cold and cached;
* renewals per second in-process, and with 1 and 4 worker processes (4 on PostgreSQL only).

The HTTP and process helpers here are shared with the load test (``portal/loadtest.py``).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import event

from .auth.passwords import hash_password
from .billing.invoices import build_subscription_invoice, issue_invoice, mark_paid
from .billing.dunning import RetryPolicy
from .billing.renewals import run_renewals
from .billing.seller import Seller
from .config import load_settings
from .db import Database
from .models import Account, Invoice, Plan, SandboxObject, Subscription, User
from .models import PaymentMethod as Card
from .payments.sandbox_gateway import SandboxGateway

PASSWORD = "bench-password"
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _account(session, name: str, email: str, password_hash: str) -> Account:
    account = Account(name=name, billing_email=f"billing+{email}", address_line1="1 Main St", city="Boston",
                      postal_code="02101", region="MA", country="US")
    session.add(account)
    session.flush()
    session.add(User(account_id=account.id, email=email, password_hash=password_hash))
    return account


def _sandbox_card(session, account: Account, n: int, *, default: bool) -> Card:
    """A saved test card written straight into the sandbox's books (bench seeding only: thousands of
    cards through the setup-intent flow would measure seeding, not the portal)."""
    customer_id, pm_id = f"cus_sbx_bench{account.id}", f"pm_sbx_bench{account.id}_{n}"
    if account.processor_customer_id is None:
        session.add(SandboxObject(id=customer_id, kind="customer",
                                  data={"email": account.billing_email, "name": account.name,
                                        "account_id": account.id, "default_payment_method": pm_id}))
        account.processor_customer_id = customer_id
    session.add(SandboxObject(id=pm_id, kind="payment_method",
                              data={"customer": customer_id, "brand": "visa", "last4": f"{4242 + n:04d}"[-4:],
                                    "exp_month": 12, "exp_year": 2031, "name": "Bench", "charge": "ok",
                                    "detached": False}))
    card = Card(account_id=account.id, processor_id=pm_id, brand="visa", last4=f"{4242 + n:04d}"[-4:], exp_month=12,
                exp_year=2031, cardholder_name="Bench", is_default=default)
    session.add(card)
    return card


def seed_invoices(session, seller: Seller, account: Account, plan: Plan, count: int) -> None:
    # The history is in the past; the live period ends far ahead so the renewal figure counts only its own.
    sub = Subscription(account_id=account.id, plan=plan, status="active", current_period_start=T0,
                       current_period_end=datetime(2099, 1, 1, tzinfo=timezone.utc))
    session.add(sub)
    session.flush()
    for i in range(count):
        start = T0 + timedelta(days=i)
        invoice = build_subscription_invoice(session, account, sub, plan, period_start=start,
                                             period_end=start + timedelta(days=30), seller=seller, now=start)
        issue_invoice(session, invoice, account, seller, now=start)
        mark_paid(invoice, amount_cents=invoice.total_cents, now=start, payment_method_label="Visa •••• 4242",
                  transaction_id=f"ch_bench_{i}")
    session.commit()


def count_page_queries(app, database: Database, email: str) -> tuple[int, int]:
    """SQL statements and bytes for one logged-in GET /billing."""
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="', 1)[1].split('"', 1)[0]
    client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    client.get("/billing")  # warm caches (templates, seller)
    statements: list[str] = []
    listener = lambda conn, cursor, statement, *a: statements.append(statement)  # noqa: E731
    event.listen(database.engine, "before_cursor_execute", listener)
    try:
        response = client.get("/billing")
    finally:
        event.remove(database.engine, "before_cursor_execute", listener)
    assert response.status_code == 200, response.status_code
    return len(statements), len(response.get_data())


def measure_pdf(database: Database, invoice_ids: list[int]) -> tuple[float, float]:
    from .documents.pdf import invoice_pdf, render_invoice_pdf

    cold, cached = [], []
    with database.session() as session:
        for invoice_id in invoice_ids:
            invoice = session.get(Invoice, invoice_id)
            started = time.perf_counter()
            render_invoice_pdf(invoice)
            cold.append((time.perf_counter() - started) * 1000)
        for invoice_id in invoice_ids:
            invoice_pdf(session, session.get(Invoice, invoice_id), now=T0)  # fill the cache
        session.commit()
        for invoice_id in invoice_ids:
            started = time.perf_counter()
            invoice_pdf(session, session.get(Invoice, invoice_id), now=T0)
            cached.append((time.perf_counter() - started) * 1000)
    return statistics.median(cold), statistics.median(cached)


def measure_renewals(database: Database, seller: Seller, plan: Plan, count: int) -> float:
    gateway = SandboxGateway(database)
    password = hash_password(PASSWORD)
    end = datetime(2026, 12, 1, tzinfo=timezone.utc)
    with database.session() as session:
        plan = session.merge(plan)
        for i in range(count):
            account = _account(session, f"Renewal {i}", f"renew{i}@bench.example", password)
            _sandbox_card(session, account, 0, default=True)
            session.add(Subscription(account_id=account.id, plan=plan, status="active",
                                     current_period_start=end - timedelta(days=30), current_period_end=end))
        session.commit()
    stats = run_renewals(database, gateway, seller, now=end + timedelta(hours=1),
                         policy=RetryPolicy())  # every card succeeds: the schedule is never read
    if stats.invoiced != count or stats.paid != count:
        raise RuntimeError(f"expected {count} paid renewals, got {stats}")
    return stats.invoiced / stats.seconds


# --- servers, databases and processes shared with the load test ------------------------------------

WRK = shutil.which("wrk")
SERVER_SECRET = "bench-" + secrets.token_hex(16)


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


def _stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
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
def gunicorn_server(database_url: str, workdir: Path, *, workers: int = 4, env: dict | None = None):
    """``gunicorn -w N 'portal.cli:app_from_environment()'`` on a free loopback port; yields its base URL
    once /healthz answers, and always stops it (with its workers) afterwards."""
    port = free_port()
    log_path = workdir / f"gunicorn-{port}.log"
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
               "--timeout", "120", "--graceful-timeout", "5", "--error-logfile", str(log_path),
               "portal.cli:app_from_environment()"]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, env=env or portal_env(database_url, workdir), cwd=workdir,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_health(base_url, process, log_path)
        yield base_url
    finally:
        _stop_process(process)


def _wait_for_health(base_url: str, process: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            status, _, _ = http_request(base_url, "GET", "/healthz", timeout=2)
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not answer /healthz within {timeout:.0f}s:\n{_tail(log_path)}")
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


# --- a minimal HTTP client for set-up steps (the load itself comes from wrk or aiohttp) ------------

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
CARD_ID_RE = re.compile(r'<li class="card[^"]*" id="card-(\d+)"')
SESSION_COOKIE = "portal_session"


def http_request(base_url: str, method: str, path: str, *, cookies: dict | None = None, data: dict | None = None,
                 headers: dict | None = None, timeout: float = 30) -> tuple[int, dict, bytes]:
    """One request without following redirects; Set-Cookie values are merged into ``cookies``."""
    import http.client
    from http.cookies import SimpleCookie
    from urllib.parse import urlencode, urlsplit

    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        sent = dict(headers or {})
        if cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        body = None
        if data is not None:
            body = urlencode(data)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        content = response.read()
        if cookies is not None:
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    cookies[name] = morsel.value
        return response.status, dict(response.headers), content
    finally:
        conn.close()


def http_login(base_url: str, email: str, password: str = PASSWORD) -> tuple[dict, str, str]:
    """Log in like a browser; returns the cookies, the CSRF token and the Billing details page."""
    cookies: dict = {}
    _, _, page = http_request(base_url, "GET", "/login", cookies=cookies)
    token = CSRF_RE.search(page.decode()).group(1)
    status, _, _ = http_request(base_url, "POST", "/login", cookies=cookies,
                                data={"email": email, "password": password, "csrf_token": token})
    if status != 303:
        raise RuntimeError(f"login as {email} answered {status}")
    status, _, page = http_request(base_url, "GET", "/billing", cookies=cookies)
    if status != 200:
        raise RuntimeError(f"GET /billing answered {status}")
    html = page.decode()
    return cookies, CSRF_RE.search(html).group(1), html


# --- wrk ------------------------------------------------------------------------------------------

WRK_SCRIPT = """
-- Generated by portal/bench.py: the request to send, plus status classes counted across threads.
local paths = {%(paths)s}
local method = "%(method)s"
local body = %(body)s
%(headers)s
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  n = 0; s2 = 0; s3 = 0; s4 = 0; s5 = 0
end

function request()
  n = n + 1
  return wrk.format(method, paths[(n %% #paths) + 1], nil, body)
end

function response(status, headers, body)
  if status >= 500 then s5 = s5 + 1
  elseif status >= 400 then s4 = s4 + 1
  elseif status >= 300 then s3 = s3 + 1
  else s2 = s2 + 1 end
end

function done(summary, latency, requests)
  local t = {0, 0, 0, 0}
  for _, thread in ipairs(threads) do
    t[1] = t[1] + thread:get("s2"); t[2] = t[2] + thread:get("s3")
    t[3] = t[3] + thread:get("s4"); t[4] = t[4] + thread:get("s5")
  end
  io.write(string.format("STATUS %%d %%d %%d %%d\\n", t[1], t[2], t[3], t[4]))
end
"""


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for these characters


def write_wrk_script(path: Path, *, paths: list[str], method: str = "GET", body: str | None = None,
                     headers: dict | None = None) -> Path:
    header_lines = "\n".join(f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in (headers or {}).items())
    path.write_text(WRK_SCRIPT % {"paths": ", ".join(_lua_string(p) for p in paths), "method": method,
                                  "body": _lua_string(body) if body is not None else "nil",
                                  "headers": header_lines})
    return path


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict:
    """Requests/sec, the latency distribution and the error counts from ``wrk --latency`` output."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if not rps:
        raise RuntimeError(f"wrk output without Requests/sec:\n{output}")
    percentiles = {int(p): _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.M)}
    total = re.search(r"^\s+(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read", output, re.M)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    statuses = re.search(r"^STATUS (\d+) (\d+) (\d+) (\d+)", output, re.M)
    result = {
        "rps": round(float(rps.group(1)), 1),
        "p50_ms": round(percentiles[50], 2),
        "p75_ms": round(percentiles[75], 2),
        "p90_ms": round(percentiles[90], 2),
        "p99_ms": round(percentiles[99], 2),
        "requests": int(total.group(1)) if total else None,
        "seconds": round(_ms(total.group(2)) / 1000, 2) if total else None,
        "socket_errors": sum(int(g) for g in socket_errors.groups()) if socket_errors else 0,
    }
    if statuses:
        result["status_2xx"], result["status_3xx"], result["status_4xx"], result["status_5xx"] = map(int, statuses.groups())
    return result


def run_wrk(url: str, script: Path, *, seconds: float, connections: int = 16, threads: int = 2) -> dict:
    if WRK is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    command = [WRK, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
               "--timeout", "10s", "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def measure_http(database_url: str, workdir: Path, *, email: str, seconds: float = 8, workers: int = 4,
                 connections: int = 16, warmup: float = 2) -> dict:
    """Requests per second and latency of /healthz, Billing details and the set-default partial, on one
    gunicorn server, one after the other (each after a short warm-up, so every worker has compiled its
    templates and opened its database connection)."""
    with gunicorn_server(database_url, workdir, workers=workers) as base_url:
        cookies, token, page = http_login(base_url, email)
        card_ids = CARD_ID_RE.findall(page)
        if len(card_ids) < 2:
            raise RuntimeError(f"{email} needs two cards to alternate between, has {len(card_ids)}")
        # Two non-default cards (the page lists the default first), set default in turn.
        first, second = card_ids[1], card_ids[2] if len(card_ids) > 2 else card_ids[0]
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        status, _, partial = http_request(base_url, "POST", f"/billing/cards/{first}/default", cookies=cookies,
                                          data={"csrf_token": token}, headers={"HX-Request": "true"})
        if status != 200:
            raise RuntimeError(f"set-default partial answered {status}")
        from urllib.parse import quote

        scripts = {
            "healthz": write_wrk_script(workdir / "healthz.lua", paths=["/healthz"]),
            "billing_page": write_wrk_script(workdir / "page.lua", paths=["/billing"], headers={"Cookie": cookie}),
            "set_default_partial": write_wrk_script(
                workdir / "default.lua", method="POST", body=f"csrf_token={quote(token, safe='')}",
                paths=[f"/billing/cards/{second}/default", f"/billing/cards/{first}/default"],
                headers={"Cookie": cookie, "HX-Request": "true", "Content-Type": "application/x-www-form-urlencoded"}),
        }
        results: dict = {}
        for name, script in scripts.items():
            if warmup:
                run_wrk(base_url + "/", script, seconds=warmup, connections=connections)
            results[name] = run_wrk(base_url + "/", script, seconds=seconds, connections=connections)
    base = results["healthz"]
    for name in ("billing_page", "set_default_partial"):
        figures = results[name]
        figures["rps_ratio_to_healthz"] = round(figures["rps"] / base["rps"], 4) if base["rps"] else None
        figures["p50_ratio_to_healthz"] = round(figures["p50_ms"] / base["p50_ms"], 1) if base["p50_ms"] else None
        figures["p99_ratio_to_healthz"] = round(figures["p99_ms"] / base["p99_ms"], 1) if base["p99_ms"] else None
    return {
        "server": f"gunicorn -w {workers} (sync workers), 127.0.0.1",
        "load": f"wrk -t2 -c{connections} -d{max(1, round(seconds))}s --latency (after a {warmup:g}s warm-up)",
        "page_bytes": len(page.encode()),
        "partial_bytes": len(partial),
        **results,
    }


# --- renewals in separate worker processes ---------------------------------------------------------

RENEWAL_WORKER = """
import json, sys, time
from datetime import datetime
from portal.billing.dunning import RetryPolicy
from portal.billing.renewals import run_renewals
from portal.cli import _services

settings, database, gateway, seller = _services()
with database.engine.connect():
    pass  # connect before the start signal, so every process starts work at the same moment
print("ready", flush=True)
sys.stdin.readline()
started = time.time()
stats = run_renewals(database, gateway, seller, now=datetime.fromisoformat(sys.argv[1]), batch=int(sys.argv[2]),
                     policy=RetryPolicy(settings.retry_schedule))
print(json.dumps({"started": started, "ended": time.time(), "invoiced": stats.invoiced, "paid": stats.paid}), flush=True)
"""


def seed_due_subscriptions(database: Database, plan: Plan, count: int, *, tag: str, end: datetime) -> None:
    password = hash_password(PASSWORD)
    with database.session() as session:
        plan = session.merge(plan)
        for i in range(count):
            account = _account(session, f"Renewal {tag} {i}", f"renew-{tag}-{i}@bench.example", password)
            _sandbox_card(session, account, 0, default=True)
            session.add(Subscription(account_id=account.id, plan=plan, status="active",
                                     current_period_start=end - timedelta(days=30), current_period_end=end))
        session.commit()


def measure_renewal_workers(database: Database, workdir: Path, plan: Plan, count: int, *, workers: int,
                            batch: int = 50) -> float:
    """Renewals per second of ``workers`` processes sharing ``count`` due subscriptions (what several
    ``portal worker`` processes do). Each process starts when all are connected; the time is from the
    first start to the last finish."""
    end = datetime(2026, 12, 1, tzinfo=timezone.utc)
    seed_due_subscriptions(database, plan, count, tag=f"w{workers}", end=end)
    now = (end + timedelta(hours=1)).isoformat()
    env = portal_env(database.url, workdir)
    processes = [subprocess.Popen([sys.executable, "-c", RENEWAL_WORKER, now, str(batch)], env=env, cwd=workdir,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True)
                 for _ in range(workers)]
    try:
        for process in processes:
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError(f"renewal worker did not start: {process.stderr.read()[-2000:]}")
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=600) for process in processes]
    finally:
        for process in processes:
            _stop_process(process, timeout=1)
    if any(p.returncode != 0 for p in processes):
        raise RuntimeError(f"renewal worker failed: {[err[-2000:] for _, err in outputs]}")
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    invoiced = sum(r["invoiced"] for r in results)
    paid = sum(r["paid"] for r in results)
    if invoiced != count or paid != count:
        raise RuntimeError(f"expected {count} paid renewals from {workers} workers, got {results}")
    return invoiced / (max(r["ended"] for r in results) - min(r["started"] for r in results))


# --- the report -----------------------------------------------------------------------------------

def run(*, database_url: str | None = None, renewals: int = 1000, pdf_samples: int = 15, http: bool = True,
        http_seconds: float = 8, web_workers: int = 4, connections: int = 16, postgres_url: str | None = None,
        worker_renewals: bool = True) -> dict:
    from . import create_app

    workdir = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    try:
        with bench_database(database_url, postgres_url, workdir) as url:
            return _run(url, workdir, renewals=renewals, pdf_samples=pdf_samples, http=http,
                        http_seconds=http_seconds, web_workers=web_workers, connections=connections,
                        worker_renewals=worker_renewals, create_app=create_app)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(database_url: str, workdir: Path, *, renewals: int, pdf_samples: int, http: bool, http_seconds: float,
         web_workers: int, connections: int, worker_renewals: bool, create_app) -> dict:
    settings = load_settings(demo=True, overrides={"instance_path": workdir, "secret_key": "bench",
                                                   "database_url": database_url})
    database = Database(settings.database_url)
    try:
        database.upgrade()
        seller = Seller.from_settings(settings)
        app = create_app(replace(settings, testing=True), database=database)
        password = hash_password(PASSWORD)
        with database.session() as session:
            plan = Plan(code="bench-monthly", name="Pro", interval="month", price_cents=2000, currency="USD")
            session.add(plan)
            small = _account(session, "Five Invoices Inc.", "five@bench.example", password)
            large = _account(session, "Two Thousand Invoices Inc.", "many@bench.example", password)
            for n in range(10):
                _sandbox_card(session, large, n, default=n == 0)
            _sandbox_card(session, small, 0, default=True)
            session.commit()
            seed_invoices(session, seller, small, plan, 5)
            seed_invoices(session, seller, large, plan, 2000)
            sample_ids = [i.id for i in session.query(Invoice).filter_by(account_id=small.id)]
            sample_ids += [i.id for i in session.query(Invoice).filter_by(account_id=large.id).limit(pdf_samples - 5)]
            session.expunge(plan)
        q5, _ = count_page_queries(app, database, "five@bench.example")
        q2000, bytes2000 = count_page_queries(app, database, "many@bench.example")
        report: dict = {"database": database.engine.dialect.name, "cpu_count": os.cpu_count()}
        if http and WRK is None:
            report["http"] = None
            report["http_skipped"] = "wrk is not installed (apt-get install wrk)"
        elif http:
            report["http"] = measure_http(database_url, workdir, email="many@bench.example", seconds=http_seconds,
                                          workers=web_workers, connections=connections)
        pdf_cold, pdf_cached = measure_pdf(database, sample_ids)
        rate = measure_renewals(database, seller, plan, renewals)
        report.update({
            "queries_billing_page_5": q5,
            "queries_billing_page_2000": q2000,
            "billing_page_bytes_2000": bytes2000,
            "pdf_ms_p50": round(pdf_cold, 1),
            "pdf_cached_ms_p50": round(pdf_cached, 2),
            "renewals_per_s": round(rate, 1),
            "renewals_measured": renewals,
        })
        if report.get("http"):
            report["set_default_partial_bytes"] = report["http"]["partial_bytes"]
        if worker_renewals:
            report["renewals_per_s_1_worker"] = round(measure_renewal_workers(database, workdir, plan, renewals,
                                                                              workers=1), 1)
            if database.is_sqlite:
                report["renewals_per_s_4_workers"] = None
                report["renewals_4_workers_note"] = ("not measured on SQLite: it has one writer at a time, so the "
                                                     "portal runs one worker there; use PostgreSQL for several")
            else:
                report["renewals_per_s_4_workers"] = round(measure_renewal_workers(database, workdir, plan, renewals,
                                                                                   workers=4), 1)
        return report
    finally:
        database.dispose()


def format_table(report: dict) -> str:
    """The report as a short table for people; the JSON is the record."""
    rows = [("database", report["database"])]
    http = report.get("http")
    if http:
        rows.append(("HTTP server / load", f"{http['server']}; {http['load']}"))
        for key, label in (("healthz", "/healthz"), ("billing_page", "GET /billing (2,000 invoices, 10 cards)"),
                           ("set_default_partial", "POST set-default, HTMX partial")):
            f = http[key]
            ratio = f" ({f['rps_ratio_to_healthz']:.1%} of /healthz)" if "rps_ratio_to_healthz" in f else ""
            errors = f.get("status_4xx", 0) + f.get("status_5xx", 0) + f["socket_errors"]
            rows.append((label, f"{f['rps']:.0f} req/s{ratio}, p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms"
                                + (f", {errors} errors" if errors else "")))
        rows.append(("response bytes", f"page {http['page_bytes']:,}, partial {http['partial_bytes']:,}"))
    elif "http_skipped" in report:
        rows.append(("HTTP", f"skipped: {report['http_skipped']}"))
    rows += [
        ("SQL statements per page", f"{report['queries_billing_page_5']} (5 invoices), "
                                    f"{report['queries_billing_page_2000']} (2,000 invoices)"),
        ("PDF p50", f"{report['pdf_ms_p50']} ms cold, {report['pdf_cached_ms_p50']} ms cached"),
        ("renewals/s", f"{report['renewals_per_s']} in-process ({report['renewals_measured']} due)"),
    ]
    if "renewals_per_s_1_worker" in report:
        four = report["renewals_per_s_4_workers"]
        rows.append(("renewals/s, processes", f"1 worker {report['renewals_per_s_1_worker']}, "
                                              f"4 workers {four if four is not None else 'n/a (SQLite)'}"))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def write_report(report: dict, table: str, json_path: str | None) -> None:
    """JSON to the file (or stdout), the human table to stderr, so the JSON can be piped on."""
    text = json.dumps(report, indent=2)
    if json_path:
        Path(json_path).write_text(text + "\n")
    else:
        print(text)
    print(table, file=sys.stderr)


def main(database_url: str | None = None, renewals: int = 1000, *, json_path: str | None = None,
         **options) -> dict:
    report = run(database_url=database_url, renewals=renewals, **options)
    write_report(report, format_table(report), json_path)
    return report
