"""What the next charge will be: the plan's price, less credits, plus tax for the billing address.

The Current subscription section shows this before the customer pays ("tax shown before purchase"),
and renewals use the same function, so the preview and the invoice cannot disagree.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...models import Account, Plan
from .seller import Seller
from .tax import TaxError, TaxResult, calculate_tax, describe_tax


@dataclass(frozen=True)
class Quote:
    subtotal_cents: int
    credit_applied_cents: int
    tax: TaxResult | None  # None when the billing address is too incomplete to work out tax
    currency: str

    @property
    def taxable_cents(self) -> int:
        return self.subtotal_cents - self.credit_applied_cents

    @property
    def total_cents(self) -> int:
        return self.taxable_cents + (self.tax.amount_cents if self.tax else 0)

    @property
    def tax_phrase(self) -> str:
        return describe_tax(self.tax) if self.tax else ""


def quote(account: Account, plan: Plan, seller: Seller, *, credit_balance_cents: int = 0) -> Quote:
    """Credits are used first, then tax is worked out on what is left (half-up, on the total)."""
    credit = max(0, min(credit_balance_cents, plan.price_cents))
    try:
        tax = calculate_tax(seller_country=seller.country, seller_vat_number=seller.vat_number,
                            customer_country=account.country, customer_region=account.region,
                            customer_vat_number=account.vat_number, customer_vat_status=account.vat_status,
                            amount_cents=plan.price_cents - credit, rates=seller.rates)
    except TaxError:
        tax = None
    return Quote(subtotal_cents=plan.price_cents, credit_applied_cents=credit, tax=tax, currency=plan.currency)
