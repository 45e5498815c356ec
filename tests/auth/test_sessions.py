import asyncio
import threading

import httpx
import pytest
from fastapi import FastAPI

import craftdesk.auth.sessions
from craftdesk.auth.passwords import verify_password
from tests.conftest import PASSWORD, World, bearer, sign_in


async def test_sign_in_sets_an_httponly_cookie_and_returns_csrf(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    response = await client.post(
        "/v1/sessions",
        json={"workspace": workspace.slug, "email": owner.email.upper(), "password": PASSWORD},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["user"]["email"] == owner.email
    assert body["workspace"]["slug"] == workspace.slug and body["role"] == "owner"
    assert len(body["csrf_token"]) >= 32
    cookie = response.headers["set-cookie"]
    assert "craftdesk_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    current = await client.get("/v1/sessions/current")
    assert current.status_code == 200 and current.json()["csrf_token"] == body["csrf_token"]


async def test_wrong_password_and_unknown_email_get_the_same_401(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    wrong_password = await client.post(
        "/v1/sessions", json={"workspace": workspace.slug, "email": owner.email, "password": "x"}
    )
    unknown_email = await client.post(
        "/v1/sessions",
        json={"workspace": workspace.slug, "email": "nobody@example.com", "password": PASSWORD},
    )
    wrong_workspace = await client.post(
        "/v1/sessions", json={"workspace": "nope", "email": owner.email, "password": PASSWORD}
    )
    for response in (wrong_password, unknown_email, wrong_workspace):
        assert response.status_code == 401
        assert response.json() == wrong_password.json()
        assert "set-cookie" not in response.headers


async def test_repeated_failures_lock_the_account_with_retry_after(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    workspace, owner = await world.workspace()
    attempts = app.state.settings.login_max_failures
    for _ in range(attempts):
        response = await client.post(
            "/v1/sessions",
            json={"workspace": workspace.slug, "email": owner.email, "password": "guess"},
        )
        assert response.status_code == 401
    locked = await client.post(
        "/v1/sessions",
        json={"workspace": workspace.slug, "email": owner.email, "password": PASSWORD},
    )
    assert locked.status_code == 429
    assert locked.json()["code"] == "too_many_attempts"
    assert int(locked.headers["retry-after"]) > 0


async def test_concurrent_guesses_get_no_more_tries_than_the_lock_out_allows(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    workspace, owner = await world.workspace()
    guess = {"workspace": workspace.slug, "email": owner.email, "password": "guess"}
    responses = await asyncio.gather(*(client.post("/v1/sessions", json=guess) for _ in range(20)))
    statuses = sorted(response.status_code for response in responses)
    allowed = app.state.settings.login_max_failures
    assert statuses == [401] * allowed + [429] * (20 - allowed)


async def test_a_sign_in_checking_its_password_does_not_hold_up_api_requests(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    checking, release = threading.Event(), threading.Event()

    def held_check(password: str, password_hash: str | None) -> bool:
        checking.set()
        release.wait(10)  # the argon2 check takes as long as the test wants
        return verify_password(password, password_hash)

    monkeypatch.setattr(craftdesk.auth.sessions, "verify_password", held_check)
    sign_in = asyncio.create_task(
        client.post(
            "/v1/sessions",
            json={"workspace": workspace.slug, "email": owner.email, "password": PASSWORD},
        )
    )
    try:
        assert await asyncio.to_thread(checking.wait, 10)
        meanwhile = await client.post(
            "/v1/projects", json={"name": "Meanwhile"}, headers=bearer(key)
        )
    finally:
        release.set()
    assert meanwhile.status_code == 201, meanwhile.text
    assert (await sign_in).status_code == 201


async def test_unsafe_request_without_csrf_token_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    refused = await client.post("/v1/api-keys", json={"name": "CI", "scope": "full"})
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
    wrong = await client.post("/v1/api-keys", json={"name": "CI"}, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    accepted = await client.post("/v1/api-keys", json={"name": "CI"}, headers=csrf)
    assert accepted.status_code == 201


async def test_sign_out_invalidates_the_session_server_side(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    cookie = client.cookies.get("craftdesk_session")
    assert (await client.delete("/v1/sessions/current", headers=csrf)).status_code == 204
    client.cookies.set("craftdesk_session", cookie or "")
    after = await client.get("/v1/sessions/current")
    assert after.status_code == 401 and after.json()["code"] == "not_signed_in"


async def test_api_key_on_a_session_route_gets_session_required(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    for method, path in [("GET", "/v1/api-keys"), ("POST", "/v1/api-keys"), ("GET", "/v1/usage")]:
        response = await client.request(method, path, headers=bearer(key), json={"name": "x"})
        assert response.status_code == 403
        assert response.json()["code"] == "session_required"


async def test_no_session_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/api-keys")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer realm="craftdesk"')


async def test_password_is_stored_as_argon2id(app: FastAPI, world: World) -> None:
    _, owner = await world.workspace()
    stored = await app.state.db.fetchval(
        "SELECT password_hash FROM users WHERE email = $1", owner.email
    )
    assert stored is not None and stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in stored


@pytest.mark.parametrize("password", ["p" * 73, "ü" * 40 + "tail"])
async def test_long_passwords_work_whole(
    client: httpx.AsyncClient, world: World, app: FastAPI, password: str
) -> None:
    from craftdesk.workspaces.service import create_workspace

    async with app.state.db.transaction() as tx:
        workspace = await create_workspace(
            tx, name="Long", owner_email="long@example.com", owner_password=password
        )
    ok = await client.post(
        "/v1/sessions",
        json={"workspace": workspace.slug, "email": "long@example.com", "password": password},
    )
    assert ok.status_code == 201
    first_72_bytes = password.encode()[:72].decode(errors="ignore")
    cut = await client.post(
        "/v1/sessions",
        json={"workspace": workspace.slug, "email": "long@example.com", "password": first_72_bytes},
    )
    assert cut.status_code == 401


async def test_unknown_email_costs_as_much_as_a_wrong_password(
    client: httpx.AsyncClient, world: World
) -> None:
    """A dummy argon2 check for unknown emails: timing does not reveal who has an account.

    Without it an unknown email answers about 30x faster; the bound is loose for busy machines.
    """
    import statistics
    import time

    workspace, owner = await world.workspace()

    async def attempt(email: str) -> float:
        started = time.perf_counter()
        response = await client.post(
            "/v1/sessions", json={"workspace": workspace.slug, "email": email, "password": "nope"}
        )
        assert response.status_code == 401
        return time.perf_counter() - started

    known, unknown = [], []
    for n in range(4):
        known.append(await attempt(owner.email if n % 2 else owner.email.upper()))
        unknown.append(await attempt(f"ghost{n}@example.com"))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.33 < ratio < 3, ratio
