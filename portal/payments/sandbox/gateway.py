"""``SandboxGateway``: the built-in processor behind ``PaymentGateway`` and ``SandboxControls``.

It answers like Stripe does for its documented test numbers, so the demo and the tests walk the same paths a
real processor would send them down (declines, 3-D Secure, cards that attach but fail later). Each method
hands over to the module that does that job; this class only holds the books and the clock.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ...db import Database
from ...models import utcnow
from ..gateway import (BankAccountDetails, CardDetails, CardInfo, CheckoutSession, MandateAcceptance, PaymentDetails,
                       PaymentResult, RefundResult, SetupIntent)
from . import cards, charges, checkout, controls, events, methods, refunds
from .books import Books


class SandboxGateway:
    name = "sandbox"

    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow):
        # ``clock`` stamps everything the sandbox writes; a ``--now`` run passes its pretended moment.
        self.books = Books(database, clock)

    # --- PaymentGateway: customers and cards ---------------------------------------------------------

    def create_customer(self, *, email: str, name: str, account_id: int, idempotency_key: str) -> str:
        return cards.create_customer(self.books, email=email, name=name, account_id=account_id,
                                     idempotency_key=idempotency_key)

    def create_setup_intent(self, *, customer_id: str, metadata: dict, idempotency_key: str,
                            card: CardDetails | None = None, method_type: str = "card",
                            bank: BankAccountDetails | None = None, mandate: MandateAcceptance | None = None,
                            return_url: str | None = None) -> SetupIntent:
        if method_type == "card":
            return cards.create_setup_intent(self.books, customer_id=customer_id, metadata=metadata,
                                             idempotency_key=idempotency_key, card=card)
        return methods.create_setup_intent(self.books, customer_id=customer_id, metadata=metadata,
                                           idempotency_key=idempotency_key, method_type=method_type, bank=bank,
                                           mandate=mandate, return_url=return_url)

    def verify_microdeposits(self, setup_intent_id: str, *, amounts: list[int] | None = None,
                             descriptor_code: str | None = None, idempotency_key: str) -> SetupIntent:
        return methods.verify_microdeposits(self.books, setup_intent_id, amounts=amounts,
                                            descriptor_code=descriptor_code)

    def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntent:
        return cards.retrieve_setup_intent(self.books, setup_intent_id)

    def retrieve_card(self, payment_method_id: str) -> CardInfo:
        return cards.retrieve_card(self.books, payment_method_id)

    def update_card(self, payment_method_id: str, *, exp_month: int, exp_year: int, cardholder_name: str,
                    idempotency_key: str) -> CardInfo:
        return cards.update_card(self.books, payment_method_id, exp_month=exp_month, exp_year=exp_year,
                                 cardholder_name=cardholder_name)

    def set_default_card(self, customer_id: str, payment_method_id: str, *, idempotency_key: str) -> None:
        cards.set_default_card(self.books, customer_id, payment_method_id)

    def detach_card(self, payment_method_id: str, *, idempotency_key: str) -> None:
        cards.detach_card(self.books, payment_method_id)

    # --- PaymentGateway: charges ----------------------------------------------------------------------

    def charge(self, *, customer_id: str, payment_method_id: str, amount_cents: int, currency: str,
               idempotency_key: str, metadata: dict, off_session: bool = True) -> PaymentResult:
        return charges.charge(self.books, customer_id=customer_id, payment_method_id=payment_method_id,
                              amount_cents=amount_cents, currency=currency, idempotency_key=idempotency_key,
                              metadata=metadata, off_session=off_session)

    def retrieve_payment(self, payment_id: str) -> PaymentResult:
        return charges.retrieve_payment(self.books, payment_id)

    def payment_details(self, payment_id: str) -> PaymentDetails:
        return charges.payment_details(self.books, payment_id)

    # --- PaymentGateway: hosted checkout --------------------------------------------------------------

    def create_checkout_session(self, *, customer_id: str, amount_cents: int, currency: str, description: str,
                                metadata: dict, success_url: str, cancel_url: str, expires_at: int,
                                idempotency_key: str) -> CheckoutSession:
        return checkout.create_checkout_session(
            self.books, customer_id=customer_id, amount_cents=amount_cents, currency=currency,
            description=description, metadata=metadata, success_url=success_url, cancel_url=cancel_url,
            expires_at=expires_at, idempotency_key=idempotency_key)

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        return checkout.retrieve_checkout_session(self.books, session_id)

    def expire_checkout_session(self, session_id: str, *, idempotency_key: str) -> CheckoutSession:
        return checkout.expire_checkout_session(self.books, session_id)

    # --- PaymentGateway: refunds ----------------------------------------------------------------------

    def refund(self, payment_id_or_charge_id: str, amount_cents: int, idempotency_key: str,
               metadata: dict) -> RefundResult:
        return refunds.refund(self.books, payment_id_or_charge_id, amount_cents, idempotency_key, metadata)

    def list_refunds(self, payment_id_or_charge_id: str) -> list[RefundResult]:
        return refunds.list_refunds(self.books, payment_id_or_charge_id)

    # --- SandboxControls ------------------------------------------------------------------------------

    def authenticate_setup_intent(self, setup_intent_id: str, *, approve: bool) -> SetupIntent:
        return cards.authenticate_setup_intent(self.books, setup_intent_id, approve=approve)

    def complete_payment_authentication(self, payment_id: str, *, approve: bool) -> PaymentResult:
        return charges.complete_payment_authentication(self.books, payment_id, approve=approve)

    def answer_paypal_setup(self, setup_intent_id: str, *, approve: bool, email: str) -> SetupIntent:
        return methods.answer_paypal(self.books, setup_intent_id, approve=approve, email=email)

    def pay_checkout_session(self, session_id: str, *, method: str, outcome: str) -> tuple[CheckoutSession, str | None]:
        return checkout.pay_checkout_session(self.books, session_id, method=method, outcome=outcome)

    def checkout_methods(self, session_id: str) -> dict[str, tuple[str, str, bool]]:
        return checkout.checkout_methods(self.books, session_id)

    def checkout_details(self, object_id: str) -> dict:
        return controls.object_data(self.books, object_id)

    def dashboard_refund(self, payment_id_or_charge_id: str, amount_cents: int | None = None) -> RefundResult:
        return controls.dashboard_refund(self.books, payment_id_or_charge_id, amount_cents)

    def due_events(self, *, now: int) -> list[dict]:
        return events.due_events(self.books, now=now)

    def mark_delivered(self, event_id: str) -> None:
        events.mark_delivered(self.books, event_id)

    def count_charges(self, *, status: str | None = "succeeded") -> int:
        return controls.count_charges(self.books, status=status)

    def customer_default_card(self, customer_id: str) -> str | None:
        return cards.customer_default_card(self.books, customer_id)
