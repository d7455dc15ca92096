"""The sandbox's books: its objects (customers, cards, intents, checkout sessions, refunds, events) in the
``sandbox_*`` tables, and the idempotency keys that make a replayed request return its first answer.

Every row is stamped by the sandbox's clock, not the wall clock, so a run that pretends it is another
moment (``--now``) leaves rows dated at that moment.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...db import Database
from ...models import SandboxIdempotencyKey, SandboxObject
from ..gateway import ProcessorError


class Books:
    def __init__(self, database: Database, clock: Callable[[], datetime]):
        self.db = database
        self.clock = clock

    def timestamp(self) -> int:
        """The sandbox's now as Unix time, the way Stripe's payloads carry times."""
        return int(self.clock().timestamp())

    def reading(self):
        return self.db.session()

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One transaction of the sandbox's own: all of it is written, or none."""
        with self.db.session() as session, session.begin():
            yield session

    def idempotent(self, key: str, create: Callable[[Session], dict]) -> dict:
        """Run ``create`` once per key; a replay returns the first result, as Stripe's keys do."""
        try:
            # A new key is the usual case (every renewal's charge), so the key is not looked up first: the
            # answer and the key are written in one transaction, and the key's primary key refuses a replay,
            # which rolls back everything this ``create`` wrote and answers what the first request answered.
            with self.writing() as session:
                result = create(session)
                # A plain Core INSERT (no object to track, no ORM bulk path): it is written once and only ever
                # read back by key.
                session.execute(insert(SandboxIdempotencyKey.__table__).values(
                    key=key, result=result, created_at=self.clock()))
            return result
        except IntegrityError:
            # A replay, or a concurrent request with the same key that won the race: answer what it answered.
            stored = self._stored(key)
            if stored is None:
                raise
            return stored
        except ProcessorError:
            # A replay can fail where its first request did not (the card detached since, the amount already
            # refunded): the first answer stands.
            stored = self._stored(key)
            if stored is None:
                raise
            return stored

    def _stored(self, key: str) -> dict | None:
        with self.db.session() as session:
            stored = session.get(SandboxIdempotencyKey, key)
            return None if stored is None else stored.result

    def new(self, session: Session, prefix: str, kind: str, data: dict) -> SandboxObject:
        obj = SandboxObject(id=new_id(prefix), kind=kind, data=data, created_at=self.clock())
        if kind == "setup_intent":
            obj.data = {**data, "client_secret": f"{obj.id}_secret_{secrets.token_hex(8)}"}
        session.add(obj)
        session.flush()
        return obj

    def insert(self, session: Session, prefix: str, kind: str, data: dict) -> SandboxObject:
        """``new`` for an object this request writes once and never changes (a card charge's intent): a plain
        INSERT, and the object returned is not tracked by the session (later changes would not be saved)."""
        obj = SandboxObject(id=new_id(prefix), kind=kind, data=data, created_at=self.clock())
        session.execute(insert(SandboxObject.__table__).values(id=obj.id, kind=kind, data=data, created_at=obj.created_at))
        return obj

    @staticmethod
    def get_data(session: Session, object_id: str, kind: str) -> dict:
        """An object's data, read with a plain query (no object in the session: a read-only use)."""
        table = SandboxObject.__table__
        data = session.connection().execute(
            select(table.c.data).where(table.c.id == object_id, table.c.kind == kind)).scalar()
        if data is None:
            raise ProcessorError(f"No such {kind.replace('_', ' ')}: {object_id}", code="resource_missing")
        return data

    @staticmethod
    def get(session: Session, object_id: str, kind: str) -> SandboxObject:
        obj = session.scalar(select(SandboxObject).where(SandboxObject.id == object_id, SandboxObject.kind == kind))
        if obj is None:
            raise ProcessorError(f"No such {kind.replace('_', ' ')}: {object_id}", code="resource_missing")
        return obj


def new_id(prefix: str) -> str:
    return f"{prefix}_sbx_{secrets.token_hex(10)}"
