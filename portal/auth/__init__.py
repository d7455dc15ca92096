"""Passwords and login sessions; the web layer's login routes live in ``portal/web/auth.py``."""
