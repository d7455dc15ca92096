"""Log in and log out; Flask-Login wiring."""
from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user

from ..auth import impersonation, sessions
from ..extensions import limiter, login_manager
from .context import client_ip, db, settings
from .forms import LoginForm
from .rendering import render

bp = Blueprint("auth", __name__)


def _login_email_key() -> str:
    return "login-email:" + (request.form.get("email") or "").strip().lower()


def _failed(response) -> bool:
    # Only failed attempts count towards the limits; a successful login answers 303.
    return response.status_code != 303


@bp.get("/")
def index():
    """Send people to the page they came for."""
    return redirect(url_for("billing.page") if current_user.is_authenticated else url_for("auth.login"))


@bp.get("/login")
def login():
    """Show the login form."""
    if current_user.is_authenticated:
        return redirect(_home())
    return render("auth/login.html", form=LoginForm())


@bp.post("/login")
@limiter.limit(lambda: settings().login_limit_per_ip, deduct_when=_failed, scope="login-ip")
@limiter.limit(lambda: settings().login_limit_per_account, key_func=_login_email_key, deduct_when=_failed,
               scope="login-email")
def login_submit():
    """Check the password, rotate the session and go to the page the user asked for."""
    form = LoginForm()
    if not form.validate_on_submit():
        return render("auth/login.html", form=form, status=422)
    user = sessions.authenticate(db(), form.email.data, form.password.data)
    if user is None:
        return render("auth/login.html", form=form, status=401,
                      login_error="That email and password don't match an account.")
    next_url = _safe_next(request.args.get("next"))
    session.clear()  # rotate: nothing from before the login survives it
    sessions.start_session(db(), user, ip=client_ip(), user_agent=request.user_agent.string or "")
    login_user(user)
    return redirect(next_url or _home(user), code=303)


@bp.post("/logout")
def logout():
    """End this browser's session everywhere it was copied to."""
    if current_user.is_authenticated:
        sessions.end_session(db(), current_user.get_id(), ip=client_ip())
    logout_user()
    session.clear()
    return redirect(url_for("auth.login", logged_out=1), code=303)


def too_many_logins(exc):
    """The login form again, saying why and for how long, instead of a bare 429."""
    retry = getattr(getattr(exc, "limit", None), "limit", None)
    wait = f" Try again in {retry.get_expiry() // 60} minutes." if retry is not None else " Try again later."
    return render("auth/login.html", form=LoginForm(), status=429,
                  login_error="Too many failed login attempts." + wait)


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


def register_login_manager(app) -> None:
    login_manager.login_view = "auth.login"
    login_manager.session_protection = None  # our server-side sessions already bind and revoke

    @login_manager.user_loader
    def load_user(token: str):
        found = sessions.load_session(db(), token)
        # While a staff member views an account as its customer, the request acts as that customer.
        return impersonation.effective_user(*found) if found else None

    @login_manager.unauthorized_handler
    def unauthorized():
        target = url_for("auth.login", next=request.full_path.rstrip("?") if request.method == "GET" else None)
        if request.htmx:
            # A redirect inside an HTMX swap would paint the login form into a section of the page.
            response = current_app.response_class("", 401)
            response.headers["HX-Redirect"] = target
            return response
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
