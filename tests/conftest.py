"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL when PORTAL_TEST_DATABASE_URL
is set (in a schema of the run's own, dropped at the end); either way the schema comes from the Alembic
migrations, as it does in production."""
from __future__ import annotations

import fcntl
import os
import threading

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from werkzeug.serving import make_server

from portal import create_app
from portal.config import load_settings
from portal.db import Database
from portal.extensions import limiter
from portal.models import Base

from .helpers import OWN_PROCESSES_GROUP, Browser, add_card, make_customer, make_subscription, with_product_in_front

# Hypothesis fails an example that takes longer than its deadline (200 ms): a timing assertion in disguise,
# which a busy machine trips. Speed is measured by `portal bench`; the properties here are about behaviour.
hypothesis_settings.register_profile("portal", deadline=None)
hypothesis_settings.load_profile("portal")


def _private_schema(url: str):
    """A schema of this test run's own, so runs sharing one PostgreSQL database never meet."""
    import secrets
    from urllib.parse import quote

    schema = f"test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = Database(url)
    with admin.engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in url else "?"
    return admin, schema, f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("PORTAL_TEST_DATABASE_URL")
    if not url:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'portal-test.db'}"
        return
    admin, schema, scoped = _private_schema(url)
    yield scoped
    with admin.engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """PORTAL_TEST_REDIS_URL with a Redis database of this test process's own: under pytest-xdist each worker
    counts down from the given number (gw0 the given one, gw1 the one below, ...), so a worker emptying its
    database never wipes another's counters."""
    from urllib.parse import urlsplit

    url = os.environ.get("PORTAL_TEST_REDIS_URL")
    if not url:
        pytest.skip("PORTAL_TEST_REDIS_URL is not set")
    parts = urlsplit(url)
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    db = (int(parts.path.strip("/") or 0) - worker) % 16  # a Redis server has databases 0 to 15 by default
    return parts._replace(path=f"/{db}").geturl()


@pytest.fixture(scope="session")
def database(database_url) -> Database:
    db = Database(database_url)
    db.upgrade()
    yield db
    db.dispose()


def truncate_all(database: Database) -> None:
    """Empty every table and, on PostgreSQL, restart every id sequence, as a fresh database would be.

    On PostgreSQL this is DELETE, not TRUNCATE: TRUNCATE gives each table new files and syncs them to disk,
    a tenth of a second or more per test on a busy disk, for tables that hold a handful of rows. Migration
    0007's triggers refuse to delete issued invoices and their lines, so the tables with triggers of their own
    that hold rows have them switched off for this one transaction (``DISABLE TRIGGER USER`` keeps the foreign
    keys checked; the table's owner, who ran the migrations, may do it)."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with database.engine.begin() as conn:
        if database.is_sqlite:
            for name in tables:
                conn.execute(text(f'DELETE FROM "{name}"'))
            return
        filled = set(conn.execute(text(" UNION ALL ".join(
            f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM \"{name}\")" for name in tables))).scalars())
        guarded = filled & set(conn.execute(text(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace")).scalars())
        sequences = conn.execute(text("SELECT sequence_name FROM information_schema.sequences "
                                      "WHERE sequence_schema = current_schema()")).scalars().all()
        conn.exec_driver_sql("; ".join(
            [f'ALTER TABLE "{name}" DISABLE TRIGGER USER' for name in sorted(guarded)]
            + [f'DELETE FROM "{name}"' for name in tables if name in filled]
            + [f'ALTER TABLE "{name}" ENABLE TRIGGER USER' for name in sorted(guarded)]
            + [f"SELECT setval('\"{name}\"', 1, false)" for name in sequences]))


@pytest.fixture(autouse=True)
def _clean_database(request):
    """Every test starts from empty tables (only for tests that use the database)."""
    yield
    if "database" in request.fixturenames:
        truncate_all(request.getfixturevalue("database"))


@pytest.fixture(autouse=True)
def _own_processes_run_alone(request, tmp_path_factory):
    """Under pytest-xdist, a test of the OWN_PROCESSES group runs while no other test runs on any worker.

    A readers-writer lock on two files in the run's temporary folder, which every worker shares: other tests
    hold the lock shared, an own-processes test holds it exclusively. The writer holds the turnstile while it
    waits and runs, so the other workers cannot keep it waiting by starting one test after another."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    alone = (marker := request.node.get_closest_marker("xdist_group")) is not None and \
        OWN_PROCESSES_GROUP in (*marker.args, marker.kwargs.get("name"))
    root = tmp_path_factory.getbasetemp().parent  # the run's folder; each worker's own is inside it
    with open(root / "own-processes.turnstile", "a") as turnstile, open(root / "own-processes.lock", "a") as lock:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        if not alone:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            fcntl.flock(turnstile, fcntl.LOCK_UN)


@pytest.fixture
def settings(database_url, tmp_path, request):
    settings = load_settings(overrides={
        "database_url": database_url, "secret_key": "test-secret-key", "testing": True, "secure_cookies": False,
        "instance_path": tmp_path / "instance", "ratelimit_storage_url": "memory://",
    })
    # Tests of the hand-off from the product mark themselves ``product_in_front`` instead of each
    # overriding this fixture.
    return with_product_in_front(settings) if request.node.get_closest_marker("product_in_front") else settings


def serve(settings, database):
    """An app for one test, with the rate limits' counters empty before and after it (they live in memory)."""
    app = create_app(settings, database=database)
    limiter.reset()
    yield app
    limiter.reset()


@pytest.fixture
def app(settings, database):
    yield from serve(settings, database)


@pytest.fixture
def gateway(app):
    return app.extensions["portal.gateway"]


@pytest.fixture
def sandbox(database):
    """The sandbox processor on its own, for services tested without a web app."""
    from portal.payments.sandbox import SandboxGateway

    return SandboxGateway(database)


@pytest.fixture
def seller():
    """The default seller (an Irish company) with the packaged tax rates."""
    from portal.billing.invoicing.seller import Seller

    return Seller.from_settings(load_settings(demo=True))


@pytest.fixture
def session(database):
    with database.session() as s:
        yield s


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def browser(client) -> Browser:
    return Browser(client)


class LiveServer:
    """A portal on a free port of 127.0.0.1, whose ``base_url`` is its own address: the links it builds for
    other parties (portal-session URLs, e-mails) then lead back to it, as they do in production."""

    def __init__(self, build_app):
        self.server = make_server("127.0.0.1", 0, lambda environ, start: self.app(environ, start), threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.app = build_app(self.url)
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
        def build(url: str):
            values = {"database_url": database_url, "secret_key": "e2e-secret", "testing": True,
                      "secure_cookies": False, "instance_path": tmp_path / "instance",
                      "ratelimit_storage_url": "memory://", "base_url": url}
            values.update(overrides)
            return create_app(load_settings(overrides=values), database=database)

        server = LiveServer(build)
        limiter.reset()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def live_server(live_server_factory):
    return live_server_factory()


@pytest.fixture
def acme(session):
    """Acme Analytics, a customer account with one user, ada@example.com (make_customer's defaults)."""
    account, _ = make_customer(session)
    return account


@pytest.fixture
def subscriber(session, browser, gateway):
    """Makes the customer of the Manage plan tests and logs them in: in Massachusetts (6.25% sales tax),
    with a default card that pays and a subscription on ``plan`` (Pro by default) ending at ``period_end``."""
    def make(*, period_end, plan=None):
        account, _ = make_customer(session, region="MA", postal_code="01101")
        add_card(session, gateway, account, default=True)
        sub = make_subscription(session, account, plan=plan, period_end=period_end)
        browser.login()
        return account, sub
    return make
