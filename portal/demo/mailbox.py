"""Demo mode's mailbox: the e-mails the worker wrote as ``.eml`` files under the instance folder.

Registered in demo mode only. It shows every account's mail to anyone logged in, which is right for a demo on
127.0.0.1 with published passwords and wrong anywhere else, so outside demo mode these URLs do not exist.

E-mail HTML is never put into a portal page (it would run under the portal's origin). The page shows the
headers and the text part; the HTML part is served on its own, as a document sandboxed by its
Content-Security-Policy (a unique origin, no scripts, no forms), and the raw ``.eml`` can be downloaded.
"""
from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from functools import wraps
from pathlib import Path

from flask import Blueprint, abort, make_response, send_file
from flask_login import current_user

from ..extensions import login_manager
from ..notifications.sender import mail_folder
from ..web.context import settings
from ..web.rendering import render

bp = Blueprint("demo_mail", __name__, url_prefix="/demo/mail")

# The names FileTransport writes: letters, digits, dots and dashes, ending in .eml; never a path.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,200}\.eml$")
LISTED = 200
HTML_PART_CSP = ("sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                 "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return view(*args, **kwargs)

    return wrapper


def _folder() -> Path:
    return mail_folder(settings())


def _mail_file(folder: Path, name: str) -> Path | None:
    """The file called ``name`` in ``folder``, if it is one of ours: no other name, no other folder, no symlink."""
    if not NAME.fullmatch(name) or ".." in name:
        return None
    path = folder / name
    if path.is_symlink() or not path.is_file() or path.resolve().parent != folder.resolve():
        return None
    return path


def _path(name: str) -> Path:
    path = _mail_file(_folder(), name)
    if path is None:
        abort(404)
    return path


def _parse(path: Path, *, headers_only: bool = False) -> EmailMessage:
    with path.open("rb") as handle:
        return BytesParser(policy=policy.default).parse(handle, headersonly=headers_only)


def _date(message: EmailMessage) -> datetime | None:
    try:
        return parsedate_to_datetime(str(message["Date"])).astimezone(timezone.utc)
    except (TypeError, ValueError):
        return None


def _summary(path: Path, message: EmailMessage) -> dict:
    return {"name": path.name, "date": _date(message), "to": str(message["To"] or ""),
            "from": str(message["From"] or ""), "subject": str(message["Subject"] or ""),
            "message_id": str(message["Message-ID"] or "")}


@bp.get("")
@login_required
def inbox():
    """Every e-mail written so far, newest first."""
    folder = _folder()
    paths = sorted((path for path in (_mail_file(folder, p.name) for p in folder.glob("*.eml")) if path),
                   reverse=True)[:LISTED] if folder.is_dir() else []
    messages = [_summary(path, _parse(path, headers_only=True)) for path in paths]
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    messages.sort(key=lambda m: (m["date"] or oldest, m["name"]), reverse=True)
    return render("demo/mail.html", messages=messages, folder=folder)


@bp.get("/<name>")
@login_required
def show(name: str):
    """One e-mail: its headers, its text part and its attachments."""
    path = _path(name)
    message = _parse(path)
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    attachments = [{"index": i, "filename": part.get_filename() or f"attachment-{i + 1}",
                    "content_type": part.get_content_type(), "size": len(part.get_payload(decode=True) or b"")}
                   for i, part in enumerate(message.iter_attachments())]
    return render("demo/mail.html", message=_summary(path, message),
                  text=text_part.get_content() if text_part is not None else "",
                  has_html=html_part is not None, attachments=attachments)


@bp.get("/<name>/html")
@login_required
def html_part(name: str):
    """The HTML part on its own, as the recipient's mail client would show it, but without any power."""
    html = _parse(_path(name)).get_body(preferencelist=("html",))
    if html is None:
        abort(404)
    response = make_response(html.get_content())
    response.mimetype = "text/html"
    response.headers["Content-Security-Policy"] = HTML_PART_CSP
    return response


@bp.get("/<name>/raw")
@login_required
def raw(name: str):
    """The .eml file as written, to open in a mail client."""
    path = _path(name)
    response = send_file(io.BytesIO(path.read_bytes()), mimetype="message/rfc822", as_attachment=True,
                         download_name=path.name)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<name>/attachments/<int(min=0):index>")
@login_required
def attachment(name: str, index: int):
    """One attachment (an invoice PDF), as a download."""
    parts = list(_parse(_path(name)).iter_attachments())
    if index >= len(parts):
        abort(404)
    part = parts[index]
    filename = re.sub(r"[^A-Za-z0-9._-]+", "_", part.get_filename() or "") or f"attachment-{index + 1}"
    response = send_file(io.BytesIO(part.get_payload(decode=True) or b""), mimetype=part.get_content_type(),
                         as_attachment=True, download_name=filename)
    response.headers["Cache-Control"] = "no-store"
    return response
