"""The API key format: ``cdk_<key id>_<secret><checksum>``, and its keyed hash.

The checksum is the CRC32 of everything before it, in 6 base62 characters (as GitHub's
tokens do), so a mistyped or truncated key is rejected before any database access.
Only ``HMAC-SHA256(pepper, key)`` is stored.
"""

import functools
import hashlib
import hmac
import re
import secrets
import string
import zlib
from typing import NamedTuple

PREFIX = "cdk_"
ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
KEY_ID_LENGTH = 12
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
MAX_KEY_LENGTH = 128

_KEY_SHAPE = re.compile(
    rf"{PREFIX}([0-9A-Za-z]{{{KEY_ID_LENGTH}}})_[0-9A-Za-z]{{{SECRET_LENGTH},}}"
)


class MalformedKey(ValueError):
    pass


class IssuedKey(NamedTuple):
    public_id: str
    key: str

    @property
    def last_four(self) -> str:
        return self.key[-4:]


def checksum(body: str) -> str:
    """The CRC32 of ``body`` in base62, most significant digit first (62**6 > 2**32)."""
    number = zlib.crc32(body.encode())
    digits = []
    for _ in range(CHECKSUM_LENGTH):
        number, rest = divmod(number, 62)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits))


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def generate_key() -> IssuedKey:
    public_id = _random(KEY_ID_LENGTH)
    body = f"{PREFIX}{public_id}_{_random(SECRET_LENGTH)}"
    return IssuedKey(public_id, body + checksum(body))


def parse_key(key: str) -> str:
    """The key's public id, or ``MalformedKey`` if the prefix, shape or checksum is wrong.

    The checksum is no secret (anyone can compute it), so a plain comparison will do.
    """
    body = key[:-CHECKSUM_LENGTH]
    match = _KEY_SHAPE.fullmatch(body) if len(key) <= MAX_KEY_LENGTH else None
    if match is None or key[-CHECKSUM_LENGTH:] != checksum(body):
        raise MalformedKey("not a CraftDesk API key")
    return match.group(1)


def hash_key(pepper: bytes, key: str) -> bytes:
    mac = _hmac_sha256(pepper).copy()
    mac.update(key.encode())
    return mac.digest()


@functools.cache
def _hmac_sha256(pepper: bytes) -> hmac.HMAC:
    """HMAC-SHA256 keyed once with the pepper, copied for each key.

    With a Python callable as digest, ``hmac`` runs its own RFC 2104 code over hashlib's
    SHA-256, whose keyed state copies in about 1 µs; OpenSSL 3's HMAC costs every request
    about 3 µs of set-up instead.
    """
    return hmac.new(pepper, digestmod=_sha256)


def _sha256(data: bytes = b"") -> "hashlib._Hash":
    return hashlib.sha256(data)


def display_prefix(public_id: str) -> str:
    return f"{PREFIX}{public_id}"
