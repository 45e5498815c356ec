"""Fuzzing the Authorization header and key strings: a malformed key is a 401 problem (a 400
at most), never a 5xx, and is refused before any database access.

The app here runs on an empty, unmigrated in-memory database: a malformed key that reached
the database would fail loudly, and the query recorder proves none was sent. Header values
are what an HTTP client can put on the wire: latin-1 text without CR or LF (sent as bytes,
so httpx does not restrict them to ASCII).
"""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from craftdesk.app import create_app
from craftdesk.auth.tokens import MalformedKey, generate_key, parse_key
from craftdesk.config import Settings
from tests.conftest import TEST_PEPPER

FUZZ = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
HEADER_TEXT = st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=200)
SLIP = st.characters(codec="latin-1", exclude_characters="\r\n")
MALFORMED_CODES = {"missing_credentials", "malformed_credentials"}


@pytest.fixture
async def app() -> AsyncIterator[FastAPI]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url="sqlite+aiosqlite://",
        key_pepper=TEST_PEPPER,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application




@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # A crash is answered 500 here, as a real server would, instead of raised into the test.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def assert_refused_before_the_database(
    client: httpx.AsyncClient, queries: list[str], authorization: str
) -> httpx.Response:
    response = await client.get(
        "/v1/projects", headers={"Authorization": authorization.encode("latin-1")}
    )
    assert response.status_code in (400, 401), (authorization, response.status_code)
    assert response.headers["content-type"] == "application/problem+json"
    if response.status_code == 401:
        assert response.headers["www-authenticate"].startswith('Bearer realm="craftdesk"')
        assert response.json()["code"] in MALFORMED_CODES
    assert queries == []
    return response


@st.composite
def damaged_keys(draw: st.DrawFn) -> str:
    """A real key with one slip: a character dropped, added, replaced or its case changed,
    the key cut short or doubled."""
    key = generate_key().key
    position = draw(st.integers(0, len(key) - 1))
    char = draw(SLIP)
    damage = draw(st.sampled_from(["drop", "add", "replace", "case", "cut", "double"]))
    if damage == "drop":
        return key[:position] + key[position + 1 :]
    if damage == "add":
        return key[:position] + char + key[position:]
    if damage == "replace":
        return key[:position] + char + key[position + 1 :]
    if damage == "case":
        return key[:position] + key[position].swapcase() + key[position + 1 :]
    if damage == "cut":
        return key[:position]
    return key + key[position:]


def well_formed(key: str) -> bool:
    try:
        parse_key(key)
    except MalformedKey:
        return False
    return True


@FUZZ
@given(authorization=HEADER_TEXT)
async def test_any_authorization_header_value_is_a_401_without_a_query(
    client: httpx.AsyncClient, queries: list[str], authorization: str
) -> None:
    await assert_refused_before_the_database(client, queries, authorization)


@FUZZ
@given(token=HEADER_TEXT, scheme=st.sampled_from(["Bearer", "bearer", "BEARER"]))
async def test_any_bearer_token_that_is_not_a_key_is_malformed_without_a_query(
    client: httpx.AsyncClient, queries: list[str], token: str, scheme: str
) -> None:
    response = await assert_refused_before_the_database(client, queries, f"{scheme} {token}")
    assert response.json()["code"] == "malformed_credentials"


@FUZZ
@given(
    key=st.one_of(
        damaged_keys(), st.from_regex(r"cdk_[0-9A-Za-z]{12}_[0-9A-Za-z]{32,60}", fullmatch=True)
    )
)
async def test_a_damaged_or_made_up_key_is_malformed_without_a_query(
    client: httpx.AsyncClient, queries: list[str], key: str
) -> None:
    assume(not well_formed(key))  # the odd damage that keeps the checksum right is a real key
    response = await assert_refused_before_the_database(client, queries, f"Bearer {key}")
    assert response.json()["code"] == "malformed_credentials"


@pytest.mark.parametrize("checksum", ["éééééé", "abcde\xff"])
async def test_a_key_with_a_non_ascii_checksum_is_malformed_not_a_500(
    client: httpx.AsyncClient, queries: list[str], checksum: str
) -> None:
    key = generate_key().key
    await assert_refused_before_the_database(client, queries, f"Bearer {key[:-6]}{checksum}")
