"""API keys: the secrets the product's servers send as ``Authorization: Bearer portal_sk_…``.

A key is shown once, when it is made; the database keeps its SHA-256 (a key is 256 random bits, so a plain
hash is as good as a slow one and lets every call find its row with one indexed lookup) and its first
characters, so a list can tell keys apart. The ``portal_sk_`` prefix is there for secret scanners: a key
pasted into a repository or a ticket is recognisable as ours.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..audit import Actor
from ..errors import InvalidInput, NotFound
from ..models import ApiKey

PREFIX = "portal_sk_"
# Enough of the key to tell two apart in a list, far too little to guess the rest from.
SHOWN_CHARACTERS = len(PREFIX) + 6
NAME_LENGTH = 100


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(session: Session, *, name: str, now: datetime, actor: Actor | None = None) -> tuple[ApiKey, str]:
    """A new key named ``name``: the row, and the key itself (the only time it exists outside the caller)."""
    name = (name or "").strip()
    if not name or len(name) > NAME_LENGTH or "\x00" in name:
        raise InvalidInput({"name": f"Give the key a name of 1 to {NAME_LENGTH} characters."})
    plaintext = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, prefix=plaintext[:SHOWN_CHARACTERS], key_hash=_digest(plaintext), created_at=now)
    session.add(key)
    session.flush()
    audit.record(session, actor or Actor.system(), "api_key.created", now=now, account_id=None,
                 key_id=key.id, name=name)
    session.commit()
    return key, plaintext


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke(session: Session, key_id: int, *, now: datetime, actor: Actor | None = None) -> ApiKey:
    """Stop the key working at once; revoking a revoked key changes nothing."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"There is no API key {key_id}.")
    if key.revoked_at is None:
        key.revoked_at = now
        audit.record(session, actor or Actor.system(), "api_key.revoked", now=now, account_id=None,
                     key_id=key.id, name=key.name)
        session.commit()
    return key


def authenticate(session: Session, header: str | None, now: datetime, *, call: str = "",
                 ip: str = "") -> ApiKey | None:
    """The live key an ``Authorization`` header carries, or None (missing, malformed, unknown or revoked).

    A hit stamps ``last_used_at`` and records the call (``call`` is e.g. ``"GET /api/v1/plans"``) with the
    key's name, so every use of a key shows in the audit log, reads included."""
    scheme, _, key = (header or "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key.startswith(PREFIX) or len(key) > 200 or "\x00" in key:
        return None
    found = session.scalar(select(ApiKey).where(ApiKey.key_hash == _digest(key)))
    if found is None or found.revoked_at is not None:
        return None
    found.last_used_at = now
    audit.record(session, Actor.for_api_key(found.name, ip=ip), "api.call", now=now, account_id=None,
                 call=call[:200])
    session.commit()
    return found
