"""Saving PayPal and bank accounts in the sandbox, the way Stripe's test mode answers for them.

- PayPal: the setup intent waits for the customer's approval (``redirect_to_url``) on the sandbox's own
  test approval page; Approve attaches a PayPal method with the payer's e-mail, Cancel leaves nothing.
- ACH (``us_bank_account``): Stripe's test routing number and account numbers. Verified instantly, or by
  micro-deposits (amounts 32 and 45 cents, or the descriptor code SM11AA).
- SEPA (``sepa_debit``): IBANs checked with python-stdnum, Stripe's test IBANs, and a mandate the customer
  accepted, whose reference is generated here as Stripe's mandates carry one.

What a debit does later is the method's ``charge`` (``debit_succeeds`` / ``debit_fails``), read by
``charges.py`` when a renewal debits the account.
"""
from __future__ import annotations

import secrets

from stdnum import iban as iban_numbers
from stdnum.exceptions import ValidationError

from ..gateway import BankAccountDetails, CardError, MandateAcceptance, ProcessorError, SetupIntent
from .books import Books
from .cards import retrieve_setup_intent, setup_intent_of as _setup_intent

# The sandbox's own PayPal approval page (payments/sandbox/pages.py serves it at this path).
PAYPAL_APPROVAL_PATH = "/sandbox/setup-intents/{id}/paypal"

TEST_ROUTING_NUMBER = "110000000"
TEST_BANK_NAME = "STRIPE TEST BANK"
# Stripe's documented ACH test accounts: the first saves and debits; the others save but their debits fail
# later (no account, account closed, insufficient funds, debit not authorised).
ACH_TEST_ACCOUNTS = {
    "000123456789": "debit_succeeds",
    "000111111116": "debit_fails",
    "000111111113": "debit_fails",
    "000222222227": "debit_fails",
    "000333333335": "debit_fails",
}
# Stripe's documented SEPA test IBANs (any other valid IBAN saves and debits too).
SEPA_TEST_IBANS = {
    "DE89370400440532013000": "debit_succeeds",
    "DE08370400440532013003": "debit_succeeds",
    "DE62370400440532013001": "debit_fails",
    "DE78370400440532013004": "debit_fails",
}
MICRODEPOSIT_AMOUNTS = (32, 45)
MICRODEPOSIT_DESCRIPTOR = "SM11AA"


def create_setup_intent(books: Books, *, customer_id: str, metadata: dict, idempotency_key: str, method_type: str,
                        bank: BankAccountDetails | None, mandate: MandateAcceptance | None,
                        return_url: str | None) -> SetupIntent:
    if method_type == "paypal":
        build = _paypal(customer_id, metadata, return_url)
    elif method_type in ("us_bank_account", "sepa_debit"):
        if bank is None or bank.type != method_type:
            raise ProcessorError("The sandbox needs the test bank account's details.", code="parameter_missing")
        build = _ach(books, customer_id, metadata, bank) if method_type == "us_bank_account" \
            else _sepa(customer_id, metadata, bank, mandate)
    else:
        raise ProcessorError(f"The sandbox can't save {method_type} methods.", code="payment_method_unsupported")
    result = books.idempotent(idempotency_key, lambda session: {"id": build(session, books)})
    return retrieve_setup_intent(books, result["id"])


def answer_paypal(books: Books, setup_intent_id: str, *, approve: bool, email: str) -> SetupIntent:
    """The tester's Approve or Cancel on the sandbox's PayPal page."""
    with books.writing() as session:
        seti = books.get(session, setup_intent_id, "setup_intent")
        d = seti.data
        if d.get("type") != "paypal" or d["status"] != "requires_action":
            return _setup_intent(seti)
        if approve:
            pm = books.new(session, "pm", "payment_method", {
                "type": "paypal", "customer": d["customer"], "brand": "paypal", "last4": "", "exp_month": 0,
                "exp_year": 0, "name": "", "email": email.strip(), "charge": "ok", "detached": False})
            seti.data = {**d, "status": "succeeded", "payment_method": pm.id, "next_action": None,
                         "redirect_url": None}
        else:
            seti.data = {**d, "status": "requires_payment_method", "next_action": None, "redirect_url": None,
                         "last_error": {"code": "setup_intent_authentication_failure",
                                        "message": "PayPal was not added: the approval was cancelled."}}
    return retrieve_setup_intent(books, setup_intent_id)


def verify_microdeposits(books: Books, setup_intent_id: str, *, amounts: list[int] | None,
                         descriptor_code: str | None) -> SetupIntent:
    with books.writing() as session:
        seti = books.get(session, setup_intent_id, "setup_intent")
        d = seti.data
        if d["status"] == "succeeded":
            return _setup_intent(seti)
        if d.get("next_action") != "verify_with_microdeposits":
            raise ProcessorError("This bank account is not waiting for micro-deposits.",
                                 code="setup_intent_unexpected_state")
        if descriptor_code is not None:
            if descriptor_code.strip().upper() != MICRODEPOSIT_DESCRIPTOR:
                raise CardError("That code doesn't match the one on the deposit. It starts with SM and has "
                                "6 characters.", code="payment_method_microdeposit_verification_descriptor_code_mismatch",
                                param="descriptor_code")
        elif sorted(amounts or []) != sorted(MICRODEPOSIT_AMOUNTS):
            raise CardError("Those amounts don't match the two deposits we sent.",
                            code="payment_method_microdeposit_verification_amounts_mismatch", param="amounts")
        pm = books.get(session, d["payment_method"], "payment_method")
        pm.data = {**pm.data, "verification": "verified", "customer": d["customer"]}
        seti.data = {**d, "status": "succeeded", "next_action": None}
    return retrieve_setup_intent(books, setup_intent_id)


# --- building each kind ------------------------------------------------------------------------------

def _paypal(customer_id: str, metadata: dict, return_url: str | None):
    def build(session, books: Books) -> str:
        books.get(session, customer_id, "customer")
        seti = books.new(session, "seti", "setup_intent", {
            "customer": customer_id, "type": "paypal", "status": "requires_action", "payment_method": None,
            "metadata": metadata, "last_error": None, "next_action": "redirect_to_url", "return_url": return_url})
        seti.data = {**seti.data, "redirect_url": PAYPAL_APPROVAL_PATH.format(id=seti.id)}
        return seti.id
    return build


def _ach(books: Books, customer_id: str, metadata: dict, bank: BankAccountDetails):
    routing = "".join(bank.routing_number.split())
    account = "".join(bank.account_number.split())
    if not (routing.isdigit() and len(routing) == 9 and _aba_checksum_ok(routing)):
        raise CardError("The routing number is incorrect: it has 9 digits.", code="invalid_routing_number",
                        param="routing_number")
    if routing != TEST_ROUTING_NUMBER:
        raise CardError(f"In test mode use the test routing number {TEST_ROUTING_NUMBER}.",
                        code="invalid_routing_number", param="routing_number")
    if account not in ACH_TEST_ACCOUNTS:
        raise CardError("In test mode use one of the test account numbers, such as 000123456789.",
                        code="invalid_account_number", param="account_number")
    microdeposits = bank.verification_method == "microdeposits"
    return _bank_setup(customer_id, metadata, bank, last4=account[-4:], country="US",
                       charge=ACH_TEST_ACCOUNTS[account], pending=microdeposits)


def _sepa(customer_id: str, metadata: dict, bank: BankAccountDetails, mandate: MandateAcceptance | None):
    try:
        number = iban_numbers.validate(bank.iban)
    except ValidationError:
        raise CardError("The IBAN is incorrect: check it against your bank statement.", code="invalid_iban",
                        param="iban") from None
    if mandate is None:
        raise CardError("Accept the direct debit mandate to save this account.", code="mandate_required",
                        param="mandate")
    return _bank_setup(customer_id, metadata, bank, last4=number[-4:], country=number[:2],
                       charge=SEPA_TEST_IBANS.get(number, "debit_succeeds"), pending=False,
                       mandate_reference=secrets.token_hex(8).upper())


def _bank_setup(customer_id: str, metadata: dict, bank: BankAccountDetails, *, last4: str, country: str,
                charge: str, pending: bool, mandate_reference: str = ""):
    def build(session, books: Books) -> str:
        books.get(session, customer_id, "customer")
        pm = books.new(session, "pm", "payment_method", {
            "type": bank.type, "customer": None if pending else customer_id, "brand": "bank", "last4": last4,
            "exp_month": 0, "exp_year": 0, "name": bank.holder_name.strip(), "email": bank.email,
            "bank_name": TEST_BANK_NAME, "country": country, "mandate_reference": mandate_reference,
            "verification": "pending" if pending else "verified", "charge": charge, "detached": False})
        seti = books.new(session, "seti", "setup_intent", {
            "customer": customer_id, "type": bank.type, "payment_method": pm.id, "metadata": metadata,
            "last_error": None, "status": "requires_action" if pending else "succeeded",
            "next_action": "verify_with_microdeposits" if pending else None})
        return seti.id
    return build


def _aba_checksum_ok(routing: str) -> bool:
    d = [int(c) for c in routing]
    return (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])) % 10 == 0
