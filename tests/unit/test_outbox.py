"""The outbox: building messages, the file transport, retries, claiming, dedupe, and demo mode's mailbox."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from email import policy
from email.parser import BytesParser

import pytest
from sqlalchemy.exc import IntegrityError

from portal import create_app
from portal.billing.subscriptions.renewals import run_renewals
from portal.billing.invoicing.seller import Seller
from portal.config import load_settings
from portal.extensions import limiter
from portal.models import Account, Invoice, OutboxMessage
from portal.notifications import outbox
from portal.notifications.sender import MAX_ATTEMPTS, build_transport, mail_folder, retry_delay, send_pending
from portal.notifications.transports import (Attachment, DeliveryError, FileTransport, SmtpTransport, Transport,
                                             TransportUnavailable, build_email, message_id)
from portal.payments.sandbox import SandboxGateway
from portal.worker import run_once

from ..helpers import POLICY, PASSWORD, Browser, add_card, make_customer, make_staff, make_subscription

T0 = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)
MAIL_FROM = "Example Billing <billing@example.com>"


def queue(session, key="notice-1", *, to="billing@acme.example", subject="Your invoice", attachments=None,
          at=T0) -> OutboxMessage:
    """An outbox row as ``enqueue`` writes it (the sender does not care which template made it)."""
    message = OutboxMessage(dedupe_key=key, kind="invoice_issued", to_address=to, subject=subject,
                            text_body="Hello,\n\nyour invoice is ready.\n", html_body="<p>Hello, <b>ready</b>.</p>",
                            attachments=attachments or [], next_attempt_at=at, created_at=at)
    session.add(message)
    session.commit()
    return message


class Recording(Transport):
    """A transport that keeps what it is given, or fails with ``error``."""

    def __init__(self, error: Exception | None = None):
        self.mail_from = MAIL_FROM
        self.sent = []
        self.error = error

    def send(self, email):
        if self.error is not None:
            raise self.error
        self.sent.append(email)


def reload(session, message: OutboxMessage) -> OutboxMessage:
    session.expire_all()
    return session.get(OutboxMessage, message.id)


# building and writing messages

def test_the_file_transport_writes_an_eml_file_that_parses_back_into_the_same_message(tmp_path):
    email = build_email(dedupe_key="invoice-issued-7", to="billing@acme.example", subject="Invoice INV-2026-000123",
                        text_body="Plain words.\n", html_body="<p>Rich <b>words</b>.</p>", mail_from=MAIL_FROM,
                        date=T0, attachments=[Attachment("INV-2026-000123.pdf", "application/pdf", b"%PDF-1.4 x")])
    FileTransport(tmp_path / "mail").send(email)
    [path] = list((tmp_path / "mail").iterdir())
    local_part = message_id("invoice-issued-7", MAIL_FROM).strip("<>").partition("@")[0]
    assert path.name == f"20261201-093000-{local_part}.eml"
    parsed = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert (parsed["From"], parsed["To"], parsed["Subject"]) == (MAIL_FROM, "billing@acme.example",
                                                                 "Invoice INV-2026-000123")
    assert parsed["Date"].datetime == T0
    assert parsed["Message-ID"] == message_id("invoice-issued-7", MAIL_FROM)
    assert parsed.get_body(("plain",)).get_content() == "Plain words.\n"
    assert parsed.get_body(("html",)).get_content().strip() == "<p>Rich <b>words</b>.</p>"
    [pdf] = list(parsed.iter_attachments())
    assert (pdf.get_content_type(), pdf.get_filename(), pdf.get_content()) == (
        "application/pdf", "INV-2026-000123.pdf", b"%PDF-1.4 x")
    assert [p.name for p in (tmp_path / "mail").iterdir()] == [path.name]  # no temporary file left behind


def test_the_message_id_is_the_same_for_every_copy_of_one_notice_and_differs_between_notices():
    first = message_id("invoice-issued-7", MAIL_FROM)
    assert first == message_id("invoice-issued-7", MAIL_FROM)
    assert first.startswith("<invoice-issued-7.") and first.endswith("@example.com>")
    assert message_id("invoice issued 7", MAIL_FROM) != first  # slugs alike, keys not


def test_writing_one_message_twice_leaves_one_file(tmp_path):
    transport = FileTransport(tmp_path)
    for _ in range(2):
        transport.send(build_email(dedupe_key="k-1", to="a@example.com", subject="s", text_body="t", html_body="",
                                   mail_from=MAIL_FROM, date=T0))
    assert len(list(tmp_path.glob("*.eml"))) == 1


def test_smtp_urls_give_the_host_port_encryption_and_percent_decoded_credentials():
    plain = SmtpTransport("smtp://127.0.0.1:8025")
    assert (plain.host, plain.port, plain.starttls, plain.implicit_tls, plain.username) == (
        "127.0.0.1", 8025, False, False, None)
    submission = SmtpTransport("smtp://ada%40acme:p%40ss%3Aword@mail.example:587?starttls=1")
    assert (submission.port, submission.starttls, submission.username, submission.password) == (
        587, True, "ada@acme", "p@ss:word")
    assert "p@ss" not in repr(submission)
    tls = SmtpTransport("smtps://mail.example")
    assert (tls.port, tls.implicit_tls) == (465, True)
    for bad in ("http://mail.example", "smtp://", "smtps://mail.example?starttls=1"):
        with pytest.raises(ValueError):
            SmtpTransport(bad)


def test_the_transport_is_smtp_when_a_url_is_set_and_eml_files_under_the_instance_folder_otherwise(settings):
    files = build_transport(settings)
    assert isinstance(files, FileTransport) and files.folder == settings.instance_path / "mail"
    assert files.mail_from == settings.mail_from
    smtp = build_transport(dataclasses.replace(settings, smtp_url="smtp://127.0.0.1:2525"))
    assert isinstance(smtp, SmtpTransport) and smtp.port == 2525


# retries

def test_retries_wait_1_5_15_and_60_minutes_then_every_4_hours_and_stop_at_20_attempts():
    assert [retry_delay(n) for n in range(1, 6)] == [timedelta(minutes=1), timedelta(minutes=5),
                                                     timedelta(minutes=15), timedelta(hours=1), timedelta(hours=4)]
    assert retry_delay(19) == timedelta(hours=4)
    assert MAX_ATTEMPTS == 20 and retry_delay(20) is None


def test_a_failed_attempt_keeps_the_message_and_schedules_the_next_until_it_is_marked_failed(database, session):
    message = queue(session)
    transport = Recording(DeliveryError("451 try again later"))
    now = T0
    for attempt in range(1, MAX_ATTEMPTS):
        stats = send_pending(database, transport, now=now)
        assert (stats.retrying, stats.failed) == (1, 0)
        row = reload(session, message)
        assert (row.status, row.attempts) == ("pending", attempt)
        assert row.next_attempt_at == now + retry_delay(attempt) and "451 try again later" in row.last_error
        assert send_pending(database, transport, now=row.next_attempt_at - timedelta(seconds=1)).attempted == 0
        now = row.next_attempt_at
    stats = send_pending(database, transport, now=now)
    assert (stats.retrying, stats.failed) == (0, 1)
    assert (reload(session, message).status, reload(session, message).attempts) == ("failed", MAX_ATTEMPTS)
    transport.error = None
    assert send_pending(database, transport, now=now + timedelta(days=30)).attempted == 0 and transport.sent == []


def test_a_sent_message_is_never_picked_again(database, session):
    message = queue(session)
    transport = Recording()
    assert send_pending(database, transport, now=T0).sent == 1
    row = reload(session, message)
    assert (row.status, row.sent_at, row.attempts) == ("sent", T0, 1)
    for later in (T0, T0 + timedelta(hours=1), T0 + timedelta(days=400)):
        assert send_pending(database, transport, now=later).attempted == 0
    assert len(transport.sent) == 1


def test_messages_not_yet_due_wait_and_due_ones_go_oldest_first(database, session):
    queue(session, "later", at=T0 + timedelta(minutes=5))
    queue(session, "second", at=T0 - timedelta(minutes=1))
    queue(session, "first", at=T0 - timedelta(minutes=2))
    transport = Recording()
    assert send_pending(database, transport, now=T0).sent == 2
    assert [m["Message-ID"] for m in transport.sent] == [message_id(key, MAIL_FROM) for key in ("first", "second")]


def test_a_pass_sends_at_most_its_limit(database, session):
    for i in range(3):
        queue(session, f"n-{i}")
    assert send_pending(database, Recording(), now=T0, limit=2).sent == 2
    assert session.query(OutboxMessage).filter_by(status="pending").count() == 1


def test_when_the_server_cannot_be_reached_the_pass_stops_and_leaves_the_rest_untouched(database, session):
    first, second = queue(session, "a", at=T0 - timedelta(minutes=1)), queue(session, "b")
    stats = send_pending(database, Recording(TransportUnavailable("connection refused")), now=T0)
    assert (stats.retrying, stats.unavailable) == (1, "connection refused")
    assert reload(session, first).attempts == 1
    untouched = reload(session, second)
    assert (untouched.attempts, untouched.next_attempt_at, untouched.last_error) == (0, T0, "")


def test_a_message_being_sent_is_skipped_by_a_second_worker(database, session):
    """While one worker is inside the SMTP call, another pass (here: started from inside it) finds nothing."""
    message = queue(session)
    inner = Recording()
    seen = []

    class Reentrant(Recording):
        def send(self, email):
            seen.append(send_pending(database, inner, now=T0 + timedelta(seconds=5)))
            super().send(email)

    outer = Reentrant()
    assert send_pending(database, outer, now=T0).sent == 1
    assert seen[0].attempted == 0 and inner.sent == [] and len(outer.sent) == 1
    assert reload(session, message).status == "sent"


def test_a_message_whose_invoice_pdf_cannot_be_built_is_retried_and_never_sent_without_it(database, session):
    message = queue(session, attachments=[{"type": "invoice_pdf", "invoice_id": 999999}])
    transport = Recording()
    stats = send_pending(database, transport, now=T0)
    assert (stats.sent, stats.retrying) == (0, 1) and transport.sent == []
    row = reload(session, message)
    assert (row.status, row.attempts) == ("pending", 1) and row.last_error


# dedupe

@pytest.fixture
def issued(database, session):
    """A real invoice issued by the renewal engine, which queued its invoice_issued e-mail."""
    sandbox = SandboxGateway(database)
    account, _ = make_customer(session, region="MA", postal_code="01101")
    add_card(session, sandbox, account, default=True)
    make_subscription(session, account, period_end=datetime(2026, 12, 1, tzinfo=timezone.utc))
    run_renewals(database, sandbox, Seller.from_settings(load_settings(demo=True)),
                 now=datetime(2026, 12, 1, 0, 5, tzinfo=timezone.utc), policy=POLICY)
    session.expire_all()
    invoice = session.query(Invoice).one()
    return invoice, session.get(Account, invoice.account_id)


def test_a_notice_with_the_same_dedupe_key_is_queued_only_once(database, session, issued):
    invoice, account = issued
    assert session.query(OutboxMessage).filter_by(dedupe_key=f"invoice-issued-{invoice.id}").count() == 1
    before = session.query(OutboxMessage).count()
    assert outbox.invoice_issued(session, invoice, account, now=T0) is None
    session.commit()
    assert session.query(OutboxMessage).count() == before
    assert session.query(OutboxMessage).filter_by(kind="invoice_issued").count() == 1


def batch_notice(session, key, *, at=T0):
    return outbox.enqueue(session, dedupe_key=key, kind="invoice_issued", to="billing@acme.example",
                          subject="Your invoice", template="invoice_copy", context=copy_context(session), now=at)


def copy_context(session):
    invoice = session.query(Invoice).first()
    return {"invoice": invoice, "account": session.get(Account, invoice.account_id), "own_copy": True}


def test_a_batch_of_notices_is_written_once_each_when_it_ends_and_is_sent_like_any_other(database, session,
                                                                                          issued):
    before = session.query(OutboxMessage).count()
    with outbox.batched(session):
        assert batch_notice(session, "batch-1") is not None
        assert batch_notice(session, "batch-2") is not None
        assert batch_notice(session, "batch-1") is None  # queued in this batch already
        assert session.query(OutboxMessage).count() == before  # written when the batch ends
    session.commit()
    written = session.query(OutboxMessage).filter(OutboxMessage.dedupe_key.like("batch-%")) \
        .order_by(OutboxMessage.id).all()
    assert [m.dedupe_key for m in written] == ["batch-1", "batch-2"]
    # The columns the batch left unset have their defaults, so the sender picks the messages up.
    assert {(m.status, m.attempts, m.last_error, m.next_attempt_at) for m in written} == {("pending", 0, "", T0)}
    assert "invoice" in written[0].text_body.lower()
    transport = Recording()
    send_pending(database, transport, now=T0 + timedelta(minutes=1))
    assert [e["Subject"] for e in transport.sent].count("Your invoice") == 2
    assert outbox.enqueue(session, dedupe_key="batch-2", kind="invoice_issued", to="billing@acme.example",
                          subject="Again", template="invoice_copy", context=copy_context(session), now=T0) is None


def test_a_batch_that_fails_writes_none_of_its_notices(session, issued):
    before = session.query(OutboxMessage).count()
    with pytest.raises(RuntimeError):
        with outbox.batched(session):
            batch_notice(session, "batch-1")
            raise RuntimeError("the batch failed")
    session.commit()
    assert session.query(OutboxMessage).count() == before


def test_the_database_refuses_a_second_row_with_the_same_dedupe_key(session):
    queue(session, "once")
    with pytest.raises(IntegrityError):
        queue(session, "once")
    session.rollback()


# the worker

def test_a_worker_pass_sends_what_is_queued_and_reports_it(database, session, settings):
    queue(session, at=datetime(2026, 11, 1, tzinfo=timezone.utc))
    sandbox = SandboxGateway(database)
    summary = run_once(settings, database, sandbox, Seller.from_settings(settings), now=T0)
    assert "e-mail: 1 sent, 0 to retry, 0 failed" in summary
    assert len(list(mail_folder(settings).glob("*.eml"))) == 1


# demo mode's mailbox

@pytest.fixture
def demo_app(settings, database):
    app = create_app(dataclasses.replace(settings, demo=True), database=database)
    limiter.reset()
    yield app
    limiter.reset()


@pytest.fixture
def mailbox(settings, database, session):
    """Two e-mails written by the worker's file transport, as in demo mode."""
    queue(session, "invoice-issued-1", subject="Invoice INV-2026-000001", at=T0)
    queue(session, "invoice-issued-2", subject="Invoice <INV-2026-000002>", to="ops@beta.example",
          at=T0 + timedelta(hours=1))
    assert send_pending(database, build_transport(settings), now=T0 + timedelta(hours=2)).sent == 2
    return sorted(p.name for p in mail_folder(settings).glob("*.eml"))


def demo_browser(app, session) -> Browser:
    make_customer(session)
    browser = Browser(app.test_client())
    browser.login()
    return browser


def test_the_demo_mailbox_lists_the_emails_newest_first_and_shows_one(demo_app, session, mailbox):
    browser = demo_browser(demo_app, session)
    page = browser.get("/demo/mail")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.index("Invoice &lt;INV-2026-000002&gt;") < html.index("Invoice INV-2026-000001")
    assert "ops@beta.example" in html and "1 Dec 2026, 10:30" in html
    assert 'href="/demo/mail"' in browser.get("/billing").get_data(as_text=True)  # the header's link

    one = browser.get(f"/demo/mail/{mailbox[0]}")
    body = one.get_data(as_text=True)
    assert one.status_code == 200 and "Invoice INV-2026-000001" in body and "billing@acme.example" in body
    assert "your invoice is ready." in body and f"/demo/mail/{mailbox[0]}/raw" in body
    assert "<b>ready</b>" not in body  # the HTML part is never put into a portal page

    raw = browser.get(f"/demo/mail/{mailbox[0]}/raw")
    assert raw.mimetype == "message/rfc822" and "attachment" in raw.headers["Content-Disposition"]
    assert BytesParser(policy=policy.default).parsebytes(raw.data)["Subject"] == "Invoice INV-2026-000001"


def test_the_html_part_is_served_alone_in_a_sandbox_without_scripts(demo_app, session, mailbox):
    response = demo_browser(demo_app, session).get(f"/demo/mail/{mailbox[0]}/html")
    assert response.status_code == 200 and "<b>ready</b>" in response.get_data(as_text=True)
    csp = response.headers["Content-Security-Policy"]
    assert csp.startswith("sandbox;") and "default-src 'none'" in csp and "script-src" not in csp


def test_the_demo_mailbox_rejects_names_that_are_not_one_of_its_files(demo_app, session, mailbox):
    browser = demo_browser(demo_app, session)
    for name in ("../x", "..%2Fx", "..", "%2e%2e%2fportal.db", "..%5Cx.eml", "x.txt", ".hidden.eml", "missing.eml"):
        for suffix in ("", "/raw", "/html", "/attachments/0"):
            assert browser.get(f"/demo/mail/{name}{suffix}").status_code == 404, (name, suffix)
    assert browser.get(f"/demo/mail/{mailbox[0]}/attachments/0").status_code == 404  # it has none


def test_the_demo_mailbox_serves_no_other_file_of_its_folder_and_follows_no_symlink(demo_app, session, settings,
                                                                                    mailbox, tmp_path):
    folder = mail_folder(settings)
    (folder / "notes.txt").write_text("not an e-mail")
    (tmp_path / "secret.eml").write_text("Subject: outside the mail folder\n\nsecret")
    (folder / "link.eml").symlink_to(tmp_path / "secret.eml")
    browser = demo_browser(demo_app, session)
    for name in ("notes.txt", "link.eml"):
        for suffix in ("", "/raw", "/html"):
            assert browser.get(f"/demo/mail/{name}{suffix}").status_code == 404, (name, suffix)
    assert "outside the mail folder" not in browser.get("/demo/mail").get_data(as_text=True)


def test_the_demo_mailbox_needs_a_login_and_staff_can_read_it_too(demo_app, session, mailbox):
    anonymous = demo_app.test_client().get("/demo/mail")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    make_staff(session)
    staff = Browser(demo_app.test_client())
    staff.get("/login")
    assert staff.post("/login", {"email": "sam@support.example", "password": PASSWORD}).status_code == 303
    assert "Invoice INV-2026-000001" in staff.get("/demo/mail").get_data(as_text=True)


def test_outside_demo_mode_the_mailbox_does_not_exist(app, browser, session, mailbox):
    make_customer(session)
    browser.login()
    for url in ("/demo/mail", f"/demo/mail/{mailbox[0]}", f"/demo/mail/{mailbox[0]}/raw"):
        assert browser.get(url).status_code == 404
    assert "/demo/mail" not in browser.get("/billing").get_data(as_text=True)
