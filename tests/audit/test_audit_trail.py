"""The audit trail: keys created, renamed, rotated and revoked; members added, their role
changed, removed; sign-ins, successful or not. Each with who, what, when and from where;
read by owners and admins, newest first; never a secret."""

import asyncio
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from craftdesk.audit.service import CLI, Target, record
from craftdesk.db import utcnow
from tests.conftest import PASSWORD, TEST_PEPPER, World, bearer, sign_in

CLIENT_IP = "127.0.0.1"  # httpx's ASGI transport


async def events(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/v1/audit-events", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def assert_recently(occurred_at: str, since: dt.datetime) -> None:
    assert since <= dt.datetime.fromisoformat(occurred_at) <= utcnow()


async def test_a_keys_life_is_recorded_with_actor_target_time_and_ip(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    started = utcnow()
    csrf = await sign_in(client, workspace, owner)
    created = (await client.post("/v1/api-keys", json={"name": "CI"}, headers=csrf)).json()
    await client.patch(f"/v1/api-keys/{created['id']}", json={"name": "CI/CD"}, headers=csrf)
    rotated = (
        await client.post(
            f"/v1/api-keys/{created['id']}/rotate",
            json={"expire_old_after_seconds": 60},
            headers=csrf,
        )
    ).json()
    await client.delete(f"/v1/api-keys/{rotated['id']}", headers=csrf)

    trail = await events(client)
    assert [e["action"] for e in trail] == [
        "key.revoked",
        "key.rotated",
        "key.renamed",
        "key.created",
        "session.signed_in",
        "member.added",
    ]
    revoked, rotation, rename, creation = trail[:4]
    for event in (revoked, rotation, rename, creation):
        assert event["actor"] == {
            "type": "user",
            "user_id": owner.user_id,
            "email": owner.email,
            "key_id": None,
        }
        assert event["client_ip"] == CLIENT_IP
        assert_recently(event["occurred_at"], started)
    assert creation["target"] == {"type": "api_key", "id": created["id"], "label": "CI"}
    assert creation["details"] == {"prefix": created["prefix"], "scope": "full"}
    assert rename["details"] == {"prefix": created["prefix"], "from": "CI", "to": "CI/CD"}
    assert rotation["target"] == {"type": "api_key", "id": created["id"], "label": "CI/CD"}
    assert rotation["details"]["new_key_id"] == rotated["id"]
    assert rotation["details"]["new_prefix"] == rotated["prefix"]
    assert revoked["target"] == {"type": "api_key", "id": rotated["id"], "label": "CI/CD"}


async def test_repeating_a_change_that_changes_nothing_records_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    key = (await client.post("/v1/api-keys", json={"name": "CI"}, headers=csrf)).json()
    await client.patch(f"/v1/api-keys/{key['id']}", json={"name": "CI"}, headers=csrf)
    await client.delete(f"/v1/api-keys/{key['id']}", headers=csrf)
    await client.delete(f"/v1/api-keys/{key['id']}", headers=csrf)
    assert [e["action"] for e in await events(client)][:2] == ["key.revoked", "key.created"]


async def test_member_changes_made_with_a_key_name_the_key_and_its_creator(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    member = await world.member(workspace, "member")
    key = await world.key(workspace, owner)
    await world.key(workspace, member, name="member's key")
    key_id = (await client.get("/v1/auth/key", headers=bearer(key))).json()["id"]
    path = f"/v1/members/{member.membership_id}"

    assert (
        await client.patch(path, json={"role": "admin"}, headers=bearer(key))
    ).status_code == 200
    assert (
        await client.patch(path, json={"role": "admin"}, headers=bearer(key))
    ).status_code == 200
    assert (await client.delete(path, headers=bearer(key))).status_code == 204

    await sign_in(client, workspace, owner)
    removed, changed = (await events(client))[1:3]  # after this sign-in
    actor = {"type": "api_key", "user_id": owner.user_id, "email": owner.email, "key_id": key_id}
    target = {"type": "member", "id": member.membership_id, "label": member.email}
    assert changed["action"] == "member.role_changed"
    assert changed["actor"] == actor and changed["target"] == target
    assert changed["details"] == {"from": "member", "to": "admin"}
    assert removed["action"] == "member.removed"
    assert removed["actor"] == actor and removed["target"] == target
    assert removed["details"] == {"role": "admin", "keys_revoked": 1}
    assert changed["client_ip"] == removed["client_ip"] == CLIENT_IP


async def test_members_added_with_the_command_line_are_recorded(
    database_url: str, client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    command = [
        str(Path(sys.executable).with_name("craftdesk")),
        *("member", "add", workspace.slug, "--email", "dev@example.com"),
        *("--password", "cli-password-1", "--role", "admin"),
    ]
    env = {
        **os.environ,
        "CRAFTDESK_DATABASE_URL": database_url,
        "CRAFTDESK_KEY_PEPPER": TEST_PEPPER,
    }
    added = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, env=env
    )
    assert added.returncode == 0, added.stderr
    await sign_in(client, workspace, owner)
    trail = await events(client)
    cli_added = trail[1]
    assert cli_added["action"] == "member.added"
    assert cli_added["actor"] == {"type": "cli", "user_id": None, "email": None, "key_id": None}
    assert cli_added["target"] == {
        "type": "member",
        "id": int(added.stdout),
        "label": "dev@example.com",
    }
    assert cli_added["details"] == {"role": "admin"} and cli_added["client_ip"] is None
    assert trail[-1]["target"]["label"] == owner.email  # the owner, added with the workspace
    assert "cli-password-1" not in str(trail)


async def test_sign_ins_are_recorded_for_the_workspaces_real_accounts(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    workspace, owner = await world.workspace()

    async def attempt(email: str, password: str) -> int:
        response = await client.post(
            "/v1/sessions",
            json={"workspace": workspace.slug, "email": email, "password": password},
        )
        return response.status_code

    assert await attempt(owner.email, "wrong password 1") == 401
    assert await attempt("Ghost@Example.com", PASSWORD) == 401  # no such account: not recorded
    for _ in range(app.state.settings.login_max_failures - 1):
        assert await attempt(owner.email, "wrong password 2") == 401
    assert await attempt(owner.email, PASSWORD) == 429  # locked out: refused, not recorded
    assert await attempt("ghost@example.com", "x") == 401

    await _unlock(app)
    assert await attempt(owner.email, PASSWORD) == 201
    trail = await events(client)
    signed_in, first_wrong = trail[0], trail[-2]

    assert signed_in["action"] == "session.signed_in"
    assert signed_in["actor"] == {
        "type": "user",
        "user_id": owner.user_id,
        "email": owner.email,
        "key_id": None,
    }
    assert signed_in["target"] == {"type": "account", "id": owner.user_id, "label": owner.email}
    assert signed_in["client_ip"] == CLIENT_IP

    anonymous = {"type": "anonymous", "user_id": None, "email": None, "key_id": None}
    failures = [e for e in trail if e["action"] == "session.sign_in_failed"]
    assert len(failures) == app.state.settings.login_max_failures
    for failed in failures:
        assert failed["actor"] == anonymous and failed["client_ip"] == CLIENT_IP
        assert failed["target"] == {"type": "account", "id": owner.user_id, "label": owner.email}
    assert first_wrong["details"] == {"reason": "invalid_login", "workspace": workspace.slug}
    assert "ghost@example.com" not in str(trail)


async def test_anonymous_sign_in_attempts_do_not_fill_the_trail(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    """Random emails, to a real workspace and to none: nothing recorded, and the client's
    address is throttled past its allowance (429 with Retry-After)."""
    workspace, owner = await world.workspace()
    allowed = app.state.settings.login_max_failures_per_ip
    statuses = []
    for n in range(allowed + 5):
        response = await client.post(
            "/v1/sessions",
            json={
                "workspace": workspace.slug if n % 2 else "nowhere",
                "email": f"<script>{n}@example.com",
                "password": "guess",
            },
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) > 0
    assert statuses == [401] * allowed + [429] * 5
    stored = await app.state.db.fetch("SELECT action FROM audit_events ORDER BY id")
    assert [e["action"] for e in stored] == ["member.added"]  # the owner's, nothing since


async def test_owners_and_admins_read_the_trail_members_get_403(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    admin = await world.member(workspace, "admin")
    member = await world.member(workspace, "member")
    await sign_in(client, workspace, admin)
    assert len(await events(client)) >= 3
    await sign_in(client, workspace, member)
    refused = await client.get("/v1/audit-events")
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "insufficient_role"
    key = await world.key(workspace, owner)
    with_key = await client.get("/v1/audit-events", headers=bearer(key))
    assert with_key.status_code == 403 and with_key.json()["code"] == "session_required"
    client.cookies.clear()
    assert (await client.get("/v1/audit-events")).status_code == 401


async def test_the_trail_is_paginated_newest_first(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    for n in range(5):
        await client.post("/v1/api-keys", json={"name": f"K{n}"}, headers=csrf)
    everything = await events(client, limit=100)
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/audit-events", params=params)).json()
        assert len(page["data"]) <= 2
        seen += [event["id"] for event in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [event["id"] for event in everything] == sorted(seen, reverse=True)
    assert len(seen) == 7  # owner added, signed in, five keys created


async def test_a_workspace_reads_only_its_own_trail(
    client: httpx.AsyncClient, world: World
) -> None:
    acme, acme_owner = await world.workspace("Acme")
    csrf = await sign_in(client, acme, acme_owner)
    await client.post("/v1/api-keys", json={"name": "Acme secret"}, headers=csrf)
    globex, globex_owner = await world.workspace("Globex")
    await sign_in(client, globex, globex_owner)
    trail = await events(client)
    assert {e["action"] for e in trail} == {"member.added", "session.signed_in"}
    assert acme_owner.email not in str(trail) and "Acme secret" not in str(trail)


async def test_the_trail_never_holds_a_key_a_password_or_the_pepper(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    workspace, owner = await world.workspace()
    wrong_password = "my-other-password-42"
    await client.post(
        "/v1/sessions",
        json={"workspace": workspace.slug, "email": owner.email, "password": wrong_password},
    )
    csrf = await sign_in(client, workspace, owner)
    created = (await client.post("/v1/api-keys", json={"name": "CI"}, headers=csrf)).json()
    rotated = (
        await client.post(
            f"/v1/api-keys/{created['id']}/rotate",
            json={"expire_old_after_seconds": 0},
            headers=csrf,
        )
    ).json()
    await client.delete(f"/v1/api-keys/{rotated['id']}", headers=csrf)
    member = await world.member(workspace)
    owner_key = await world.key(workspace, owner)
    await client.delete(f"/v1/members/{member.membership_id}", headers=bearer(owner_key))

    listed = (await client.get("/v1/audit-events")).text
    stored = str([dict(e) for e in await app.state.db.fetch("SELECT * FROM audit_events")])
    secrets_ = [created["key"], rotated["key"], owner_key, PASSWORD, wrong_password, TEST_PEPPER]
    for secret in secrets_:
        assert secret not in listed and secret not in stored
    for key in (created["key"], rotated["key"]):
        assert key[16:-4] not in listed and key[16:-4] not in stored  # not even the secret part
    assert created["prefix"] in listed  # the public prefix is what names a key


async def test_record_joins_the_callers_transaction(app: FastAPI, world: World) -> None:
    workspace, _ = await world.workspace()

    async def add(tx: Any) -> None:
        await record(
            tx,
            workspace_id=workspace.id,
            action="member.added",
            actor=CLI,
            target=Target("member", None, "x@example.com"),
        )

    class RolledBack(Exception):
        pass

    with pytest.raises(RolledBack):
        async with app.state.db.transaction() as tx:
            await add(tx)
            raise RolledBack
    async with app.state.db.transaction() as tx:
        await add(tx)
    rows = await app.state.db.fetch("SELECT target_label FROM audit_events")
    labels = [row["target_label"] for row in rows]
    assert labels.count("x@example.com") == 1


async def _unlock(app: FastAPI) -> None:
    async with app.state.db.transaction() as tx:
        await tx.execute("DELETE FROM login_throttle")
