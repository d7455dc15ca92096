"""Where the worker hands e-mails over: an SMTP server, or ``.eml`` files in a folder (demo mode, and any
installation without ``PORTAL_SMTP_URL``).

A transport only delivers a built :class:`email.message.EmailMessage`; :func:`build_email` turns an outbox row
into one. Its Message-ID is derived from the outbox dedupe key, so if a crash ever makes us send a message twice
the two copies carry the same Message-ID and a receiver (or a person reading the logs) can tell one is a copy.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import hashlib
import os
import re
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr, parsedate_to_datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_FROM = "Billing <billing@example.com>"
SMTP_TIMEOUT = 10.0


class DeliveryError(Exception):
    """This message was not accepted; it may be retried later."""


class TransportUnavailable(DeliveryError):
    """The server could not be reached, or would not let us in (TLS, login): nothing specific to the message,
    so the next ones would fail the same way and the rest of the pass is skipped."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


def message_id(dedupe_key: str, mail_from: str = DEFAULT_FROM) -> str:
    """``<slug.hash@domain>``: the same for every copy of one outbox message, and safe in a header and a file name.

    The slug keeps the key readable; the hash keeps two keys that slug alike apart.
    """
    slug = re.sub(r"[^A-Za-z0-9-]+", "-", dedupe_key).strip("-")[:80] or "message"
    digest = hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:12]
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    domain = re.sub(r"[^A-Za-z0-9.-]+", "", domain) or "localhost"
    return f"<{slug}.{digest}@{domain}>"


def build_email(*, dedupe_key: str, to: str, subject: str, text_body: str, html_body: str, mail_from: str,
                date: datetime, attachments: list[Attachment] = ()) -> EmailMessage:
    """A multipart message: plain text, with the HTML as its alternative, then any attachments.

    ``date`` is when the message was queued (not when this attempt runs), so a resent copy is the same message.
    """
    email = EmailMessage()
    email["From"] = mail_from
    email["To"] = to
    email["Subject"] = subject
    email["Date"] = format_datetime(date.astimezone(timezone.utc))
    email["Message-ID"] = message_id(dedupe_key, mail_from)
    email.set_content(text_body)
    if html_body:
        email.add_alternative(html_body, subtype="html")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        email.add_attachment(attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename)
    return email


class Transport(ABC):
    """Delivers built messages. ``close`` ends whatever connection a pass opened."""

    mail_from: str = DEFAULT_FROM

    @abstractmethod
    def send(self, email: EmailMessage) -> None:
        """Deliver one message, or raise DeliveryError / TransportUnavailable."""

    def close(self) -> None:
        pass


class SmtpTransport(Transport):
    """``smtp://[user:password@]host[:port][?starttls=1]`` or ``smtps://[user:password@]host[:465]``.

    One connection is opened for a pass and reused for its messages; after any error it is dropped, so a
    message is never retried on a connection in an unknown state (that could deliver it twice).
    """

    def __init__(self, url: str, *, mail_from: str = DEFAULT_FROM, timeout: float = SMTP_TIMEOUT,
                 ssl_context: ssl.SSLContext | None = None):
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"PORTAL_SMTP_URL must start with smtp:// or smtps://, not {parts.scheme or '(none)'}://")
        if not parts.hostname:
            raise ValueError("PORTAL_SMTP_URL has no host name")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.starttls = query.get("starttls", "").lower() in {"1", "true", "yes", "on"}
        if self.starttls and self.implicit_tls:
            raise ValueError("PORTAL_SMTP_URL: smtps:// is already encrypted; starttls applies to smtp:// only")
        # Credentials are percent-encoded in a URL (an @ or : in a password must be).
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else ""
        self.mail_from = mail_from
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._connection: smtplib.SMTP | None = None

    def __repr__(self) -> str:  # never the password: transports end up in logs
        scheme = "smtps" if self.implicit_tls else "smtp"
        user = f"{self.username}@" if self.username else ""
        return f"SmtpTransport({scheme}://{user}{self.host}:{self.port}{'?starttls=1' if self.starttls else ''})"

    def _context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        try:
            if self.implicit_tls:
                connection = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
            else:
                connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            try:
                connection.ehlo()
                if self.starttls:
                    connection.starttls(context=self._context())
                    connection.ehlo()
                if self.username:
                    connection.login(self.username, self.password)
            except BaseException:
                connection.close()
                raise
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportUnavailable(f"{self!r}: {_describe(exc)}") from exc
        return connection

    def send(self, email: EmailMessage) -> None:
        if self._connection is None:
            self._connection = self._connect()
        try:
            # send_message raises unless every recipient was accepted (we send to one address).
            self._connection.send_message(email)
        except smtplib.SMTPServerDisconnected as exc:
            self.close()
            raise TransportUnavailable(f"{self!r}: {_describe(exc)}") from exc
        except smtplib.SMTPException as exc:  # an answer about this message (a refused recipient, say)
            self.close()
            raise DeliveryError(_describe(exc)) from exc
        except OSError as exc:  # checked last: SMTPException is an OSError too
            self.close()
            raise TransportUnavailable(f"{self!r}: {_describe(exc)}") from exc

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (OSError, smtplib.SMTPException):
            connection.close()


class FileTransport(Transport):
    """Writes each message to ``<folder>/<date>-<message id>.eml``.

    The name comes from the Date and Message-ID headers, which are the same for every copy of one outbox
    message: writing it again replaces the file, so the folder never shows a message twice. Files are written
    to a temporary name and renamed, so a reader never sees half a message.
    """

    def __init__(self, folder: Path | str, *, mail_from: str = DEFAULT_FROM):
        self.folder = Path(folder)
        self.mail_from = mail_from

    @staticmethod
    def filename(email: EmailMessage) -> str:
        date = parsedate_to_datetime(email["Date"]).astimezone(timezone.utc)
        local = str(email["Message-ID"]).strip().strip("<>").partition("@")[0]
        local = re.sub(r"[^A-Za-z0-9.-]+", "-", local).strip(".-") or "message"
        return f"{date:%Y%m%d-%H%M%S}-{local}.eml"

    def send(self, email: EmailMessage) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            target = self.folder / self.filename(email)
            fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".writing-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(email.as_bytes())
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise TransportUnavailable(f"cannot write to {self.folder}: {exc}") from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "recipient refused: " + "; ".join(f"{rcpt} {code} {_text(msg)}" for rcpt, (code, msg)
                                                  in exc.recipients.items())
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__} {exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
