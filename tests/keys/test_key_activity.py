"""Each key's activity: its request log, its outcomes per day, where it was last used from."""

import datetime as dt

import httpx
import pytest

from craftdesk.activity.alerts import windows
from craftdesk.auth.tokens import PREFIX, checksum, generate_key
from craftdesk.db import Database, utcnow, value_rows
from craftdesk.keys import queries as keys_queries
from craftdesk.schemas import MAX_ID
from tests.conftest import Recording, World, bearer, sign_in

AGENT = {"User-Agent": "integration-test/1.0"}


def _wrong_secret(key: str) -> str:
    body = f"{PREFIX}{key[len(PREFIX) : len(PREFIX) + 12]}_{'a' * 32}"
    return body + checksum(body)


async def _mixed_traffic(
    client: httpx.AsyncClient, key: str, csrf: dict[str, str], key_id: int
) -> None:
    auth = {**bearer(key), **AGENT}
    assert (await client.get("/v1/auth/key", headers=auth)).status_code == 200
    assert (await client.get("/v1/projects?limit=5", headers=auth)).status_code == 200
    assert (await client.get("/v1/projects/999", headers=auth)).status_code == 404
    assert (await client.post("/v1/projects", json={}, headers=auth)).status_code == 422
    wrong = await client.get("/v1/auth/key", headers={**bearer(_wrong_secret(key)), **AGENT})
    assert wrong.status_code == 401
    assert (await client.delete(f"/v1/api-keys/{key_id}", headers=csrf)).status_code == 200
    assert (await client.get("/v1/projects", headers=auth)).status_code == 401


async def test_every_request_of_a_key_is_in_its_log_once_newest_first(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    created = await client.post("/v1/api-keys", json={"name": "CI"}, headers=csrf)
    key, key_id = created.json()["key"], created.json()["id"]
    other = await world.key(workspace, owner, name="other")
    await client.get("/v1/auth/key", headers=bearer(other))
    await client.get("/v1/auth/key", headers=bearer(generate_key().key))  # no such key: no log
    await _mixed_traffic(client, key, csrf, key_id)
    await world.app.state.activity.flush()

    log = (await client.get(f"/v1/api-keys/{key_id}/requests")).json()
    lines = log["data"]
    assert [(line["method"], line["path"], line["status"], line["code"]) for line in lines] == [
        ("GET", "/v1/projects", 401, "key_revoked"),
        ("GET", "/v1/auth/key", 401, "invalid_key"),
        ("POST", "/v1/projects", 422, "validation_error"),
        ("GET", "/v1/projects/999", 404, "not_found"),
        ("GET", "/v1/projects", 200, "ok"),
        ("GET", "/v1/auth/key", 200, "ok"),
    ]
    assert log["next_cursor"] is None
    for line in lines:
        assert line["ip"] == "127.0.0.1"
        assert line["user_agent"] == "integration-test/1.0"
        assert len(line["request_id"]) == 32 and line["duration_ms"] >= 0
        assert abs(dt.datetime.fromisoformat(line["at"]) - utcnow()) < dt.timedelta(minutes=1)
        assert key not in str(line) and "limit=5" not in line["path"]

    by_status = (await client.get(f"/v1/api-keys/{key_id}/requests?status=401")).json()["data"]
    assert [line["code"] for line in by_status] == ["key_revoked", "invalid_key"]
    by_code = (await client.get(f"/v1/api-keys/{key_id}/requests?code=ok&limit=1")).json()
    assert [line["path"] for line in by_code["data"]] == ["/v1/projects"]
    second = await client.get(
        f"/v1/api-keys/{key_id}/requests?code=ok&limit=1&cursor={by_code['next_cursor']}"
    )
    assert [line["path"] for line in second.json()["data"]] == ["/v1/auth/key"]

    usage = (await client.get(f"/v1/api-keys/{key_id}/usage")).json()
    today = usage["days"][-1]
    assert today["outcomes"] == {
        "ok": 2,
        "not_found": 1,
        "validation_error": 1,
        "invalid_key": 1,
        "key_revoked": 1,
    }
    assert today["requests"] == 4  # what the quota counted: the 401s are not counted

    listed = (await client.get(f"/v1/api-keys/{key_id}")).json()
    assert listed["last_used_ip"] == "127.0.0.1"
    assert listed["last_used_user_agent"] == "integration-test/1.0"


async def test_a_member_sees_only_their_own_keys_log(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    member = await world.member(workspace)
    owners_key = await world.key(workspace, owner)
    await client.get("/v1/auth/key", headers=bearer(owners_key))
    key_id = await world.app.state.db.fetchval("SELECT max(id) FROM api_keys")
    await sign_in(client, workspace, member)
    assert (await client.get(f"/v1/api-keys/{key_id}/requests")).status_code == 404


async def test_old_lines_are_pruned(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    await client.get("/v1/auth/key", headers=bearer(key))
    activity = world.app.state.activity
    await activity.flush()
    db = world.app.state.db
    await db.execute("UPDATE key_requests SET at = $1", utcnow() - dt.timedelta(days=31))
    await client.get("/v1/projects", headers=bearer(key))
    await activity.flush()
    await activity.prune()
    assert [row["path"] for row in await db.fetch("SELECT path FROM key_requests")] == [
        "/v1/projects"
    ]


@pytest.mark.parametrize("bad", ["status=99", "status=abc", "code=NOT-A-CODE", "limit=0"])
async def test_bad_filters_are_422(client: httpx.AsyncClient, world: World, bad: str) -> None:
    workspace, owner = await world.workspace()
    await sign_in(client, workspace, owner)
    key_id = (
        await client.post(
            "/v1/api-keys", json={"name": "k"}, headers=await sign_in(client, workspace, owner)
        )
    ).json()["id"]
    assert (await client.get(f"/v1/api-keys/{key_id}/requests?{bad}")).status_code == 422


def _from(app: object, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _alerts(client: httpx.AsyncClient, key_id: int) -> dict[str, dict[str, str]]:
    key = (await client.get(f"/v1/api-keys/{key_id}")).json()
    listed = (await client.get("/v1/api-keys")).json()["data"]
    assert next(k for k in listed if k["id"] == key_id)["alerts"] == key["alerts"]
    return {alert["kind"]: alert for alert in key["alerts"]}


async def test_new_ip_fires_for_a_second_address_not_the_first(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    await sign_in(client, workspace, owner)
    key = await world.key(workspace, owner)
    key_id = await world.app.state.db.fetchval("SELECT max(id) FROM api_keys")
    activity = world.app.state.activity
    async with _from(world.app, "10.0.0.1") as usual:
        await usual.get("/v1/auth/key", headers=bearer(key))
    await activity.flush()
    assert await _alerts(client, key_id) == {}
    async with _from(world.app, "203.0.113.9") as elsewhere:
        await elsewhere.get("/v1/auth/key", headers=bearer(key))
    await activity.flush()
    alerts = await _alerts(client, key_id)
    assert list(alerts) == ["new_ip"] and "203.0.113.9" in alerts["new_ip"]["detail"]


async def test_failing_fires_past_half_refused_of_twenty(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    await sign_in(client, workspace, owner)
    key = await world.key(workspace, owner, scope="read_only")
    key_id = await world.app.state.db.fetchval("SELECT max(id) FROM api_keys")
    for _ in range(9):
        assert (await client.get("/v1/projects", headers=bearer(key))).status_code == 200
    for _ in range(10):
        refused = await client.post("/v1/projects", json={"name": "x"}, headers=bearer(key))
        assert refused.status_code == 403
    await world.app.state.activity.flush()
    assert "failing" not in await _alerts(client, key_id)  # 19 requests: too few to tell
    await client.post("/v1/projects", json={"name": "x"}, headers=bearer(key))
    await world.app.state.activity.flush()
    failing = (await _alerts(client, key_id))["failing"]
    assert "11 of its 20 requests" in failing["detail"]


async def test_revoked_in_use_fires_when_a_revoked_key_is_tried(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    tried = (await client.post("/v1/api-keys", json={"name": "tried"}, headers=csrf)).json()
    idle = (await client.post("/v1/api-keys", json={"name": "idle"}, headers=csrf)).json()
    for created in (tried, idle):
        await client.delete(f"/v1/api-keys/{created['id']}", headers=csrf)
    assert (await client.get("/v1/auth/key", headers=bearer(tried["key"]))).status_code == 401
    await world.app.state.activity.flush()
    assert list(await _alerts(client, tried["id"])) == ["revoked_in_use"]
    assert await _alerts(client, idle["id"]) == {}


async def test_unused_fires_for_an_active_key_idle_for_30_days(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    created = (await client.post("/v1/api-keys", json={"name": "old"}, headers=csrf)).json()
    db = world.app.state.db
    await db.execute(
        "UPDATE api_keys SET created_at = $2 WHERE id = $1",
        created["id"],
        utcnow() - dt.timedelta(days=31),
    )
    assert list(await _alerts(client, created["id"])) == ["unused"]
    assert (await client.get("/v1/auth/key", headers=bearer(created["key"]))).status_code == 200
    assert await _alerts(client, created["id"]) == {}


async def _busy_but_quiet(db: Database, key_id: int, now: dt.datetime) -> None:
    """Two hours of the key's minutes, none refused, and 200 addresses it has used for days."""
    minute = int(now.timestamp()) // 60
    await db.execute(
        f"""INSERT INTO key_minute_outcomes (api_key_id, minute, requests, failed)
            VALUES {value_rows(120, ("", "::bigint", "", ""))}""",
        *(value for m in range(minute - 119, minute + 1) for value in (key_id, m, 300, 0)),
    )
    await db.execute(
        f"""INSERT INTO key_ips (api_key_id, ip, first_seen, last_seen)
            VALUES {value_rows(200, ("", "", "::timestamptz", "::timestamptz"))}""",
        *(
            value
            for n in range(200)
            for value in (key_id, f"10.0.0.{n}", now - dt.timedelta(days=2, minutes=n), now)
        ),
    )


async def test_the_list_reads_the_activity_of_the_keys_its_hints_name_only(
    client: httpx.AsyncClient, world: World, queries: list[str]
) -> None:
    workspace, owner = await world.workspace()
    await sign_in(client, workspace, owner)
    for n in range(3):
        await world.key(workspace, owner, name=f"busy {n}")
    db, now = world.app.state.db, utcnow()
    key_ids = [row["id"] for row in await db.fetch("SELECT id FROM api_keys ORDER BY id")]
    for key_id in key_ids:
        await _busy_but_quiet(db, key_id, now)

    queries.clear()
    page = (await client.get("/v1/api-keys")).json()["data"]
    assert [key["alerts"] for key in page] == [[], [], []]
    assert len(queries) == 2  # the session, the page: no key's minutes or addresses read

    await db.execute(
        """INSERT INTO key_ips (api_key_id, ip, first_seen, last_seen)
           VALUES ($1, '203.0.113.9', $2, $2)""",
        key_ids[0],
        now - dt.timedelta(minutes=5),
    )
    await db.execute(
        "UPDATE key_minute_outcomes SET failed = 1 WHERE api_key_id = $1 AND minute = $2",
        key_ids[1],
        int(now.timestamp()) // 60,
    )
    queries.clear()
    page = (await client.get("/v1/api-keys")).json()["data"]
    alerts = {key["id"]: [alert["kind"] for alert in key["alerts"]] for key in page}
    assert alerts == {key_ids[0]: ["new_ip"], key_ids[1]: [], key_ids[2]: []}
    assert "203.0.113.9" in page[-1]["alerts"][0]["detail"]
    assert len(queries) == 4  # and the addresses of one key, the minutes of another


async def test_the_list_s_hints_are_index_seeks(world: World, backend: str) -> None:
    """However many minutes or addresses a key has, its hints read an index entry or two
    (PostgreSQL picks a plan by the tables' size: told not to scan, it must have the index)."""
    workspace, _ = await world.workspace()
    now = utcnow()
    db = world.app.state.db
    page = Recording(db.dialect)
    await keys_queries.list_keys(
        page, workspace.id, now, windows(now), created_by_id=None, up_to=MAX_ID, limit=51
    )
    [(sql, args)] = page.statements
    async with db.transaction() as tx:
        if backend == "sqlite":
            plan = await tx.fetch(f"EXPLAIN QUERY PLAN {sql}", *args)
            details = " ".join(row["detail"] for row in plan)
        else:
            await tx.execute("SET LOCAL enable_seqscan = off")
            plan = await tx.fetch(f"EXPLAIN {sql}", *args)
            details = " ".join(row[0] for row in plan)
    assert "ix_key_minute_outcomes_refused" in details
    assert "ix_key_ips_api_key_id_first_seen" in details
