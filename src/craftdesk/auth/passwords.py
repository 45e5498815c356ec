"""Dashboard passwords: argon2id through libpass (the maintained passlib fork).

Parameters are at OWASP's minimum or above (m = 19 MiB, t = 2, p = 1). argon2 takes any
length, so passwords over bcrypt's 72 bytes work whole. An unknown email is checked against
a dummy hash so that it costs the same time as a wrong password.
"""

from passlib.hash import argon2

_hasher = argon2.using(type="ID", memory_cost=19 * 1024, time_cost=2, parallelism=1)
_DUMMY_HASH = _hasher.hash("craftdesk-dummy-password")


def hash_password(password: str) -> str:
    return str(_hasher.hash(password))


def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant work whether or not the account exists."""
    matches = _hasher.verify(password, password_hash or _DUMMY_HASH)
    return matches and password_hash is not None
