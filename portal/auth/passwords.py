"""Password hashing with argon2id at OWASP's recommended cost (19 MiB, 2 passes, 1 lane)."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the e-mail is unknown, so a miss costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` is the one ``password_hash`` was made from. An empty hash is a user who has no
    password (they sign in through the product's portal sessions or e-mailed links): no password matches it,
    not even the dummy's, which is still checked so that such a miss takes as long as any other."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the stored hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)
