"""Typed domain errors. Each carries a code, a human message and the HTTP status the web layer uses;
``field`` names the form field the message belongs next to, when there is one."""
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
