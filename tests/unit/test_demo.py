"""The demo as its README describes it: invoice numbers in date order across the demo accounts, a reset
that also empties the mailbox, and one command that moves time forward through the past-due customer's
day 3 and day 7 retries to suspension."""
from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from portal import cli
from portal.demo.seed import seed
from portal.models import Account, Invoice, PaymentAttempt, Subscription, utcnow


@pytest.fixture
def demo_world(app, session, gateway, settings, database, monkeypatch):
    """The demo's data, seeded today, and a command line pointed at its database and instance folder."""
    seed(session, gateway, today=utcnow().date(), settings=settings, database=database)
    monkeypatch.setenv("PORTAL_DATABASE_URL", database.url if isinstance(database.url, str) else str(database.url))
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(settings.instance_path))
    monkeypatch.delenv("PORTAL_SECRET_KEY", raising=False)
    return settings


def invoke(*args):
    result = CliRunner().invoke(cli.main, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_demo_invoice_numbers_follow_their_issue_dates_across_accounts(demo_world, session):
    invoices = session.scalars(select(Invoice).where(Invoice.number.is_not(None))).all()
    by_number = sorted(invoices, key=lambda i: i.number)
    assert len({i.account_id for i in invoices}) == 4
    assert [i.issued_at for i in by_number] == sorted(i.issued_at for i in invoices)


def test_the_worker_with_now_takes_the_past_due_customer_through_day_3_day_7_and_suspension(demo_world, session):
    account = session.scalar(select(Account).where(Account.name == "Late Payers Ltd"))
    subscription = session.scalar(select(Subscription).where(Subscription.account_id == account.id))
    failed_at = subscription.current_period_end  # the renewal that failed two days ago
    mail = demo_world.instance_path / "mail"

    def status_after(days: int) -> str:
        invoke("worker", "--once", "--now", (failed_at + timedelta(days=days, hours=1)).isoformat())
        session.expire_all()
        return session.get(Subscription, subscription.id).status

    def attempts() -> int:
        return len(session.scalars(select(PaymentAttempt).join(Invoice).where(Invoice.account_id == account.id))
                   .all())

    assert subscription.status == "past_due" and attempts() == 1
    assert status_after(2) == "past_due" and attempts() == 1  # nothing due before day 3
    assert status_after(3) == "past_due" and attempts() == 2
    subjects = [p.read_text() for p in mail.glob("*.eml")]
    assert any("accounts@latepayers.example" in text and "Payment failed" in text for text in subjects)
    assert status_after(7) == "suspended" and attempts() == 3
    assert any("suspended" in p.read_text() for p in mail.glob("*.eml"))


def test_billing_run_says_that_retries_belong_to_the_worker(demo_world):
    result = CliRunner().invoke(cli.main, ["billing", "run", "--now", utcnow().isoformat()])
    assert result.exit_code == 0, result.output
    assert "portal worker --once --now" in result.output


def test_demo_reset_empties_the_mailbox(demo_world, monkeypatch):
    import werkzeug.serving

    mail = demo_world.instance_path / "mail"
    mail.mkdir(parents=True, exist_ok=True)
    (mail / "20261201-old.eml").write_text("Subject: from the old data\n\n")
    served = []
    monkeypatch.setattr(werkzeug.serving, "run_simple", lambda *args, **kwargs: served.append(args))
    monkeypatch.setattr(cli, "_start_demo_worker", lambda *args, **kwargs: None)
    monkeypatch.delenv("PORTAL_DATABASE_URL")  # the demo's own SQLite file under the instance folder
    invoke("demo", "--instance", str(demo_world.instance_path), "--reset", "--port", "5099")
    assert served and not list(mail.glob("*.eml"))
