"""Changing an account's billing information: address, billing e-mail and VAT number.

Only future invoices see a change: issued invoices carry a snapshot of these fields (see invoices).
Every change is audited with its old and new values.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from ... import audit
from ...audit import Actor
from ...errors import InvalidInput, NotFound
from ...models import Account
from . import vat
from .addresses import validate_address

EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")

VAT_NOTICES = {
    "pending": "We couldn't confirm your VAT number with the EU's VIES service just now, so it is pending "
               "verification. We'll try again; until it is confirmed, VAT is added to your invoices.",
    "invalid": "The EU's VIES service says this VAT number is not registered, so VAT will be added to your "
               "invoices. Check the number, or contact your tax office.",
}


@dataclass(frozen=True)
class VatPolicy:
    """How VAT numbers are confirmed: offline (format and checksum) or also online with VIES."""

    vies_url: str | None = None
    vies_timeout: float = 3.0


@dataclass
class BillingInfoChange:
    account: Account
    changed: dict[str, tuple[str, str]]
    vat_notice: str | None = None


def billing_info_values(account: Account) -> dict[str, str]:
    return {"name": account.name, "address_line1": account.address_line1, "address_line2": account.address_line2,
            "city": account.city, "postal_code": account.postal_code, "region": account.region,
            "country": account.country, "billing_email": account.billing_email, "vat_number": account.vat_number}


def current_billing_info(session: Session, account_id: int) -> dict[str, str]:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    return billing_info_values(account)


def validate_billing_info(values: dict[str, str], *, with_address: bool = True) -> tuple[dict[str, str], str]:
    """The normalised values and the VAT number's offline status ("valid" or "none"); raises InvalidInput
    with every field's message. The Billing details page always sends an address; the API may leave it out
    for an account that has none yet (``with_address=False``): then only the name and e-mail are checked,
    and a VAT number is refused, as it can only be checked against the address's country."""
    clean, errors = validate_address(values)
    if not with_address:
        errors = {field: text for field, text in errors.items() if field == "name"}
        if len(clean["name"]) > 200 and "name" not in errors:
            errors["name"] = "Use at most 200 characters."
    email = clean["billing_email"]
    if not email:
        errors["billing_email"] = "Enter the e-mail address that should receive invoices."
    elif len(email) > 254 or not EMAIL.match(email):
        errors["billing_email"] = "Enter a valid e-mail address, like billing@example.com."

    vat_status = "none"
    if clean["vat_number"] and not with_address:
        errors["vat_number"] = "Give the billing address too: a VAT number is checked against its country."
    elif clean["vat_number"] and "country" not in errors:
        check = vat.check_vat_number(clean["vat_number"], clean["country"])
        clean["vat_number"] = check.number
        if check.status != "valid":
            errors["vat_number"] = check.message
        else:
            vat_status = "valid"
    if errors:
        raise InvalidInput(errors)
    return clean, vat_status


def update_billing_info(session: Session, account_id: int, values: dict[str, str], *, actor: Actor, now: datetime,
                        policy: VatPolicy = VatPolicy(), with_address: bool = True) -> BillingInfoChange:
    """Validate and save; on any error nothing is saved and every field's message is returned."""
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    clean, vat_status = validate_billing_info(values, with_address=with_address)
    notice = None

    before = billing_info_values(account)
    same_number = clean["vat_number"] == account.vat_number and clean["country"] == account.country
    if clean["vat_number"] and policy.vies_url:
        if same_number and account.vat_status == "valid":
            vat_status = "valid"  # already confirmed; don't ask VIES again for an unchanged number
        else:
            answer = vat.confirm_with_vies(clean["vat_number"], url=policy.vies_url, timeout=policy.vies_timeout)
            vat_status = {"valid": "valid", "invalid": "invalid"}.get(answer, "pending")
            notice = VAT_NOTICES.get(vat_status)

    changed = {k: (before[k], clean[k]) for k in before if before[k] != clean[k]}
    if vat_status != account.vat_status:
        changed["vat_status"] = (account.vat_status, vat_status)
    if not changed:
        return BillingInfoChange(account=account, changed={}, vat_notice=notice)
    account.name = clean["name"]
    for field in ("address_line1", "address_line2", "city", "postal_code", "region", "country", "billing_email",
                  "vat_number"):
        setattr(account, field, clean[field])
    account.vat_status = vat_status
    audit.record(session, actor, "billing_info.updated", now=now, account_id=account.id,
                 changes={k: {"old": old, "new": new} for k, (old, new) in changed.items()})
    session.commit()
    return BillingInfoChange(account=account, changed=changed, vat_notice=notice)
