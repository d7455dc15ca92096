"""Who is billed: billing-address rules per country, changes to the address, billing e-mail and VAT number,
and VAT number checks. Used by the Billing details routes and by invoicing (tax needs the address)."""
