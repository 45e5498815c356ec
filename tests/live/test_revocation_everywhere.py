"""Revoking a key, removing its creator or demoting them applies on every process at once.

Process A takes the change; the very next request on process B already sees it (no cache).
"""

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import World, bearer, sign_in
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
