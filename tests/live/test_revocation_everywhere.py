"""Revoking a key, removing its creator or demoting them applies on every process at once.

Process A takes the change; the very next request on process B already sees it (no cache).
"""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from craftdesk.workspaces.queries import workspace_by_id
from craftdesk.workspaces.service import add_member
from tests.conftest import PASSWORD, World, bearer, sign_in
from tests.live.conftest import StartServers
from tests.live.server import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture
async def two_processes(start_servers: StartServers) -> list[LiveServer]:
    """Two processes on one database: PostgreSQL as deployed, SQLite (WAL) on one host."""
    return await start_servers(2)


@pytest.fixture
async def on_a(two_processes: list[LiveServer]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=two_processes[0].url, timeout=10) as http:
        yield http


@pytest.fixture
async def on_b(two_processes: list[LiveServer]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=two_processes[1].url, timeout=10) as http:
        yield http


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code


async def test_key_revoked_on_one_process_is_rejected_by_the_next_request_on_another(
    world: World, on_a: httpx.AsyncClient, on_b: httpx.AsyncClient
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    seen_by_a = await on_a.get("/v1/auth/key", headers=bearer(key))
    assert seen_by_a.status_code == 200
    assert (await on_b.get("/v1/auth/key", headers=bearer(key))).status_code == 200

    csrf = await sign_in(on_a, workspace, owner)
    revoked = await on_a.delete(f"/v1/api-keys/{seen_by_a.json()['id']}", headers=csrf)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None

    response = await on_b.get("/v1/projects", headers=bearer(key))
    assert_problem(response, 401, "key_revoked")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="craftdesk", error="invalid_token"'
    assert_problem(await on_a.get("/v1/projects", headers=bearer(key)), 401, "key_revoked")


async def test_member_removed_on_one_process_has_their_key_rejected_on_another(
    world: World, on_a: httpx.AsyncClient, on_b: httpx.AsyncClient
) -> None:
    workspace, owner = await world.workspace()
    owner_key = await world.key(workspace, owner)
    member = await world.member(workspace, "member")
    member_key = await world.key(workspace, member)
    assert (await on_b.get("/v1/projects", headers=bearer(member_key))).status_code == 200

    removed = await on_a.delete(f"/v1/members/{member.membership_id}", headers=bearer(owner_key))
    assert removed.status_code == 204, removed.text

    assert_problem(await on_b.get("/v1/projects", headers=bearer(member_key)), 401, "key_revoked")


async def test_admin_demoted_on_one_process_has_their_full_key_narrowed_on_another(
    world: World, on_a: httpx.AsyncClient, on_b: httpx.AsyncClient
) -> None:
    workspace, owner = await world.workspace()
    owner_key = await world.key(workspace, owner)
    admin = await world.member(workspace, "admin")
    admin_key = await world.key(workspace, admin, scope="full")
    projects = []
    for name in ("Deleted while admin", "Kept after demotion"):
        created = await on_a.post("/v1/projects", json={"name": name}, headers=bearer(owner_key))
        assert created.status_code == 201, created.text
        projects.append(created.json()["id"])
    while_admin = await on_b.delete(f"/v1/projects/{projects[0]}", headers=bearer(admin_key))
    assert while_admin.status_code == 204, while_admin.text

    demoted = await on_a.patch(
        f"/v1/members/{admin.membership_id}", json={"role": "member"}, headers=bearer(owner_key)
    )
    assert demoted.status_code == 200, demoted.text

    response = await on_b.delete(f"/v1/projects/{projects[1]}", headers=bearer(admin_key))
    assert_problem(response, 403, "insufficient_role")
    still_there = await on_b.get(f"/v1/projects/{projects[1]}", headers=bearer(admin_key))
    assert still_there.status_code == 200  # a member still reads it


async def test_keys_and_sign_ins_racing_a_members_removal_never_survive_it(
    world: World, app: FastAPI, on_a: httpx.AsyncClient, on_b: httpx.AsyncClient
) -> None:
    """The member creates keys and signs in on both processes while an owner removes them:
    whatever was created gets 401 afterwards, is listed revoked, and stays dead when the
    same person is added back."""
    workspace, owner = await world.workspace()
    owner_key = await world.key(workspace, owner)
    member = await world.member(workspace, "member")
    sessions = {}
    for name, server in (("a", on_a), ("b", on_b)):
        client = httpx.AsyncClient(base_url=str(server.base_url), timeout=30)
        sessions[name] = (client, await sign_in(client, workspace, member))
    credentials = {"workspace": workspace.slug, "email": member.email, "password": PASSWORD}

    async def create(name: str) -> httpx.Response:
        client, csrf = sessions[name]
        return await client.post("/v1/api-keys", json={"name": "race"}, headers=csrf)

    async def sign_in_again(server: httpx.AsyncClient) -> httpx.Response:
        fresh = httpx.AsyncClient(base_url=str(server.base_url), timeout=30)
        response = await fresh.post("/v1/sessions", json=credentials)
        racing_sign_ins.append(fresh)
        return response

    racing_sign_ins: list[httpx.AsyncClient] = []
    try:
        creations = [create("a" if n % 2 else "b") for n in range(16)]
        removal = on_a.delete(f"/v1/members/{member.membership_id}", headers=bearer(owner_key))
        sign_ins = [sign_in_again(on_b if n % 2 else on_a) for n in range(4)]
        *created, removed = await asyncio.gather(*creations[:8], *sign_ins, *creations[8:], removal)
        assert removed.status_code == 204, removed.text
        keys = [r.json()["key"] for r in created if r.status_code == 201 and "key" in r.json()]
        for response in created:
            assert response.status_code in (201, 401, 409), response.text

        async with app.state.db.transaction() as tx:
            current = await workspace_by_id(tx, workspace.id)
            assert current is not None
            await add_member(tx, current, email=member.email, password=PASSWORD, role="member")

        for key in keys:
            for server in (on_a, on_b):
                response = await server.get("/v1/auth/key", headers=bearer(key))
                assert_problem(response, 401, "key_revoked")
        owner_csrf = await sign_in(on_b, workspace, owner)
        listed = (await on_b.get("/v1/api-keys", params={"limit": 100}, headers=owner_csrf)).json()
        race_keys = [k for k in listed["data"] if k["name"] == "race"]
        assert len(race_keys) == len(keys) and {k["status"] for k in race_keys} <= {"revoked"}
        for client in [*(c for c, _ in sessions.values()), *racing_sign_ins]:
            assert_problem(await client.get("/v1/sessions/current"), 401, "not_signed_in")
    finally:
        for client in [*(c for c, _ in sessions.values()), *racing_sign_ins]:
            await client.aclose()
