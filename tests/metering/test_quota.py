"""Counting against the quota, 429 and the rate-limit headers (in process; the live,
multi-process exactness tests are in tests/live)."""

import asyncio

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from craftdesk.auth.tokens import CHECKSUM_LENGTH, checksum
from craftdesk.metering.models import KeyDailyUsage, KeyUsage, WorkspaceUsage
from tests.conftest import World, bearer


async def test_every_authenticated_response_carries_rate_limit_headers(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    await world.set_plan(workspace, quota=10)
    key = await world.key(workspace, owner, scope="read_only")
    ok = await client.get("/v1/projects", headers=bearer(key))
    forbidden = await client.post("/v1/projects", json={"name": "x"}, headers=bearer(key))
    missing = await client.get("/v1/projects/123", headers=bearer(key))
    for n, response in enumerate((ok, forbidden, missing), start=1):
        assert response.headers["ratelimit-policy"] == '"billing-period";q=10'
        remaining, reset = response.headers["ratelimit"].split(";")[1:]
        assert remaining == f"r={10 - n}"
        assert int(reset.removeprefix("t=")) > 0
        assert response.headers["x-ratelimit-limit"] == "10"
        assert response.headers["x-ratelimit-used"] == str(n)
        assert response.headers["x-ratelimit-remaining"] == str(10 - n)
        assert int(response.headers["x-ratelimit-reset"]) > 1_700_000_000
    assert "ratelimit" not in (await client.get("/healthz")).headers


async def test_quota_exhausted_gives_429_with_retry_after(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    workspace, owner = await world.workspace()
    await world.set_plan(workspace, quota=3)
    key = await world.key(workspace, owner)
    statuses = [
        (await client.get("/v1/projects", headers=bearer(key))).status_code for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    response = await client.get("/v1/auth/key", headers=bearer(key))
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "quota_exceeded" and body["status"] == 429
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["x-ratelimit-remaining"] == "0"
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(WorkspaceUsage.requests)) == 3


async def test_upgrade_admits_requests_at_once(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    await world.set_plan(workspace, quota=1)
    key = await world.key(workspace, owner)
    assert (await client.get("/v1/projects", headers=bearer(key))).status_code == 200
    assert (await client.get("/v1/projects", headers=bearer(key))).status_code == 429
    await world.set_plan(workspace, plan="pro", quota=None)
    response = await client.get("/v1/projects", headers=bearer(key))
    assert response.status_code == 200
    assert response.headers["x-ratelimit-limit"] == "100000"


async def test_plan_defaults(client: httpx.AsyncClient, world: World) -> None:
    for plan, quota in (("free", 1_000), ("pro", 100_000), ("business", 1_000_000)):
        workspace, owner = await world.workspace(plan=plan)
        me = await client.get("/v1/auth/key", headers=bearer(await world.key(workspace, owner)))
        assert me.json()["quota"]["limit"] == quota


async def test_concurrent_requests_never_pass_the_quota(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    workspace, owner = await world.workspace()
    await world.set_plan(workspace, quota=25)
    keys = [await world.key(workspace, owner, name=f"k{n}") for n in range(3)]
    responses = await asyncio.gather(
        *(client.get("/v1/auth/key", headers=bearer(keys[n % 3])) for n in range(60))
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 25 and statuses.count(429) == 35
    async with app.state.sessionmaker() as session:
        workspace_total = await session.scalar(select(WorkspaceUsage.requests))
        key_total = await session.scalar(select(func.sum(KeyUsage.requests)))
        daily_total = await session.scalar(select(func.sum(KeyDailyUsage.requests)))
    assert workspace_total == key_total == daily_total == 25


async def test_unauthenticated_requests_are_not_counted(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    await client.get("/v1/projects")
    await client.get("/v1/projects", headers=bearer(key[:-1] + "0"))
    me = (await client.get("/v1/auth/key", headers=bearer(key))).json()
    assert me["quota"]["used"] == 1


async def test_one_batch_over_two_workspaces_counts_each_request_once(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    """Concurrent requests go to the database together. Here one workspace already has its
    period's count and the other's period starts with this batch; a forged key of the first
    rides along. Each admitted request is counted once, and each response reports its own
    place in the count."""
    first, first_owner = await world.workspace("First")
    second, second_owner = await world.workspace("Second")
    first_key = await world.key(first, first_owner)
    second_key = await world.key(second, second_owner)
    assert (await client.get("/v1/auth/key", headers=bearer(first_key))).status_code == 200
    body = first_key[:-CHECKSUM_LENGTH]
    forged_body = body[:-1] + ("a" if body[-1] != "a" else "b")
    forged = forged_body + checksum(forged_body)

    keys = [first_key, second_key, forged] * 10
    responses = await asyncio.gather(
        *(client.get("/v1/auth/key", headers=bearer(key)) for key in keys)
    )

    used: dict[str, list[int]] = {first_key: [], second_key: []}
    for key, response in zip(keys, responses, strict=True):
        if key == forged:
            assert response.status_code == 401 and response.json()["code"] == "invalid_key"
        else:
            assert response.status_code == 200
            used[key].append(int(response.headers["x-ratelimit-used"]))
    assert sorted(used[first_key]) == list(range(2, 12))
    assert sorted(used[second_key]) == list(range(1, 11))
    async with app.state.sessionmaker() as session:
        rows = await session.execute(select(WorkspaceUsage.workspace_id, WorkspaceUsage.requests))
        stored = {workspace_id: requests for workspace_id, requests in rows}
        per_key = await session.scalar(select(func.sum(KeyUsage.requests)))
    assert stored == {first.id: 11, second.id: 10}
    assert per_key == 21
