"""Every domain error of the portal, in one place.

Each carries a ``code`` (a stable kind for logs and JSON answers), a human ``message`` and the HTTP status the
web layer answers with, so ``portal/web/errors.py`` maps any of them to a page without routes translating by
hand; ``field`` names the form field the message belongs next to, when there is one.

This module sits at the bottom of the portal: anything may import it, and it imports nothing of the portal.
"""
from __future__ import annotations


class DomainError(Exception):
    code = "domain_error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class NotFound(DomainError):
    """Also what another account's object looks like: we never confirm it exists."""

    code = "not_found"
    status = 404


class CardInUse(DomainError):
    code = "card_in_use"
    status = 409


class CardSetupFailed(DomainError):
    """The processor declined the card, 3-D Secure failed, or the card could not be saved."""

    code = "card_setup_failed"
    status = 422


class MethodNotVerified(DomainError):
    """An ACH account still waiting for its micro-deposits: it can't be the default or be charged yet."""

    code = "method_not_verified"
    status = 409


class MethodNotOffered(DomainError):
    """A kind of payment method this account can't save now (a bank account on a monthly plan)."""

    code = "method_not_offered"
    status = 409


class ProcessorDown(DomainError):
    code = "processor_unavailable"
    status = 503


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


class InvalidInput(DomainError):
    """Several fields are wrong at once; ``errors`` maps each field to its message."""

    code = "invalid_input"
    status = 422

    def __init__(self, errors: dict[str, str]):
        super().__init__("Please correct the highlighted fields.")
        self.errors = errors


# --- collecting money ---------------------------------------------------------------------------

class PaymentInProgress(DomainError):
    """Another collection of the invoice is in flight (a charge, a bank debit processing, a payment page
    being opened); a second one could take the money twice."""

    code = "payment_in_progress"
    status = 409


class NothingToPay(DomainError):
    code = "nothing_to_pay"
    status = 409


class InvoiceNotOpen(DomainError):
    code = "invoice_not_open"
    status = 409


class InvoiceNotPayable(DomainError):
    code = "invoice_not_payable"
    status = 409


class InvoiceNotIssued(NotFound):
    """Drafts have no PDF: they have no number, no snapshots and may still change. A NotFound, so a
    web route that lets it through answers 404, as it does for a draft's page."""

    code = "invoice_not_issued"


# --- refunds ------------------------------------------------------------------------------------

class RefundRefused(DomainError):
    """The invoice can't be refunded at all (not paid, nothing left)."""

    code = "refund_refused"
    status = 409


class RefundFailed(DomainError):
    """The processor refused the refund; nothing was sent back."""

    code = "refund_failed"
    status = 422


# --- processor events ---------------------------------------------------------------------------

class MalformedEvent(DomainError):
    """A correctly signed event that is not shaped as the processor sends them."""

    code = "malformed_event"
    status = 400


# --- logging in, own profile, viewing as a customer ---------------------------------------------

class WrongPassword(InvalidInput):
    """The current password given to confirm a change is wrong: a guess, which the web layer rate-limits."""

    code = "wrong_password"

    def __init__(self):
        super().__init__({"current_password": "That isn't your current password."})


class NestedImpersonation(DomainError):
    code = "impersonation_nested"
    status = 409


class NoCustomerToView(DomainError):
    code = "impersonation_no_customer"
    status = 409


class ReauthenticationRequired(DomainError):
    code = "reauthentication_required"
    status = 401


# --- the host product's integration ------------------------------------------------------------

class EmailTaken(DomainError):
    """The address logs in to another account (or is staff's): one person, one account."""

    code = "email_taken"
    status = 409


class PlanExists(DomainError):
    code = "plan_exists"
    status = 409


class SubscriptionExists(DomainError):
    """One live subscription per account: a second plan is a plan change, not another subscription."""

    code = "subscription_exists"
    status = 409


# --- managing the plan --------------------------------------------------------------------------

class SubscriptionNotChangeable(DomainError):
    """The subscription is not in a state that allows this (already canceled, nothing scheduled, past due)."""

    code = "subscription_not_changeable"
    status = 409


class PlanChangeDeclined(DomainError):
    """The card declined an upgrade's charge: the customer stays on the plan they had."""

    code = "plan_change_declined"
    status = 402
