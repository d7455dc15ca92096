"""Performance tools: ``portal bench`` (``bench``: figures on a fresh database) and ``portal load`` (``load``:
many customers at once, then consistency checks).

Nothing in the product imports this package; only ``portal.cli`` (for the two commands) and the tests do.
The modules here may import any part of the product, because they seed data and drive it as a user would.
"""
