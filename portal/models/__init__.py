"""SQLAlchemy models; import from here so every table is registered on ``Base.metadata``.

The bottom layer with ``money`` and ``errors``: anything may import it, and it imports nothing of the portal
outside this package (no services, no web code, no Flask), so the worker, the migrations and the CLI load
it as they are.
"""
from .account import Account, LoginSession, User
from .audit import AuditEvent
from .base import Base, utcnow
from .credit import CreditEntry
from .integration import ApiKey, SignInToken, WebhookDelivery, WebhookEndpoint, WebhookEvent
from .invoice import (STATUS_LABELS, Invoice, InvoiceImmutable, InvoiceLine, InvoiceNumberSequence, InvoicePdf,
                      InvoiceTaxLine)
from .outbox import OutboxMessage
from .payment import PaymentAttempt, ProcessorEvent
from .payment_method import BANK_TYPES, BRAND_NAMES, METHOD_TYPES, PaymentMethod
from .refund import Refund
from .sandbox import SandboxIdempotencyKey, SandboxObject
from .subscription import BILLABLE_STATUSES, Plan, Subscription

__all__ = [
    "Account", "ApiKey", "SignInToken", "WebhookDelivery", "WebhookEndpoint", "WebhookEvent", "AuditEvent", "CreditEntry", "Invoice", "InvoiceImmutable", "InvoiceLine", "InvoiceNumberSequence", "InvoicePdf",
    "InvoiceTaxLine", "OutboxMessage", "PaymentAttempt", "ProcessorEvent", "STATUS_LABELS", "BILLABLE_STATUSES", "BRAND_NAMES", "BANK_TYPES", "METHOD_TYPES", "Base", "LoginSession", "PaymentMethod",
    "Plan", "Refund", "SandboxIdempotencyKey", "SandboxObject", "Subscription", "User", "utcnow",
]
