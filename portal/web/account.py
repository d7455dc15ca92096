"""Account settings: the user's own login e-mail and password (separate from the billing e-mail)."""
from __future__ import annotations

from flask import Blueprint, g, request, url_for
from flask_login import current_user, login_required

from ..auth import profile
from ..errors import InvalidInput
from ..extensions import limiter
from ..models import utcnow
from .auth import retry_hint
from .context import actor, client_ip, db
from .context import settings as portal_settings
from .forms import PasswordForm, ProfileEmailForm
from .rendering import done, render

bp = Blueprint("account", __name__, url_prefix="/account")

PAGE = "account/settings.html"


def _user_key() -> str:
    return f"current-password:{getattr(current_user, 'id', None) or 'anonymous'}"


def _wrong_password(_response) -> bool:
    # Only a wrong current password is a guess; a new password that is too short or a taken e-mail is not.
    return bool(g.get("wrong_current_password"))


# Both forms ask for the current password, so a borrowed session could use either to guess it: they share
# the counts. Per user and address the limit is modest; per user alone it is higher, so someone holding a
# copied session elsewhere cannot stop the owner from changing the password (which signs that copy out).
_per_user_and_ip = limiter.shared_limit(lambda: portal_settings().password_check_limit_per_user_and_ip,
                                        scope="current-password-ip", key_func=lambda: f"{_user_key()}|{client_ip()}",
                                        deduct_when=_wrong_password)
_per_user = limiter.shared_limit(lambda: portal_settings().password_check_limit_per_user, scope="current-password",
                                 key_func=_user_key, deduct_when=_wrong_password)


def _checks_current_password(view):
    """A signed-in user's form that asks for the current password, counted against both limits."""
    return _per_user_and_ip(_per_user(login_required(view)))


def page(*, block: str | None = None, status: int = 200, email_form=None, password_form=None, toast=None):
    return render(PAGE, block=block, status=status, toast=toast,
                  email_form=email_form or ProfileEmailForm(formdata=None, email=current_user.email),
                  password_form=password_form or PasswordForm(formdata=None))


@bp.get("")
@login_required
def settings():
    """Show the login e-mail and password forms."""
    return page()


@bp.post("/email")
@_checks_current_password
def change_email():
    """Change the e-mail address used to log in."""
    return _submit("email", ProfileEmailForm(), lambda form: profile.change_email(
        db(), current_user.id, new_email=form.email.data, current_password=form.current_password.data,
        actor=actor(), now=utcnow()), done_message="Your login email was changed. Your billing email is unchanged.")


@bp.post("/password")
@_checks_current_password
def change_password():
    """Set a new password; other browsers signed in as this user are signed out."""
    return _submit("password", PasswordForm(), lambda form: profile.change_password(
        db(), current_user.id, current_password=form.current_password.data, new_password=form.new_password.data,
        keep_session_token=current_user.get_id(), actor=actor(), now=utcnow()),
        done_message="Your password was changed. Other browsers were signed out.")


def too_many_password_checks(exc):
    """The form again, with why and for how long next to the current password, instead of a bare 429."""
    which = "email" if request.endpoint == "account.change_email" else "password"
    form = ProfileEmailForm() if which == "email" else PasswordForm()
    form.current_password.errors = ["Too many wrong passwords." + retry_hint(exc)]
    return _section(which, form, status=429)


def _submit(which: str, form, change, *, done_message: str):
    """Both forms the same way: validate, ``change(form)``, and on refusal show the form again with why."""
    if form.validate_on_submit():
        try:
            change(form)
            return done(done_message, url_for("account.settings"),
                        partial=lambda msg: page(block=f"{which}_section", toast=msg))
        except profile.WrongPassword as exc:
            g.wrong_current_password = True
            _attach(form, exc)
        except InvalidInput as exc:
            _attach(form, exc)
    return _section(which, form, status=422)


def _section(which: str, form, *, status: int):
    """The ``email`` or ``password`` section holding this (refused) form."""
    return page(block=f"{which}_section", status=status, **{f"{which}_form": form})


def _attach(form, exc: InvalidInput) -> None:
    for name, message in exc.errors.items():
        getattr(form, name).errors = [message]
