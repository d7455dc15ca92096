"""The support staff console: account search, an account's whole billing picture, and "View as customer"
(impersonation), with the app-wide hooks that keep impersonation read-only and visible on every response."""
from __future__ import annotations

from dataclasses import dataclass
from functools import wraps
from math import ceil

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ..auth import impersonation, sessions
from ..errors import InvalidInput
from ..bounds import parse_int
from ..billing.overview import current_subscription
from ..extensions import login_manager
from ..models import Account, AuditEvent, CreditEntry, Invoice, OutboxMessage, PaymentAttempt, PaymentMethod, User
from .context import client_ip, db
from .errors import error_page
from .rendering import render

bp = Blueprint("staff", __name__, url_prefix="/staff")

SEARCH_PAGE_SIZE = 20
INVOICE_PAGE_SIZE = 10
MAIL_PAGE_SIZE = 10
AUDIT_PAGE_SIZE = 20

# While impersonating, only these may be posted; every other change is refused, including routes added later.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALLOWED_WHILE_IMPERSONATING = frozenset({"staff.end_impersonation", "auth.logout"})


def impersonating():
    """The live Impersonation of this request, or None."""
    return getattr(current_user, "impersonation", None) if current_user else None


def staff_required(view):
    """Staff only; to anyone else the page does not exist."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if impersonating() is not None:
            return error_page(403, "You are viewing an account as a customer. End impersonation to use the console.")
        if not current_user.is_staff:
            abort(404)
        return view(*args, **kwargs)

    return wrapper


# --- pages -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    """One page of a list: its items, where it is, and how many there are."""

    items: list
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, ceil(self.total / self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def _page_number(name: str) -> int:
    number = request.args.get(name, 1, type=int) or 1
    return max(1, min(number, 100_000))


def _paginate(session: Session, stmt, number: int, size: int) -> Page:
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    number = min(number, max(1, ceil(total / size)))
    items = list(session.scalars(stmt.offset((number - 1) * size).limit(size)))
    return Page(items, number, size, total)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_accounts(session: Session, query: str, number: int) -> Page:
    """Accounts whose name, billing e-mail, processor customer id, a user's e-mail or an invoice number
    contains ``query`` (any case); all accounts when it is empty."""
    stmt = select(Account)
    query = query.strip()
    if query:
        like = _like(query)
        stmt = stmt.where(or_(
            Account.name.ilike(like, escape="\\"),
            Account.billing_email.ilike(like, escape="\\"),
            Account.processor_customer_id.ilike(like, escape="\\"),
            Account.id.in_(select(User.account_id).where(User.account_id.is_not(None),
                                                         User.email.ilike(like, escape="\\"))),
            Account.id.in_(select(Invoice.account_id).where(Invoice.number.ilike(like, escape="\\"))),
        ))
    return _paginate(session, stmt.order_by(func.lower(Account.name), Account.id), number, SEARCH_PAGE_SIZE)


def _users_by_account(session: Session, account_ids: list[int]) -> dict[int, list[User]]:
    found: dict[int, list[User]] = {}
    if account_ids:
        for user in session.scalars(select(User).where(User.account_id.in_(account_ids)).order_by(User.id)):
            found.setdefault(user.account_id, []).append(user)
    return found


@bp.get("")
@staff_required
def home():
    """The console: search accounts by e-mail, name, invoice number or processor customer id."""
    query = request.args.get("q", "").replace("\x00", "")[:200]
    results = search_accounts(db(), query, _page_number("page"))
    return render("staff/home.html", block="results", q=query, results=results,
                  users=_users_by_account(db(), [a.id for a in results.items]))


def account_context(account: Account, **extra) -> dict:
    session = db()
    invoices = _paginate(session, select(Invoice).where(Invoice.account_id == account.id, Invoice.number.is_not(None))
                         .order_by(Invoice.issued_at.desc(), Invoice.id.desc()),
                         _page_number("invoice_page"), INVOICE_PAGE_SIZE)
    attempts: dict[int, list[PaymentAttempt]] = {}
    if invoices.items:
        for attempt in session.scalars(select(PaymentAttempt)
                                       .where(PaymentAttempt.invoice_id.in_([i.id for i in invoices.items]))
                                       .order_by(PaymentAttempt.invoice_id, PaymentAttempt.attempt_number)):
            attempts.setdefault(attempt.invoice_id, []).append(attempt)
    credits = list(session.scalars(select(CreditEntry).where(CreditEntry.account_id == account.id)
                                   .order_by(CreditEntry.created_at.desc(), CreditEntry.id.desc())))
    balances = dict(session.execute(select(CreditEntry.currency, func.sum(CreditEntry.amount_cents))
                                    .where(CreditEntry.account_id == account.id)
                                    .group_by(CreditEntry.currency)).all())
    balances.setdefault(account.currency, 0)
    mails = _paginate(session, select(OutboxMessage).where(OutboxMessage.account_id == account.id)
                      .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()),
                      _page_number("mail_page"), MAIL_PAGE_SIZE)
    audit = _paginate(session, select(AuditEvent).where(AuditEvent.account_id == account.id)
                      .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()),
                      _page_number("audit_page"), AUDIT_PAGE_SIZE)
    people_ids = {e.actor_user_id for e in audit.items} | {e.on_behalf_of_user_id for e in audit.items}
    people_ids |= {c.created_by_user_id for c in credits}
    people_ids.discard(None)
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_(people_ids)))} if people_ids else {}
    context = dict(
        account=account,
        customers=impersonation.customers_of(session, account.id),
        subscription=current_subscription(session, account.id),
        cards=list(session.scalars(select(PaymentMethod)
                                   .where(PaymentMethod.account_id == account.id, PaymentMethod.detached_at.is_(None))
                                   .order_by(PaymentMethod.is_default.desc(), PaymentMethod.id))),
        invoice_page=invoices, invoices=invoices.items, attempts=attempts,
        credits=credits, credit_balances=balances,
        mails=mails, audit=audit, people=people,
        reason="", reason_error=None, impersonate_error=None,
        page_args={"invoice_page": invoices.number, "mail_page": mails.number, "audit_page": audit.number},
    )
    context.update(extra)
    return context


PARTS = {"invoices": "invoices", "mail": "mail", "audit": "audit"}


def _account_or_404(account_id: int) -> Account:
    account = db().get(Account, account_id)
    if account is None:
        abort(404)
    return account


@bp.get("/accounts/<int:account_id>")
@staff_required
def account(account_id: int):
    """One account as support sees it: subscription, cards, invoices and payments, credits, e-mails, audit log."""
    block = PARTS.get(request.args.get("part", ""))
    return render("staff/account.html", block=block, **account_context(_account_or_404(account_id)))


@bp.post("/accounts/<int:account_id>/impersonate")
@staff_required
def impersonate(account_id: int):
    """Start viewing the account as its customer (read-only, 30 minutes), for a stated reason."""
    target = _account_or_404(account_id)
    reason = request.form.get("reason", "")
    user_field = request.form.get("user_id", "")
    user_id = parse_int(user_field) if user_field else None
    if user_field and user_id is None:
        abort(404)  # no user has that id (and one past the database's range must not reach a query)
    try:
        started = impersonation.start(db(), current_user.get_id(), account_id=target.id, reason=reason,
                                      user_id=user_id, ip=client_ip(), user_agent=request.user_agent.string or "")
    except InvalidInput as exc:
        return render("staff/account.html", status=422,
                      **account_context(target, reason=reason, reason_error=exc.errors.get("reason")))
    except impersonation.NoCustomerToView as exc:
        return render("staff/account.html", status=exc.status,
                      **account_context(target, reason=reason, impersonate_error=exc.message))
    except impersonation.ReauthenticationRequired as exc:
        # Ask for the password again: end this session and come back to the account after logging in.
        sessions.end_session(db(), current_user.get_id(), ip=client_ip())
        logout_user()
        session.clear()
        flash(exc.message, "error")
        return redirect(url_for("auth.login", next=url_for("staff.account", account_id=target.id)), code=303)
    _switch_session(started.token)
    viewed = started.impersonation
    flash(f"You are viewing {target.name} as {viewed.user.email}. Nothing can be changed until you end it.",
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
    ended = impersonation.stop(db(), current_user.get_id(), ip=client_ip())
    _switch_session(ended.token)
    flash(f"You stopped viewing {name} as a customer.", "success")
    return _go(url_for("staff.account", account_id=account_id))


# --- app-wide hooks ---------------------------------------------------------------------------------------

def _switch_session(token: str) -> None:
    """Put the rotated session in the cookie; nothing else from the old one survives."""
    session.clear()
    found = sessions.load_session(db(), token)
    user = impersonation.effective_user(*found)
    login_user(user)


def _go(location: str):
    """Leave the page: a 303 for a plain request, HX-Redirect for HTMX (a redirect would be swapped in)."""
    if request.htmx:
        response = current_app.response_class("", 200)
        response.headers["HX-Redirect"] = location
        return response
    return redirect(location, code=303)


@bp.before_app_request
def guard_impersonation():
    """While impersonating: end it once it has expired, and refuse every change but ending it or logging out."""
    if request.endpoint in (None, "static"):
        return None
    viewed = impersonating()
    if viewed is None:
        return None
    if impersonation.is_expired(viewed):
        account_id, name = viewed.account_id, viewed.account.name
        ended = impersonation.stop(db(), current_user.get_id(), ip=client_ip(), expired=True)
        _switch_session(ended.token)
        flash(f"Your view of {name} as a customer ended after 30 minutes.", "success")
        return _go(url_for("staff.account", account_id=account_id))
    if request.method in SAFE_METHODS or request.endpoint in ALLOWED_WHILE_IMPERSONATING:
        return None
    impersonation.record_refusal(db(), viewed, endpoint=request.endpoint, method=request.method,
                                 path=request.path, ip=client_ip())
    return error_page(403, impersonation.READ_ONLY_MESSAGE)


@bp.after_app_request
def banner_on_partials(response):
    """HTMX answers carry the impersonation banner out of band, so no swap can hide who is looking."""
    if not request.htmx or impersonating() is None:
        return response
    if (response.status_code == 204 or 300 <= response.status_code < 400 or "HX-Redirect" in response.headers
            or response.mimetype != "text/html" or response.direct_passthrough or response.is_streamed):
        return response
    banner = render_template("staff/_impersonation_banner.html", banner_oob=True)
    response.set_data(response.get_data() + banner.encode())
    return response


@bp.app_context_processor
def impersonation_context():
    return {"active_impersonation": impersonating()}
