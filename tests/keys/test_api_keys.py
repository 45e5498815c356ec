"""The seed's "Managing Keys" and "Revoking and Rotating Keys", through the dashboard routes."""

import datetime as dt

import httpx
from fastapi import FastAPI

from craftdesk.auth.tokens import hash_key, parse_key
from craftdesk.db import utcnow
from tests.conftest import World, bearer, sign_in


async def test_generated_key_is_shown_once_and_works(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    created = await client.post(
        "/v1/api-keys", json={"name": "CI/CD Pipeline", "scope": "full"}, headers=csrf
    )
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    key = body["key"]
    parse_key(key)
    assert body["prefix"] == key[:16] and body["last_four"] == key[-4:]
    assert body["status"] == "active" and body["last_used_at"] is None

    assert (await client.get("/v1/projects", headers=bearer(key))).status_code == 200

    for later in (
        await client.get("/v1/api-keys"),
        await client.get(f"/v1/api-keys/{body['id']}"),
        await client.patch(f"/v1/api-keys/{body['id']}", json={"name": "CI"}, headers=csrf),
    ):
        assert later.status_code == 200
        assert key not in later.text and key[16:-4] not in later.text

    stored = await app.state.db.fetchval("SELECT key_hash FROM api_keys WHERE id = $1", body["id"])
    assert stored is not None
    assert stored == hash_key(app.state.settings.pepper, key)
    assert key[16:-6].encode() not in stored


async def test_list_shows_creation_last_use_and_requests_this_period(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    used = (await client.post("/v1/api-keys", json={"name": "Used"}, headers=csrf)).json()
    unused = (await client.post("/v1/api-keys", json={"name": "Unused"}, headers=csrf)).json()
    for _ in range(3):
        await client.get("/v1/projects", headers=bearer(used["key"]))
    listed = {k["name"]: k for k in (await client.get("/v1/api-keys")).json()["data"]}
    assert listed["Used"]["requests_this_period"] == 3
    assert listed["Used"]["last_used_at"] is not None
    assert listed["Unused"]["requests_this_period"] == 0
    assert listed["Unused"]["last_used_at"] is None
    assert listed["Used"]["created_by"]["email"] == owner.email
    assert dt.datetime.fromisoformat(listed["Used"]["created_at"]) <= utcnow()
    assert [k["name"] for k in (await client.get("/v1/api-keys")).json()["data"]] == [
        "Unused",
        "Used",
    ]
    assert unused["id"] != used["id"]


async def test_members_see_their_own_keys_admins_see_all(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    member = await world.member(workspace)
    await world.key(workspace, owner, name="Owner key")
    await world.key(workspace, member, name="Member key")
    await sign_in(client, workspace, member)
    names = [k["name"] for k in (await client.get("/v1/api-keys")).json()["data"]]
    assert names == ["Member key"]
    owner_key_id = await _key_id(client, world, workspace, owner, "Owner key")
    await sign_in(client, workspace, member)
    assert (await client.get(f"/v1/api-keys/{owner_key_id}")).status_code == 404


async def _key_id(client, world, workspace, owner, name: str) -> int:  # type: ignore[no-untyped-def]
    await sign_in(client, workspace, owner)
    keys = (await client.get("/v1/api-keys")).json()["data"]
    return next(k["id"] for k in keys if k["name"] == name)


async def test_rename_changes_only_the_name(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    created = (
        await client.post("/v1/api-keys", json={"name": "Old", "scope": "read_only"}, headers=csrf)
    ).json()
    renamed = await client.patch(
        f"/v1/api-keys/{created['id']}", json={"name": "Mobile App"}, headers=csrf
    )
    assert renamed.json()["name"] == "Mobile App"
    assert renamed.json()["scope"] == "read_only"
    assert (await client.get("/v1/projects", headers=bearer(created["key"]))).status_code == 200
    bad = await client.patch(
        f"/v1/api-keys/{created['id']}", json={"name": "x", "scope": "full"}, headers=csrf
    )
    assert bad.status_code == 422


async def test_revoke_takes_effect_on_the_next_request(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    created = (await client.post("/v1/api-keys", json={"name": "Leaked"}, headers=csrf)).json()
    assert (await client.get("/v1/projects", headers=bearer(created["key"]))).status_code == 200
    revoked = await client.delete(f"/v1/api-keys/{created['id']}", headers=csrf)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    response = await client.get("/v1/projects", headers=bearer(created["key"]))
    assert response.status_code == 401 and response.json()["code"] == "key_revoked"
    record = (await client.get(f"/v1/api-keys/{created['id']}")).json()
    assert record["revoked_at"] is not None


async def test_rotation_without_downtime(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    old = (
        await client.post("/v1/api-keys", json={"name": "Prod", "scope": "read_only"}, headers=csrf)
    ).json()
    rotated = await client.post(
        f"/v1/api-keys/{old['id']}/rotate", json={"expire_old_after_seconds": 3600}, headers=csrf
    )
    assert rotated.status_code == 201
    assert rotated.headers["cache-control"] == "no-store"
    new = rotated.json()
    assert new["name"] == "Prod" and new["scope"] == "read_only" and new["key"] != old["key"]
    assert new["rotated_from_id"] == old["id"]
    # Both work during the grace period.
    assert (await client.get("/v1/projects", headers=bearer(old["key"]))).status_code == 200
    assert (await client.get("/v1/projects", headers=bearer(new["key"]))).status_code == 200
    old_record = (await client.get(f"/v1/api-keys/{old['id']}")).json()
    expires = dt.datetime.fromisoformat(old_record["expires_at"])
    assert dt.timedelta(minutes=59) < expires - utcnow() <= dt.timedelta(hours=1)


async def test_rotation_with_no_grace_expires_the_old_key_now(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    old = (await client.post("/v1/api-keys", json={"name": "Prod"}, headers=csrf)).json()
    new = (
        await client.post(
            f"/v1/api-keys/{old['id']}/rotate", json={"expire_old_after_seconds": 0}, headers=csrf
        )
    ).json()
    expired = await client.get("/v1/projects", headers=bearer(old["key"]))
    assert expired.status_code == 401 and expired.json()["code"] == "key_expired"
    assert (await client.get("/v1/projects", headers=bearer(new["key"]))).status_code == 200
    again = await client.post(
        f"/v1/api-keys/{old['id']}/rotate", json={"expire_old_after_seconds": 0}, headers=csrf
    )
    assert again.status_code == 409


async def test_custom_scope_needs_the_business_plan(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace(plan="pro")
    csrf = await sign_in(client, workspace, owner)
    response = await client.post(
        "/v1/api-keys",
        json={"name": "Scoped", "scope": "custom", "permissions": {"projects": "read"}},
        headers=csrf,
    )
    assert response.status_code == 403 and response.json()["code"] == "plan_required"


async def test_custom_key_limited_to_projects(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace(plan="business")
    full = await world.key(workspace, owner)
    pid = (await client.post("/v1/projects", json={"name": "A"}, headers=bearer(full))).json()["id"]
    csrf = await sign_in(client, workspace, owner)
    created = await client.post(
        "/v1/api-keys",
        json={
            "name": "Scoped",
            "scope": "custom",
            "permissions": {"projects": "read", "tasks": "write"},
            "project_ids": [pid],
        },
        headers=csrf,
    )
    assert created.status_code == 201
    body = created.json()
    assert body["permissions"] == {"projects": "read", "tasks": "write", "members": "none"}
    me = (await client.get("/v1/auth/key", headers=bearer(body["key"]))).json()
    assert me["project_ids"] == [pid] and me["scope"] == "custom"
    unknown = await client.post(
        "/v1/api-keys",
        json={
            "name": "S",
            "scope": "custom",
            "permissions": {"tasks": "read"},
            "project_ids": [999999],
        },
        headers=csrf,
    )
    assert unknown.status_code == 422
    nothing = await client.post(
        "/v1/api-keys", json={"name": "S", "scope": "custom", "permissions": {}}, headers=csrf
    )
    assert nothing.status_code == 422


async def test_expiry_must_be_in_the_future(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    past = await client.post(
        "/v1/api-keys", json={"name": "x", "expires_at": "2020-01-01T00:00:00Z"}, headers=csrf
    )
    assert past.status_code == 422
    future = (utcnow() + dt.timedelta(days=90)).isoformat()
    ok = await client.post("/v1/api-keys", json={"name": "x", "expires_at": future}, headers=csrf)
    assert ok.status_code == 201 and ok.json()["expires_at"] is not None


async def test_key_usage_has_a_daily_series(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    created = (await client.post("/v1/api-keys", json={"name": "K"}, headers=csrf)).json()
    for _ in range(4):
        await client.get("/v1/projects", headers=bearer(created["key"]))
    await world.app.state.activity.flush()
    usage = (await client.get(f"/v1/api-keys/{created['id']}/usage")).json()
    assert usage["requests"] == 4
    assert usage["days"][-1] == {
        "date": utcnow().date().isoformat(),
        "requests": 4,
        "outcomes": {"ok": 4},
    }
    assert sum(day["requests"] for day in usage["days"]) == 4
    workspace_usage = (await client.get("/v1/usage")).json()
    assert workspace_usage["used"] == 4 and workspace_usage["plan"] == "free"
    assert workspace_usage["remaining"] == workspace_usage["quota"] - 4
