"""The support console: account search, an account's whole billing picture (and its lists a page at a
time), and starting and ending "View as customer"."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from flask import Blueprint, abort, flash, redirect, request, session, url_for
from flask_login import current_user, logout_user

from ..auth import impersonation, sessions
from ..billing import console
from ..errors import InvalidInput
from ..bounds import parse_int
from ..extensions import login_manager
from .context import client_ip, db
from .impersonation import impersonating, switch_session
from .rendering import go_to, render
from .staff_access import staff_required

bp = Blueprint("staff", __name__, url_prefix="/staff")

ACCOUNT_PAGE = "staff/account.html"


def _page_number(name: str) -> int:
    return request.args.get(name, 1, type=int) or 1


@dataclass(frozen=True)
class AccountPage:
    """What a refused form on the console's account page needs shown again; the defaults are the page as it
    first opens. The template reads each field by its name."""

    # View as customer
    reason: str = ""                        # the reason typed, kept when starting the view was refused
    reason_error: str | None = None         # next to the reason field
    impersonate_error: str | None = None    # why the view could not start at all
    # Billing actions panel
    action_errors: dict[str, dict[str, str]] = field(default_factory=dict)  # form id -> field name -> message
    action_values: dict[str, dict[str, str]] = field(default_factory=dict)  # form id -> what was entered
    open_form: str | None = None            # the form id to show open
    action_alert: str | None = None         # a refusal that is not about one field, above the panel


def render_account(account_id: int, state: AccountPage | None = None, *, block: str | None = None, status: int = 200,
                   toast: str | None = None):
    """The account's console page (for HTMX only its ``block``), at the list pages the query string asks for."""
    db().expire_all()  # an action just committed in sessions of its own: show what it wrote
    view = console.account_view(db(), account_id, invoice_page=_page_number("invoice_page"),
                                mail_page=_page_number("mail_page"), audit_page=_page_number("audit_page"))
    state = state or AccountPage()
    return render(ACCOUNT_PAGE, block=block, status=status, toast=toast, view=view,
                  **{f.name: getattr(state, f.name) for f in fields(state)})


@bp.get("")
@staff_required
def home():
    """The console: search accounts by e-mail, name, invoice number or processor customer id."""
    query = request.args.get("q", "").replace("\x00", "")[:200]
    return render("staff/home.html", block="results", q=query,
                  results=console.search_accounts(db(), query, _page_number("page")))


@bp.get("/accounts/<int:account_id>")
@staff_required
def account(account_id: int):
    """One account as support sees it: subscription, cards, invoices and payments, credits, e-mails, audit log."""
    return render_account(account_id)


def _list(block: str):
    def view(account_id: int):
        return render_account(account_id, block=block)

    view.__name__ = f"account_{block}"
    view.__doc__ = f"The account page's {block} list, for its Previous / Next links (HTMX: that section only)."
    return staff_required(view)


# Where each list's Previous / Next links send HTMX: the same page, answered with that list's block only.
for _block in ("invoices", "mail", "audit"):
    bp.add_url_rule(f"/accounts/<int:account_id>/{_block}", f"account_{_block}", _list(_block), methods=["GET"])


@bp.post("/accounts/<int:account_id>/impersonate")
@staff_required
def impersonate(account_id: int):
    """Start viewing the account as its customer (read-only, 30 minutes), for a stated reason."""
    reason = request.form.get("reason", "")
    user_field = request.form.get("user_id", "")
    user_id = parse_int(user_field) if user_field else None
    if user_field and user_id is None:
        abort(404)  # no user has that id (and one past the database's range must not reach a query)
    try:
        started = impersonation.start(db(), current_user.get_id(), account_id=account_id, reason=reason,
                                      user_id=user_id, ip=client_ip(), user_agent=request.user_agent.string or "",
                                      now=sessions.utcnow())
    except InvalidInput as exc:
        return render_account(account_id, AccountPage(reason=reason, reason_error=exc.errors.get("reason")),
                              status=exc.status)
    except impersonation.NoCustomerToView as exc:
        return render_account(account_id, AccountPage(reason=reason, impersonate_error=exc.message), status=exc.status)
    except impersonation.ReauthenticationRequired as exc:
        # Ask for the password again: end this session and come back to the account after logging in.
        sessions.end_session(db(), current_user.get_id(), ip=client_ip(), now=sessions.utcnow())
        logout_user()
        session.clear()
        flash(exc.message, "error")
        return redirect(url_for("auth.login", next=url_for("staff.account", account_id=account_id)), code=303)
    switch_session(started.token)
    viewed = started.impersonation
    flash(f"You are viewing {viewed.account.name} as {viewed.user.email}. Nothing can be changed until you end it.",
          "success")
    return redirect(url_for("billing.page"), code=303)


@bp.post("/impersonation/end")
def end_impersonation():
    """Stop viewing as the customer and return to the account in the console."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    viewed = impersonating()
    if viewed is None:
        if current_user.is_staff:
            return redirect(url_for("staff.home"), code=303)
        abort(404)
    account_id, name = viewed.account_id, viewed.account.name
    ended = impersonation.stop(db(), current_user.get_id(), ip=client_ip(), now=sessions.utcnow())
    switch_session(ended.token)
    flash(f"You stopped viewing {name} as a customer.", "success")
    return go_to(url_for("staff.account", account_id=account_id))
