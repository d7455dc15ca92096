"""What is charged: the account's saved payment methods (cards, with 3-D Secure) — add, edit, set default,
delete — and the backup method (``backup.py``: set and clear, the one-backup rules). Collection reads the
default through ``cards.default_card``."""
