"""Smoke test of the performance report's HTTP machinery and of the load test: a few seconds each, so the
real runs (minutes; see README "Performance") don't break unnoticed.

Runs on a database of its own: a temporary SQLite file, or with PORTAL_TEST_DATABASE_URL a throwaway
PostgreSQL database on that server (created and dropped here), never the suite's shared schema.
"""
from __future__ import annotations

import json

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from portal.perf import load, measure, report, seed, servers, wrk
from portal.auth.passwords import hash_password
from portal.billing.invoicing.seller import Seller
from portal.config import load_settings
from portal.db import Database
from portal.models import Plan

from ..helpers import OWN_PROCESSES

pytestmark = [pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"),
              OWN_PROCESSES]


@pytest.fixture
def workdir():
    path = Path(tempfile.mkdtemp(prefix="portal-bench-smoke-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server_url():
    """PostgreSQL server URL when the suite runs on PostgreSQL (the tests create their own database)."""
    return os.environ.get("PORTAL_TEST_DATABASE_URL") or None


def test_http_figures_have_rates_and_latencies_for_every_endpoint(workdir, server_url):
    with servers.bench_database(None, server_url, workdir) as url:
        database = Database(url)
        try:
            database.upgrade()
            settings = load_settings(demo=True, overrides={"instance_path": workdir, "database_url": url})
            with database.session() as session:
                plan = Plan(code="smoke", name="Pro", interval="month", price_cents=2000, currency="USD")
                session.add(plan)
                account = seed.add_account(session, "Smoke Inc.", "smoke@bench.example", hash_password(seed.PASSWORD))
                for n in range(3):
                    seed.add_sandbox_card(session, account, n, default=n == 0)
                session.commit()
                seed.seed_invoices(session, Seller.from_settings(settings), account, plan, 15)
            figures = measure.measure_http(url, workdir, email="smoke@bench.example", seconds=1, warmup=0,
                                           workers=2, connections=4)
        finally:
            database.dispose()

    # The report's shape and that every request succeeded; how many were made and how fast is what the
    # report is for, not something a test can assert on a shared machine.
    assert figures["page_bytes"] > 10_000 and 1_000 < figures["partial_bytes"] < figures["page_bytes"]
    for name in ("flask_floor", "healthz", "static_page", "billing_page", "set_default_partial"):
        result = figures[name]
        for key in ("rps", "p50_ms", "p75_ms", "p90_ms", "p99_ms", "seconds"):
            assert isinstance(result[key], (int, float)) and result[key] >= 0, (key, result)
        assert result["p99_ms"] >= result["p90_ms"] >= result["p75_ms"] >= result["p50_ms"], result
        assert result["requests"] >= 1 and result["status_2xx"] == result["requests"], result  # every answer a 2xx
        assert (result["status_3xx"], result["status_4xx"], result["status_5xx"]) == (0, 0, 0), result
        assert result["socket_errors"] == 0, result
    for name in ("static_page", "billing_page", "set_default_partial"):
        for key in ("rps_ratio_to_healthz", "p50_ratio_to_healthz", "p99_ratio_to_healthz", "rps_ratio_to_floor"):
            assert isinstance(figures[name][key], (int, float)), (name, key, figures[name])
    assert figures["logged_in"] is True and figures["static_page_bytes"] == 30_000
    assert len(figures["loadavg_before"]) == len(figures["loadavg_after"]) == 3
    table = report.format_table({"database": "x", "http": figures,
                                 "machine": {"cpu_count": 2, "loadavg_before": [1, 1, 1], "loadavg_after": [2, 2, 2]}, "queries_billing_page_5": 1,
                                 "queries_billing_page_2000": 1, "pdf_ms_p50": 1, "pdf_cached_ms_p50": 1,
                                 "renewals_per_s": 1, "renewals_measured": 1})
    assert "req/s" in table and "of the floor" in table and "load average 1.00 / 1.00 / 1.00 before" in table
    assert "logged-in" in table


def test_wrk_output_is_parsed_in_every_unit():
    output = """Running 8s test @ http://127.0.0.1:1/
  2 threads and 16 connections
  Latency Distribution
     50%  850.00us
     75%    1.20ms
     90%    2.00s
     99%    1.00m
  1000 requests in 8.00s, 1.00MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:    125.00
STATUS 990 0 4 6
"""
    parsed = wrk.parse_wrk(output)
    assert parsed["rps"] == 125.0
    assert (parsed["p50_ms"], parsed["p75_ms"], parsed["p90_ms"], parsed["p99_ms"]) == (0.85, 1.2, 2000.0, 60000.0)
    assert parsed["requests"] == 1000 and parsed["seconds"] == 8.0
    assert parsed["socket_errors"] == 3
    assert (parsed["status_2xx"], parsed["status_4xx"], parsed["status_5xx"]) == (990, 4, 6)


def test_a_short_load_test_passes_every_check(server_url):
    # On SQLite (one writer) the renewal worker alongside busy web processes only measures lock waits, and the
    # supported SQLite set-up is one process at a time anyway; the worker joins in on PostgreSQL.
    summary = load.run(postgres_url=server_url, users=4, duration=6, web_workers=2, think=0.3,
                       worker=server_url is not None)

    assert summary["passed"], json.dumps({k: v for k, v in summary["problems"].items() if v}, indent=1)
    assert all(summary["checks"].values())
    assert summary["status_5xx"] == 0 and summary["transport_errors"] == {}
    assert summary["requests"]["view"]["total"] >= 1
    for kind, figures in summary["requests"].items():
        assert all(code.startswith("2") for code in figures["by_status"]), (kind, figures)  # no non-2xx
        assert sum(figures["by_status"].values()) == figures["total"], (kind, figures)
        assert figures["p99_ms"] >= figures["p50_ms"], (kind, figures)
    assert summary["requests_total"] == sum(f["total"] for f in summary["requests"].values())
    assert summary["ledger"]["invoices"] >= 4 * seed.INVOICES_PER_ACCOUNT
    if server_url is not None:
        assert summary["worker"]["passes"] >= 1
