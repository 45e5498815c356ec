import httpx
import pytest

from tests.conftest import World, bearer


@pytest.fixture
async def key(world: World) -> str:
    workspace, owner = await world.workspace()
    return await world.key(workspace, owner)


async def test_project_and_task_lifecycle(client: httpx.AsyncClient, key: str) -> None:
    auth = bearer(key)
    created = await client.post(
        "/v1/projects", json={"name": "Website", "description": "Relaunch"}, headers=auth
    )
    assert created.status_code == 201
    project = created.json()
    assert project["name"] == "Website" and project["description"] == "Relaunch"
    pid = project["id"]

    renamed = await client.patch(f"/v1/projects/{pid}", json={"name": "Site"}, headers=auth)
    assert renamed.json()["name"] == "Site" and renamed.json()["description"] == "Relaunch"

    task = (
        await client.post(f"/v1/projects/{pid}/tasks", json={"title": "Copy"}, headers=auth)
    ).json()
    assert task["status"] == "todo" and task["project_id"] == pid
    done = await client.patch(
        f"/v1/projects/{pid}/tasks/{task['id']}", json={"status": "done"}, headers=auth
    )
    assert done.json()["status"] == "done"
    listed = (await client.get(f"/v1/projects/{pid}/tasks", headers=auth)).json()
    assert [t["title"] for t in listed["data"]] == ["Copy"]

    assert (
        await client.delete(f"/v1/projects/{pid}/tasks/{task['id']}", headers=auth)
    ).status_code == 204
    assert (
        await client.get(f"/v1/projects/{pid}/tasks/{task['id']}", headers=auth)
    ).status_code == 404
    assert (await client.delete(f"/v1/projects/{pid}", headers=auth)).status_code == 204
    assert (await client.get(f"/v1/projects/{pid}", headers=auth)).status_code == 404


async def test_deleting_a_project_deletes_its_tasks(client: httpx.AsyncClient, key: str) -> None:
    auth = bearer(key)
    pid = (await client.post("/v1/projects", json={"name": "P"}, headers=auth)).json()["id"]
    tid = (
        await client.post(f"/v1/projects/{pid}/tasks", json={"title": "T"}, headers=auth)
    ).json()["id"]
    await client.delete(f"/v1/projects/{pid}", headers=auth)
    assert (await client.get(f"/v1/projects/{pid}/tasks/{tid}", headers=auth)).status_code == 404


async def test_cursor_pagination_walks_every_project_once(
    client: httpx.AsyncClient, key: str
) -> None:
    auth = bearer(key)
    for n in range(7):
        await client.post("/v1/projects", json={"name": f"P{n}"}, headers=auth)
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/projects", params=params, headers=auth)).json()
        assert len(page["data"]) <= 3
        seen += [p["name"] for p in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"P{n}" for n in range(7)]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 101}, "limit"), ({"limit": 0}, "limit"), ({"cursor": "abc"}, "cursor")],
)
async def test_bad_paging_is_422(
    client: httpx.AsyncClient, key: str, params: dict[str, object], field: str
) -> None:
    response = await client.get("/v1/projects", params=params, headers=bearer(key))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": 5},
        {"name": "ok", "unknown": 1},
        {"name": "ok", "description": "d" * 10_001},
    ],
)
async def test_invalid_project_body_is_422(
    client: httpx.AsyncClient, key: str, body: dict[str, object]
) -> None:
    response = await client.post("/v1/projects", json=body, headers=bearer(key))
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_malformed_json_is_422(client: httpx.AsyncClient, key: str) -> None:
    response = await client.post(
        "/v1/projects",
        content=b"{not json",
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert response.status_code == 422


async def test_invalid_task_status_is_422(client: httpx.AsyncClient, key: str) -> None:
    auth = bearer(key)
    pid = (await client.post("/v1/projects", json={"name": "P"}, headers=auth)).json()["id"]
    response = await client.post(
        f"/v1/projects/{pid}/tasks", json={"title": "t", "status": "blocked"}, headers=auth
    )
    assert response.status_code == 422


@pytest.mark.parametrize("path", ["/v1/projects/0", "/v1/projects/99999999999", "/v1/projects/x"])
async def test_out_of_range_ids_are_422_not_500(
    client: httpx.AsyncClient, key: str, path: str
) -> None:
    assert (await client.get(path, headers=bearer(key))).status_code == 422


async def test_another_workspaces_objects_look_missing(
    client: httpx.AsyncClient, world: World
) -> None:
    acme, acme_owner = await world.workspace("Acme")
    globex, globex_owner = await world.workspace("Globex")
    acme_key = await world.key(acme, acme_owner)
    globex_key = await world.key(globex, globex_owner)
    pid = (
        await client.post("/v1/projects", json={"name": "Secret"}, headers=bearer(acme_key))
    ).json()["id"]
    tid = (
        await client.post(
            f"/v1/projects/{pid}/tasks", json={"title": "T"}, headers=bearer(acme_key)
        )
    ).json()["id"]

    missing = await client.get("/v1/projects/2147483000", headers=bearer(globex_key))
    foreign_requests = [
        client.get(f"/v1/projects/{pid}", headers=bearer(globex_key)),
        client.patch(f"/v1/projects/{pid}", json={"name": "pwned"}, headers=bearer(globex_key)),
        client.delete(f"/v1/projects/{pid}", headers=bearer(globex_key)),
        client.get(f"/v1/projects/{pid}/tasks", headers=bearer(globex_key)),
        client.get(f"/v1/projects/{pid}/tasks/{tid}", headers=bearer(globex_key)),
        client.delete(f"/v1/projects/{pid}/tasks/{tid}", headers=bearer(globex_key)),
        client.get(f"/v1/members/{acme_owner.membership_id}", headers=bearer(globex_key)),
    ]
    for request in foreign_requests:
        response = await request
        assert response.status_code == 404
        assert response.json()["code"] == missing.json()["code"] == "not_found"
        assert "Secret" not in response.text
    assert (await client.get("/v1/projects", headers=bearer(globex_key))).json()["data"] == []
    still = await client.get(f"/v1/projects/{pid}", headers=bearer(acme_key))
    assert still.json()["name"] == "Secret"


async def test_a_deleted_projects_id_is_never_given_to_another(
    client: httpx.AsyncClient, world: World
) -> None:
    """A key limited to a project must not reach a later project that took its id (SQLite
    reuses the highest id of a deleted row unless the table is AUTOINCREMENT)."""
    workspace, owner = await world.workspace(plan="business")
    full = bearer(await world.key(workspace, owner))
    project = (await client.post("/v1/projects", json={"name": "Old"}, headers=full)).json()
    task = await client.post(
        f"/v1/projects/{project['id']}/tasks", json={"title": "Old task"}, headers=full
    )
    limited = bearer(
        await world.key(
            workspace,
            owner,
            scope="custom",
            permissions={"projects": "read", "tasks": "read"},
            project_ids=[project["id"]],
        )
    )
    await client.delete(f"/v1/projects/{project['id']}/tasks/{task.json()['id']}", headers=full)
    assert (await client.delete(f"/v1/projects/{project['id']}", headers=full)).status_code == 204

    new = (await client.post("/v1/projects", json={"name": "New"}, headers=full)).json()
    new_task = (
        await client.post(f"/v1/projects/{new['id']}/tasks", json={"title": "New"}, headers=full)
    ).json()
    assert new["id"] > project["id"] and new_task["id"] > task.json()["id"]
    assert (await client.get("/v1/projects", headers=limited)).json()["data"] == []
    assert (await client.get(f"/v1/projects/{new['id']}", headers=limited)).status_code == 403


async def test_a_task_page_is_empty_for_an_empty_project_and_404_for_a_missing_one(
    client: httpx.AsyncClient, key: str
) -> None:
    auth = bearer(key)
    pid = (await client.post("/v1/projects", json={"name": "Empty"}, headers=auth)).json()["id"]
    empty = await client.get(f"/v1/projects/{pid}/tasks", headers=auth)
    assert empty.status_code == 200
    assert empty.json() == {"data": [], "next_cursor": None}
    await client.post(f"/v1/projects/{pid}/tasks", json={"title": "Only"}, headers=auth)
    [task] = (await client.get(f"/v1/projects/{pid}/tasks", headers=auth)).json()["data"]
    past = await client.get(f"/v1/projects/{pid}/tasks?cursor={task['id']}", headers=auth)
    assert past.status_code == 200 and past.json() == {"data": [], "next_cursor": None}
    missing = await client.get(f"/v1/projects/{pid + 1000}/tasks", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["detail"] == f"No project {pid + 1000} in this workspace."
