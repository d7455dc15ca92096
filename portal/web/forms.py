"""Form definitions: field-level rules live here; business rules live in the services."""
from __future__ import annotations

import re
from datetime import date

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
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


class NewMethodForm(FlaskForm):
    """What every add-a-payment-method form carries besides its own fields: the default choice, and the key
    the processor sees for this attempt (a corrected form goes out under a new one)."""

    save_as_default = BooleanField("Save as default payment method")
    idempotency_key = HiddenField(validators=[Regexp(r"^[0-9a-f]{32}$")])


class PayPalForm(NewMethodForm):
    """Add PayPal: nothing to type here, the customer approves the account at PayPal."""


class PayPalApprovalForm(FlaskForm):
    """The sandbox's PayPal test page: which PayPal account approves, and the tester's answer."""

    email = EmailField("PayPal e-mail address", validators=[
        DataRequired("Enter the PayPal account's e-mail address."), Email("Enter a valid e-mail address."),
        Length(max=254)])


def _holder_name():
    return StringField("Account holder name", validators=[
        DataRequired("Enter the account holder's name."), Length(max=100, message="Use at most 100 characters.")])


class AchForm(NewMethodForm):
    """The sandbox's US bank account form (Stripe mode collects the account in Stripe's Payment Element)."""

    holder_name = _holder_name()
    routing_number = StringField("Routing number", validators=[
        DataRequired("Enter the routing number."), Regexp(r"^\s*\d{9}\s*$", message="The routing number has 9 digits.")])
    account_number = StringField("Account number", validators=[
        DataRequired("Enter the account number."),
        Regexp(r"^\s*\d{4,17}\s*$", message="Enter the account number using digits only.")])
    account_holder_type = RadioField("Account type", default="individual", choices=[
        SelectChoice("individual", "Personal"), SelectChoice("company", "Business")])
    verification_method = RadioField("How to verify the account", default="instant", choices=[
        SelectChoice("instant", "Instantly (sign in to the bank)"),
        SelectChoice("microdeposits", "By micro-deposits: two small deposits arrive in 1-2 days, then type their "
                                      "amounts here")])
    mandate = BooleanField("I authorise these debits", validators=[
        DataRequired("Tick the box to authorise the debits.")])


class SepaForm(NewMethodForm):
    """The sandbox's SEPA Direct Debit form: IBAN, and the mandate the customer must accept."""

    holder_name = _holder_name()
    iban = StringField("IBAN", validators=[
        DataRequired("Enter the IBAN."), Length(max=42, message="An IBAN has at most 34 characters."),
        Regexp(r"^[A-Za-z]{2}[0-9 ]{2}[A-Za-z0-9 ]{8,38}$", message="An IBAN starts with two letters and two digits, "
                                                                    "like DE89 3704 0044 0532 0130 00.")])
    mandate = BooleanField("I accept the SEPA Direct Debit mandate above", validators=[
        DataRequired("Accept the mandate to save this account.")])


class MicrodepositForm(FlaskForm):
    """Verify an ACH account: the two deposit amounts in cents, or the code on the one deposit."""

    amount1 = StringField("Deposit 1 (cents)", validators=[
        Regexp(r"^\s*(\d{1,2})?\s*$", message="Enter the amount in cents, like 32.")])
    amount2 = StringField("Deposit 2 (cents)", validators=[
        Regexp(r"^\s*(\d{1,2})?\s*$", message="Enter the amount in cents, like 45.")])
    descriptor_code = StringField("Or the 6-character code on the deposit", validators=[
        Regexp(r"^\s*([A-Za-z0-9]{6})?\s*$", message="The code has 6 letters and digits, starting with SM.")])

    def validate_amount2(self, field):
        has_amounts = bool((self.amount1.data or "").strip() and (field.data or "").strip())
        if not has_amounts and not (self.descriptor_code.data or "").strip():
            raise ValidationError("Enter both deposit amounts, or the code.")


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
