"""Two customers' tabs (or a customer and an agent) changing one account's default or backup at the same
moment: each change waits for the other, and the account ends with exactly one of each, never a 500 from
the one-default or one-backup index."""
from __future__ import annotations

from portal.audit import Actor
from portal.billing.payment_methods import backup, cards
from portal.models import PaymentMethod, utcnow

from ..helpers import add_card, make_customer, run_concurrently


def test_defaults_set_at_the_same_moment_leave_exactly_one_default(database, session, gateway):
    account, _ = make_customer(session)
    methods = [add_card(session, gateway, account, default=(i == 0)) for i in range(4)]
    ids = [m.id for m in methods]

    def choose(index):
        with database.session() as own:
            return cards.set_default_card(own, gateway, account.id, ids[index], actor=Actor.system(),
                                          now=utcnow()).card.id

    outcomes = run_concurrently(choose, 4)
    assert all(o.ok for o in outcomes), outcomes
    session.expire_all()
    defaults = session.query(PaymentMethod).filter_by(account_id=account.id, is_default=True).all()
    assert len(defaults) == 1


def test_backups_set_at_the_same_moment_leave_exactly_one_backup(database, session, gateway):
    account, _ = make_customer(session)
    methods = [add_card(session, gateway, account, default=(i == 0)) for i in range(5)]
    ids = [m.id for m in methods[1:]]

    def choose(index):
        with database.session() as own:
            return backup.set_backup_method(own, account.id, ids[index], actor=Actor.system(), now=utcnow()).id

    outcomes = run_concurrently(choose, 4)
    assert all(o.ok for o in outcomes), outcomes
    session.expire_all()
    assert session.query(PaymentMethod).filter_by(account_id=account.id, is_backup=True).count() == 1
