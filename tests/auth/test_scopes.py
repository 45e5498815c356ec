"""The seed's 403 list and scoped keys: a key's scope intersected with its creator's role."""

import httpx
import pytest

from tests.conftest import World, bearer


def assert_403(response: httpx.Response, code: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    if code == "insufficient_scope":
        assert response.headers["www-authenticate"] == (
            'Bearer realm="craftdesk", error="insufficient_scope"'
        )


async def _project(client: httpx.AsyncClient, key: str, name: str = "Website") -> int:
    response = await client.post("/v1/projects", json={"name": name}, headers=bearer(key))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_read_only_key_reads_but_cannot_create(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner, scope="read_only")
    assert (await client.get("/v1/projects", headers=bearer(key))).status_code == 200
    assert (await client.get("/v1/members", headers=bearer(key))).status_code == 200
    response = await client.post("/v1/projects", json={"name": "X"}, headers=bearer(key))
    assert_403(response, "insufficient_scope")
    assert "projects:write" in response.json()["detail"]


async def test_read_only_key_cannot_update_or_delete(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    full = await world.key(workspace, owner)
    read_only = await world.key(workspace, owner, scope="read_only")
    project = await _project(client, full)
    patch = await client.patch(
        f"/v1/projects/{project}", json={"name": "Y"}, headers=bearer(read_only)
    )
    assert_403(patch, "insufficient_scope")
    assert_403(
        await client.delete(f"/v1/projects/{project}", headers=bearer(read_only)),
        "insufficient_scope",
    )
    assert (await client.get(f"/v1/projects/{project}", headers=bearer(full))).json()["name"] == (
        "Website"
    )


async def test_scoped_key_outside_its_projects(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace(plan="business")
    full = await world.key(workspace, owner)
    allowed, other = await _project(client, full, "A"), await _project(client, full, "B")
    key = await world.key(
        workspace,
        owner,
        scope="custom",
        permissions={"projects": "read", "tasks": "write", "members": "none"},
        project_ids=[allowed],
    )
    assert (await client.get(f"/v1/projects/{allowed}", headers=bearer(key))).status_code == 200
    listed = (await client.get("/v1/projects", headers=bearer(key))).json()["data"]
    assert [p["id"] for p in listed] == [allowed]
    assert_403(await client.get(f"/v1/projects/{other}", headers=bearer(key)), "insufficient_scope")
    assert_403(
        await client.post(f"/v1/projects/{other}/tasks", json={"title": "t"}, headers=bearer(key)),
        "insufficient_scope",
    )
    task = await client.post(
        f"/v1/projects/{allowed}/tasks", json={"title": "Ship it"}, headers=bearer(key)
    )
    assert task.status_code == 201


async def test_custom_examples_from_the_seed(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace(plan="business")
    full = await world.key(workspace, owner)
    project = await _project(client, full)
    # "Write access to project tasks only"
    tasks_only = await world.key(workspace, owner, scope="custom", permissions={"tasks": "write"})
    created = await client.post(
        f"/v1/projects/{project}/tasks", json={"title": "x"}, headers=bearer(tasks_only)
    )
    assert created.status_code == 201
    assert_403(await client.get("/v1/projects", headers=bearer(tasks_only)), "insufficient_scope")
    # "No access to team member data"
    no_members = await world.key(
        workspace, owner, scope="custom", permissions={"projects": "write", "tasks": "write"}
    )
    assert (await client.get("/v1/projects", headers=bearer(no_members))).status_code == 200
    assert_403(await client.get("/v1/members", headers=bearer(no_members)), "insufficient_scope")
    # "Read-only access to a specific project"
    one_project = await world.key(
        workspace,
        owner,
        scope="custom",
        permissions={"projects": "read", "tasks": "read"},
        project_ids=[project],
    )
    assert (
        await client.get(f"/v1/projects/{project}/tasks", headers=bearer(one_project))
    ).status_code == 200
    assert_403(
        await client.patch(
            f"/v1/projects/{project}", json={"name": "n"}, headers=bearer(one_project)
        ),
        "insufficient_scope",
    )


async def test_custom_key_stops_working_off_the_business_plan(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace(plan="business")
    key = await world.key(workspace, owner, scope="custom", permissions={"projects": "read"})
    assert (await client.get("/v1/projects", headers=bearer(key))).status_code == 200
    await world.set_plan(workspace, "pro")
    assert_403(await client.get("/v1/projects", headers=bearer(key)), "plan_required")


async def test_member_full_key_cannot_delete_a_project(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    member = await world.member(workspace, "member")
    key = await world.key(workspace, member)
    project = await _project(client, key)
    assert (
        await client.patch(f"/v1/projects/{project}", json={"name": "Z"}, headers=bearer(key))
    ).status_code == 200
    response = await client.delete(f"/v1/projects/{project}", headers=bearer(key))
    assert_403(response, "insufficient_role")
    assert "projects:delete" in response.json()["detail"]
    assert_403(
        await client.patch("/v1/members/1", json={"role": "admin"}, headers=bearer(key)),
        "insufficient_role",
    )


async def test_full_key_equals_the_creators_permission_level(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, _ = await world.workspace()
    member = await world.member(workspace, "member")
    admin = await world.member(workspace, "admin")
    member_view = (
        await client.get("/v1/auth/key", headers=bearer(await world.key(workspace, member)))
    ).json()
    admin_view = (
        await client.get("/v1/auth/key", headers=bearer(await world.key(workspace, admin)))
    ).json()
    assert member_view["permissions"] == {"projects": "write", "tasks": "write", "members": "read"}
    assert admin_view["permissions"] == {"projects": "write", "tasks": "write", "members": "write"}


async def test_demoting_the_creator_narrows_the_key_at_once(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    admin = await world.member(workspace, "admin")
    owner_key = await world.key(workspace, owner)
    admin_key = await world.key(workspace, admin)
    project = await _project(client, admin_key)
    demote = await client.patch(
        f"/v1/members/{admin.membership_id}", json={"role": "member"}, headers=bearer(owner_key)
    )
    assert demote.status_code == 200
    assert_403(
        await client.delete(f"/v1/projects/{project}", headers=bearer(admin_key)),
        "insufficient_role",
    )


async def test_removing_a_member_revokes_their_keys(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    member = await world.member(workspace)
    owner_key = await world.key(workspace, owner)
    member_key = await world.key(workspace, member)
    assert (await client.get("/v1/projects", headers=bearer(member_key))).status_code == 200
    removed = await client.delete(f"/v1/members/{member.membership_id}", headers=bearer(owner_key))
    assert removed.status_code == 204
    response = await client.get("/v1/projects", headers=bearer(member_key))
    assert response.status_code == 401
    assert response.json()["code"] == "key_revoked"


@pytest.mark.parametrize("role", ["admin", "member"])
async def test_only_an_owner_changes_or_removes_an_owner(
    client: httpx.AsyncClient, world: World, role: str
) -> None:
    workspace, owner = await world.workspace()
    other = await world.member(workspace, role)
    key = await world.key(workspace, other)
    assert_403(
        await client.patch(
            f"/v1/members/{owner.membership_id}", json={"role": "member"}, headers=bearer(key)
        ),
        "insufficient_role",
    )
    assert_403(
        await client.delete(f"/v1/members/{owner.membership_id}", headers=bearer(key)),
        "insufficient_role",
    )


async def test_last_owner_cannot_be_demoted(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    response = await client.patch(
        f"/v1/members/{owner.membership_id}", json={"role": "admin"}, headers=bearer(key)
    )
    assert response.status_code == 409
    assert response.json()["code"] == "last_owner"
