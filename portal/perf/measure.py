"""The figures of ``portal bench``, each measured on a database the caller has seeded: SQL statements per
page, HTTP throughput and latency under wrk, PDF rendering, and renewals in-process and in worker processes."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import event

from ..billing.collecting.dunning import RetryPolicy
from ..billing.subscriptions.renewals import run_renewals
from ..billing.invoicing.seller import Seller
from ..db import Database
from ..models import Invoice, Plan
from ..payments.sandbox import SandboxGateway
from .client import CARD_ID_RE, http_login, http_request
from .seed import PASSWORD, T0, seed_due_subscriptions
from .servers import gunicorn_server, portal_env, stop_process
from .wrk import run_wrk, write_wrk_script

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


def measure_pdf(database: Database, invoice_ids: list[int], cjk_invoice_ids: list[int] = ()) -> dict:
    """Invoice PDF figures: the p50 of the first render of each invoice in a warm process (its fonts
    registered and its templates compiled by one render of another invoice first, none of these invoices
    rendered before), for Latin-script invoices and for invoices whose customer has a Chinese name; their
    median sizes; and the p50 of serving a stored copy."""
    from ..documents.pdf import invoice_pdf, render_invoice_pdf

    def cold(ids: list[int]) -> tuple[float, int]:
        times, sizes = [], []
        for invoice_id in ids:
            invoice = session.get(Invoice, invoice_id)
            started = time.perf_counter()
            content = render_invoice_pdf(invoice)
            times.append((time.perf_counter() - started) * 1000)
            sizes.append(len(content))
        return statistics.median(times), int(statistics.median(sizes))

    figures: dict = {}
    with database.session() as session:
        # The warm-up: the first of each list, which is then not measured.
        for ids in (invoice_ids, cjk_invoice_ids):
            if ids:
                render_invoice_pdf(session.get(Invoice, ids[0]))
        figures["pdf_ms_p50"], figures["pdf_bytes"] = cold(invoice_ids[1:])
        if len(cjk_invoice_ids) > 1:
            figures["pdf_ms_p50_cjk"], figures["pdf_bytes_cjk"] = cold(cjk_invoice_ids[1:])
        for invoice_id in invoice_ids:
            invoice_pdf(session, session.get(Invoice, invoice_id), now=T0)  # fill the cache
        session.commit()
        cached = []
        for invoice_id in invoice_ids:
            started = time.perf_counter()
            invoice_pdf(session, session.get(Invoice, invoice_id), now=T0)
            cached.append((time.perf_counter() - started) * 1000)
        figures["pdf_cached_ms_p50"] = statistics.median(cached)
    return figures


def measure_renewals(database: Database, seller: Seller, plan: Plan, count: int) -> dict:
    """One renewal pass in this process over ``count`` due subscriptions: renewals per second of wall time,
    per second of this process's CPU time (what a busy machine's other jobs take away shows as the gap
    between the two), and SQL statements per renewal (the sandbox processor's own included)."""
    end = datetime(2026, 12, 1, tzinfo=timezone.utc)
    seed_due_subscriptions(database, plan, count, tag="in-process", end=end)
    now = end + timedelta(hours=1)
    gateway = SandboxGateway(database, clock=lambda: now)
    statements = [0]

    def counted(*_):
        statements[0] += 1

    event.listen(database.engine, "before_cursor_execute", counted)
    cpu = time.process_time()
    try:
        stats = run_renewals(database, gateway, seller, now=now,
                             policy=RetryPolicy())  # every card succeeds: the schedule is never read
    finally:
        cpu = time.process_time() - cpu
        event.remove(database.engine, "before_cursor_execute", counted)
    if stats.invoiced != count or stats.paid != count:
        raise RuntimeError(f"expected {count} paid renewals, got {stats}")
    return {"per_s": stats.invoiced / stats.seconds, "per_cpu_s": stats.invoiced / cpu if cpu else None,
            "statements_per_renewal": statements[0] / count}


def measure_http(database_url: str, workdir: Path, *, email: str, seconds: float = 8, workers: int = 4,
                 connections: int = 16, warmup: float = 2, static_bytes: int = 30_000) -> dict:
    """Requests per second and latency of /healthz, Billing details and the set-default partial, on one
    gunicorn server, one after the other (each after a short warm-up, so every worker has compiled its
    templates and opened its database connection); beside them, in the same run and under the same gunicorn
    and wrk settings, the two anchors of ``perf.anchors``: a bare Flask app (the floor) and the portal
    serving ``static_bytes`` of fixed HTML. Every portal figure but /healthz is measured logged in (the
    session cookie sent with each request), as a customer's requests are."""
    from urllib.parse import quote

    from .anchors import FLOOR_APP, STATIC_PATH, static_page_app

    def load(base_url: str, script: Path) -> dict:
        if warmup:
            run_wrk(base_url + "/", script, seconds=warmup, connections=connections)
        return run_wrk(base_url + "/", script, seconds=seconds, connections=connections)

    results: dict = {}
    loadavg_before = os.getloadavg()
    with gunicorn_server(database_url, workdir, workers=workers, app=FLOOR_APP,
                         ready_path="/") as base_url:
        results["flask_floor"] = load(base_url, write_wrk_script(workdir / "floor.lua", paths=["/"]))
    with gunicorn_server(database_url, workdir, workers=workers,
                         app=static_page_app(static_bytes)) as base_url:
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
        status, _, static = http_request(base_url, "GET", STATIC_PATH, cookies=cookies)
        if status != 200:
            raise RuntimeError(f"the static page answered {status}")
        scripts = {
            "healthz": write_wrk_script(workdir / "healthz.lua", paths=["/healthz"], headers={"Cookie": cookie}),
            "static_page": write_wrk_script(workdir / "static.lua", paths=[STATIC_PATH], headers={"Cookie": cookie}),
            "billing_page": write_wrk_script(workdir / "page.lua", paths=["/billing"], headers={"Cookie": cookie}),
            "set_default_partial": write_wrk_script(
                workdir / "default.lua", method="POST", body=f"csrf_token={quote(token, safe='')}",
                paths=[f"/billing/cards/{second}/default", f"/billing/cards/{first}/default"],
                headers={"Cookie": cookie, "HX-Request": "true", "Content-Type": "application/x-www-form-urlencoded"}),
        }
        for name, script in scripts.items():
            results[name] = load(base_url, script)
    loadavg_after = os.getloadavg()
    base, floor = results["healthz"], results["flask_floor"]
    for name in ("static_page", "billing_page", "set_default_partial"):
        figures = results[name]
        figures["rps_ratio_to_healthz"] = _ratio(figures["rps"], base["rps"], 4)
        figures["p50_ratio_to_healthz"] = _ratio(figures["p50_ms"], base["p50_ms"], 1)
        figures["p99_ratio_to_healthz"] = _ratio(figures["p99_ms"], base["p99_ms"], 1)
        figures["rps_ratio_to_floor"] = _ratio(figures["rps"], floor["rps"], 4)
        figures["rps_ratio_to_static_page"] = _ratio(figures["rps"], results["static_page"]["rps"], 4)
    base["rps_ratio_to_floor"] = _ratio(base["rps"], floor["rps"], 4)
    return {
        "server": f"gunicorn -w {workers} (sync workers), 127.0.0.1",
        "load": f"wrk -t2 -c{connections} -d{max(1, round(seconds))}s --latency (after a {warmup:g}s warm-up)",
        "logged_in": True,  # every portal request carried the customer's session cookie, /healthz too
        "page_bytes": len(page.encode()),
        "partial_bytes": len(partial),
        "static_page_bytes": len(static),
        "loadavg_before": [round(v, 2) for v in loadavg_before],
        "loadavg_after": [round(v, 2) for v in loadavg_after],
        **results,
    }


def _ratio(value: float, base: float, digits: int) -> float | None:
    return round(value / base, digits) if base else None


# --- renewals in separate worker processes ---------------------------------------------------------

RENEWAL_WORKER = """
import json, sys, time
from datetime import datetime
from portal.billing.collecting.dunning import RetryPolicy
from portal.billing.subscriptions.renewals import run_renewals
from portal.cli import _services

now = datetime.fromisoformat(sys.argv[1])
settings, database, gateway, seller = _services(clock=lambda: now)
with database.engine.connect():
    pass  # connect before the start signal, so every process starts work at the same moment
print("ready", flush=True)
sys.stdin.readline()
started = time.time()
stats = run_renewals(database, gateway, seller, now=now, batch=int(sys.argv[2]),
                     policy=RetryPolicy(settings.retry_schedule))
print(json.dumps({"started": started, "ended": time.time(), "invoiced": stats.invoiced, "paid": stats.paid}), flush=True)
"""



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
            stop_process(process, timeout=1)
    if any(p.returncode != 0 for p in processes):
        raise RuntimeError(f"renewal worker failed: {[err[-2000:] for _, err in outputs]}")
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    invoiced = sum(r["invoiced"] for r in results)
    paid = sum(r["paid"] for r in results)
    if invoiced != count or paid != count:
        raise RuntimeError(f"expected {count} paid renewals from {workers} workers, got {results}")
    return invoiced / (max(r["ended"] for r in results) - min(r["started"] for r in results))

