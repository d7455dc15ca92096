"""Log in and log out; Flask-Login wiring."""
from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, redirect, request, session, url_for
from flask_login import UserMixin, current_user, login_user, logout_user

from ..auth import impersonation, sessions, sign_in_tokens
from ..models import User, utcnow
from ..extensions import limiter, login_manager
from .context import client_ip, db, settings
from .forms import LoginForm, SignInLinkForm
from .rendering import go_to, render

bp = Blueprint("auth", __name__)


def _login_email() -> str:
    return (request.form.get("email") or "").strip().lower()


def _account_and_ip_key() -> str:
    return f"login-email-ip:{_login_email()}|{client_ip()}"


def _account_key() -> str:
    return "login-email:" + _login_email()


def _failed(response) -> bool:
    # Only a wrong e-mail or password (401) counts. A refused attempt (429) checked no password: counting it
    # would let one address that is already stopped go on filling the account's shared allowance.
    return response.status_code == 401


def retry_hint(exc) -> str:
    """How long to wait, as a sentence: the window of the limit that was exceeded."""
    item = getattr(getattr(exc, "limit", None), "limit", None)
    return f" Try again in {max(1, item.get_expiry() // 60)} minutes." if item is not None else " Try again later."


@bp.get("/")
def index():
    """Send people to the page they came for."""
    return redirect(url_for("billing.page") if current_user.is_authenticated else url_for("auth.login"))


@bp.get("/login")
def login():
    """Show the login form."""
    if current_user.is_authenticated:
        return redirect(_home())
    return login_page()


def login_page(*, status: int = 200, **context):
    """The login page: the password form and the "Email me a sign-in link" form."""
    context.setdefault("form", LoginForm())
    context.setdefault("link_form", SignInLinkForm(prefix="link"))
    return render("auth/login.html", status=status, **context)


# Three counts of failed logins. One address guessing one account is stopped soon (the modest limit); one
# address guessing many accounts is stopped too. Everyone together guessing one account meets a much higher
# ceiling: high enough that a stranger cannot lock a known account out from elsewhere, yet a distributed
# guess stays capped. Behind a proxy all of this needs PORTAL_PROXY_HOPS, or every customer has one address.
@bp.post("/login")
@limiter.limit(lambda: settings().login_limit_per_account_and_ip, key_func=_account_and_ip_key, deduct_when=_failed,
               scope="login-email-ip")
@limiter.limit(lambda: settings().login_limit_per_ip, key_func=client_ip, deduct_when=_failed, scope="login-ip")
@limiter.limit(lambda: settings().login_limit_per_account, key_func=_account_key, deduct_when=_failed,
               scope="login-email")
def login_submit():
    """Check the password, rotate the session and go to the page the user asked for."""
    form = LoginForm()
    if not form.validate_on_submit():
        return login_page(form=form, status=422)
    user = sessions.authenticate(db(), form.email.data, form.password.data)
    if user is None:
        return login_page(form=form, status=401, login_error="That email and password don't match an account.")
    next_url = _safe_next(request.args.get("next"))
    session.clear()  # rotate: nothing from before the login survives it
    sessions.start_session(db(), user, ip=client_ip(), user_agent=request.user_agent.string or "",
                           now=sessions.utcnow())
    login_user(user)
    return redirect(next_url or _home(user), code=303)


def _link_email() -> str:
    return (request.form.get("link-email") or "").strip().lower()


# Every request sends an e-mail, so every one counts (not only failures): per address and client, and per
# client. Scopes of their own, so asking for links never uses up the password form's allowance.
@bp.post("/login/link")
@limiter.limit(lambda: settings().login_limit_per_account_and_ip, scope="sign-in-link-email-ip",
               key_func=lambda: f"sign-in-link:{_link_email()}|{client_ip()}")
@limiter.limit(lambda: settings().login_limit_per_ip, key_func=client_ip, scope="sign-in-link-ip")
def email_link():
    """E-mail a single-use sign-in link; the answer is the same whether or not the address has an account."""
    form = SignInLinkForm(prefix="link")
    if not form.validate_on_submit():
        return login_page(link_form=form, status=422)
    sign_in_tokens.email_sign_in_link(db(), form.email.data, settings=settings(), now=utcnow(), ip=client_ip())
    minutes = max(1, settings().sign_in_link_ttl // 60)
    return login_page(link_sent=f"If an account uses {form.email.data}, we have e-mailed it a sign-in link. "
                                f"It works once, within {minutes} minutes.")


@bp.post("/logout")
def logout():
    """End this browser's session everywhere it was copied to."""
    if current_user.is_authenticated:
        sessions.end_session(db(), current_user.get_id(), ip=client_ip(), now=sessions.utcnow())
    logout_user()
    session.clear()
    return redirect(url_for("auth.login", logged_out=1), code=303)


def too_many_logins(exc):
    """The login form again, saying why and for how long, instead of a bare 429."""
    if request.endpoint == "auth.email_link":
        return login_page(status=429, link_error="Too many sign-in links asked for." + retry_hint(exc))
    return login_page(status=429, login_error="Too many failed login attempts." + retry_hint(exc))


def customer_required(view):
    """A logged-in customer with an account; staff (who have none) get 404 on customer pages."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if current_user.account_id is None:
            abort(404)
        return view(*args, **kwargs)

    return wrapper


def _session_token(user: User) -> str | None:
    return user.session_token


def adopt_login_protocol(model: type) -> None:
    """Give the model what Flask-Login expects of a signed-in user (``is_authenticated``, ``get_id``, ...).

    Done here rather than by inheriting UserMixin in ``portal/models`` so that the models stay free of Flask.
    The id Flask-Login keeps in the cookie is the session token, not the user id: logging out then revokes
    exactly one server-side session. Equality is UserMixin's (by that id), as before."""
    for name in ("is_active", "is_authenticated", "is_anonymous", "__eq__", "__ne__", "__hash__"):
        setattr(model, name, UserMixin.__dict__[name])
    model.get_id = _session_token


def register_login_manager(app) -> None:
    adopt_login_protocol(User)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = None  # our server-side sessions already bind and revoke

    @login_manager.user_loader
    def load_user(token: str):
        found = sessions.load_session(db(), token, now=sessions.utcnow())
        # While a staff member views an account as its customer, the request acts as that customer.
        return impersonation.effective_user(*found) if found else None

    @login_manager.unauthorized_handler
    def unauthorized():
        target = url_for("auth.login", next=request.full_path.rstrip("?") if request.method == "GET" else None)
        if request.htmx:
            # A redirect inside an HTMX swap would paint the login form into a section of the page.
            return go_to(target, status=401)
        return redirect(target)


def _home(user=None) -> str:
    user = user or current_user
    return url_for("billing.page") if user.account_id is not None else url_for("staff.home")


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: an open redirect after login is a phishing gift."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target
