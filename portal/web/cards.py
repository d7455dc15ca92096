"""Saved cards on the Billing details page: add, edit, set default, delete.

Every action is a plain form that works without JavaScript (303 back to the page); HTMX posts the same
form and gets the Payment details section back, with the subscription section and a toast out of band.
Opening a form (add, edit, confirm delete) is a GET that renders the page, or the section, with that
form open, so the no-JS page and the HTMX partial are one template.
"""
from __future__ import annotations


from flask import Blueprint, flash, jsonify, redirect, request, url_for

from ..billing.payment_methods import backup, bank_accounts, cards
from ..billing.subscriptions.access import paid_access
from ..errors import DomainError
from ..models import BANK_TYPES, utcnow
from ..payments.gateway import CardDetails
from .auth import customer_required
from .billing import PAGE, BillingPage, page_context, render_page
from .context import account_id, actor, db, gateway, new_key, settings
from .forms import EditCardForm, SandboxCardForm, SetupIntentForm, SetupReturnForm, StripeCardForm
from .rendering import done, oob_answer, oob_insert_after, oob_remove, render_block

bp = Blueprint("cards", __name__, url_prefix="/billing/cards")

SECTION = "payment_details"


def section(state: BillingPage | None = None, *, status: int = 200, toast: str | None = None, **fields):
    """The Payment details section for HTMX (with the subscription summary kept true), else the page.

    ``fields`` are BillingPage's own (a misspelt one is a TypeError), for the sandbox's 3-D Secure step,
    which names its state that way."""
    if fields:
        if state is not None:
            raise TypeError("pass a BillingPage or its fields, not both")
        state = BillingPage(**fields)
    return render_page(state, block=SECTION, oob=("subscription",), status=status, toast=toast)


def finished(message: str):
    if paid_access(db(), account_id()).status in ("past_due", "suspended"):
        # A new card or default is usually the fix for a failed payment: offer to use it right away.
        message += " Use “Retry payment” above to pay the outstanding balance with your default card now."
    return done(message, url_for("billing.page"), partial=lambda msg: section(toast=msg))


def card_added(card):
    """The answer to every way a card gets saved (form, 3-D Secure step, Stripe.js)."""
    if card.verification == "pending":
        # Not usable yet, so neither the default nor the fix for a failed payment.
        return finished(f"{card.label} was added. Two small deposits will arrive in 1-2 business days: "
                        "enter their amounts under the account to verify it.")
    default = " and set as your default card" if card.type == "card" else " and set as your default payment method"
    saved = f"{card.label} was added{default if card.is_default else ''}."
    if _recovering():
        return recovery_offer(card, saved)
    return finished(saved)


# --- recovering a failed payment in one step --------------------------------------------------------

def _recovering() -> bool:
    """Past due or Suspended: the method being saved is most likely the fix for the failed payment."""
    return paid_access(db(), account_id()).status in ("past_due", "suspended")


def recovery_offer(card, saved: str):
    """The answer to a method saved while a payment has failed: one button that pays the overdue amount with
    it now (through Retry payment), named in the toast. Without JavaScript the page opens with that button."""
    message = f"{saved} Pay the overdue amount with {card.label} now: use the button below."
    if request.htmx:
        return section(BillingPage(pay_with=card.id), toast=message)
    flash(message, "success")
    return redirect(url_for("billing.page", pay_with=card.id) + "#payment-details", code=303)


@bp.get("")
@customer_required
def index():
    """The Payment details section on its own (what Cancel swaps back in); the page for plain links."""
    if not request.htmx:
        return redirect(url_for("billing.page"))
    return section()


# --- add a card -------------------------------------------------------------------------------------

@bp.get("/new")
@customer_required
def new():
    """Open the add-a-card form (the sandbox's test form, or Stripe's card field)."""
    # While a payment has failed the new method should be the one charged from now on: default pre-selected.
    default = _recovering()
    if settings().processor == "stripe":
        return _stripe_form(SetupIntentForm(idempotency_key=new_key(), save_as_default=default))
    return section(BillingPage(adding=True, form=SandboxCardForm(idempotency_key=new_key(), save_as_default=default)))


@bp.post("")
@customer_required
def create():
    """Save a card: the sandbox's test card, or in Stripe mode a SetupIntent confirmed by Stripe.js."""
    if settings().processor == "stripe":
        return _complete_stripe_setup()
    form = SandboxCardForm()
    if not form.validate_on_submit():
        return section(BillingPage(adding=True, form=form), status=422)
    card = CardDetails(number=form.number.data, exp_month=form.expiry.month, exp_year=form.expiry.year,
                       cvc=form.cvc.data, cardholder_name=form.cardholder_name.data)
    try:
        intent = cards.start_card_setup(db(), gateway(), account_id(), card=card,
                                        save_as_default=form.save_as_default.data,
                                        idempotency_key=f"setup-{account_id()}-{form.idempotency_key.data}")
        if intent.status == "requires_action":
            target = url_for("sandbox.authenticate", setup_intent_id=intent.id)
            if request.htmx:
                return section(BillingPage(authenticating=intent))
            return redirect(target, code=303)
        saved = cards.complete_card_setup(db(), gateway(), account_id(), intent.id, actor=actor(), now=utcnow())
    except DomainError as exc:
        _attach_error(form, exc)
        # The processor has seen this key: a corrected card must go out under a new one.
        form.idempotency_key.data = new_key()
        return section(BillingPage(adding=True, form=form), status=exc.status)
    return card_added(saved)


@bp.post("/setup-intents")
@customer_required
def create_setup_intent():
    """Stripe mode: a SetupIntent of the chosen type (card, PayPal, bank account) for Stripe.js to confirm in
    the browser (with 3-D Secure, PayPal's approval or the bank's verification if asked). JSON both ways:
    errors carry the field they are about."""
    form = SetupIntentForm()
    if settings().processor != "stripe" or not form.validate_on_submit():
        return jsonify(error="The card form is out of date. Reload the page and try again."), 400
    method_type = form.method_type.data or "card"
    if method_type in BANK_TYPES:
        # The same rule as the sandbox's bank form: refused before any processor call, with the same sentence.
        offer = _bank_offer()
        if method_type != offer.method_type:
            return jsonify(error=offer.refusal or "That kind of bank account is not offered for this account.",
                           field="method_type"), 422
    elif method_type not in ("card", "paypal"):
        return jsonify(error="Choose one of the payment methods offered.", field="method_type"), 422
    try:
        intent = cards.start_card_setup(db(), gateway(), account_id(), save_as_default=form.save_as_default.data,
                                        method_type=method_type, return_url=_return_url(),
                                        idempotency_key=f"setup-{account_id()}-{method_type}-"
                                                        f"{form.idempotency_key.data}")
    except DomainError as exc:
        return jsonify(error=exc.message, field=exc.field), exc.status
    return jsonify(client_secret=intent.client_secret, method_type=intent.payment_method_type)


@bp.get("/setup-return")
@customer_required
def setup_return():
    """Where Stripe sends the customer back from approving a method elsewhere (PayPal), with
    ``?setup_intent=…&redirect_status=…``. A GET changes nothing: the page shows a form that posts the id
    (the browser sends it at once), or, when the approval was refused, the add form again with why."""
    form = SetupReturnForm(request.args)
    if not form.validate():
        return redirect(url_for("billing.page"))
    if form.redirect_status.data == "failed":
        return _stripe_form(SetupIntentForm(idempotency_key=new_key()),
                            error="The payment method was not approved, so nothing was saved. Try again or "
                                  "choose another way to pay.")
    return section(BillingPage(setup_return=form.setup_intent.data))


def _return_url() -> str:
    return url_for("cards.setup_return", _external=True)


def stripe_form(*, error: str | None = None, status: int = 200):
    """The Stripe-mode add form as it opens, for the other add routes Stripe mode replaces."""
    return _stripe_form(SetupIntentForm(idempotency_key=new_key()), error=error, status=status)


def _stripe_form(form: SetupIntentForm, *, error: str | None = None, status: int = 200):
    """The Stripe-mode add form: the kinds of method this account may save, Stripe's fields for each."""
    return section(BillingPage(adding=True, form=form, card_form_error=error, bank_offer=_bank_offer()),
                   status=status)


def _bank_offer():
    return bank_accounts.bank_offer(db(), account_id(), intervals=settings().bank_account_intervals)


def _complete_stripe_setup():
    form = StripeCardForm()
    if not form.validate_on_submit():
        return _stripe_form(SetupIntentForm(idempotency_key=new_key()),
                            error="The card could not be confirmed. Please enter it again.", status=422)
    try:
        saved = cards.complete_card_setup(db(), gateway(), account_id(), form.setup_intent.data, actor=actor(),
                                          now=utcnow())
    except DomainError as exc:
        return _stripe_form(SetupIntentForm(idempotency_key=new_key()), error=exc.message, status=exc.status)
    return card_added(saved)


# --- edit -----------------------------------------------------------------------------------------

@bp.get("/<int:card_id>/edit")
@customer_required
def edit(card_id: int):
    """Open the edit form for a card's expiry date and cardholder name."""
    card = cards.get_card(db(), account_id(), card_id)
    form = EditCardForm(cardholder_name=card.cardholder_name, expiry=f"{card.exp_month:02d} / {card.exp_year % 100:02d}")
    return section(BillingPage(editing=card.id, form=form))


@bp.post("/<int:card_id>")
@customer_required
def update(card_id: int):
    """Save a card's new expiry date or cardholder name."""
    card = cards.get_card(db(), account_id(), card_id)
    form = EditCardForm()
    if not form.validate_on_submit():
        return section(BillingPage(editing=card.id, form=form), status=422)
    try:
        card = cards.update_card(db(), gateway(), account_id(), card.id, exp_month=form.expiry.month,
                                 exp_year=form.expiry.year, cardholder_name=form.cardholder_name.data,
                                 actor=actor(), now=utcnow())
    except DomainError as exc:
        _attach_error(form, exc, default_field="expiry")
        return section(BillingPage(editing=card.id, form=form), status=exc.status)
    return finished(f"{card.label} was updated.")


# --- default and delete ---------------------------------------------------------------------------

@bp.post("/<int:card_id>/default")
@customer_required
def make_default(card_id: int):
    """Make a card the one renewals charge. HTMX gets only what changed (``_default_moved``)."""
    try:
        change = cards.set_default_card(db(), gateway(), account_id(), card_id, actor=actor(), now=utcnow())
    except DomainError as exc:
        return _card_error(card_id, exc)
    message = f"{change.card.label} is now your default {'card' if change.card.is_card else 'payment method'}."
    if request.htmx:
        moved = _default_moved(change, message)
        if moved is not None:
            return moved
    return finished(message)


def _default_moved(change: cards.DefaultChange, message: str):
    """The HTMX answer to a new default, without the other cards: the new default's row takes the old one's
    place at the top of the list, the old default's row goes where the list orders it now (after the card
    before it), "Charged to" names the new card, and the toast. None when that is not all that changed, and
    the whole section is the answer: no previous default, or a failed payment (the banner's Retry payment
    names the card too), or cards that changed meanwhile."""
    if change.previous is None:
        return None
    context = page_context(BillingPage(), sections=frozenset({SECTION}))
    overview = context["overview"]
    summary = overview.subscription
    if summary is not None and summary.subscription.status in ("past_due", "suspended"):
        return None
    ids = [c.id for c in overview.cards]
    new, old = change.card, change.previous
    if not ids or ids[0] != new.id or old.id not in ids:
        return None
    before = overview.cards[ids.index(old.id) - 1]
    parts = [oob_remove(f"#card-{new.id}"),
             render_block(PAGE, "card_row", oob_swap=f"outerHTML:#card-{old.id}", card=new, **context),
             oob_insert_after(f"#card-{before.id}", render_block(PAGE, "card_row", card=old, **context))]
    subscription = summary.subscription if summary is not None else None
    if subscription is not None and subscription.status != "canceled" and not subscription.cancel_at_period_end:
        parts.append(render_block(PAGE, "charged_to", oob_swap=True, **context))
    return oob_answer(parts, toast=message)


@bp.post("/<int:card_id>/backup")
@customer_required
def make_backup(card_id: int):
    """Mark a saved method as the backup tried when a renewal charge on the default fails."""
    return _change_card(_local(backup.set_backup_method), card_id,
                        "{} is now your backup payment method: we'll try it if a charge on your default fails.")


@bp.post("/<int:card_id>/backup/remove")
@customer_required
def remove_backup(card_id: int):
    """Stop using a method as the backup."""
    return _change_card(_local(backup.clear_backup_method), card_id, "{} is no longer your backup payment method.")


@bp.get("/<int:card_id>/delete")
@customer_required
def confirm_delete(card_id: int):
    """Ask before deleting a card, or say at once why it can't be deleted now."""
    try:
        card = cards.check_deletable(db(), account_id(), card_id)
    except DomainError as exc:
        return _card_error(card_id, exc)
    return section(BillingPage(confirming_delete=card.id))


@bp.post("/<int:card_id>/delete")
@customer_required
def delete(card_id: int):
    """Delete a card, unless an active subscription still relies on it as the default."""
    return _change_card(cards.delete_card, card_id, "{} was deleted.")


# --- helpers --------------------------------------------------------------------------------------

def _change_card(change, card_id: int, done_message: str):
    """Set default and delete alike: one service call on the card, then the section with ``done_message``
    (``{}`` is the card's label) or the refusal next to the card."""
    try:
        card = change(db(), gateway(), account_id(), card_id, actor=actor(), now=utcnow())
    except DomainError as exc:
        return _card_error(card_id, exc)
    return finished(done_message(card) if callable(done_message) else done_message.format(card.label))


def _local(change):
    """A verb that changes only our own records (the backup mark) in ``_change_card``'s shape."""
    return lambda session, _gateway, *args, **kwargs: change(session, *args, **kwargs)


def _card_error(card_id: int, exc: DomainError):
    if exc.status == 404:
        raise exc
    return section(BillingPage(card_errors={card_id: exc.message}), status=exc.status)


def _attach_error(form, exc: DomainError, *, default_field: str | None = None) -> None:
    """Put a processor's refusal next to the field it is about, or above the form."""
    name = exc.field or default_field
    field = getattr(form, name, None) if name else None
    if field is not None:
        field.errors = [*field.errors, exc.message]
    else:
        form.form_errors.append(exc.message)
