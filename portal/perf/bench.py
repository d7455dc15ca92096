"""``portal bench``: the project's performance report, measured on a fresh database.

Seeding goes through the same services as production (invoices through build/issue), so the figures
describe the code that runs, not a shortcut. One run measures, side by side:

* SQL statements and bytes of the Billing details page (5 and 2,000 invoices);
* requests per second and p50/p99 latency of Billing details and of the HTMX set-default partial, served
  by gunicorn with several workers and loaded by wrk with a logged-in cookie, each also as a ratio to
  ``/healthz`` served by the same server in the same minute (so the figures travel between machines better
  than raw numbers), and to two anchors measured in the same run: a bare Flask app (the framework's floor)
  and the portal serving a fixed response of the page's size (``perf.anchors``);
* how busy the machine was: its load average before and after, and its CPU count;
* PDF rendering, cold and cached, and the documents' sizes: Latin-script invoices, and beside them
  invoices for a customer with a Chinese name (the only ones that embed the CJK face);
* renewals per second in-process (also per second of CPU time, and SQL statements per renewal), and with
  1 and 4 worker processes (4 on PostgreSQL only); ``--only renewals`` measures these alone.

This module only runs the steps; seeding is in ``perf.seed``, the figures in ``perf.measure``, the
servers in ``perf.servers`` and the report in ``perf.report``.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from ..auth.passwords import hash_password
from ..billing.invoicing.seller import Seller
from ..config import load_settings
from ..db import Database
from ..models import Invoice, Plan
from .measure import count_page_queries, measure_http, measure_pdf, measure_renewal_workers, measure_renewals
from .report import format_table, write_report
from .seed import PASSWORD, add_account, add_sandbox_card, seed_invoices
from .servers import bench_database
from .wrk import WRK

def run(*, database_url: str | None = None, renewals: int = 1000, pdf_samples: int = 15, http: bool = True,
        http_seconds: float = 8, web_workers: int = 4, connections: int = 16, postgres_url: str | None = None,
        worker_renewals: bool = True, only: str | None = None) -> dict:
    from .. import create_app

    workdir = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    try:
        with bench_database(database_url, postgres_url, workdir) as url:
            if only == "renewals":
                return _run_renewals_only(url, workdir, renewals=renewals, worker_renewals=worker_renewals)
            return _run(url, workdir, renewals=renewals, pdf_samples=pdf_samples, http=http,
                        http_seconds=http_seconds, web_workers=web_workers, connections=connections,
                        worker_renewals=worker_renewals, create_app=create_app)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _fresh_database(database_url: str, workdir: Path) -> tuple:
    """The demo's settings on this (empty) database, migrated: what every bench run starts from."""
    settings = load_settings(demo=True, overrides={"instance_path": workdir, "secret_key": "bench",
                                                   "database_url": database_url})
    database = Database(settings.database_url)
    database.upgrade()
    return settings, database


def _run(database_url: str, workdir: Path, *, renewals: int, pdf_samples: int, http: bool, http_seconds: float,
         web_workers: int, connections: int, worker_renewals: bool, create_app) -> dict:
    settings, database = _fresh_database(database_url, workdir)
    try:
        seller = Seller.from_settings(settings)
        app = create_app(replace(settings, testing=True), database=database)
        password = hash_password(PASSWORD)
        with database.session() as session:
            plan = Plan(code="bench-monthly", name="Pro", interval="month", price_cents=2000, currency="USD")
            session.add(plan)
            small = add_account(session, "Five Invoices Inc.", "five@bench.example", password)
            large = add_account(session, "Two Thousand Invoices Inc.", "many@bench.example", password)
            # Outside the page figures: only its PDFs are measured.
            chinese = add_account(session, "李雷 Trading Ltd.", "cjk@bench.example", password)
            for n in range(10):
                add_sandbox_card(session, large, n, default=n == 0)
            add_sandbox_card(session, small, 0, default=True)
            session.commit()
            seed_invoices(session, seller, small, plan, 5)
            seed_invoices(session, seller, large, plan, 2000)
            seed_invoices(session, seller, chinese, plan, pdf_samples)
            sample_ids = [i.id for i in session.query(Invoice).filter_by(account_id=small.id)]
            sample_ids += [i.id for i in session.query(Invoice).filter_by(account_id=large.id).limit(pdf_samples - 5)]
            cjk_sample_ids = [i.id for i in session.query(Invoice).filter_by(account_id=chinese.id)]
            session.expunge(plan)
        loadavg_before = os.getloadavg()
        q5, _ = count_page_queries(app, database, "five@bench.example")
        q2000, bytes2000 = count_page_queries(app, database, "many@bench.example")
        report: dict = {"database": database.engine.dialect.name, "cpu_count": os.cpu_count()}
        # How busy the machine was: the ratios only mean something when every figure shared the same minute.
        report["machine"] = {"cpu_count": os.cpu_count(), "loadavg_before": [round(v, 2) for v in loadavg_before]}
        if http and WRK is None:
            report["http"] = None
            report["http_skipped"] = "wrk is not installed (apt-get install wrk)"
        elif http:
            report["http"] = measure_http(database_url, workdir, email="many@bench.example", seconds=http_seconds,
                                          workers=web_workers, connections=connections, static_bytes=bytes2000)
        pdf = measure_pdf(database, sample_ids, cjk_sample_ids)
        report.update(_renewal_figures(database, workdir, seller, plan, renewals, worker_renewals=worker_renewals))
        report.update({
            "queries_billing_page_5": q5,
            "queries_billing_page_2000": q2000,
            "billing_page_bytes_2000": bytes2000,
            "pdf_ms_p50": round(pdf["pdf_ms_p50"], 1),
            "pdf_ms_p50_cjk": round(pdf["pdf_ms_p50_cjk"], 1),
            "pdf_cached_ms_p50": round(pdf["pdf_cached_ms_p50"], 2),
            "pdf_bytes": pdf["pdf_bytes"],
            "pdf_bytes_cjk": pdf["pdf_bytes_cjk"],
        })
        if report.get("http"):
            report["set_default_partial_bytes"] = report["http"]["partial_bytes"]
        report["machine"]["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
        return report
    finally:
        database.dispose()


def _run_renewals_only(database_url: str, workdir: Path, *, renewals: int, worker_renewals: bool) -> dict:
    """``--only renewals``: the renewal figures alone, on a database with nothing else seeded."""
    settings, database = _fresh_database(database_url, workdir)
    try:
        seller = Seller.from_settings(settings)
        with database.session() as session:
            plan = Plan(code="bench-monthly", name="Pro", interval="month", price_cents=2000, currency="USD")
            session.add(plan)
            session.commit()
            session.expunge(plan)
        report: dict = {"database": database.engine.dialect.name, "cpu_count": os.cpu_count(), "only": "renewals",
                        "machine": {"cpu_count": os.cpu_count(),
                                    "loadavg_before": [round(v, 2) for v in os.getloadavg()]}}
        report.update(_renewal_figures(database, workdir, seller, plan, renewals, worker_renewals=worker_renewals))
        report["machine"]["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
        return report
    finally:
        database.dispose()


def _renewal_figures(database: Database, workdir: Path, seller: Seller, plan: Plan, renewals: int, *,
                     worker_renewals: bool) -> dict:
    in_process = measure_renewals(database, seller, plan, renewals)
    figures = {
        "renewals_per_s": round(in_process["per_s"], 1),
        # Beside it, as the machine is often shared: the same pass per second of its own CPU time.
        "renewals_per_cpu_s": round(in_process["per_cpu_s"], 1) if in_process["per_cpu_s"] else None,
        "renewal_statements_per_renewal": round(in_process["statements_per_renewal"], 2),
        "renewals_measured": renewals,
    }
    if worker_renewals:
        figures["renewals_per_s_1_worker"] = round(measure_renewal_workers(database, workdir, plan, renewals,
                                                                           workers=1), 1)
        if database.is_sqlite:
            figures["renewals_per_s_4_workers"] = None
            figures["renewals_4_workers_note"] = ("not measured on SQLite: it has one writer at a time, so the "
                                                  "portal runs one worker there; use PostgreSQL for several")
        else:
            figures["renewals_per_s_4_workers"] = round(measure_renewal_workers(database, workdir, plan, renewals,
                                                                                workers=4), 1)
            one = figures["renewals_per_s_1_worker"]
            figures["renewals_4_workers_ratio_to_1"] = round(figures["renewals_per_s_4_workers"] / one, 2) if one else None
    return figures



def main(database_url: str | None = None, renewals: int = 1000, *, json_path: str | None = None,
         **options) -> dict:
    report = run(database_url=database_url, renewals=renewals, **options)
    write_report(report, format_table(report), json_path)
    return report
