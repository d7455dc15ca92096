"""Passwords, login sessions, a user's own profile, support staff viewing an account as its customer
(impersonation), the product's API keys and users, and single-use sign-in tokens (portal sessions and
e-mailed links). The web layer's login routes live in ``portal/web/auth.py`` and ``portal/web/sign_in.py``.

It may import ``models``, ``audit``, ``errors``, ``config`` and ``notifications`` (an e-mailed sign-in link
is queued in the outbox with its token); it is imported by ``web``, ``billing`` (the API's provisioning adds
users), the CLI and the demo tools, never by ``notifications``, ``documents``, ``payments`` or ``models``.
"""
