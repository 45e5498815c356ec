"""The command line administers keys and members: list, revoke, rotate, change roles, remove;
what it changes applies to the API from the next request, and is audited as done from the CLI.

The workspace and keys are set up through the service layer (the command that makes them has
its own tests); each test runs only the commands it is about, each a real subprocess.
"""

import json
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import httpx
import pytest
from fastapi import FastAPI

from craftdesk.db import utcnow
from craftdesk.keys.service import issue_key
from craftdesk.workspaces.queries import WorkspaceRow, membership_by_email, workspace_by_slug
from craftdesk.workspaces.service import add_member, create_workspace
from tests.conftest import bearer
from tests.test_cli import assert_one_line_error, cli

OWNER = "o@acme.test"
DEV = "dev@acme.test"
PASSWORDS = {OWNER: "owner-pw-1", DEV: "dev-pw-1"}


async def acme(app: FastAPI) -> WorkspaceRow:
    """Workspace ``acme`` with its owner and a member."""
    async with app.state.db.transaction() as tx:
        workspace = await create_workspace(
            tx, name="Acme", owner_email=OWNER, owner_password=PASSWORDS[OWNER]
        )
        await add_member(tx, workspace, email=DEV, password=PASSWORDS[DEV], role="member")
    return workspace


async def new_key(
    app: FastAPI, email: str, name: str, scope: str = "full", **options: Any
) -> tuple[int, str]:
    """A key of ``email`` in acme: its id and the key."""
    async with app.state.db.transaction() as tx:
        workspace = await workspace_by_slug(tx, "acme")
        assert workspace is not None
        membership = await membership_by_email(tx, workspace.id, email)
        assert membership is not None
        key, issued = await issue_key(
            tx,
            pepper=app.state.settings.pepper,
            workspace_id=membership.workspace_id,
            created_by_id=membership.user_id,
            membership_id=membership.id,
            name=name,
            scope=scope,
            **options,
        )
    return key.id, issued.key


async def status_of(client: httpx.AsyncClient, key: str) -> tuple[int, str | None]:
    response = await client.get("/v1/auth/key", headers=bearer(key))
    return response.status_code, response.json().get("code")


class AuditEvent(NamedTuple):
    actor_type: str
    target_id: int | None
    target_label: str | None
    details: dict[str, Any] | None


async def cli_events(app: FastAPI, action: str) -> list[AuditEvent]:
    rows = await app.state.db.fetch(
        """SELECT actor_type, target_id, target_label, details FROM audit_events
           WHERE action = $1 ORDER BY id""",
        action,
    )
    return [
        AuditEvent(
            row["actor_type"],
            row["target_id"],
            row["target_label"],
            None if row["details"] is None else json.loads(row["details"]),
        )
        for row in rows
    ]


@pytest.fixture
async def dashboard(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser, for signing in as someone else."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as browser:
        yield browser


async def sign_in(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/sessions", json={"workspace": "acme", "email": email, "password": PASSWORDS[email]}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_key_list_shows_every_key_a_line_each_and_its_json_is_what_the_api_returns(
    database_url: str, client: httpx.AsyncClient, app: FastAPI
) -> None:
    await acme(app)
    _, owners = await new_key(app, OWNER, "CI/CD Pipeline")
    _, devs = await new_key(app, DEV, "Dev laptop", "read_only")
    assert (await status_of(client, devs))[0] == 200  # so it has been used
    await app.state.activity.flush()  # its last address is stored, as both will show it

    listed = await cli(database_url, "key", "list", "acme")
    assert listed.returncode == 0, listed.stderr
    lines = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [line[1] for line in lines] == ["Dev laptop", "CI/CD Pipeline"]  # newest first
    for line, key in zip(lines, [devs, owners], strict=True):
        key_id, _, shown, scope, status, created, last_used = line
        assert key_id.isdigit() and shown == f"{key[:16]}…{key[-4:]}" and status == "active"
        assert created.endswith("Z")
    assert lines[0][3] == "read_only" and lines[0][6].endswith("Z")
    assert lines[1][3] == "full" and lines[1][6] == "never"

    as_json = await cli(database_url, "key", "list", "acme", "--json")
    assert as_json.returncode == 0, as_json.stderr
    await sign_in(client, OWNER)
    api = (await client.get("/v1/api-keys")).json()["data"]
    assert json.loads(as_json.stdout) == api
    for output in (listed.stdout, listed.stderr, as_json.stdout, as_json.stderr):
        assert owners not in output and devs not in output


async def test_key_revoke_stops_the_key_at_once_and_is_audited_as_the_command_line(
    database_url: str, client: httpx.AsyncClient, app: FastAPI
) -> None:
    await acme(app)
    key_id, key = await new_key(app, DEV, "Leaked")
    _, kept = await new_key(app, DEV, "Kept")
    assert await status_of(client, key) == (200, None)

    revoked = await cli(database_url, "key", "revoke", "acme", str(key_id))
    assert revoked.returncode == 0 and revoked.stdout == "", revoked.stderr
    assert "revoked" in revoked.stderr
    assert await status_of(client, key) == (401, "key_revoked")
    assert await status_of(client, kept) == (200, None)
    again = await cli(database_url, "key", "revoke", "acme", str(key_id))
    assert again.returncode == 0 and "already" in again.stderr

    (event,) = await cli_events(app, "key.revoked")
    assert event.actor_type == "cli" and event.target_id == key_id
    assert event.target_label == "Leaked"


async def test_key_rotate_prints_the_new_key_alone_and_the_old_one_expires_after_the_grace(
    database_url: str, client: httpx.AsyncClient, app: FastAPI
) -> None:
    await acme(app)
    now_id, now_key = await new_key(app, DEV, "Now", "read_only")
    later_id, later_key = await new_key(app, DEV, "Later")

    rotated = await cli(database_url, "key", "rotate", "acme", str(now_id))
    assert rotated.returncode == 0, rotated.stderr
    successor = rotated.stdout.strip()
    assert rotated.stdout == successor + "\n" and successor not in rotated.stderr
    assert await status_of(client, now_key) == (401, "key_expired")
    me = (await client.get("/v1/auth/key", headers=bearer(successor))).json()
    assert me["scope"] == "read_only" and me["role"] == "member"

    graced = await cli(
        database_url, "key", "rotate", "acme", str(later_id), "--grace-seconds", "3600"
    )
    assert graced.returncode == 0, graced.stderr
    assert await status_of(client, later_key) == (200, None)
    assert await status_of(client, graced.stdout.strip()) == (200, None)

    events = await cli_events(app, "key.rotated")
    assert [(e.actor_type, e.target_id) for e in events] == [("cli", now_id), ("cli", later_id)]
    assert successor not in str([e.details for e in events])


async def test_rotating_a_revoked_or_expired_key_or_another_workspaces_is_refused(
    database_url: str, app: FastAPI
) -> None:
    await acme(app)
    expired_id, _ = await new_key(app, DEV, "Old", expires_at=utcnow())
    revoked_id, _ = await new_key(app, DEV, "Revoked")
    assert (await cli(database_url, "key", "revoke", "acme", str(revoked_id))).returncode == 0
    assert_one_line_error(
        await cli(database_url, "key", "rotate", "acme", str(expired_id)), "expired"
    )
    assert_one_line_error(
        await cli(database_url, "key", "rotate", "acme", str(revoked_id)), "revoked"
    )

    async with app.state.db.transaction() as tx:
        await create_workspace(tx, name="Other", owner_email="x@other.test", owner_password="pw-x")
    assert_one_line_error(
        await cli(database_url, "key", "revoke", "other", str(expired_id)), "no key"
    )


async def test_member_list_and_set_role_keep_the_api_rules(
    database_url: str, client: httpx.AsyncClient, app: FastAPI
) -> None:
    await acme(app)
    _, key = await new_key(app, DEV, "Dev's")

    listed = await cli(database_url, "member", "list", "acme")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [(email, role) for _, email, role, _ in rows] == [(OWNER, "owner"), (DEV, "member")]

    promoted = await cli(database_url, "member", "set-role", "acme", DEV, "admin")
    assert promoted.returncode == 0 and promoted.stdout == "", promoted.stderr
    assert (await client.get("/v1/auth/key", headers=bearer(key))).json()["role"] == "admin"
    (event,) = await cli_events(app, "member.role_changed")
    assert event.actor_type == "cli" and event.target_label == DEV
    assert event.details == {"from": "member", "to": "admin"}

    last_owner = await cli(database_url, "member", "set-role", "acme", OWNER, "admin")
    assert_one_line_error(last_owner, "at least one owner")


async def test_member_remove_revokes_their_keys_and_ends_their_sessions(
    database_url: str, client: httpx.AsyncClient, dashboard: httpx.AsyncClient, app: FastAPI
) -> None:
    await acme(app)
    _, devs = await new_key(app, DEV, "Dev's")
    _, owners = await new_key(app, OWNER, "Owner's")
    await sign_in(dashboard, DEV)
    assert (await dashboard.get("/v1/sessions/current")).status_code == 200

    removed = await cli(database_url, "member", "remove", "acme", DEV)
    assert removed.returncode == 0 and removed.stdout == "", removed.stderr
    assert "1 of their keys revoked" in removed.stderr
    assert await status_of(client, devs) == (401, "key_revoked")
    assert await status_of(client, owners) == (200, None)
    assert (await dashboard.get("/v1/sessions/current")).status_code == 401

    (event,) = await cli_events(app, "member.removed")
    assert event.actor_type == "cli" and event.target_label == DEV
    assert event.details == {"role": "member", "keys_revoked": 1}
    assert_one_line_error(await cli(database_url, "member", "remove", "acme", OWNER), "one owner")
