import httpx

from tests.conftest import World, bearer


async def test_members_are_listed_with_roles(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    member = await world.member(workspace)
    key = await world.key(workspace, member)
    body = (await client.get("/v1/members", headers=bearer(key))).json()
    assert {(m["email"], m["role"]) for m in body["data"]} == {
        (owner.email, "owner"),
        (member.email, "member"),
    }
    one = await client.get(f"/v1/members/{member.membership_id}", headers=bearer(key))
    assert one.json()["email"] == member.email


async def test_admin_changes_a_members_role(client: httpx.AsyncClient, world: World) -> None:
    workspace, _ = await world.workspace()
    admin = await world.member(workspace, "admin")
    member = await world.member(workspace)
    key = await world.key(workspace, admin)
    response = await client.patch(
        f"/v1/members/{member.membership_id}", json={"role": "admin"}, headers=bearer(key)
    )
    assert response.status_code == 200 and response.json()["role"] == "admin"
    bad = await client.patch(
        f"/v1/members/{member.membership_id}", json={"role": "king"}, headers=bearer(key)
    )
    assert bad.status_code == 422


async def test_admin_cannot_make_an_owner(client: httpx.AsyncClient, world: World) -> None:
    workspace, _ = await world.workspace()
    admin = await world.member(workspace, "admin")
    member = await world.member(workspace)
    key = await world.key(workspace, admin)
    response = await client.patch(
        f"/v1/members/{member.membership_id}", json={"role": "owner"}, headers=bearer(key)
    )
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_role"


async def test_owner_hands_over_ownership(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    admin = await world.member(workspace, "admin")
    key = await world.key(workspace, owner)
    promote = await client.patch(
        f"/v1/members/{admin.membership_id}", json={"role": "owner"}, headers=bearer(key)
    )
    assert promote.status_code == 200
    step_down = await client.patch(
        f"/v1/members/{owner.membership_id}", json={"role": "admin"}, headers=bearer(key)
    )
    assert step_down.status_code == 200


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(
    client: httpx.AsyncClient, world: World
) -> None:
    import asyncio

    workspace, first = await world.workspace()
    second = await world.member(workspace, "owner")
    first_key = await world.key(workspace, first)
    second_key = await world.key(workspace, second)
    responses = await asyncio.gather(
        client.patch(
            f"/v1/members/{second.membership_id}", json={"role": "admin"}, headers=bearer(first_key)
        ),
        client.patch(
            f"/v1/members/{first.membership_id}", json={"role": "admin"}, headers=bearer(second_key)
        ),
    )
    statuses = sorted(r.status_code for r in responses)
    remaining = (await client.get("/v1/members", headers=bearer(first_key))).json()["data"]
    assert [m["role"] for m in remaining].count("owner") == 1
    assert statuses in ([200, 409], [200, 403])
