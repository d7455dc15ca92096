"""Sending the outbox: the worker's last step.

Each due message (``pending`` and ``next_attempt_at <= now``) is claimed, built, handed to the transport and
marked ``sent`` in its own transaction, so one slow or failing message never holds up the others' records.
A failed attempt is recorded and retried later (1, 5, 15 and 60 minutes, then every 4 hours); after
``MAX_ATTEMPTS`` the message is marked ``failed``. It stays in the table either way: nothing is lost while the
SMTP server is down.

Delivery is at-least-once, and the window for a second copy is small and known: it opens when the SMTP server
has accepted the message (end of DATA) and closes when our ``sent`` mark commits. If the process dies or the
database goes away in between, the message is still ``pending`` and will be sent again. Both copies carry the
same Message-ID (derived from the dedupe key), so a receiver can tell the second is a copy. Exactly-once is not
possible across two systems that do not share a transaction; what we guarantee is that a message recorded as
sent is never picked again, and that two workers never send one message at the same time.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..config import Settings
from ..db import Database
from ..models import Invoice, OutboxMessage
from .transports import (Attachment, DeliveryError, FileTransport, SmtpTransport, Transport, TransportUnavailable,
                         build_email)

log = logging.getLogger(__name__)

# Waits after the 1st, 2nd, 3rd and 4th failed attempt; later ones wait RETRY_EVERY.
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1))
RETRY_EVERY = timedelta(hours=4)
# 20 attempts span about 2.7 days: long enough to ride out an outage or fix a misconfigured relay.
MAX_ATTEMPTS = 20
# SQLite only: how long a claimed message is hidden from other passes while it is being sent. Far longer than
# an SMTP exchange can take (each step times out after 10 s), so only a crashed worker's claim ever expires.
CLAIM_LEASE = timedelta(minutes=10)


@dataclass
class SendStats:
    sent: int = 0
    retrying: int = 0  # failed this time, scheduled again
    failed: int = 0  # gave up: marked failed
    unavailable: str = ""  # why the pass stopped early (the server could not be reached)
    errors: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.sent + self.retrying + self.failed


def retry_delay(attempts: int) -> timedelta | None:
    """How long to wait after ``attempts`` failed attempts; ``None`` when it is time to give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return BACKOFF[attempts - 1] if attempts <= len(BACKOFF) else RETRY_EVERY


def mail_folder(settings: Settings) -> Path:
    """Where e-mails are written as ``.eml`` files when no SMTP server is configured."""
    return Path(settings.instance_path) / "mail"


def build_transport(settings: Settings) -> Transport:
    """SMTP when ``PORTAL_SMTP_URL`` is set, otherwise files under the instance folder."""
    if settings.smtp_url:
        return SmtpTransport(settings.smtp_url, mail_from=settings.mail_from)
    return FileTransport(mail_folder(settings), mail_from=settings.mail_from)


def _due(now: datetime):
    return (select(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id))


def _claim(session: Session, database: Database, now: datetime) -> OutboxMessage | None:
    """The next due message, protected from every other worker until this session commits.

    PostgreSQL: the row stays locked (``FOR UPDATE``) through the SMTP call and until the result commits;
    other workers skip it (``SKIP LOCKED``) and take the next one. If this worker dies, the lock goes with
    its connection and the message is due again at once.

    SQLite has no row locks, and holding its single write lock during an SMTP call would stall the web app.
    So the claim is a lease instead: ``next_attempt_at`` moves ``CLAIM_LEASE`` ahead in a compare-and-set
    update (the WHERE repeats "still due", and SQLite runs writers one at a time, so only one worker's
    update can match). The lease is committed before sending; if this worker dies the message is due
    again when the lease ends.
    """
    if not database.is_sqlite:
        return session.scalars(_due(now).limit(1).with_for_update(skip_locked=True)).first()
    for _ in range(10):  # another worker may take the candidate between our read and our update
        candidate = session.scalar(_due(now).with_only_columns(OutboxMessage.id).limit(1))
        if candidate is None:
            return None
        claimed = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == candidate, OutboxMessage.status == "pending",
                   OutboxMessage.next_attempt_at <= now)
            .values(next_attempt_at=now + CLAIM_LEASE)
            .execution_options(synchronize_session=False))
        if claimed.rowcount == 1:
            return session.get(OutboxMessage, candidate)
    return None


def load_attachments(session: Session, message: OutboxMessage, *, now: datetime) -> list[Attachment]:
    """The files a message carries, rendered now (the row stores what to attach, not the bytes)."""
    files = []
    for spec in message.attachments or []:
        if spec.get("type") != "invoice_pdf":
            raise ValueError(f"unknown attachment type {spec.get('type')!r}")
        # Imported here: the PDF renderer (and its heavy dependencies) only matters when a PDF is attached.
        from ..documents.pdf import invoice_pdf

        invoice = session.get(Invoice, spec.get("invoice_id"))
        if invoice is None or not invoice.number:
            raise LookupError(f"invoice {spec.get('invoice_id')} to attach does not exist or is not issued")
        files.append(Attachment(filename=f"{invoice.number}.pdf", content_type="application/pdf",
                                data=invoice_pdf(session, invoice, now=now)))
    return files


def build_message(session: Session, message: OutboxMessage, *, mail_from: str, now: datetime) -> EmailMessage:
    return build_email(dedupe_key=message.dedupe_key, to=message.to_address, subject=message.subject,
                       text_body=message.text_body, html_body=message.html_body, mail_from=mail_from,
                       date=message.created_at, attachments=load_attachments(session, message, now=now))


def _record(message: OutboxMessage, error: Exception | None, *, now: datetime, stats: SendStats) -> None:
    message.attempts += 1
    if error is None:
        message.status, message.sent_at, message.last_error = "sent", now, ""
        stats.sent += 1
        return
    message.last_error = f"{now:%Y-%m-%d %H:%M:%S} attempt {message.attempts}: {error}"[:500]
    delay = retry_delay(message.attempts)
    if delay is None:
        message.status = "failed"
        stats.failed += 1
    else:
        message.next_attempt_at = now + delay
        stats.retrying += 1
    stats.errors.append(f"#{message.id} {error}")
    log.warning("outbox message %s (%s) not sent, attempt %s: %s", message.id, message.dedupe_key,
                message.attempts, error)


def send_pending(database: Database, transport: Transport, *, now: datetime, limit: int = 100) -> SendStats:
    """Send up to ``limit`` due messages, one transaction each; see the module docstring for the guarantees."""
    stats = SendStats()
    try:
        for _ in range(limit):
            with database.session() as session:
                message = _claim(session, database, now)
                if message is None:
                    break
                error: Exception | None = None
                email = None
                try:
                    # A savepoint: a failure here (say, the PDF cache racing another worker) must not spoil
                    # the transaction that records the attempt.
                    with session.begin_nested():
                        email = build_message(session, message, mail_from=transport.mail_from, now=now)
                except Exception as exc:  # a missing invoice or a broken renderer: retry, never send without it
                    log.exception("outbox message %s could not be built", message.id)
                    error = exc
                if database.is_sqlite:
                    session.commit()  # the lease: nothing of SQLite's stays locked during the SMTP call
                if email is not None:
                    try:
                        transport.send(email)
                    except DeliveryError as exc:
                        error = exc
                    except Exception as exc:  # noqa: BLE001 - an unexpected failure is still just a failed attempt
                        log.exception("outbox message %s: transport failed unexpectedly", message.id)
                        error = exc
                _record(message, error, now=now, stats=stats)
                session.commit()
                if isinstance(error, TransportUnavailable):
                    # The server is down or refuses us: the remaining messages are left due, untouched, for the
                    # next pass instead of each waiting out a connection timeout now.
                    stats.unavailable = str(error)
                    break
    finally:
        transport.close()
    return stats
