"""``/api/v1/accounts/{external_id}``: accounts by the product's own id, their users and entitlements
(``billing/provisioning.py``)."""
from __future__ import annotations

from marshmallow import Schema, fields

from ...billing import provisioning
from ...billing.customer.accounts import EXTERNAL_ID, EXTERNAL_ID_RULE
from ...billing.customer.billing_info import VatPolicy
from ...errors import InvalidInput
from ...models import utcnow
from ..context import db, settings
from .blueprint import api_blueprint
from .keys import api_actor
from .schemas import (COUNTRIES, CURRENCIES, AccountSchema, EntitlementsSchema, ErrorSchema, Text, UserSchema,
                      path_parameter)

bp = api_blueprint("accounts", __name__,
                   description="Accounts, known by the product's own id: billing details, users, entitlements.")

# The body's address fields and the names the billing-details checks use for them.
ADDRESS = {"line1": "address_line1", "line2": "address_line2", "city": "city", "postal_code": "postal_code",
           "region": "region", "country": "country"}
EXTERNAL_ID_PARAMETER = path_parameter("external_id", description=f"The product's id: {EXTERNAL_ID_RULE}",
                                       pattern=f"^{EXTERNAL_ID.pattern}$", example="acme")


class AddressInputSchema(Schema):
    line1 = Text(max_length=200)
    line2 = Text(max_length=200)
    city = Text(max_length=100)
    postal_code = Text(max_length=20)
    region = Text(max_length=100)
    country = Text(max_length=2, metadata={"description": "ISO 3166-1 alpha-2, e.g. US", "enum": COUNTRIES})


class AccountPutSchema(Schema):
    name = Text(max_length=200, metadata={"description": "Required when the account is new"})
    billing_email = Text(max_length=254, metadata={"description": "Where invoices go; required when new"})
    address = fields.Nested(AddressInputSchema, metadata={
        "description": "Optional while the account has none; once given, checked in full as on the page"})
    vat_number = Text(max_length=20)
    currency = Text(max_length=3, metadata={"description": "ISO 4217; USD when left out; fixed once billed",
                                            "enum": CURRENCIES})


class UserAddSchema(Schema):
    email = Text(max_length=254, required=True)
    name = Text(max_length=200, load_default="")


def _with_status(answer: provisioning.Answer):
    """201 for what the call created, 200 for what it found or updated."""
    return answer.object, 201 if answer.created else 200


def account_values(body: dict) -> dict[str, str]:
    values = {key: body[key] for key in ("name", "billing_email", "vat_number") if key in body}
    values.update({ADDRESS[key]: value for key, value in (body.get("address") or {}).items()})
    return values


def api_field_names(errors: dict[str, str]) -> dict[str, str]:
    """The billing-details checks' field names as the body spells them (``address_line1`` -> ``address.line1``)."""
    body_names = {inner: f"address.{outer}" for outer, inner in ADDRESS.items()}
    return {body_names.get(field, field): text for field, text in errors.items()}


@bp.route("/accounts/<external_id>", methods=["PUT"], parameters=[EXTERNAL_ID_PARAMETER])
@bp.arguments(AccountPutSchema)
@bp.response(200, AccountSchema, description="Updated (or unchanged)")
@bp.alt_response(201, schema=AccountSchema, description="Created")
@bp.alt_response(404, schema=ErrorSchema, description="The id is not one an account can have")
def put_account(body, external_id):
    """Create the account, or update it to these values (fields left out keep theirs); idempotent."""
    current = settings()
    try:
        answer = provisioning.upsert_account(db(), external_id, account_values(body), currency=body.get("currency"),
                                             actor=api_actor(), now=utcnow(),
                                             policy=VatPolicy(vies_url=current.vies_url,
                                                              vies_timeout=current.vies_timeout))
    except InvalidInput as exc:
        raise InvalidInput(api_field_names(exc.errors)) from None  # named as in the body
    return _with_status(answer)


@bp.route("/accounts/<external_id>", methods=["GET"], parameters=[EXTERNAL_ID_PARAMETER])
@bp.response(200, AccountSchema)
@bp.alt_response(404, schema=ErrorSchema, description="No account has this id")
def get_account(external_id):
    """The account with its subscription's status."""
    return provisioning.get_account(db(), external_id)


@bp.route("/accounts/<external_id>/users", methods=["POST"], parameters=[EXTERNAL_ID_PARAMETER])
@bp.arguments(UserAddSchema)
@bp.response(201, UserSchema, description="Added")
@bp.alt_response(200, schema=UserSchema, description="The account has this user already")
@bp.alt_response(404, schema=ErrorSchema, description="No account has this id")
@bp.alt_response(409, schema=ErrorSchema, description="The e-mail address logs in to another account")
def add_user(body, external_id):
    """Add a user by e-mail, without a password: they arrive through portal sessions or sign-in links."""
    return _with_status(provisioning.add_user(db(), external_id, email=body["email"], name=body["name"],
                                              actor=api_actor(), now=utcnow()))


@bp.route("/accounts/<external_id>/entitlements", methods=["GET"], parameters=[EXTERNAL_ID_PARAMETER])
@bp.response(200, EntitlementsSchema)
@bp.alt_response(404, schema=ErrorSchema, description="No account has this id")
def entitlements(external_id):
    """Whether the account has paid access now, with its status and why (the same answer as the portal's)."""
    return provisioning.entitlements(db(), external_id)
