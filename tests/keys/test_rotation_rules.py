"""Who may rotate which key, how often, and for how long a key may be issued.

Rotating hands out a new secret that acts as the key's creator: only the creator may do it
(owners and admins may revoke anyone's key). A key is rotated once; its expiry is bounded.
"""

import asyncio
import datetime as dt

import httpx
from fastapi import FastAPI

from craftdesk.db import utcnow
from tests.conftest import World, bearer, sign_in

FIVE_YEARS = dt.timedelta(days=5 * 365)


async def test_an_admin_cannot_rotate_the_owners_key_into_an_owner_key(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    admin = await world.member(workspace, "admin")
    owner_key = await world.key(workspace, owner, name="Owner's CI")
    owner_key_id = (await client.get("/v1/auth/key", headers=bearer(owner_key))).json()["id"]

    csrf = await sign_in(client, workspace, admin)
    rotated = await client.post(
        f"/v1/api-keys/{owner_key_id}/rotate", json={"expire_old_after_seconds": 0}, headers=csrf
    )
    assert rotated.status_code == 403, rotated.text
    assert rotated.json()["code"] == "not_key_creator"
    assert "key" not in rotated.json()
    # Nothing changed: the owner's key works as before, and the admin is still an admin.
    assert (await client.get("/v1/auth/key", headers=bearer(owner_key))).status_code == 200
    admin_key = await world.key(workspace, admin)
    promote = await client.patch(
        f"/v1/members/{admin.membership_id}", json={"role": "owner"}, headers=bearer(admin_key)
    )
    assert promote.status_code == 403 and promote.json()["code"] == "insufficient_role"
    # The admin may still revoke the owner's key.
    revoked = await client.delete(f"/v1/api-keys/{owner_key_id}", headers=csrf)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"


async def test_an_admin_cannot_rotate_a_members_key_to_act_as_them(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, _ = await world.workspace()
    admin = await world.member(workspace, "admin")
    member = await world.member(workspace, "member")
    member_key = await world.key(workspace, member)
    key_id = (await client.get("/v1/auth/key", headers=bearer(member_key))).json()["id"]
    csrf = await sign_in(client, workspace, admin)
    rotated = await client.post(f"/v1/api-keys/{key_id}/rotate", json={}, headers=csrf)
    assert rotated.status_code == 403 and rotated.json()["code"] == "not_key_creator"


async def test_the_creator_rotates_their_own_key(client: httpx.AsyncClient, world: World) -> None:
    workspace, _ = await world.workspace()
    admin = await world.member(workspace, "admin")
    csrf = await sign_in(client, workspace, admin)
    old = (await client.post("/v1/api-keys", json={"name": "Mine"}, headers=csrf)).json()
    rotated = await client.post(f"/v1/api-keys/{old['id']}/rotate", json={}, headers=csrf)
    assert rotated.status_code == 201, rotated.text
    caller = (await client.get("/v1/auth/key", headers=bearer(rotated.json()["key"]))).json()
    assert caller["role"] == "admin"


async def test_a_key_already_rotated_is_not_rotated_again(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    old = (await client.post("/v1/api-keys", json={"name": "Prod"}, headers=csrf)).json()
    grace = {"expire_old_after_seconds": 3600}
    first = await client.post(f"/v1/api-keys/{old['id']}/rotate", json=grace, headers=csrf)
    assert first.status_code == 201
    again = await client.post(f"/v1/api-keys/{old['id']}/rotate", json=grace, headers=csrf)
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    assert str(first.json()["id"]) in again.json()["detail"]
    # The old key still works through its grace period; it has one successor.
    assert (await client.get("/v1/auth/key", headers=bearer(old["key"]))).status_code == 200
    keys = (await client.get("/v1/api-keys")).json()["data"]
    assert [k["rotated_from_id"] for k in keys].count(old["id"]) == 1


async def test_concurrent_rotations_of_one_key_make_one_successor(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    old = (await client.post("/v1/api-keys", json={"name": "Prod"}, headers=csrf)).json()
    responses = await asyncio.gather(
        *(
            client.post(
                f"/v1/api-keys/{old['id']}/rotate",
                json={"expire_old_after_seconds": 600},
                headers=csrf,
            )
            for _ in range(6)
        )
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5
    keys = (await client.get("/v1/api-keys")).json()["data"]
    assert [k["rotated_from_id"] for k in keys].count(old["id"]) == 1


async def test_an_expiry_past_five_years_is_422(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    for expires_at in (
        "9999-12-31T23:59:59.999999Z",
        "9999-12-31T23:59:59-12:00",
        (utcnow() + FIVE_YEARS + dt.timedelta(days=1)).isoformat(),
    ):
        response = await client.post(
            "/v1/api-keys", json={"name": "Forever", "expires_at": expires_at}, headers=csrf
        )
        assert response.status_code == 422, (expires_at, response.text)
        assert response.json()["code"] == "validation_error"
        assert "5 years" in response.json()["detail"]
    longest = (utcnow() + FIVE_YEARS - dt.timedelta(days=1)).isoformat()
    created = await client.post(
        "/v1/api-keys", json={"name": "Long", "expires_at": longest}, headers=csrf
    )
    assert created.status_code == 201, created.text
    works = await client.get("/v1/auth/key", headers=bearer(created.json()["key"]))
    assert works.status_code == 200


async def test_a_key_stored_with_the_largest_expiry_works_and_rotates(
    client: httpx.AsyncClient, world: World
) -> None:
    """A key stored before the bound, at the largest instant (PostgreSQL keeps it as
    'infinity'): it authenticates, and rotating it gives the new key at most 5 years."""
    workspace, owner = await world.workspace()
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    key = await world.key(workspace, owner, expires_at=far)
    caller = await client.get("/v1/auth/key", headers=bearer(key))
    assert caller.status_code == 200, caller.text
    csrf = await sign_in(client, workspace, owner)
    rotated = await client.post(
        f"/v1/api-keys/{caller.json()['id']}/rotate", json={}, headers=csrf
    )
    assert rotated.status_code == 201, rotated.text
    expires = dt.datetime.fromisoformat(rotated.json()["expires_at"])
    assert expires <= utcnow() + FIVE_YEARS


async def test_a_custom_key_off_the_business_plan_is_refused_everywhere(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    workspace, owner = await world.workspace(plan="business")
    key = await world.key(
        workspace, owner, scope="custom", permissions={"projects": "read", "tasks": "read"}
    )
    caller = await client.get("/v1/auth/key", headers=bearer(key))
    assert caller.status_code == 200
    await world.set_plan(workspace, "pro")

    for path in ("/v1/auth/key", "/v1/projects"):
        refused = await client.get(path, headers=bearer(key))
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "plan_required"
        assert "x-ratelimit-used" not in refused.headers  # not counted
    csrf = await sign_in(client, workspace, owner)
    assert (await client.get("/v1/usage")).json()["used"] == 1
    rotated = await client.post(
        f"/v1/api-keys/{caller.json()['id']}/rotate", json={}, headers=csrf
    )
    assert rotated.status_code == 403 and rotated.json()["code"] == "plan_required"

    await world.set_plan(workspace, "business")
    assert (await client.get("/v1/auth/key", headers=bearer(key))).status_code == 200
