"""The company that sells: who invoices are from, and which tax table applies."""
from __future__ import annotations

from dataclasses import dataclass

from .tax import TaxRates, load_rates


@dataclass(frozen=True)
class Seller:
    name: str
    address_lines: tuple[str, ...]
    country: str
    vat_number: str
    rates: TaxRates

    @classmethod
    def from_settings(cls, settings) -> "Seller":
        lines = tuple(part.strip() for part in settings.seller_address.split(";") if part.strip())
        return cls(name=settings.seller_name, address_lines=lines, country=settings.seller_country,
                   vat_number=settings.seller_vat_number, rates=load_rates(settings.tax_rates_path))
