"""Form definitions: field-level rules live here; business rules live in the services."""
from __future__ import annotations

import re
from datetime import date

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, Length, Regexp, ValidationError

_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*$")


def parse_expiry(value: str) -> tuple[int, int] | None:
    """``"04/29"`` or ``"4 / 2029"`` -> ``(4, 2029)``; None when it is not a month and a year."""
    match = _EXPIRY.match(value or "")
    if not match:
        return None
    month, year = int(match.group(1)), int(match.group(2))
    if year < 100:
        year += 2000
    return month, year


class ExpiryField(StringField):
    """``MM / YY`` as people type it on cards; ``.month`` and ``.year`` once valid."""

    month: int | None = None
    year: int | None = None

    def pre_validate(self, form):
        parsed = parse_expiry(self.data or "")
        if parsed is None:
            raise ValidationError("Enter the expiry date as MM / YY.")
        month, year = parsed
        if not 1 <= month <= 12:
            raise ValidationError("The expiry month must be between 01 and 12.")
        today = getattr(form, "today", None) or date.today()
        if (year, month) < (today.year, today.month):
            raise ValidationError("This expiry date is in the past.")
        if year > today.year + 25:
            raise ValidationError("This expiry date is too far in the future.")
        self.month, self.year = month, year


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=200)])


class SignInLinkForm(FlaskForm):
    """"Email me a sign-in link": only the address; no password, for users who never set one."""
    # Not labelled "Email": the password form's field is, and one label should name one field on the page.
    email = EmailField("Your e-mail address", validators=[DataRequired("Enter your email address."),
                                                          Email("Enter a valid email address."), Length(max=254)])


class SignInTokenForm(FlaskForm):
    """The token of a portal session or an e-mailed link, posted from its landing page."""
    token = HiddenField(validators=[DataRequired(), Length(max=100)])


class CardholderMixin:
    cardholder_name = StringField("Cardholder name", validators=[
        DataRequired("Enter the name on the card."), Length(max=100, message="Use at most 100 characters.")])


class SandboxCardForm(FlaskForm):
    """The sandbox's test card form. Stripe mode never renders this: Stripe.js collects the card there."""

    cardholder_name = CardholderMixin.cardholder_name
    number = StringField("Card number", validators=[
        DataRequired("Enter the card number."),
        Regexp(r"^[\d\s-]{12,23}$", message="Enter the card number using digits only.")])
    expiry = ExpiryField("Expiry date (MM / YY)")
    cvc = StringField("Security code", validators=[
        DataRequired("Enter the security code."), Regexp(r"^\d{3,4}$", message="The security code is 3 or 4 digits.")])
    save_as_default = BooleanField("Save as default card")
    idempotency_key = HiddenField(validators=[Regexp(r"^[0-9a-f]{32}$")])


class StripeCardForm(FlaskForm):
    """What the server receives in Stripe mode: a confirmed SetupIntent's id, never a card number."""

    setup_intent = HiddenField(validators=[DataRequired(), Regexp(r"^seti_[A-Za-z0-9_]+$")])


class SetupIntentForm(FlaskForm):
    save_as_default = BooleanField("Save as default card")
    idempotency_key = HiddenField(validators=[Regexp(r"^[0-9a-f]{32}$")])
    # The kind of method the customer chose in Stripe mode; which ones the account may save is the service's.
    method_type = StringField(default="card", validators=[Length(max=20)])


class SetupReturnForm(FlaskForm):
    """Where Stripe sends the customer back after approving a method elsewhere (PayPal): the query string
    Stripe appends to the return URL. Read on a GET, so nothing is saved from it; the page's form posts it."""

    class Meta:
        csrf = False

    setup_intent = StringField(validators=[DataRequired(), Regexp(r"^seti_[A-Za-z0-9_]+$")])
    redirect_status = StringField(validators=[Length(max=20)])


class EditCardForm(FlaskForm):
    cardholder_name = CardholderMixin.cardholder_name
    expiry = ExpiryField("Expiry date (MM / YY)")


class ProfileEmailForm(FlaskForm):
    email = EmailField("Login email", validators=[DataRequired("Enter your email address."),
                                                  Email("Enter a valid email address, like ada@example.com."),
                                                  Length(max=254)])
    current_password = PasswordField("Current password", validators=[DataRequired("Enter your current password.")])


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired("Enter your current password.")])
    new_password = PasswordField("New password", validators=[DataRequired("Enter a new password."),
                                                             Length(max=200, message="Use at most 200 characters.")])
    confirm_password = PasswordField("Repeat the new password", validators=[DataRequired("Repeat the new password.")])

    def validate_confirm_password(self, field):
        if field.data != self.new_password.data:
            raise ValidationError("The two new passwords don't match.")
