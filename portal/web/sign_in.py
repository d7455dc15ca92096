"""Signing in with a single-use token: the product's portal sessions and the links e-mailed from the login page.

The link's GET only shows a small page whose form POSTs the token (submitted at once by ``portal.js``, a
button with JavaScript off). Spending the token on the GET would let any link scanner or chat preview that
fetches the URL use it up, or sign itself in, before the person does; it would also make a GET change data.
The page asks browsers to send no Referer, so the token in its URL goes nowhere else.
"""
from __future__ import annotations

from flask import Blueprint, redirect, request, session, url_for
from flask_login import current_user, login_user

from ..auth import sign_in_tokens
from ..models import utcnow
from .context import client_ip, db, settings
from .forms import SignInTokenForm
from .rendering import render

bp = Blueprint("sign_in", __name__)

# The screen each flow of ``sign_in_tokens.FLOWS`` lands on.
FLOW_SCREENS = {"billing": "billing.page", "payment_method": "cards.new", "plan": "plan.change",
                "cancel": "plan.cancel"}


def flow_screen(flow: str) -> str:
    return url_for(FLOW_SCREENS.get(flow, "billing.page"))


def refused(status: int = 410):
    """The same page for every refusal: the only useful next step is to go back to the product."""
    return render("auth/sign_in_refused.html", status=status, product_name=settings().product_name)


@bp.get("/portal/session/<token>")
def landing(token: str):
    """The page a portal-session or e-mailed link opens: a form that posts the token (nothing is spent yet)."""
    response = render("auth/sign_in.html", form=SignInTokenForm(token=token))
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.post("/portal/session")
def redeem():
    """Spend the token, start a fresh login session and land on the flow's screen."""
    form = SignInTokenForm()
    if not form.validate_on_submit():
        return refused(400)
    previous = current_user.get_id() if current_user.is_authenticated else None
    redemption, _ = sign_in_tokens.sign_in_with_token(
        db(), form.token.data, previous_session_token=previous, ip=client_ip(),
        user_agent=request.user_agent.string or "", now=utcnow())
    if redemption.refused:
        return refused()
    session.clear()  # rotate: nothing from before the login survives it
    login_user(redemption.user)  # the cookie gets the new session's token, which the user object carries
    return redirect(flow_screen(redemption.flow), code=303)
