"""The sandbox processor's own pages: its hosted checkout page, the test bank's 3-D Secure step and the test
PayPal approval page.

Registered in sandbox mode only. They stand in for pages Stripe and the bank show in Stripe mode, so they
reuse the web layer's login, card section and rendering; the templates say on every page that this is a
sandbox and no money moves.
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for

from ...billing.payment_methods import cards, paypal
from ...errors import DomainError, NotFound
from ...billing.collecting.checkout import sandbox_checkout
from ...billing.collecting.events import deliver_sandbox_events
from ...models import utcnow
from ...web.auth import customer_required
from ...web.cards import card_added, new_key, section
from ...web.context import account_id, actor, database, db, gateway, retry_policy
from ...web.forms import PayPalApprovalForm, SandboxCardForm
from ...web.rendering import render
from ..gateway import SandboxControls
from .checkout import OUTCOMES

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox")


def _controls() -> SandboxControls:
    """The gateway's tester-only side; these pages exist only when the sandbox is the processor."""
    sandbox = gateway()
    if not isinstance(sandbox, SandboxControls):
        raise NotFound("That page does not exist.")
    return sandbox


@bp.get("/setup-intents/<setup_intent_id>/authenticate")
@customer_required
def authenticate(setup_intent_id: str):
    """Show the test bank's 3-D Secure step for a card being saved."""
    intent = cards.pending_setup(db(), gateway(), account_id(), setup_intent_id)
    return section(authenticating=intent)


@bp.post("/setup-intents/<setup_intent_id>/authenticate")
@customer_required
def authenticate_submit(setup_intent_id: str):
    """Approve or fail the test bank's check, then save the card if it passed."""
    intent = cards.pending_setup(db(), gateway(), account_id(), setup_intent_id)
    decision = request.form.get("decision")
    if decision not in ("approve", "fail"):
        # Only the two buttons send a decision: anything else is refused and the step stays open, untouched.
        return section(status=422, toast="Choose Approve authentication or Fail authentication.",
                       authenticating=intent)
    _controls().authenticate_setup_intent(intent.id, approve=decision == "approve")
    try:
        saved = cards.complete_card_setup(db(), gateway(), account_id(), intent.id, actor=actor(), now=utcnow())
    except DomainError as exc:
        form = SandboxCardForm(formdata=None, idempotency_key=new_key(),
                               save_as_default=intent.metadata.get("save_as_default") == "1")
        form.form_errors.append(exc.message)
        return section(status=exc.status, adding=True, form=form)
    return card_added(saved)


# --- the test PayPal approval page (the path is methods.PAYPAL_APPROVAL_PATH) ---------------------------

@bp.get("/setup-intents/<paypal_intent_id>/paypal")
@customer_required
def paypal_approval(paypal_intent_id: str):
    """Stand in for PayPal's approval page: which PayPal account, then Approve or Cancel."""
    intent = paypal.pending_paypal(db(), gateway(), account_id(), paypal_intent_id)
    form = PayPalApprovalForm(formdata=None, email=cards._account(db(), account_id()).billing_email)
    return render("sandbox/paypal.html", intent=intent, form=form)


@bp.post("/setup-intents/<paypal_intent_id>/paypal")
@customer_required
def paypal_answer(paypal_intent_id: str):
    """Approve: the PayPal account is saved and the customer is back on Billing details. Cancel: back, nothing saved."""
    intent = paypal.pending_paypal(db(), gateway(), account_id(), paypal_intent_id)
    decision = request.form.get("decision")
    form = PayPalApprovalForm()
    if decision == "cancel":  # (the app-wide CSRF check has passed already)
        _controls().answer_paypal_setup(intent.id, approve=False, email="")
        flash("PayPal was not added: you cancelled on PayPal's page. Nothing was saved.", "error")
        return redirect(url_for("billing.page") + "#payment-details", code=303)
    if decision != "approve" or not form.validate_on_submit():
        if decision not in ("approve", "cancel"):
            form.form_errors.append("Choose Approve or Cancel.")
        return render("sandbox/paypal.html", intent=intent, form=form, status=422)
    _controls().answer_paypal_setup(intent.id, approve=True, email=form.email.data)
    try:
        saved = cards.complete_card_setup(db(), gateway(), account_id(), intent.id, actor=actor(), now=utcnow())
    except DomainError as exc:
        flash(f"PayPal was not added: {exc.message}", "error")
        return redirect(url_for("billing.page") + "#payment-details", code=303)
    return card_added(saved)


# --- the sandbox's hosted checkout page ---------------------------------------------------------------

@bp.get("/checkout/<session_id>")
@customer_required
def checkout_page(session_id: str):
    """The sandbox's stand-in for Stripe Checkout: pick a method and what the payment should do."""
    checkout, raw = sandbox_checkout(db(), gateway(), _controls(), account_id(), session_id)
    return render("sandbox/checkout.html", checkout=checkout, raw=raw, methods=_controls().checkout_methods(session_id),
                  error=None)


@bp.post("/checkout/<session_id>")
@customer_required
def checkout_submit(session_id: str):
    """Apply the tester's choice; its events go through the same handlers as Stripe's webhooks."""
    checkout, raw = sandbox_checkout(db(), gateway(), _controls(), account_id(), session_id)
    method, outcome = request.form.get("method", ""), request.form.get("outcome", "")
    methods = _controls().checkout_methods(session_id)
    if method not in methods or outcome not in OUTCOMES:
        return render("sandbox/checkout.html", checkout=checkout, raw=raw, methods=methods, status=422,
                      error="Choose a payment method and what the payment should do.")
    checkout, declined = _controls().pay_checkout_session(session_id, method=method, outcome=outcome)
    if declined:
        return render("sandbox/checkout.html", checkout=checkout, raw=raw, methods=methods, status=402,
                      error=declined)
    deliver_sandbox_events(database(), gateway(), now=utcnow(), policy=retry_policy())
    target = raw["success_url"].replace("{CHECKOUT_SESSION_ID}", checkout.id)
    if checkout.status == "expired":
        target = raw["cancel_url"]
    return redirect(target, code=303)
