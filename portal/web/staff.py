"""The support staff's home. The console (search, impersonation, refunds, credits) builds on this."""
from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort
from flask_login import current_user

from ..extensions import login_manager
from .rendering import render

bp = Blueprint("staff", __name__, url_prefix="/staff")


def staff_required(view):
    """Staff only; to anyone else the page does not exist."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_staff:
            abort(404)
        return view(*args, **kwargs)

    return wrapper


@bp.get("")
@staff_required
def home():
    """Show who is signed in as staff."""
    return render("staff/home.html")
