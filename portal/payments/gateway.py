"""What the portal needs from a payment processor, as a Protocol over plain dataclasses.

Two implementations: ``sandbox.SandboxGateway`` (in-process, deterministic test cards) and
``stripe_gateway.StripeGateway`` (stripe-python). Services depend on this module only. The sandbox also
offers ``SandboxControls``, what a tester does by hand; code that needs them asks for that capability with
``isinstance(gateway, SandboxControls)``, never by the gateway's name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class CardInfo:
    """A saved payment method as the processor describes it; never the card or account number itself.

    Named for cards, which came first; ``type`` says what it is (card | paypal | us_bank_account |
    sepa_debit). PayPal gives ``email``; banks give ``bank_name``, ``last4``, ``country`` and, for SEPA, the
    mandate reference. ``verification`` is ``pending`` for an ACH account waiting for micro-deposits.
    """

    processor_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    cardholder_name: str
    customer_id: str | None = None
    type: str = "card"
    email: str = ""
    bank_name: str = ""
    country: str = ""
    mandate_reference: str = ""
    verification: str = "verified"


@dataclass(frozen=True)
class CardDetails:
    """Raw card data. Only the sandbox ever receives this: in Stripe mode the browser sends the card to
    Stripe.js and the server sees a SetupIntent id."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str
    cardholder_name: str


@dataclass(frozen=True)
class BankAccountDetails:
    """Raw bank account data, like ``CardDetails`` only ever sent to the sandbox: in Stripe mode the Payment
    Element sends the account to Stripe and the server sees a SetupIntent id.

    ``type`` is ``us_bank_account`` (routing and account number) or ``sepa_debit`` (IBAN)."""

    type: str
    holder_name: str
    email: str = ""
    routing_number: str = ""
    account_number: str = ""
    account_holder_type: str = "individual"  # individual | company (ACH)
    iban: str = ""
    # ACH: ``instant`` (the bank confirms the account at once) or ``microdeposits`` (two small deposits the
    # customer reads on their statement and types back), as Stripe's ``verification_method``.
    verification_method: str = "instant"


@dataclass(frozen=True)
class MandateAcceptance:
    """The customer's acceptance of a debit mandate (SEPA, ACH), as Stripe's ``mandate_data`` records it."""

    accepted_at: int  # Unix time
    ip_address: str
    user_agent: str


@dataclass(frozen=True)
class SetupIntent:
    id: str
    status: str  # requires_payment_method | requires_action | processing | succeeded | canceled
    customer_id: str | None
    client_secret: str | None = None
    payment_method_id: str | None = None
    metadata: dict = field(default_factory=dict)
    error_message: str | None = None
    payment_method_type: str = "card"  # card | paypal | us_bank_account | sepa_debit
    # What the customer still has to do when ``status`` is requires_action: ``use_stripe_sdk`` (3-D Secure),
    # ``redirect_to_url`` (PayPal approval, at ``redirect_url``) or ``verify_with_microdeposits`` (ACH).
    next_action: str | None = None
    redirect_url: str | None = None


@dataclass(frozen=True)
class PaymentResult:
    """The outcome of charging a saved card. Declines are results, not exceptions: they are normal."""

    payment_id: str
    status: str  # succeeded | failed | requires_action | processing
    amount_cents: int
    currency: str
    payment_method_id: str | None = None
    charge_id: str | None = None  # the transaction id printed on invoices
    failure_code: str | None = None
    failure_message: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True)
class CheckoutSession:
    """A hosted payment page for one invoice (Stripe Checkout, or the sandbox's own)."""

    id: str
    url: str
    status: str  # open | complete | expired
    payment_status: str  # unpaid | paid | no_payment_required
    payment_intent_id: str | None = None
    expires_at: int | None = None  # Unix time, as Stripe gives it
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentDetails:
    """How a payment was made, for the invoice: "Visa •••• 4242", "iDEAL", and the transaction id."""

    label: str
    transaction_id: str


@dataclass(frozen=True)
class RefundResult:
    """A refund as the processor describes it. ``metadata`` carries our own refund id, which is how a
    refund reported by a webhook before we recorded the call's answer is still matched to its row."""

    id: str
    status: str  # pending | succeeded | failed
    amount: int
    currency: str = ""
    payment_id: str | None = None
    charge_id: str | None = None
    metadata: dict = field(default_factory=dict)
    failure_message: str | None = None


class ProcessorError(Exception):
    """The processor refused or could not be reached. ``param`` names the card field at fault, when
    there is one, so the page can put the message next to it."""

    code = "processor_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.param = param


class CardError(ProcessorError):
    """The card was declined or is invalid (Stripe's ``card_error``)."""

    code = "card_declined"


class AuthenticationFailed(CardError):
    code = "authentication_failed"


class ProcessorUnavailable(ProcessorError):
    """Network trouble or a processor outage: nothing is known to have happened; safe to retry."""

    code = "processor_unavailable"


class PaymentGateway(Protocol):
    name: str  # "sandbox" | "stripe"

    def create_customer(self, *, email: str, name: str, account_id: int, idempotency_key: str) -> str: ...

    def create_setup_intent(self, *, customer_id: str, metadata: dict, idempotency_key: str,
                            card: CardDetails | None = None, method_type: str = "card",
                            bank: BankAccountDetails | None = None, mandate: MandateAcceptance | None = None,
                            return_url: str | None = None) -> SetupIntent:
        """Begin saving a payment method of ``method_type``. Sandbox: ``card`` or ``bank`` carries the test
        details (and ``mandate`` the customer's acceptance for debits); PayPal answers requires_action with a
        ``redirect_url`` back to ``return_url``. Stripe: details are refused; the browser confirms the intent."""
        ...

    def verify_microdeposits(self, setup_intent_id: str, *, amounts: list[int] | None = None,
                             descriptor_code: str | None = None, idempotency_key: str) -> SetupIntent:
        """Confirm an ACH account with the two micro-deposit amounts (in cents) or the descriptor code the
        customer read on their statement. A wrong answer raises CardError with ``param`` "amounts" or
        "descriptor_code"."""
        ...

    def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntent: ...

    def retrieve_card(self, payment_method_id: str) -> CardInfo: ...

    def update_card(self, payment_method_id: str, *, exp_month: int, exp_year: int, cardholder_name: str,
                    idempotency_key: str) -> CardInfo: ...

    def set_default_card(self, customer_id: str, payment_method_id: str, *, idempotency_key: str) -> None: ...

    def detach_card(self, payment_method_id: str, *, idempotency_key: str) -> None: ...

    def charge(self, *, customer_id: str, payment_method_id: str, amount_cents: int, currency: str,
               idempotency_key: str, metadata: dict, off_session: bool = True) -> PaymentResult:
        """Charge a saved card. The same key always returns the first outcome and never charges twice.
        Raises ProcessorUnavailable when the outcome is unknown (then ask again with the same key)."""
        ...

    def retrieve_payment(self, payment_id: str) -> PaymentResult: ...

    def payment_details(self, payment_id: str) -> PaymentDetails: ...

    def create_checkout_session(self, *, customer_id: str, amount_cents: int, currency: str, description: str,
                                metadata: dict, success_url: str, cancel_url: str, expires_at: int,
                                idempotency_key: str) -> CheckoutSession: ...

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession: ...

    def expire_checkout_session(self, session_id: str, *, idempotency_key: str) -> CheckoutSession:
        """Close an open payment page so it can no longer take money. Already expired: returned as it is.
        Already paid: ProcessorError with code ``checkout_complete``."""
        ...

    def refund(self, payment_id_or_charge_id: str, amount_cents: int, idempotency_key: str,
               metadata: dict) -> RefundResult:
        """Send ``amount_cents`` of a payment back to where it came from. The same key never refunds twice."""
        ...

    def list_refunds(self, payment_id_or_charge_id: str) -> list[RefundResult]:
        """Every refund of a payment, wherever it was made (our calls and the processor's dashboard)."""
        ...


@runtime_checkable
class SandboxControls(Protocol):
    """What only a tester does, in the sandbox: answer for the test bank, choose a checkout's outcome, refund
    from the "dashboard", and fetch the events a real processor would send as webhooks.

    Runtime-checkable, so the event delivery and the sandbox's pages can ask a gateway whether it has them.
    """

    def authenticate_setup_intent(self, setup_intent_id: str, *, approve: bool) -> SetupIntent:
        """The test bank's 3-D Secure answer for a card being saved."""
        ...

    def complete_payment_authentication(self, payment_id: str, *, approve: bool) -> PaymentResult:
        """The test bank's 3-D Secure answer for a charge that needed the customer."""
        ...

    def answer_paypal_setup(self, setup_intent_id: str, *, approve: bool, email: str) -> SetupIntent:
        """The tester's Approve (as the PayPal account ``email``) or Cancel on the sandbox's PayPal page."""
        ...

    def pay_checkout_session(self, session_id: str, *, method: str,
                             outcome: str) -> tuple[CheckoutSession, str | None]:
        """The tester's choice on the sandbox checkout page. Returns the session and, when the payment was
        declined on the page itself (as Checkout shows card declines), the message to show. Outcomes travel
        as Stripe-shaped events through the same handlers as Stripe's webhooks."""
        ...

    def checkout_methods(self, session_id: str) -> dict[str, tuple[str, str, bool]]:
        """What the sandbox checkout page offers, by form value: (label on the page, label recorded on the
        payment, whether it is a bank redirect). The customer's saved cards come first; deleted ones are gone."""
        ...

    def checkout_details(self, object_id: str) -> dict:
        """The sandbox's own record of a checkout session: amount, description and return URLs for its page."""
        ...

    def dashboard_refund(self, payment_id_or_charge_id: str, amount_cents: int | None = None) -> RefundResult:
        """A refund made by hand outside the portal (all that is left, without an amount): the portal learns
        of it only from the ``charge.refunded`` event, as with Stripe's dashboard."""
        ...

    def due_events(self, *, now: int) -> list[dict]:
        """Events whose time has come, oldest first (the sandbox's webhook deliveries). A delayed payment
        outcome (the bank confirming later) becomes true at that moment, before its event is delivered."""
        ...

    def mark_delivered(self, event_id: str) -> None: ...

    def count_charges(self, *, status: str | None = "succeeded") -> int:
        """How many payments the sandbox has taken (tests use it to prove nothing was charged twice)."""
        ...

    def customer_default_card(self, customer_id: str) -> str | None:
        """What the sandbox will charge for this customer (tests compare it with our default)."""
        ...
