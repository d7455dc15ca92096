"""The sandbox processor's own pages: the test bank's 3-D Secure step. Registered in sandbox mode only."""
from __future__ import annotations

from flask import Blueprint, request

from ..billing import cards
from ..billing.errors import DomainError
from .auth import customer_required
from .cards import finished, new_key, section
from .context import account_id, actor, db, gateway
from .forms import SandboxCardForm

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox")


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
    approve = request.form.get("decision") == "approve"
    gateway().authenticate_setup_intent(intent.id, approve=approve)
    try:
        saved = cards.complete_card_setup(db(), gateway(), account_id(), intent.id, actor=actor())
    except DomainError as exc:
        form = SandboxCardForm(formdata=None, idempotency_key=new_key(),
                               save_as_default=intent.metadata.get("save_as_default") == "1")
        form.form_errors.append(exc.message)
        return section(status=exc.status, adding=True, form=form)
    return finished(f"{saved.label} was added{' and set as your default card' if saved.is_default else ''}.")
