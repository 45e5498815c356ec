"""Tenant isolation (OWASP API1, broken object level authorization), as a table.

Workspace B's credentials (its owner's full key; its owner signed in) are turned on every
route that takes an id, pointed at workspace A's objects. Each answer must be the 404 the same
request gets for an id that exists nowhere, down to the body (ids aside), and A's rows must be
exactly as they were.
"""

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from craftdesk.models import Base
from tests.conftest import World, bearer, sign_in

MISSING = 2_147_483_000


@dataclass(frozen=True)
class Probe:
    method: str
    path: str
    body: dict[str, Any] | None = None

    @property
    def session_route(self) -> bool:
        return self.path.startswith("/v1/api-keys")

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


# {a_project}, {a_task}, {a_member}, {a_key}: workspace A's objects; {b_project}: B's own.
PROBES = [
    Probe("GET", "/v1/projects/{a_project}"),
    Probe("PATCH", "/v1/projects/{a_project}", {"name": "pwned"}),
    Probe("DELETE", "/v1/projects/{a_project}"),
    Probe("GET", "/v1/projects/{a_project}/tasks"),
    Probe("POST", "/v1/projects/{a_project}/tasks", {"title": "pwned"}),
    Probe("GET", "/v1/projects/{a_project}/tasks/{a_task}"),
    Probe("PATCH", "/v1/projects/{a_project}/tasks/{a_task}", {"status": "done"}),
    Probe("DELETE", "/v1/projects/{a_project}/tasks/{a_task}"),
    Probe("GET", "/v1/projects/{b_project}/tasks/{a_task}"),
    Probe("PATCH", "/v1/projects/{b_project}/tasks/{a_task}", {"title": "pwned"}),
    Probe("DELETE", "/v1/projects/{b_project}/tasks/{a_task}"),
    Probe("GET", "/v1/members/{a_member}"),
    Probe("PATCH", "/v1/members/{a_member}", {"role": "member"}),
    Probe("DELETE", "/v1/members/{a_member}"),
    Probe("GET", "/v1/api-keys/{a_key}"),
    Probe("PATCH", "/v1/api-keys/{a_key}", {"name": "pwned"}),
    Probe("GET", "/v1/api-keys/{a_key}/usage"),
    Probe("POST", "/v1/api-keys/{a_key}/rotate", {"expire_old_after_seconds": 0}),
    Probe("DELETE", "/v1/api-keys/{a_key}"),
]


async def workspace_rows(app: FastAPI, workspace_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that belongs to the workspace, table by table (its users and its keys'
    usage included). The tables are those the migrations make (the models list them)."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    members = "SELECT user_id FROM memberships WHERE workspace_id = $1"
    keys = "SELECT id FROM api_keys WHERE workspace_id = $1"
    for table in Base.metadata.sorted_tables:
        if "workspace_id" in table.c:
            where = "workspace_id = $1"
        elif table.name == "workspaces":
            where = "id = $1"
        elif table.name == "users":
            where = f"id IN ({members})"
        elif "api_key_id" in table.c:
            where = f"api_key_id IN ({keys})"
        else:
            continue
        columns = ", ".join(table.c.keys())
        result = await app.state.db.fetch(
            f"SELECT {columns} FROM {table.name} WHERE {where}", workspace_id
        )
        rows[table.name] = sorted(tuple(row) for row in result)
    return rows


def comparable(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    return {**body, "detail": re.sub(r"\d+", "N", body["detail"])}


@pytest.mark.parametrize("probe", PROBES, ids=str)
async def test_another_workspaces_object_looks_exactly_like_a_missing_one(
    client: httpx.AsyncClient, world: World, app: FastAPI, probe: Probe
) -> None:
    acme, acme_owner = await world.workspace("Acme")
    acme_member = await world.member(acme, "admin")
    acme_key = await world.key(acme, acme_owner)
    globex, globex_owner = await world.workspace("Globex")
    globex_key = await world.key(globex, globex_owner)

    a_project = await _create(client, acme_key, "/v1/projects", {"name": "Secret"})
    a_task = await _create(client, acme_key, f"/v1/projects/{a_project}/tasks", {"title": "T"})
    b_project = await _create(client, globex_key, "/v1/projects", {"name": "Own"})
    a_key = await app.state.db.fetchval("SELECT id FROM api_keys WHERE workspace_id = $1", acme.id)
    ids = {
        "a_project": a_project,
        "a_task": a_task,
        "a_member": acme_member.membership_id,
        "a_key": a_key,
        "b_project": b_project,
    }
    missing_ids = {**{name: MISSING for name in ids}, "b_project": b_project}

    if probe.session_route:
        headers = await sign_in(client, globex, globex_owner)
    else:
        headers = bearer(globex_key)
    before = await workspace_rows(app, acme.id)

    missing = await client.request(
        probe.method, probe.path.format(**missing_ids), json=probe.body, headers=headers
    )
    foreign = await client.request(
        probe.method, probe.path.format(**ids), json=probe.body, headers=headers
    )

    assert missing.status_code == foreign.status_code == 404
    assert foreign.headers["content-type"] == missing.headers["content-type"]
    assert comparable(foreign) == comparable(missing)
    assert "Secret" not in foreign.text and acme.slug not in foreign.text
    assert await workspace_rows(app, acme.id) == before


async def test_a_key_cannot_be_scoped_to_another_workspaces_project(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    acme, acme_owner = await world.workspace("Acme", plan="business")
    a_project = await _create(
        client, await world.key(acme, acme_owner), "/v1/projects", {"name": "P"}
    )
    globex, globex_owner = await world.workspace("Globex", plan="business")
    csrf = await sign_in(client, globex, globex_owner)
    before = await workspace_rows(app, acme.id)

    def scoped_to(project_id: int) -> dict[str, Any]:
        return {
            "name": "Scoped",
            "scope": "custom",
            "permissions": {"projects": "read"},
            "project_ids": [project_id],
        }

    missing = await client.post("/v1/api-keys", json=scoped_to(MISSING), headers=csrf)
    foreign = await client.post("/v1/api-keys", json=scoped_to(a_project), headers=csrf)
    assert missing.status_code == foreign.status_code == 422
    assert comparable(foreign) == comparable(missing)
    assert await workspace_rows(app, acme.id) == before


async def test_lists_show_only_the_callers_workspace(
    client: httpx.AsyncClient, world: World
) -> None:
    acme, acme_owner = await world.workspace("Acme")
    acme_key = await world.key(acme, acme_owner)
    await _create(client, acme_key, "/v1/projects", {"name": "Secret"})
    globex, globex_owner = await world.workspace("Globex")
    globex_key = await world.key(globex, globex_owner)

    assert (await client.get("/v1/projects", headers=bearer(globex_key))).json()["data"] == []
    members = (await client.get("/v1/members", headers=bearer(globex_key))).json()["data"]
    assert [m["email"] for m in members] == [globex_owner.email]
    await sign_in(client, globex, globex_owner)
    keys = (await client.get("/v1/api-keys")).json()["data"]
    assert len(keys) == 1 and keys[0]["created_by"]["email"] == globex_owner.email


async def _create(client: httpx.AsyncClient, key: str, path: str, body: dict[str, Any]) -> int:
    response = await client.post(path, json=body, headers=bearer(key))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])
