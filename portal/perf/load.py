"""``portal load``: many customers using Billing details at once, then proof that nothing was lost.

Each simulated user has an account of their own (a subscription, 3 cards, 20 invoices, most of them paid
through payment attempts, some credit) and a browser of their own (one aiohttp session with its cookie
jar). For ``duration`` seconds every user logs in and clicks around the way a customer does: page views,
Show more invoices, set a default card, edit an expiry date, add a card with a sandbox test number, delete
a card that is not the default, download PDFs and "Email me a copy". The HTMX actions are sent the way
htmx sends them (``HX-Request``, the CSRF token of the page). Meanwhile a ``portal worker`` process renews
the half of the subscriptions that are due, charging whichever card is the default at that moment.

The point is correctness under concurrency, not throughput: users pause between clicks (``think``
seconds on average), so 50 users make a few dozen requests per second. At the end, with the server and
the worker stopped, the database is compared with what the users were told:

* no 5xx answers and no requests left without an answer;
* no lost writes: each account's cards are exactly those the user's successful adds and deletes imply,
  its default card is the last one the user successfully made default, each edited card carries the
  last expiry date that was saved, and the outbox holds one copy per successful "Email me a copy";
* read-your-writes: every page a user loaded showed the cards and default of their own earlier writes;
* the ledger adds up for every account: amount paid never above the total, totals equal subtotal minus
  credit plus tax, each paid invoice's amount paid equals its succeeded payment attempts (where it has
  attempts), the credit balance equals the sum of credit entries and never goes negative, and the
  sandbox took exactly one charge per succeeded attempt made during the run.
"""
from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..billing.invoicing.seller import Seller
from ..config import load_settings
from ..db import Database
from ..models import utcnow
from .browsing import run_user
from .checks import check_ledger, check_writes
from .customers import Tally, User
from .report import write_report
from .seed import seed_users
from .servers import bench_database, gunicorn_server, portal_env, stop_process

def _percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))], 1)


def run(*, database_url: str | None = None, postgres_url: str | None = None, users: int = 50,
        duration: float = 120, web_workers: int = 4, think: float = 1.0, worker: bool = True,
        seed: int = 1) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="portal-load-"))
    try:
        with bench_database(database_url, postgres_url, workdir) as url:
            settings = load_settings(demo=True, overrides={"instance_path": workdir, "secret_key": "load",
                                                           "database_url": url})
            database = Database(url)
            try:
                database.upgrade()
                seed_started = time.perf_counter()
                accounts = seed_users(database, Seller.from_settings(settings), users, now=utcnow())
                seed_seconds = time.perf_counter() - seed_started
                tally = Tally()
                worker_log = workdir / "worker.log"
                with gunicorn_server(url, workdir, workers=web_workers) as base_url:
                    worker_process = None
                    if worker:
                        with open(worker_log, "wb") as log:
                            worker_process = subprocess.Popen(
                                [sys.executable, "-m", "portal.cli", "worker", "--interval", "5"],
                                env=portal_env(url, workdir), cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
                    try:
                        started = time.monotonic()
                        _run_in_own_loop(_drive(base_url, accounts, tally, started=started, duration=duration,
                                                think=think, seed=seed))
                        elapsed = time.monotonic() - started
                    finally:
                        if worker_process is not None:
                            stop_process(worker_process, timeout=30)
                worker_failed = worker_process is not None and worker_process.returncode not in (0, -15)
                write_problems = check_writes(database, accounts)
                ledger_problems, ledger_figures = check_ledger(database)
                return _summary(tally, accounts, database=database.engine.dialect.name, users=users,
                                duration=duration, elapsed=elapsed, think=think, web_workers=web_workers,
                                seed_seconds=seed_seconds, write_problems=write_problems,
                                ledger_problems=ledger_problems, ledger_figures=ledger_figures,
                                worker_log=worker_log.read_text(errors="replace") if worker else None,
                                worker_failed=worker_failed)
            finally:
                database.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _drive(base_url: str, accounts: list[User], tally: Tally, *, started: float, duration: float,
                 think: float, seed: int) -> None:
    # Logins are spread over the first seconds (argon2 is deliberately slow); everyone stops together.
    ramp = min(5.0, duration / 4)
    await asyncio.gather(*(run_user(base_url, user, tally, start_at=started + ramp * i / max(1, len(accounts)),
                                    stop_at=started + duration, think=think, rng_seed=seed * 100_003 + i)
                           for i, user in enumerate(accounts)))


def _summary(tally: Tally, accounts: list[User], *, database: str, users: int, duration: float, elapsed: float,
             think: float, web_workers: int, seed_seconds: float, write_problems: list[str],
             ledger_problems: list[str], ledger_figures: dict, worker_log: str | None, worker_failed: bool) -> dict:
    requests = {}
    for kind in sorted(tally.statuses):
        statuses = tally.statuses[kind]
        requests[kind] = {"total": sum(statuses.values()),
                          "by_status": {str(code): n for code, n in sorted(statuses.items())},
                          "p50_ms": _percentile(tally.latencies[kind], 50),
                          "p99_ms": _percentile(tally.latencies[kind], 99)}
    total = sum(r["total"] for r in requests.values())
    status_5xx = sum(n for s in tally.statuses.values() for code, n in s.items() if code >= 500)
    renewals = [line for line in (worker_log or "").splitlines() if "renewals:" in line]
    invoiced = sum(int(m) for m in re.findall(r"renewals: (\d+) invoiced", "\n".join(renewals)))
    checks = {
        "no_5xx": status_5xx == 0,
        "every_request_answered": not tally.transport_errors,
        "no_unexpected_answers": not tally.unexpected,
        "no_lost_writes": not write_problems,
        "read_your_writes": not tally.stale_reads,
        "ledger_adds_up": not ledger_problems,
        "worker_ran_cleanly": not worker_failed and "Traceback" not in (worker_log or ""),
    }
    return {
        "database": database,
        "users": users,
        "duration_s": duration,
        "elapsed_s": round(elapsed, 1),
        "think_s": think,
        "server": f"gunicorn -w {web_workers} (sync workers), 127.0.0.1",
        "seed_s": round(seed_seconds, 1),
        "requests_total": total,
        "requests_per_s": round(total / elapsed, 1) if elapsed else None,
        "requests": requests,
        "status_5xx": status_5xx,
        "transport_errors": dict(tally.transport_errors),
        "email_copies_queued": sum(u.email_copies for u in accounts),
        "cards_at_end": sum(len(u.cards) for u in accounts),
        "worker": {"passes": len(renewals), "renewals_invoiced": invoiced} if worker_log is not None else None,
        "ledger": ledger_figures,
        "checks": checks,
        "passed": all(checks.values()),
        "problems": {"server_errors": tally.server_errors[:20], "unexpected": tally.unexpected[:20],
                     "lost_writes": write_problems[:20], "stale_reads": tally.stale_reads[:20],
                     "ledger": ledger_problems[:20],
                     "worker": [l for l in (worker_log or "").splitlines() if "Error" in l or "Traceback" in l][:20]},
    }


def format_table(summary: dict) -> str:
    lines = [f"{summary['users']} users for {summary['duration_s']:g}s on {summary['database']} "
             f"({summary['server']}): {summary['requests_total']} requests, {summary['requests_per_s']} req/s"]
    for kind, figures in summary["requests"].items():
        lines.append(f"  {kind:<12} {figures['total']:>6}  p50 {figures['p50_ms']} ms  p99 {figures['p99_ms']} ms  "
                     f"{figures['by_status']}")
    for name, ok in summary["checks"].items():
        lines.append(f"  {'ok  ' if ok else 'FAIL'} {name}")
    return "\n".join(lines)


def main(*, json_path: str | None = None, **options) -> bool:
    summary = run(**options)
    write_report(summary, format_table(summary), json_path)
    return summary["passed"]


def _run_in_own_loop(coroutine) -> None:
    """Run the users' event loop in a thread of its own: the caller may already have a loop running in this
    thread (a test run that also drives a browser), and asyncio allows one per thread."""
    import threading

    failure: list[BaseException] = []

    def main():
        try:
            asyncio.run(coroutine)
        except BaseException as exc:  # handed back to the caller below
            failure.append(exc)

    thread = threading.Thread(target=main, name="load-users")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
