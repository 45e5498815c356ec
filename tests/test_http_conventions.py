"""HTTP conventions: gzip for large bodies only, HEAD as the GET it is, a trailing slash is a
404 problem (never a redirect, least of all one answered before authentication). CORS, which
exposes the rate-limit headers to browser code, is tested in ``tests/dashboard/test_cors.py``."""

import gzip
import json

import httpx
import pytest

from craftdesk.middleware import GZIP_MINIMUM_BYTES
from tests.conftest import World, bearer

GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


async def raw_get(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent (httpx would decompress it)."""
    async with client.stream("GET", path, headers=headers) as response:
        return response, b"".join([chunk async for chunk in response.aiter_raw()])


async def test_the_openapi_document_is_gzipped_when_the_client_accepts_it(
    client: httpx.AsyncClient,
) -> None:
    compressed, body = await raw_get(client, "/v1/openapi.json", GZIP)
    plain, plain_body = await raw_get(client, "/v1/openapi.json", IDENTITY)

    assert compressed.headers["content-encoding"] == "gzip"
    assert compressed.headers["vary"] == "Accept-Encoding"
    assert int(compressed.headers["content-length"]) == len(body) < len(plain_body) / 4
    assert json.loads(gzip.decompress(body)) == json.loads(plain_body)
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"  # the same URL has two representations


async def test_a_long_list_is_gzipped_and_a_small_key_response_is_not(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    for n in range(30):
        created = await client.post(
            "/v1/projects", json={"name": f"Project {n}"}, headers=bearer(key)
        )
        assert created.status_code == 201

    listed, listed_body = await raw_get(client, "/v1/projects?limit=100", {**GZIP, **bearer(key)})
    calling, calling_body = await raw_get(client, "/v1/auth/key", {**GZIP, **bearer(key)})

    assert listed.headers["content-encoding"] == "gzip"
    assert len(json.loads(gzip.decompress(listed_body))["data"]) == 30
    assert listed.headers["x-ratelimit-used"] == "31"  # metered as usual
    assert len(calling_body) < GZIP_MINIMUM_BYTES
    assert "content-encoding" not in calling.headers
    assert "vary" not in calling.headers
    assert json.loads(calling_body)["quota"]["used"] == 32


async def test_head_gets_the_headers_of_the_compressed_get_without_a_body(
    client: httpx.AsyncClient,
) -> None:
    get, _ = await raw_get(client, "/v1/openapi.json", GZIP)
    head = await client.head("/v1/openapi.json", headers=GZIP)

    assert head.status_code == 200 and head.content == b""
    for name in ("content-encoding", "content-length", "content-type", "vary"):
        assert head.headers[name] == get.headers[name], name


async def test_problem_bodies_and_health_answers_stay_uncompressed(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/healthz", "/v1/projects"):
        response = await client.get(path, headers=GZIP)
        assert "content-encoding" not in response.headers, path


@pytest.mark.parametrize(
    ("path", "without"),
    [
        ("/v1/projects/", "/v1/projects"),
        ("/v1/projects/1/", "/v1/projects/1"),
        ("/v1/projects/1/tasks/", "/v1/projects/1/tasks"),
        ("/v1/api-keys/", "/v1/api-keys"),
        ("/v1/auth/key/", "/v1/auth/key"),
        ("/v1/docs/", "/v1/docs"),
        ("/healthz/", "/healthz"),
    ],
)
async def test_a_trailing_slash_is_a_404_problem_naming_the_path_without_it(
    client: httpx.AsyncClient, path: str, without: str
) -> None:
    for method in ("GET", "POST"):
        response = await client.request(method, path, headers={"Content-Type": "application/json"})
        assert response.status_code == 404, (method, response.headers.get("location"))
        assert "location" not in response.headers
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "not_found"
        assert response.json()["detail"] == f"No such route. Drop the trailing slash: {without}"


async def test_a_trailing_slash_with_a_key_is_the_same_404_and_is_not_counted(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)

    slashed = await client.get("/v1/projects/", headers=bearer(key))
    calling = await client.get("/v1/auth/key", headers=bearer(key))

    assert slashed.status_code == 404 and "x-ratelimit-used" not in slashed.headers
    assert calling.json()["quota"]["used"] == 1


async def test_an_unknown_path_with_a_trailing_slash_gets_the_plain_404(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/nothing/")
    assert response.status_code == 404
    assert response.json()["detail"] == "No such route. See /v1/docs for the API reference."


async def test_the_dashboard_page_keeps_its_slashed_address(client: httpx.AsyncClient) -> None:
    assert (await client.get("/dashboard/")).status_code == 200
