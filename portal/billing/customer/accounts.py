"""Accounts as the product in front knows them: by its own id (``Account.external_id``).

``put_account`` creates or updates one idempotently, with the same checks as the Billing details page
(``billing_info.validate_billing_info``): the API refuses what the page refuses, naming the same fields.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ... import audit
from ...audit import Actor
from ...errors import InvalidInput, NotFound
from ...models import Account, Invoice, Subscription
from ...money import CURRENCY_RULE, valid_currency
from .billing_info import VatPolicy, billing_info_values, update_billing_info, validate_billing_info

# The product's id for an account: what it already uses (a number, a UUID, a slug), bounded so it fits the
# column and can sit in a URL path.
EXTERNAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
EXTERNAL_ID_RULE = "1 to 100 letters, digits, '_', '.', ':' or '-', starting with a letter or digit."
ADDRESS_FIELDS = ("address_line1", "address_line2", "city", "postal_code", "region", "country")


@dataclass(frozen=True)
class AccountPut:
    account: Account
    created: bool


def valid_external_id(external_id: str) -> bool:
    return isinstance(external_id, str) and EXTERNAL_ID.fullmatch(external_id) is not None


def find_account(session: Session, external_id: str) -> Account:
    """The account the product calls ``external_id``; NotFound for any other id (well-formed or not)."""
    account = session.scalar(select(Account).where(Account.external_id == external_id)) \
        if valid_external_id(external_id) else None
    if account is None:
        raise NotFound(f"There is no account with the id {external_id!r}.")
    return account


def _has_billed(session: Session, account_id: int) -> bool:
    return bool(session.scalar(select(exists().where(Invoice.account_id == account_id))) or
                session.scalar(select(exists().where(Subscription.account_id == account_id))))


def put_account(session: Session, external_id: str, values: dict[str, str], *, currency: str | None,
                actor: Actor, now: datetime, policy: VatPolicy = VatPolicy()) -> AccountPut:
    """Create the account ``external_id``, or update it to ``values`` (name, billing_email, vat_number and the
    address fields; a field left out keeps its value). Sending the same values again changes nothing.

    The address may be left out while the account has none (a product often knows only a name and an
    e-mail at sign-up); once given it is checked in full, as on the page. The currency is set when the
    account is made (USD unless given) and may change only until it is billed in it."""
    if not valid_external_id(external_id):
        raise NotFound(f"There is no account with the id {external_id!r}.")
    account = session.scalar(select(Account).where(Account.external_id == external_id))
    merged = billing_info_values(account) if account is not None else dict.fromkeys(
        ("name", "billing_email", "vat_number", *ADDRESS_FIELDS), "")
    merged.update({field: value for field, value in values.items() if value is not None})
    with_address = any(merged[field] for field in ADDRESS_FIELDS)
    errors: dict[str, str] = {}
    if currency is not None and not valid_currency(currency):
        errors["currency"] = CURRENCY_RULE
    elif account is not None and currency is not None and currency != account.currency \
            and _has_billed(session, account.id):
        errors["currency"] = f"The account is billed in {account.currency} already; its currency can't change."
    try:
        validate_billing_info(merged, with_address=with_address)
    except InvalidInput as exc:
        errors = {**exc.errors, **errors}
    if errors:
        raise InvalidInput(errors)

    created = account is None
    if created:
        account = Account(external_id=external_id, name=merged["name"].strip(),
                          billing_email=merged["billing_email"].strip(), currency=currency or "USD", created_at=now)
        session.add(account)
        try:
            session.flush()
        except IntegrityError:
            # Another request made the same account a moment ago: this one becomes the update it now is.
            session.rollback()
            return put_account(session, external_id, values, currency=currency, actor=actor, now=now, policy=policy)
        audit.record(session, actor, "account.created", now=now, account_id=account.id, external_id=external_id)
    elif currency is not None and currency != account.currency:
        audit.record(session, actor, "account.currency_changed", now=now, account_id=account.id,
                     old=account.currency, new=currency)
        account.currency = currency
    # Saves (and audits) what changed, and commits; with nothing changed it commits nothing, so commit here
    # too: a new account, or a new currency, has to be kept either way.
    update_billing_info(session, account.id, merged, actor=actor, now=now, policy=policy, with_address=with_address)
    session.commit()
    return AccountPut(account=account, created=created)
