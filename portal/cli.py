"""The ``portal`` command: demo, database migrations, the billing worker, API keys and the plan catalogue."""
from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import click

from .config import ConfigError, load_settings

if TYPE_CHECKING:  # imported by the commands themselves, so that `portal --help` stays quick
    from .billing.collecting.dunning import RetryPolicy
    from .billing.invoicing.seller import Seller
    from .db import Database
    from .payments.gateway import PaymentGateway


@click.group()
def main():
    """Billing portal command line."""


@main.command()
@click.option("--port", default=5000, show_default=True, help="Port to serve on (127.0.0.1 only).")
@click.option("--instance", "instance_path", default=None, help="Folder for the demo database and e-mails.")
@click.option("--reset", is_flag=True, help="Delete the demo database first.")
def demo(port: int, instance_path: str | None, reset: bool):
    """Create or migrate a local SQLite database, seed the demo data and serve the portal."""
    from werkzeug.serving import run_simple

    from . import create_app
    from .db import Database
    from .demo.seed import DEMO_LOGINS, DEMO_PASSWORD, demo_api_key, seed
    from .models import utcnow

    overrides = {"base_url": f"http://127.0.0.1:{port}"}
    if instance_path:
        overrides["instance_path"] = instance_path
    settings = load_settings(demo=True, overrides=overrides)
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    if reset and settings.database_url.startswith("sqlite:///"):
        db_file = Path(settings.database_url.removeprefix("sqlite:///"))
        for path in (db_file, db_file.with_name(db_file.name + "-wal"), db_file.with_name(db_file.name + "-shm")):
            path.unlink(missing_ok=True)
    if reset:
        # Fresh data means a fresh mailbox: the old e-mails name invoices that no longer exist.
        from .notifications.sender import mail_folder

        for path in mail_folder(settings).glob("*.eml"):
            path.unlink(missing_ok=True)
    database = Database(settings.database_url)
    database.upgrade()
    app = create_app(settings, database=database)
    with app.app_context(), database.session() as session:
        created = seed(session, app.extensions["portal.gateway"], today=utcnow().date(), settings=settings,
                       database=database)
        api_key = demo_api_key(session, now=utcnow())
    url = f"http://127.0.0.1:{port}/"
    click.echo(f"Billing portal demo ({'new data' if created else 'existing data'}; database {database.url})")
    click.echo(f"Open {url} and log in with password '{DEMO_PASSWORD}' as:")
    for email, who in DEMO_LOGINS:
        click.echo(f"  {email:24} {who}")
    click.echo(f"E-mails are written to {settings.instance_path / 'mail'} and shown at {url}demo/mail")
    click.echo(f"API ({url}api/v1/openapi.json): export PORTAL_API_KEY={api_key}")
    click.echo(f"  e.g. curl -H \"Authorization: Bearer $PORTAL_API_KEY\" {url}api/v1/accounts/acme/entitlements")
    click.echo(f"  portal sessions may return to: {', '.join(settings.allowed_return_origins)}")
    click.echo("Test mode: the sandbox processor is used; no real card is charged. Press Ctrl+C to stop.")
    _start_demo_worker(settings, database, app.extensions["portal.gateway"])
    run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)


def _start_demo_worker(settings, database, gateway, interval: float = 5.0) -> None:
    """In the demo the worker runs inside the same process, so renewals happen and e-mails appear
    without a second terminal. (Production runs ``portal worker`` as its own process.)"""
    import threading
    import time

    from .billing.invoicing.seller import Seller
    from .models import utcnow
    from .worker import run_once

    seller = Seller.from_settings(settings)

    def loop():
        while True:
            try:
                run_once(settings, database, gateway, seller, now=utcnow())
            except Exception:  # keep the demo serving even if one pass fails; the log has the details
                import logging

                logging.getLogger(__name__).exception("demo worker pass failed")
            time.sleep(interval)

    threading.Thread(target=loop, name="demo-worker", daemon=True).start()


@main.group()
def db():
    """Database schema commands."""


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str):
    """Apply migrations up to REVISION (default: the newest)."""
    from .db import Database

    try:
        settings = load_settings(demo=True) if not _has_secret() else load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    Database(settings.database_url).upgrade(revision)
    click.echo(f"Database at {settings.database_url.split('@')[-1]} is at {revision}.")


def _parse_now(value: str | None):
    """``--now`` moves the clock for renewals and retries; ISO-8601, naive means UTC."""
    from datetime import datetime, timezone

    from .models import utcnow

    if not value:
        return utcnow()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO-8601 date or time: {value}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _services(clock=None):
    """Settings, database, gateway and seller for commands that run outside a web request. ``clock`` is the
    command's idea of now (``--now``), so the sandbox dates what it writes at the same moment."""
    from .billing.invoicing.seller import Seller
    from .db import Database
    from .models import utcnow
    from .payments import build_gateway

    try:
        settings = load_settings(demo=not _has_secret())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    from .documents import rendering

    rendering.configure(base_url=settings.base_url)
    database = Database(settings.database_url)
    if database.pending_migrations():
        raise click.ClickException("The database schema is out of date: run `portal db upgrade` first.")
    return settings, database, build_gateway(settings, database, clock=clock or utcnow), Seller.from_settings(settings)


def _progress(stats, expected: int) -> None:
    click.echo(f"\r  renewed {stats.invoiced}/{max(expected, stats.invoiced)}  paid {stats.paid}  failed {stats.failed}"
               f"  no card {stats.no_card}  {stats.rate:.1f}/s", nl=False, err=True)


@main.group()
def billing():
    """Billing runs: renewals and their payments."""


# One-off passes: ``--now`` is parsed once, and the sandbox, the pass and its retry policy all use that moment.
_now_option = click.option("--now", "now_text", default=None,
                          help="Pretend it is this moment (ISO-8601, UTC if no offset).")


class _Pass(NamedTuple):
    now: datetime
    database: Database
    gateway: PaymentGateway
    seller: Seller
    policy: RetryPolicy


def _billing_pass(now_text: str | None) -> _Pass:
    """What a one-off billing pass works with, all at the moment ``--now`` names (or the real one)."""
    from .billing.collecting.dunning import RetryPolicy

    now = _parse_now(now_text)
    settings, database, gateway, seller = _services(clock=lambda: now)
    return _Pass(now, database, gateway, seller, RetryPolicy(settings.retry_schedule))


@billing.command("run")
@_now_option
@click.option("--batch", default=50, show_default=True, help="Subscriptions claimed per transaction.")
def billing_run(now_text: str | None, batch: int):
    """Renew every subscription whose period has ended and charge its default card (one pass).

    Renewals only: failed-payment retries, suspensions, reminders and e-mail are the worker's. To move the
    whole portal to another moment, run ``portal worker --once --now …``."""
    from .billing.subscriptions.renewals import run_renewals

    run = _billing_pass(now_text)
    stats = run_renewals(run.database, run.gateway, run.seller, now=run.now, policy=run.policy, batch=batch,
                         progress=_progress)
    if stats.invoiced:
        click.echo("", err=True)
    click.echo(f"{run.now.isoformat()}: {stats.invoiced} invoiced, {stats.paid} paid, {stats.failed} failed, "
               f"{stats.no_card} without a default card, {stats.settled} earlier attempts settled "
               f"in {stats.seconds:.2f}s")
    click.echo("Renewals only; `portal worker --once --now ...` also runs the failed-payment retries, "
               "suspensions, reminders and e-mail.", err=True)


@billing.command("reconcile")
@_now_option
@click.option("--older-than", default=10, show_default=True, help="Minutes an outcome must have been unknown.")
def billing_reconcile(now_text: str | None, older_than: int):
    """Ask the processor about payments whose outcome is unknown and settle them (never charges again)."""
    from datetime import timedelta

    from .billing.collecting.events import deliver_sandbox_events, reconcile

    run = _billing_pass(now_text)
    delivered = deliver_sandbox_events(run.database, run.gateway, now=run.now, policy=run.policy)
    counts = reconcile(run.database, run.gateway, now=run.now, policy=run.policy,
                       older_than=timedelta(minutes=older_than))
    click.echo(f"{run.now.isoformat()}: checked {counts['checked']}, settled {counts['settled']}"
               + (f", {delivered} sandbox events delivered" if delivered else ""))


@main.group()
def webhooks():
    """Where the product hears about changes: signed POSTs of each event."""


@webhooks.command("create")
@click.option("--url", required=True, help="The product's receiver (http:// or https://).")
@click.option("--events", "events", default="", help="Comma-separated event types; all of them when left out.")
def webhooks_create(url: str, events: str):
    """Add an endpoint and print its signing secret, the only time it is shown."""
    from .errors import InvalidInput
    from .notifications.webhook_endpoints import create_endpoint

    _, database, _, _ = _services()
    try:
        with database.session() as session:
            created = create_endpoint(session, url=url, event_types=events.split(","), now=_parse_now(None))
    except InvalidInput as exc:
        raise click.ClickException("; ".join(f"{field}: {message}" for field, message in exc.errors.items()))
    click.echo(f"webhook endpoint {created.endpoint.id}: {created.endpoint.url} "
               f"({', '.join(created.endpoint.event_types)})")
    click.echo(f"signing secret (shown once, keep it with the receiver): {created.secret}")


@webhooks.command("list")
def webhooks_list():
    from .notifications.webhook_endpoints import list_endpoints

    _, database, _, _ = _services()
    with database.session() as session:
        endpoints = list_endpoints(session)
    for endpoint in endpoints:
        click.echo(f"{endpoint.id}\t{endpoint.url}\t{','.join(endpoint.event_types)}\t"
                   f"created {endpoint.created_at.isoformat()}")


@webhooks.command("delete")
@click.argument("endpoint_id", type=int)
def webhooks_delete(endpoint_id: int):
    """Stop sending to an endpoint; what it has not received yet stays readable from /api/v1/events."""
    from .errors import NotFound
    from .notifications.webhook_endpoints import delete_endpoint

    _, database, _, _ = _services()
    try:
        with database.session() as session:
            delete_endpoint(session, endpoint_id, now=_parse_now(None))
    except NotFound as exc:
        raise click.ClickException(exc.message)
    click.echo(f"webhook endpoint {endpoint_id} deleted")


@main.command()
@click.option("--interval", default=60.0, show_default=True, help="Seconds between passes.")
@click.option("--once", is_flag=True, help="Run one pass and exit.")
@click.option("--now", "now_text", default=None, help="Pretend it is this moment (for demos and tests).")
def worker(interval: float, once: bool, now_text: str | None):
    """Run billing passes and send queued e-mails, forever (or --once)."""
    import logging
    import signal
    import time

    from sqlalchemy.exc import OperationalError

    from .worker import run_once

    settings, database, gateway, seller = _services(clock=lambda: _parse_now(now_text))
    stopping = {"now": False}

    def stop(*_):
        stopping["now"] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if database.is_sqlite:
        click.echo("SQLite: run a single worker (a second one waits on the database lock and bills nothing twice).",
                   err=True)
    while True:
        try:
            click.echo(run_once(settings, database, gateway, seller, now=_parse_now(now_text)))
        except OperationalError as exc:
            if not (database.is_sqlite and "locked" in str(exc)):
                raise
            # SQLite has one writer: when the web processes hold the lock longer than the busy timeout,
            # this pass gives way. Everything it did is committed or rolled back whole; the next pass goes on.
            click.echo("database busy (SQLite write lock); this pass stops here and the next one continues",
                       err=True)
        except Exception:  # noqa: BLE001 - a worker outlives one bad pass; the log has the traceback
            logging.getLogger("portal.worker").exception("worker pass failed; retrying at the next interval")
            if once:
                raise
        if once or stopping["now"]:
            break
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline and not stopping["now"]:
            time.sleep(0.2)
        if stopping["now"]:
            break


def _scratch_database_options(command):
    """``--database-url`` / ``--postgres-url``: where ``bench`` and ``load`` seed their data (never a real one)."""
    command = click.option("--postgres-url", default=None,
                           help="Use a throwaway database created on this PostgreSQL server (dropped afterwards).")(command)
    return click.option("--database-url", default=None,
                        help="Use this (empty) database instead of a temporary SQLite file.")(command)


@main.command()
@_scratch_database_options
@click.option("--renewals", default=1000, show_default=True, help="Due subscriptions to renew for each renewals figure.")
@click.option("--http-seconds", default=8.0, show_default=True, help="Seconds of wrk load per HTTP figure.")
@click.option("--web-workers", default=4, show_default=True, help="gunicorn worker processes for the HTTP figures.")
@click.option("--connections", default=16, show_default=True, help="wrk connections for the HTTP figures.")
@click.option("--no-http", is_flag=True, help="Skip the HTTP figures (gunicorn + wrk).")
@click.option("--json", "json_path", default=None, help="Write the JSON report to this file instead of stdout.")
@click.option("--only", type=click.Choice(["renewals"]), default=None,
              help="Measure only this part (renewals: in-process and worker processes, nothing else seeded).")
@click.option("--load", is_flag=True, help="Run the load test instead (same options as `portal load`).")
@click.option("--users", default=50, show_default=True, help="With --load: concurrent users.")
@click.option("--duration", default=120.0, show_default=True, help="With --load: seconds of load.")
def bench(database_url: str | None, postgres_url: str | None, renewals: int, http_seconds: float, web_workers: int,
          connections: int, no_http: bool, json_path: str | None, only: str | None, load: bool, users: int,
          duration: float):
    """Seed a fresh database and report the performance figures (JSON, plus a table on stderr)."""
    if load:
        _run_load(database_url=database_url, postgres_url=postgres_url, users=users, duration=duration,
                  web_workers=web_workers, json_path=json_path)
        return
    from .perf.bench import main as bench_main

    try:
        bench_main(database_url=database_url, renewals=renewals, json_path=json_path, postgres_url=postgres_url,
                   http=not no_http, http_seconds=http_seconds, web_workers=web_workers, connections=connections,
                   only=only)
    except (RuntimeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@_scratch_database_options
@click.option("--users", default=50, show_default=True, help="Concurrent users, each with an account of their own.")
@click.option("--duration", default=120.0, show_default=True, help="Seconds of load.")
@click.option("--web-workers", default=4, show_default=True, help="gunicorn worker processes.")
@click.option("--think", default=1.0, show_default=True, help="Mean pause between one user's requests, in seconds.")
@click.option("--no-worker", is_flag=True, help="Don't run the renewal worker alongside the users.")
@click.option("--json", "json_path", default=None, help="Write the JSON summary to this file instead of stdout.")
def load(database_url: str | None, postgres_url: str | None, users: int, duration: float, web_workers: int,
         think: float, no_worker: bool, json_path: str | None):
    """Load test: many users clicking through Billing details at once, then consistency checks.

    Exits non-zero when a check fails (a 5xx, a lost write, a ledger that no longer adds up).
    """
    _run_load(database_url=database_url, postgres_url=postgres_url, users=users, duration=duration,
              web_workers=web_workers, think=think, worker=not no_worker, json_path=json_path)


def _run_load(*, json_path: str | None, **options) -> None:
    from .perf.load import main as load_main

    try:
        ok = load_main(json_path=json_path, **options)
    except (RuntimeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if not ok:
        sys.exit(1)


def _database():
    """The database of the settings in the environment, for commands that only read or write rows."""
    _settings, database, _gateway, _seller = _services()
    return database


def _cli_actor():
    from .audit import Actor

    return Actor.system()


@main.group("api-keys")
def api_keys_group():
    """Keys for the product's servers to call the API (/api/v1) with."""


@api_keys_group.command("create")
@click.option("--name", required=True, help="What the key is for, e.g. 'production backend'.")
def api_keys_create(name: str):
    """Make a key and print it: this is the only time it is shown."""
    from .auth import api_keys
    from .errors import InvalidInput
    from .models import utcnow

    with _database().session() as session:
        try:
            key, plaintext = api_keys.create(session, name=name, now=utcnow(), actor=_cli_actor())
        except InvalidInput as exc:
            raise click.BadParameter(exc.errors["name"], param_hint="--name") from exc
        click.echo(f"Created API key {key.id} ({key.name}). Keep it now; it is not shown again:")
        click.echo(plaintext)


@api_keys_group.command("list")
def api_keys_list():
    """Every key: id, name, its first characters, when it was last used and whether it is revoked."""
    from .auth import api_keys

    with _database().session() as session:
        keys = api_keys.list_keys(session)
        if not keys:
            click.echo("No API keys yet: `portal api-keys create --name NAME` makes one.")
        for key in keys:
            used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
            state = f"revoked {key.revoked_at.isoformat(timespec='seconds')}" if key.revoked_at else "live"
            click.echo(f"{key.id:>4}  {key.prefix}…  {key.name:30}  last used {used:25}  {state}")


@api_keys_group.command("revoke")
@click.argument("key_id", type=click.IntRange(1, 2**31 - 1))
def api_keys_revoke(key_id: int):
    """Stop the key KEY_ID working at once."""
    from .auth import api_keys
    from .errors import NotFound
    from .models import utcnow

    with _database().session() as session:
        try:
            key = api_keys.revoke(session, key_id, now=utcnow(), actor=_cli_actor())
        except NotFound as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"Revoked API key {key.id} ({key.name}).")


@main.group("plans")
def plans_group():
    """The plan catalogue."""


@plans_group.command("create")
@click.option("--code", required=True, help="The plan's code, e.g. pro-monthly.")
@click.option("--name", required=True, help="What customers see, e.g. Pro.")
@click.option("--interval", type=click.Choice(["month", "year"]), required=True)
@click.option("--price", type=click.IntRange(0, 2**31 - 1), required=True, help="In minor units (cents).")
@click.option("--currency", default="USD", show_default=True, help="ISO 4217 code.")
@click.option("--self-serve/--sales-only", default=True, show_default=True,
              help="Whether customers may pick it themselves.")
def plans_create(code: str, name: str, interval: str, price: int, currency: str, self_serve: bool):
    """Add a plan."""
    from .billing.subscriptions import plans
    from .errors import DomainError, InvalidInput
    from .models import utcnow

    with _database().session() as session:
        try:
            plan = plans.create_plan(session, code=code, name=name, interval=interval, price_cents=price,
                                     currency=currency, self_serve=self_serve, actor=_cli_actor(), now=utcnow())
        except InvalidInput as exc:
            raise click.ClickException("; ".join(f"--{field}: {text}" for field, text in exc.errors.items())) from exc
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"Created plan {plan.code}.")


@plans_group.command("list")
def plans_list():
    """Every plan with its price."""
    from .billing.subscriptions import plans
    from .money import format_money

    with _database().session() as session:
        for plan in plans.list_plans(session):
            who = "self-serve" if plan.self_serve else "sales only"
            click.echo(f"{plan.code:24} {plan.name:20} {format_money(plan.price_cents, plan.currency)}/{plan.interval}"
                       f"  {who}")


def _has_secret() -> bool:
    import os

    return bool(os.environ.get("PORTAL_SECRET_KEY"))


# gunicorn's exit status for "the app failed to load": its master then stops instead of starting the worker
# again, and again, each time with the same complaint.
APP_LOAD_ERROR = 4


def check_environment() -> None:
    """Exit at once, with one line on stderr, when the environment does not describe a portal that may start.

    ``gunicorn.conf.py`` calls this in gunicorn's master process, before any worker exists.
    """
    try:
        load_settings()
    except ConfigError as exc:
        sys.exit(f"portal: {exc}")


def app_from_environment():
    """The WSGI app for gunicorn: refuses to start without a good PORTAL_SECRET_KEY."""
    from . import create_app

    try:
        settings = load_settings()
    except ConfigError as exc:
        # Reached in a worker only when gunicorn was started without our gunicorn.conf.py (another folder, -c).
        print(f"portal: {exc}", file=sys.stderr, flush=True)
        sys.exit(APP_LOAD_ERROR)
    return create_app(settings)


if __name__ == "__main__":
    main()
