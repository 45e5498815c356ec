import hmac
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from craftdesk.auth.tokens import (
    ALPHABET,
    CHECKSUM_LENGTH,
    MalformedKey,
    checksum,
    generate_key,
    hash_key,
    parse_key,
)


def test_generated_key_has_prefix_id_secret_and_checksum() -> None:
    issued = generate_key()
    body, check = issued.key[:-CHECKSUM_LENGTH], issued.key[-CHECKSUM_LENGTH:]
    prefix, public_id, secret = body.split("_")
    assert prefix == "cdk"
    assert public_id == issued.public_id and len(public_id) == 12
    assert len(secret) >= 32 and set(secret) <= set(ALPHABET)
    assert check == checksum(body)
    assert parse_key(issued.key) == issued.public_id


def test_checksum_is_crc32_in_six_base62_characters() -> None:
    body = "cdk_abcdefghijkl_" + "x" * 32
    value = 0
    for char in checksum(body):
        value = value * 62 + ALPHABET.index(char)
    assert value == zlib.crc32(body.encode())


def test_two_keys_never_share_id_or_secret() -> None:
    keys = {generate_key().key for _ in range(1000)}
    assert len(keys) == 1000


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k[:-1],  # cut short
        lambda k: k + "a",  # extra character
        lambda k: "cdx" + k[3:],  # wrong prefix
        lambda k: k[:20] + ("A" if k[20] != "A" else "B") + k[21:],  # one typo in the secret
        lambda k: k.replace("_", "-"),  # wrong shape
        lambda k: k.lower(),
    ],
)
def test_damaged_key_is_malformed(mangle) -> None:  # type: ignore[no-untyped-def]
    key = generate_key().key
    damaged = mangle(key)
    if damaged == key:
        pytest.skip("mangling left the key unchanged")
    with pytest.raises(MalformedKey):
        parse_key(damaged)


@given(st.text(max_size=200))
def test_arbitrary_text_is_never_accepted_as_key(text: str) -> None:
    with pytest.raises(MalformedKey):
        parse_key(text)


@given(st.binary(min_size=1, max_size=200), st.text(max_size=200))
def test_hash_is_hmac_sha256_of_the_key_under_the_pepper(pepper: bytes, key: str) -> None:
    assert hash_key(pepper, key) == hmac.digest(pepper, key.encode(), "sha256")


def test_hash_depends_on_pepper_and_key() -> None:
    key = generate_key().key
    assert hash_key(b"a", key) != hash_key(b"b", key)
    assert hash_key(b"a", key) != hash_key(b"a", generate_key().key)
    assert len(hash_key(b"a", key)) == 32
