"""What the load test proves afterwards, with the server and the worker stopped: no write lost, and the
ledger adding up for every account."""
from __future__ import annotations

from collections import Counter, defaultdict

from sqlalchemy import func, select

from ..billing.invoicing.invoices import credit_balance
from ..models import Account, CreditEntry, Invoice, OutboxMessage, PaymentAttempt, PaymentMethod
from ..payments.sandbox import SandboxGateway
from .customers import User

def check_writes(database, users: list[User]) -> list[str]:
    """Compare every account with what its user was told."""
    problems = []
    with database.session() as session:
        for user in users:
            if user.uncertain:
                continue  # counted as transport errors; the run fails on those anyway
            cards = {c.id: c for c in session.scalars(select(PaymentMethod).where(
                PaymentMethod.account_id == user.account_id, PaymentMethod.detached_at.is_(None)))}
            if set(cards) != user.cards:
                problems.append(f"{user.email}: cards {sorted(cards)} in the database, "
                                f"{sorted(user.cards)} after the user's successful actions")
            defaults = [c.id for c in cards.values() if c.is_default]
            if defaults != [user.default]:
                problems.append(f"{user.email}: default card {defaults}, last set successfully {user.default}")
            for card_id, (month, year) in user.expiry.items():
                card = cards.get(card_id)
                if card is not None and (card.exp_month, card.exp_year) != (month, year):
                    problems.append(f"{user.email}: card {card_id} expires {card.exp_month}/{card.exp_year}, "
                                    f"saved {month}/{year}")
            copies = session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.account_id == user.account_id, OutboxMessage.kind == "invoice_copy"))
            if copies != user.email_copies:
                problems.append(f"{user.email}: {copies} invoice copies in the outbox, "
                                f"{user.email_copies} successful requests")
    return problems


def check_ledger(database) -> tuple[list[str], dict]:
    """The ledger's invariants for every account in the database."""
    problems: list[str] = []
    figures = Counter()
    with database.session() as session:
        attempts = defaultdict(list)
        for attempt in session.scalars(select(PaymentAttempt)):
            attempts[attempt.invoice_id].append(attempt)
        entries = defaultdict(list)
        for entry in session.scalars(select(CreditEntry)):
            entries[entry.account_id].append(entry)
        invoices = defaultdict(list)
        for invoice in session.scalars(select(Invoice).where(Invoice.status != "draft")):
            invoices[invoice.account_id].append(invoice)
        for account_id in session.scalars(select(Account.id)):
            paid_with_attempts = succeeded = applied = 0
            for invoice in invoices[account_id]:
                figures["invoices"] += 1
                if invoice.amount_paid_cents > invoice.total_cents:
                    problems.append(f"{invoice.number}: paid {invoice.amount_paid_cents} > total {invoice.total_cents}")
                if invoice.subtotal_cents - invoice.credit_applied_cents + invoice.tax_cents != invoice.total_cents:
                    problems.append(f"{invoice.number}: subtotal - credit + tax != total")
                applied += invoice.credit_applied_cents
                tried = attempts.get(invoice.id, [])
                if tried:
                    done = sum(a.amount_cents for a in tried if a.status == "succeeded")
                    if invoice.status == "paid":
                        paid_with_attempts += invoice.amount_paid_cents
                    succeeded += done
                    if done != invoice.amount_paid_cents:
                        problems.append(f"{invoice.number}: amount paid {invoice.amount_paid_cents}, "
                                        f"succeeded attempts {done}")
                figures[f"invoices_{invoice.status}"] += 1
            if paid_with_attempts != succeeded:
                problems.append(f"account {account_id}: paid invoices {paid_with_attempts} != succeeded attempts "
                                f"{succeeded}")
            ledger = sum(e.amount_cents for e in entries[account_id])
            balance = credit_balance(session, account_id)
            if balance != ledger or balance < 0:
                problems.append(f"account {account_id}: credit balance {balance}, entries sum to {ledger}")
            used = -sum(e.amount_cents for e in entries[account_id] if e.kind == "applied")
            if used != applied:
                problems.append(f"account {account_id}: credit applied on invoices {applied}, ledger says {used}")
        new_attempts = [a for tried in attempts.values() for a in tried if not a.idempotency_key.startswith("load-seed-")]
        figures["payment_attempts_during_run"] = len(new_attempts)
        figures["succeeded_attempts_during_run"] = sum(1 for a in new_attempts if a.status == "succeeded")
    charges = SandboxGateway(database).count_charges()
    figures["sandbox_charges"] = charges
    if charges != figures["succeeded_attempts_during_run"]:
        problems.append(f"the sandbox took {charges} charges for {figures['succeeded_attempts_during_run']} "
                        "succeeded attempts")
    return problems, dict(figures)

