"""Sending the outbox to a real SMTP server (aiosmtpd on 127.0.0.1), including while it is down."""
from __future__ import annotations

import asyncio
import socket
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from portal.billing.subscriptions.renewals import run_renewals
from portal.billing.invoicing.seller import Seller
from portal.config import load_settings
from portal.models import Account, Invoice, OutboxMessage, utcnow
from portal.notifications.outbox import enqueue
from portal.notifications.sender import send_pending
from portal.notifications.transports import SmtpTransport, message_id

from ..helpers import POLICY, add_card, make_customer, make_subscription, run_concurrently

PERIOD_END = datetime(2026, 12, 1, tzinfo=timezone.utc)
RENEWAL_NOW = datetime(2026, 12, 1, 0, 5, tzinfo=timezone.utc)
MAIL_FROM = "Example Billing <billing@example.com>"


class Inbox:
    """An aiosmtpd handler that keeps what it receives; it can refuse recipients or answer slowly."""

    def __init__(self):
        self.received: list[tuple[str, list[str], EmailMessage]] = []
        self.refuse: set[str] = set()
        self.delay = 0.0
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"p@ss:word")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    def __init__(self, **smtp_options):
        self.port = free_port()
        self.inbox = Inbox()
        self.options = smtp_options
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        options = dict(self.options)
        if options.pop("with_auth", False):
            options.update(authenticator=self.inbox.authenticate, auth_require_tls=False, auth_required=True)
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def issue_invoices(database, session, sandbox, count: int = 1) -> list[tuple[Invoice, Account]]:
    """Real issued invoices, made by the renewal engine (which also queues their invoice_issued e-mails)."""
    for i in range(count):
        account, _ = make_customer(session, email=f"c{i}@example.com", billing_email=f"billing+c{i}@acme.example",
                                   region="MA", postal_code="01101")
        add_card(session, sandbox, account, default=True)
        make_subscription(session, account, period_end=PERIOD_END)
    seller = Seller.from_settings(load_settings(demo=True))
    assert run_renewals(database, sandbox, seller, now=RENEWAL_NOW, policy=POLICY).invoiced == count
    # Only the invoice e-mails matter here; the payment receipts the renewals also queue are set aside.
    session.query(OutboxMessage).filter(OutboxMessage.kind != "invoice_issued").delete()
    session.commit()
    session.expire_all()
    invoices = session.query(Invoice).order_by(Invoice.id).all()
    return [(invoice, session.get(Account, invoice.account_id)) for invoice in invoices]


def queue_without_pdf(database, session, sandbox, count: int = 1) -> list[OutboxMessage]:
    """invoice_issued e-mails for real invoices, queued without the PDF so that these tests do not depend on
    the PDF renderer (the renewal engine's own messages, which carry it, are taken out of the way)."""
    pairs = issue_invoices(database, session, sandbox, count)
    session.query(OutboxMessage).delete()
    messages = [enqueue(session, dedupe_key=f"test-invoice-{invoice.id}", kind="invoice_issued",
                        to=account.billing_email, account_id=account.id, subject=f"Invoice {invoice.number}",
                        template="invoice_issued", context={"invoice": invoice, "account": account}, now=utcnow())
                for invoice, account in pairs]
    session.commit()
    return messages


def transport(server: SmtpServer, url: str | None = None) -> SmtpTransport:
    return SmtpTransport(url or server.url, mail_from=MAIL_FROM, timeout=5)


def parts(message: EmailMessage) -> dict[str, str]:
    return {part.get_content_type(): part.get_content() for part in message.walk()
            if part.get_content_type() in ("text/plain", "text/html")}


def test_a_queued_invoice_email_arrives_with_its_sender_recipient_subject_text_and_html(database, session, sandbox,
                                                                                       smtp):
    [message] = queue_without_pdf(database, session, sandbox)
    stats = send_pending(database, transport(smtp), now=utcnow())
    assert (stats.sent, stats.retrying, stats.failed) == (1, 0, 0)
    [(envelope_from, recipients, received)] = smtp.inbox.received
    assert envelope_from == "billing@example.com" and recipients == ["billing+c0@acme.example"]
    assert received["To"] == "billing+c0@acme.example" and received["From"] == MAIL_FROM
    assert received["Subject"] == "Invoice INV-2026-000001"
    assert received["Message-ID"] == message_id(message.dedupe_key, MAIL_FROM) and received["Date"]
    bodies = parts(received)
    assert "Invoice INV-2026-000001 for Acme Analytics Inc. has been issued" in bodies["text/plain"]
    assert "<strong>INV-2026-000001</strong>" in bodies["text/html"]
    session.expire_all()
    row = session.get(OutboxMessage, message.id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, "") and row.sent_at is not None


def test_an_issued_invoice_email_carries_its_pdf(database, session, sandbox, smtp):
    pytest.importorskip("portal.documents.pdf", reason="the invoice PDF renderer is not in this tree yet")
    [(invoice, _)] = issue_invoices(database, session, sandbox)
    assert session.query(OutboxMessage).one().attachments == [{"type": "invoice_pdf", "invoice_id": invoice.id}]
    assert send_pending(database, transport(smtp), now=utcnow()).sent == 1
    [(_, _, received)] = smtp.inbox.received
    assert set(parts(received)) == {"text/plain", "text/html"}
    [pdf] = list(received.iter_attachments())
    assert pdf.get_content_type() == "application/pdf" and pdf.get_filename() == "INV-2026-000001.pdf"
    assert pdf.get_content().startswith(b"%PDF")


def test_while_the_server_is_down_nothing_is_lost_and_it_is_delivered_once_when_it_is_back(database, session,
                                                                                           sandbox, smtp):
    [message] = queue_without_pdf(database, session, sandbox)
    smtp.stop()
    first_try = utcnow()
    stats = send_pending(database, transport(smtp), now=first_try)
    assert (stats.sent, stats.retrying) == (0, 1) and stats.unavailable
    session.expire_all()
    row = session.get(OutboxMessage, message.id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at > first_try and "Connection refused" in row.last_error

    smtp.start()  # a new server on the same port
    assert send_pending(database, transport(smtp), now=first_try + timedelta(seconds=30)).sent == 0  # backing off
    later = row.next_attempt_at + timedelta(seconds=1)
    assert send_pending(database, transport(smtp), now=later).sent == 1
    assert send_pending(database, transport(smtp), now=later + timedelta(days=1)).sent == 0
    assert [m["Message-ID"] for _, _, m in smtp.inbox.received] == [message_id(message.dedupe_key, MAIL_FROM)]
    session.expire_all()
    row = session.get(OutboxMessage, message.id)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 2, later)


def test_a_refused_recipient_is_retried_later_without_holding_up_the_other_messages(database, session, sandbox, smtp):
    refused, accepted = queue_without_pdf(database, session, sandbox, count=2)
    smtp.inbox.refuse.add(refused.to_address)
    now = utcnow()
    stats = send_pending(database, transport(smtp), now=now)
    assert (stats.sent, stats.retrying, stats.unavailable) == (1, 1, "")
    assert [r for _, r, _ in smtp.inbox.received] == [[accepted.to_address]]
    session.expire_all()
    row = session.get(OutboxMessage, refused.id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, now + timedelta(minutes=1))
    assert "550" in row.last_error and "No such user" in row.last_error


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_credentials_in_the_url_log_in_percent_decoded():
    server = SmtpServer(with_auth=True)
    server.start()
    try:
        email = EmailMessage()
        email["From"], email["To"], email["Subject"] = MAIL_FROM, "ada@example.com", "Hello"
        email.set_content("Hello")
        sender = transport(server, f"smtp://ada%40acme:p%40ss%3Aword@127.0.0.1:{server.port}")
        sender.send(email)
        sender.close()
        assert server.inbox.logins == [(b"ada@acme", b"p@ss:word")] and len(server.inbox.received) == 1
    finally:
        server.stop()


@pytest.mark.postgres
def test_two_workers_sending_at_once_never_send_one_message_twice(database, session, sandbox, smtp):
    if database.is_sqlite:
        pytest.skip("one worker on SQLite; concurrent workers are a PostgreSQL set-up")
    messages = queue_without_pdf(database, session, sandbox, count=12)
    smtp.inbox.delay = 0.05  # long enough for the two workers to overlap
    now = utcnow()

    outcomes = run_concurrently(lambda n: send_pending(database, transport(smtp), now=now), 2)

    assert all(o.ok for o in outcomes), outcomes
    assert sum(o.value.sent for o in outcomes) == 12
    ids = [m["Message-ID"] for _, _, m in smtp.inbox.received]
    assert len(ids) == 12 and set(ids) == {message_id(m.dedupe_key, MAIL_FROM) for m in messages}
    session.expire_all()
    assert {(m.status, m.attempts) for m in session.query(OutboxMessage)} == {("sent", 1)}
