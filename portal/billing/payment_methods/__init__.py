"""What is charged: the account's saved payment methods. ``cards`` adds (with 3-D Secure), edits, sets the
default and deletes any of them, and saves every type once its setup has succeeded; ``paypal`` starts a
PayPal approval; ``bank_accounts`` says whether a bank account may be added (annual plans, by currency),
starts one and verifies micro-deposits; ``backup`` sets and clears the backup method (the one-backup rules).
Collection reads the default through ``cards.default_card``."""
