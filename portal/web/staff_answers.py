"""How the console's account actions answer: the fresh panel with a toast, a refusal next to its fields, or an
alert above the panel. Shared by the money actions (staff_actions) and the plan actions (staff_plan)."""
from __future__ import annotations

from flask import request, url_for

from ..errors import DomainError, InvalidInput, NotFound
from .rendering import done
from .staff import AccountPage, render_account

PANEL = "actions"  # the block of templates/staff/account.html these forms swap


def answered(account_id: int, message: str, *, block: str = PANEL):
    """Success: HTMX gets the fresh panel and a toast, a plain form a 303 back to the account page."""
    return done(message, url_for("staff.account", account_id=account_id),
                partial=lambda text: render_account(account_id, block=block, toast=text))


def refused(account_id: int, form: str, exc: DomainError, values: dict, *, block: str = PANEL):
    """A refused action: field errors next to their fields with the entered values kept; any other refusal
    (an invoice that is paid, a declined card) as an alert at the top of the panel. Each at its own status."""
    if isinstance(exc, NotFound):
        raise exc  # not a refusal: an unknown id is answered 404 like everywhere else
    if isinstance(exc, InvalidInput):
        return render_account(account_id, AccountPage(action_errors={form: exc.errors}, action_values={form: values},
                                                      open_form=form),
                              block=block, status=exc.status, toast=next(iter(exc.errors.values())))
    return alert(account_id, exc.message, status=exc.status, block=block)


def alert(account_id: int, message: str, *, status: int, block: str = PANEL):
    """The panel with ``message`` above it and as a toast: what was refused, or a charge that failed."""
    return render_account(account_id, AccountPage(action_alert=message), block=block, status=status, toast=message)


def form_values(*names: str) -> dict:
    return {name: request.form.get(name, "") for name in names}
