"""Account settings: the user's own login e-mail and password (separate from the billing e-mail)."""
from __future__ import annotations

from flask import Blueprint, url_for
from flask_login import current_user, login_required

from ..auth import profile
from ..billing.errors import InvalidInput
from .context import actor, db
from .forms import PasswordForm, ProfileEmailForm
from .rendering import done, render

bp = Blueprint("account", __name__, url_prefix="/account")

PAGE = "account/settings.html"


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
@login_required
def change_email():
    """Change the e-mail address used to log in."""
    form = ProfileEmailForm()
    if form.validate_on_submit():
        try:
            profile.change_email(db(), current_user.id, new_email=form.email.data,
                                 current_password=form.current_password.data, actor=actor())
            return done("Your login email was changed. Your billing email is unchanged.", url_for("account.settings"),
                        partial=lambda msg: page(block="email_section", toast=msg))
        except InvalidInput as exc:
            _attach(form, exc)
    return page(block="email_section", status=422, email_form=form)


@bp.post("/password")
@login_required
def change_password():
    """Set a new password; other browsers signed in as this user are signed out."""
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            profile.change_password(db(), current_user.id, current_password=form.current_password.data,
                                    new_password=form.new_password.data, keep_session_token=current_user.get_id(),
                                    actor=actor())
            return done("Your password was changed. Other browsers were signed out.", url_for("account.settings"),
                        partial=lambda msg: page(block="password_section", toast=msg))
        except InvalidInput as exc:
            _attach(form, exc)
    return page(block="password_section", status=422, password_form=form)


def _attach(form, exc: InvalidInput) -> None:
    for name, message in exc.errors.items():
        getattr(form, name).errors = [message]
