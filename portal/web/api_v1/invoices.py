"""``/api/v1/accounts/{external_id}/invoices``: issued invoices, newest first, a page at a time."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from ...billing import provisioning
from ..context import db, settings
from .accounts import EXTERNAL_ID_PARAMETER
from .blueprint import api_blueprint
from .schemas import ErrorSchema, InvoiceListSchema, Text

bp = api_blueprint("invoices", __name__, description="Invoices: what the account was billed, with PDF links.")


class InvoiceQuerySchema(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=provisioning.INVOICE_PAGE_LIMIT))
    cursor = Text(max_length=100, load_default=None, metadata={"description": "``next_cursor`` of the page before"})


@bp.route("/accounts/<external_id>/invoices", methods=["GET"], parameters=[EXTERNAL_ID_PARAMETER])
@bp.arguments(InvoiceQuerySchema, location="query")
@bp.response(200, InvoiceListSchema)
@bp.alt_response(404, schema=ErrorSchema, description="No account has this id")
def list_invoices(query, external_id):
    """Issued invoices (keyset pagination: pass ``next_cursor`` back as ``cursor`` while ``has_more``)."""
    page = provisioning.list_invoices(db(), external_id, cursor=query["cursor"] or None, limit=query["limit"],
                                      base_url=settings().base_url)
    return {"object": "list", "data": page.data, "has_more": page.next_cursor is not None,
            "next_cursor": page.next_cursor}
