"""The seed's 401 troubleshooting list, one test per cause, and the Bearer header's rules."""

import asyncio
import datetime as dt

import httpx
import pytest

from craftdesk.auth.tokens import generate_key
from craftdesk.db import utcnow
from tests.conftest import World, bearer

REALM = 'Bearer realm="craftdesk"'
INVALID_TOKEN = 'Bearer realm="craftdesk", error="invalid_token"'


def assert_401(response: httpx.Response, code: str, challenge: str = INVALID_TOKEN) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == challenge
    body = response.json()
    assert body["code"] == code
    assert body["status"] == 401
    assert set(body) == {"type", "title", "status", "detail", "code"}


async def test_valid_key_lists_projects(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    response = await client.get(
        "/v1/projects", headers={**bearer(key), "Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json() == {"data": [], "next_cursor": None}


async def test_key_not_included_in_header(client: httpx.AsyncClient) -> None:
    assert_401(await client.get("/v1/projects"), "missing_credentials", REALM)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Token cdk_abc", "Digest x"])
async def test_other_scheme_is_missing_credentials(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get("/v1/projects", headers={"Authorization": header})
    assert_401(response, "missing_credentials", REALM)


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Bearer not-a-key", "Bearer cdk_", "Bearer {key} extra", "Bearer {key}x"],
)
async def test_header_not_bearer_key_value_is_malformed(
    client: httpx.AsyncClient, world: World, header: str
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    response = await client.get("/v1/projects", headers={"Authorization": header.format(key=key)})
    assert_401(response, "malformed_credentials")


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
async def test_scheme_word_is_case_insensitive(
    client: httpx.AsyncClient, world: World, scheme: str
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    response = await client.get("/v1/projects", headers={"Authorization": f"{scheme} {key}"})
    assert response.status_code == 200


async def test_bad_checksum_is_rejected_without_touching_the_database(
    client: httpx.AsyncClient, world: World, queries: list[str]
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    typo = key[:-1] + ("A" if key[-1] != "A" else "B")
    queries.clear()
    for damaged in (typo, key[:-3], "cdk_" + "x" * 50, "sk_live_abc", key.replace("cdk_", "cdx_")):
        assert_401(
            await client.get("/v1/projects", headers=bearer(damaged)), "malformed_credentials"
        )
    assert queries == []


async def test_unknown_key_with_valid_checksum_is_invalid(client: httpx.AsyncClient) -> None:
    assert_401(await client.get("/v1/projects", headers=bearer(generate_key().key)), "invalid_key")


async def test_known_id_with_wrong_secret_is_invalid(
    client: httpx.AsyncClient, world: World
) -> None:
    from craftdesk.auth.tokens import PREFIX, checksum

    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    public_id = key[len(PREFIX) : len(PREFIX) + 12]
    body = f"{PREFIX}{public_id}_{'a' * 32}"
    assert_401(
        await client.get("/v1/projects", headers=bearer(body + checksum(body))), "invalid_key"
    )


async def test_revoked_key(client: httpx.AsyncClient, world: World, app) -> None:  # type: ignore[no-untyped-def]
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    assert (await client.get("/v1/projects", headers=bearer(key))).status_code == 200
    await _update_key(app, key, revoked_at=utcnow())
    assert_401(await client.get("/v1/projects", headers=bearer(key)), "key_revoked")


async def test_expired_key(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner, expires_at=utcnow() - dt.timedelta(seconds=1))
    assert_401(await client.get("/v1/projects", headers=bearer(key)), "key_expired")


async def test_key_expiring_later_still_works(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner, expires_at=utcnow() + dt.timedelta(hours=1))
    assert (await client.get("/v1/projects", headers=bearer(key))).status_code == 200


async def test_key_of_another_workspace_than_named(client: httpx.AsyncClient, world: World) -> None:
    acme, owner = await world.workspace("Acme")
    globex, _ = await world.workspace("Globex")
    key = await world.key(acme, owner)
    right = await client.get(
        "/v1/projects", headers={**bearer(key), "CraftDesk-Workspace": acme.slug}
    )
    assert right.status_code == 200
    wrong = await client.get(
        "/v1/projects", headers={**bearer(key), "CraftDesk-Workspace": globex.slug}
    )
    assert_401(wrong, "workspace_mismatch")


async def test_any_workspace_header_is_a_mismatch_for_that_request_alone(
    client: httpx.AsyncClient, world: World
) -> None:
    """Concurrent requests are admitted together in one database statement. A workspace
    header no slug can be (HTTP servers refuse a NUL, but an ASGI app cannot count on it)
    is one request's mismatch, not a failure of the requests admitted with it."""
    acme, owner = await world.workspace("Acme")
    key = await world.key(acme, owner)
    odd = [b"acme\x00", "café".encode("latin-1"), b"a" * 4000, acme.slug.upper().encode()]
    responses = await asyncio.gather(
        *(
            client.get("/v1/auth/key", headers={**bearer(key), "CraftDesk-Workspace": value})
            for value in odd
        ),
        *(client.get("/v1/auth/key", headers=bearer(key)) for _ in range(3)),
    )
    for response in responses[: len(odd)]:
        assert_401(response, "workspace_mismatch")
    assert [response.status_code for response in responses[len(odd) :]] == [200] * 3
    assert responses[-1].json()["quota"]["used"] == 3


@pytest.mark.parametrize("key", [None, generate_key().key], ids=["no key", "unknown key"])
async def test_a_bad_key_gets_its_401_before_the_body_is_read(
    client: httpx.AsyncClient, key: str | None
) -> None:
    response = await client.post(
        "/v1/projects",
        content=b'{"name": ',  # cut short: a 422 to a valid key
        headers={"Content-Type": "application/json", **(bearer(key) if key else {})},
    )
    if key is None:
        assert_401(response, "missing_credentials", REALM)
    else:
        assert_401(response, "invalid_key")


async def test_401_never_echoes_the_key(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner, expires_at=utcnow() - dt.timedelta(seconds=1))
    response = await client.get("/v1/projects", headers=bearer(key))
    assert key not in response.text
    assert key[4:16] not in response.text


async def _update_key(app, key: str, **values) -> None:  # type: ignore[no-untyped-def]
    columns = ", ".join(f"{column} = ${n}" for n, column in enumerate(values, start=2))
    async with app.state.db.transaction() as tx:
        await tx.execute(
            f"UPDATE api_keys SET {columns} WHERE public_id = $1", key[4:16], *values.values()
        )
