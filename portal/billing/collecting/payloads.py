"""Reading processor events (Stripe's webhooks, the sandbox's deliveries) field by field, with the types
the processor documents and the sizes our columns hold.

A signature proves who sent an event, not that it has the shape we expect: a field of the wrong type, or a
value too large for its column, must not become a 500 halfway through applying it. Each reader returns the
value (or None when the field is absent), or raises ``MalformedEvent``; the event is then refused as a whole
(its transaction rolled back, its id not recorded, so a corrected redelivery still applies).
"""
from __future__ import annotations

import re

from ...bounds import INT_MAX, parse_int
from ...errors import MalformedEvent

# What our columns hold: ProcessorEvent.id and .type, and the processor ids we store (payment, charge, refund).
EVENT_ID_MAX = 120
EVENT_TYPE_MAX = 80
PROCESSOR_ID_MAX = 80
# 9999-12-31: the last second a datetime can hold.
TIMESTAMP_MAX = 253402300799

_CURRENCY = re.compile(r"[A-Za-z]{3}")


def check_event(event) -> dict:
    """The event's envelope: ``id`` and ``type`` strings, ``data.object`` a dict. Returns ``data.object``."""
    if not isinstance(event, dict):
        raise MalformedEvent("The event is not a JSON object.")
    text(event, "id", required=True, max_length=EVENT_ID_MAX)
    text(event, "type", required=True, max_length=EVENT_TYPE_MAX)
    return mapping(mapping(event, "data", required=True), "object", required=True)


def mapping(obj: dict, key: str, *, required: bool = False) -> dict:
    """A nested object; ``{}`` when absent (or null) and not required."""
    value = obj.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise MalformedEvent(f"{key} must be an object.")
    return value


def items(obj: dict, key: str) -> list[dict] | None:
    """A list of objects (a Stripe list's ``data``); None when absent."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise MalformedEvent(f"{key} must be a list of objects.")
    return value


def text(obj: dict, key: str, *, required: bool = False, max_length: int | None = PROCESSOR_ID_MAX) -> str | None:
    """A string of at most ``max_length`` characters (None: any length, for messages we cut ourselves);
    None when absent or empty and not required."""
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise MalformedEvent(f"{key} is missing.")
        return None
    if not isinstance(value, str):
        raise MalformedEvent(f"{key} must be a string.")
    if max_length is not None and len(value) > max_length:
        raise MalformedEvent(f"{key} is longer than {max_length} characters.")
    return value


def whole_number(obj: dict, key: str, *, minimum: int = 0, maximum: int = INT_MAX) -> int | None:
    """An integer (JSON number without a fraction; not a boolean, not a string) in range; None when absent."""
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is not int or not minimum <= value <= maximum:
        raise MalformedEvent(f"{key} must be a whole number from {minimum} to {maximum}.")
    return value


def amount(obj: dict, key: str) -> int | None:
    """An amount in minor units that an Integer column holds."""
    return whole_number(obj, key)


def timestamp(obj: dict, key: str) -> int | None:
    """Unix seconds that a datetime holds."""
    return whole_number(obj, key, maximum=TIMESTAMP_MAX)


def currency(obj: dict, key: str = "currency") -> str | None:
    """A three-letter ISO code, upper case."""
    value = text(obj, key, max_length=3)
    if value is not None and not _CURRENCY.fullmatch(value):
        raise MalformedEvent(f"{key} must be a three-letter currency code.")
    return value.upper() if value else None


def metadata(obj: dict) -> dict[str, str]:
    """Stripe's metadata: string keys to string values."""
    value = mapping(obj, "metadata")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise MalformedEvent("metadata must map strings to strings.")
    return value


def our_id(meta: dict[str, str], key: str) -> int | None:
    """An id of ours we put in the metadata (``"42"``); None when absent."""
    value = meta.get(key)
    if not value:
        return None
    number = parse_int(value)
    if number is None:
        raise MalformedEvent(f"metadata.{key} is not an id.")
    return number
