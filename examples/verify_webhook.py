import hashlib, hmac, time

def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """True when `header` (Portal-Signature) signs the raw request `body` with the endpoint's `secret`."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    timestamp, received = parts.get("t", ""), parts.get("v1", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False  # too old, or not a timestamp: a replayed or forged delivery
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received)
