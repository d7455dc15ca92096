"""What is charged: the account's saved payment methods (cards, with 3-D Secure) — add, edit, set default,
delete. Collection reads the default through ``cards.default_card``."""
