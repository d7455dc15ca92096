"""Adding payment methods of every type on Billing details: the type chooser (Card | PayPal | Bank account),
PayPal's approval, bank accounts (ACH or SEPA, by the account's currency) and verifying micro-deposits.

The card form is ``cards.new`` (the chooser's first type); each other type's form opens with a GET that renders the section (HTMX) or the page with that form open, so the
chooser works without JavaScript. Saved methods of every type then share the card routes (default, delete).
"""
from __future__ import annotations

from flask import Blueprint, request, url_for

from ..billing.payment_methods import bank_accounts, cards, paypal
from ..errors import DomainError
from ..models import utcnow
from ..payments.gateway import BankAccountDetails, MandateAcceptance
from .auth import customer_required
from .billing import BillingPage
from . import cards as cards_routes
from .cards import _attach_error, _recovering, card_added, finished, section
from .context import account_id, actor, client_ip, db, gateway, new_key, settings
from .forms import AchForm, MicrodepositForm, PayPalForm, SepaForm
from .rendering import go_to

bp = Blueprint("payment_methods", __name__, url_prefix="/billing/payment-methods")


def _offer():
    return bank_accounts.bank_offer(db(), account_id(), intervals=settings().bank_account_intervals)


def _empty_bank_form(offer):
    """The bank form that fits the account, as it opens: ACH for US dollars, SEPA for euros."""
    return (SepaForm if offer.method_type == "sepa_debit" else AchForm)(formdata=None)


def _bank_page(offer, form, *, status: int = 200):
    return section(BillingPage(adding_type="bank", bank_offer=offer, form=form), status=status)


def _stripe_refusal():
    """Stripe mode: these forms post account details, which must go to Stripe and never to us. An old page
    posting one gets the Payment Element form instead, saying why."""
    return cards_routes.stripe_form(error="Enter the account in Stripe's secure form below: account details are "
                                          "never sent to us.", status=409)


@bp.get("/paypal/new")
@customer_required
def new_paypal():
    """Open the PayPal form: one button that sends the customer to approve."""
    if settings().processor == "stripe":
        return cards_routes.new()
    return section(BillingPage(adding_type="paypal", form=PayPalForm(idempotency_key=new_key(),
                                                                      save_as_default=_recovering())))


@bp.get("/bank/new")
@customer_required
def new_bank():
    """Open the bank account form that fits the account (ACH or SEPA), or say why none is offered."""
    if settings().processor == "stripe":
        return cards_routes.new()
    offer = _offer()
    form = _empty_bank_form(offer) if offer.method_type else None
    if form is not None:
        form.idempotency_key.data, form.save_as_default.data = new_key(), _recovering()
    return _bank_page(offer, form)


@bp.post("/paypal")
@customer_required
def add_paypal():
    """Start saving PayPal: the customer is sent to approve it (the sandbox's test approval page)."""
    if settings().processor != "sandbox":
        return _stripe_refusal()
    form = PayPalForm()
    if not form.validate_on_submit():
        form.form_errors.append("The form is out of date. Choose PayPal again.")
        return section(BillingPage(adding_type="paypal", form=PayPalForm(idempotency_key=new_key())), status=422)
    try:
        intent = paypal.start_paypal_setup(db(), gateway(), account_id(), save_as_default=form.save_as_default.data,
                                           return_url=url_for("billing.page", _external=True),
                                           idempotency_key=f"setup-{account_id()}-{form.idempotency_key.data}")
    except DomainError as exc:
        form.form_errors.append(exc.message)
        form.idempotency_key.data = new_key()
        return section(BillingPage(adding_type="paypal", form=form), status=exc.status)
    return go_to(intent.redirect_url)


@bp.post("/bank")
@customer_required
def add_bank():
    """Save a bank account (sandbox test details): ACH or SEPA by the account's currency, annual plans only."""
    if settings().processor != "sandbox":
        return _stripe_refusal()
    offer = _offer()
    if offer.method_type is None:
        return _bank_page(offer, None, status=409)
    form = AchForm() if offer.method_type == "us_bank_account" else SepaForm()
    if not form.validate_on_submit():
        return _bank_page(offer, form, status=422)
    sepa = offer.method_type == "sepa_debit"
    bank = BankAccountDetails(
        type=offer.method_type, holder_name=form.holder_name.data,
        iban=form.iban.data if sepa else "",
        routing_number="" if sepa else form.routing_number.data,
        account_number="" if sepa else form.account_number.data,
        account_holder_type="individual" if sepa else form.account_holder_type.data,
        verification_method="instant" if sepa else form.verification_method.data)
    mandate = MandateAcceptance(accepted_at=int(utcnow().timestamp()), ip_address=client_ip(),
                                user_agent=request.headers.get("User-Agent", "")[:500])
    try:
        saved = bank_accounts.add_bank_account(
            db(), gateway(), account_id(), intervals=settings().bank_account_intervals, bank=bank, mandate=mandate,
            save_as_default=form.save_as_default.data, idempotency_key=f"setup-{account_id()}-{form.idempotency_key.data}",
            actor=actor(), now=utcnow())
    except DomainError as exc:
        _attach_error(form, exc)
        form.idempotency_key.data = new_key()
        return _bank_page(offer, form, status=exc.status)
    return card_added(saved)


@bp.post("/<int:card_id>/verify")
@customer_required
def verify(card_id: int):
    """Verify a pending ACH account with the two micro-deposit amounts, or the code on the deposit."""
    method = cards.get_card(db(), account_id(), card_id)
    form = MicrodepositForm()
    if not form.validate_on_submit():
        return section(BillingPage(verifying=method.id, verify_form=form), status=422)
    code = (form.descriptor_code.data or "").strip() or None
    amounts = None if code else [int(form.amount1.data), int(form.amount2.data)]
    try:
        method = bank_accounts.verify_microdeposits(db(), gateway(), account_id(), method.id, amounts=amounts,
                                                    descriptor_code=code, actor=actor(), now=utcnow())
    except DomainError as exc:
        target = form.descriptor_code if exc.field == "descriptor_code" else form.amount1
        if exc.field in ("amounts", "descriptor_code"):
            target.errors = [*target.errors, exc.message]
        else:
            form.form_errors.append(exc.message)
        return section(BillingPage(verifying=method.id, verify_form=form), status=exc.status)
    if method.is_default:  # it was the account's only usable method
        return finished(f"{method.label} is verified and is now your default payment method.")
    return finished(f"{method.label} is verified. You can now set it as your default payment method.")
