"""The API key format: ``cdk_<key id>_<secret><checksum>``, and its keyed hash.

The checksum is the CRC32 of everything before it, in 6 base62 characters (as GitHub's
tokens do), so a mistyped or truncated key is rejected before any database access.
Only ``HMAC-SHA256(pepper, key)`` is stored.
"""

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


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits)).rjust(width, ALPHABET[0])


def checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CHECKSUM_LENGTH)


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def generate_key() -> IssuedKey:
    public_id = _random(KEY_ID_LENGTH)
    body = f"{PREFIX}{public_id}_{_random(SECRET_LENGTH)}"
    return IssuedKey(public_id, body + checksum(body))


def parse_key(key: str) -> str:
    """The key's public id, or ``MalformedKey`` if the prefix, shape or checksum is wrong."""
    match = _KEY_SHAPE.fullmatch(key[:-CHECKSUM_LENGTH]) if len(key) <= MAX_KEY_LENGTH else None
    if match is None or not hmac.compare_digest(
        key[-CHECKSUM_LENGTH:].encode(), checksum(key[:-CHECKSUM_LENGTH]).encode()
    ):
        raise MalformedKey("not a CraftDesk API key")
    return match.group(1)


def hash_key(pepper: bytes, key: str) -> bytes:
    return hmac.new(pepper, key.encode(), hashlib.sha256).digest()


def display_prefix(public_id: str) -> str:
    return f"{PREFIX}{public_id}"
