"""Who may open the support console: staff only, and not while viewing an account as a customer."""
from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user

from ..extensions import login_manager
from .errors import error_page
from .impersonation import impersonating


def staff_required(view):
    """Staff only; to anyone else the page does not exist."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if impersonating() is not None:
            return error_page(403, "You are viewing an account as a customer. End impersonation to use the console.")
        if not current_user.is_staff:
            abort(404)  # customers must not learn that the console exists
        return view(*args, **kwargs)

    return wrapper
