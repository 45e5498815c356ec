"""The limits a client can run into: body size, field lengths, page size, methods."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import World, bearer, sign_in


@pytest.fixture
async def key(world: World) -> str:
    workspace, owner = await world.workspace()
    return await world.key(workspace, owner)


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] == code
    assert set(body) == {"type", "title", "status", "detail", "code"}


def oversized(app: FastAPI) -> bytes:
    limit: int = app.state.settings.max_body_bytes
    return b'{"name": "' + b"x" * limit + b'"}'


async def test_a_body_over_the_limit_with_content_length_is_413(
    client: httpx.AsyncClient, app: FastAPI, key: str
) -> None:
    response = await client.post(
        "/v1/projects",
        content=oversized(app),
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert "content-length" in response.request.headers
    assert_problem(response, 413, "payload_too_large")
    assert str(app.state.settings.max_body_bytes) in response.json()["detail"]


async def test_a_chunked_body_over_the_limit_is_413(
    client: httpx.AsyncClient, app: FastAPI, key: str
) -> None:
    body = oversized(app)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    response = await client.post(
        "/v1/projects",
        content=chunks(),
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413, "payload_too_large")


async def test_an_oversized_body_is_not_metered_with_or_without_content_length(
    client: httpx.AsyncClient, app: FastAPI, key: str
) -> None:
    body = oversized(app)

    async def chunks() -> AsyncIterator[bytes]:
        yield body

    headers = {**bearer(key), "Content-Type": "application/json"}
    for content in (body, chunks()):
        response = await client.post("/v1/projects", content=content, headers=headers)
        assert_problem(response, 413, "payload_too_large")
        assert "x-ratelimit-used" not in response.headers
    used = await client.get("/v1/auth/key", headers=bearer(key))
    assert used.headers["x-ratelimit-used"] == "1"  # this request alone


async def test_a_chunked_body_under_the_limit_is_read_whole(
    client: httpx.AsyncClient, key: str
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "Chunked", '
        yield b'"description": "in two parts"}'

    response = await client.post(
        "/v1/projects",
        content=chunks(),
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["description"] == "in two parts"


@pytest.mark.parametrize("written", ["1.0", "%201", "+1", "1%20", "0x1", "\u0661"])
async def test_a_path_id_is_digits_only(client: httpx.AsyncClient, key: str, written: str) -> None:
    project = await client.post("/v1/projects", json={"name": "One"}, headers=bearer(key))
    assert project.json()["id"] == 1
    response = await client.get(f"/v1/projects/{written}", headers=bearer(key))
    assert_problem(response, 422, "validation_error")


async def test_a_sign_in_body_over_the_limit_is_413_before_any_password_check(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    response = await client.post(
        "/v1/sessions", content=oversized(app), headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")


async def test_a_body_just_under_the_limit_is_read(
    client: httpx.AsyncClient, app: FastAPI, key: str
) -> None:
    description = "d" * 10_000
    response = await client.post(
        "/v1/projects", json={"name": "Big", "description": description}, headers=bearer(key)
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/projects", {"name": "x" * 201}),
        ("/v1/projects", {"name": "ok", "description": "d" * 10_001}),
        ("/v1/projects/{project}/tasks", {"title": "x" * 201}),
    ],
)
async def test_over_long_project_and_task_fields_are_422(
    client: httpx.AsyncClient, key: str, path: str, body: dict[str, str]
) -> None:
    project = (await client.post("/v1/projects", json={"name": "P"}, headers=bearer(key))).json()
    response = await client.post(path.format(project=project["id"]), json=body, headers=bearer(key))
    assert_problem(response, 422, "validation_error")


async def test_over_long_key_names_are_422(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    created = await client.post("/v1/api-keys", json={"name": "x" * 101}, headers=csrf)
    assert_problem(created, 422, "validation_error")
    key = (await client.post("/v1/api-keys", json={"name": "x" * 100}, headers=csrf)).json()
    renamed = await client.patch(
        f"/v1/api-keys/{key['id']}", json={"name": "y" * 101}, headers=csrf
    )
    assert_problem(renamed, 422, "validation_error")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/projects", {"name": "a\x00b"}),
        ("/v1/projects", {"name": "ok", "description": "\x00"}),
        ("/v1/sessions", {"workspace": "acme\x00", "email": "a@b.c", "password": "p"}),
    ],
)
async def test_a_nul_character_is_422_not_a_database_error(
    client: httpx.AsyncClient, key: str, path: str, body: dict[str, str]
) -> None:
    response = await client.post(path, json=body, headers=bearer(key) if "projects" in path else {})
    assert_problem(response, 422, "validation_error")


async def test_a_body_that_is_not_utf8_is_422(client: httpx.AsyncClient, key: str) -> None:
    response = await client.post(
        "/v1/projects",
        content=b'{"name": "\xff\xfe"}',
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert_problem(response, 422, "validation_error")


LISTS = [
    "/v1/projects",
    "/v1/projects/{project}/tasks",
    "/v1/members",
    "/v1/api-keys",
    "/v1/audit-events",
]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", [0, 101, 1000])
async def test_a_page_size_outside_1_to_100_is_422(
    client: httpx.AsyncClient, world: World, path: str, limit: int
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    project = (await client.post("/v1/projects", json={"name": "P"}, headers=bearer(key))).json()
    await sign_in(client, workspace, owner)
    headers = {} if path.startswith(("/v1/api-keys", "/v1/audit")) else bearer(key)
    url = path.format(project=project["id"])
    assert (await client.get(url, params={"limit": 100}, headers=headers)).status_code == 200
    response = await client.get(url, params={"limit": limit}, headers=headers)
    assert_problem(response, 422, "validation_error")
    assert "limit" in response.json()["detail"]


async def test_a_cursor_past_every_id_is_an_empty_page(client: httpx.AsyncClient, key: str) -> None:
    await client.post("/v1/projects", json={"name": "P"}, headers=bearer(key))
    response = await client.get(
        "/v1/projects", params={"cursor": "999999999999999999"}, headers=bearer(key)
    )
    assert response.status_code == 200
    assert response.json() == {"data": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/projects", "GET, HEAD, POST"),
        ("TRACE", "/v1/projects", "GET, HEAD, POST"),
        ("DELETE", "/v1/projects", "GET, HEAD, POST"),
        ("PUT", "/v1/projects/1", "DELETE, GET, HEAD, PATCH"),
        ("POST", "/v1/projects/1/tasks/1", "DELETE, GET, HEAD, PATCH"),
        ("PUT", "/v1/members/1", "DELETE, GET, HEAD, PATCH"),
        ("GET", "/v1/sessions", "POST"),
        ("PUT", "/v1/api-keys/1", "DELETE, GET, HEAD, PATCH"),
        ("GET", "/v1/api-keys/1/rotate", "POST"),
        ("OPTIONS", "/v1/audit-events", "GET, HEAD"),
        ("POST", "/healthz", "GET, HEAD"),
    ],
)
async def test_an_unknown_method_is_405_with_every_allowed_method(
    client: httpx.AsyncClient, key: str, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path, headers=bearer(key))
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allowed


async def test_head_is_a_get_without_the_body(client: httpx.AsyncClient, key: str) -> None:
    await client.post("/v1/projects", json={"name": "P"}, headers=bearer(key))
    get = await client.get("/v1/projects", headers=bearer(key))
    head = await client.head("/v1/projects", headers=bearer(key))
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-type"] == get.headers["content-type"]
    assert int(head.headers["x-ratelimit-used"]) == int(get.headers["x-ratelimit-used"]) + 1


async def test_head_needs_a_key_like_get(client: httpx.AsyncClient) -> None:
    response = await client.head("/v1/projects")
    assert response.status_code == 401 and response.content == b""
