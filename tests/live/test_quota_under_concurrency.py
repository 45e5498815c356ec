"""Exact quota under concurrency, across server processes (issue #3 item 5)."""

import asyncio
import itertools
from collections import Counter

import httpx
import pytest

from craftdesk.db import utcnow
from craftdesk.metering.periods import BillingPeriod
from tests.conftest import World, bearer
from tests.live.conftest import StartServers, craftdesk_cli, stored_usage

pytestmark = pytest.mark.slow

QUOTA = 120
REQUESTS = 420
KEYS = 3


async def test_concurrent_requests_on_all_processes_admit_exactly_the_quota(
    backend: str,
    world: World,
    start_servers: StartServers,
    server_environment: dict[str, str],
) -> None:
    workspace, owner = await world.workspace()
    keys = [await world.key(workspace, owner, name=f"key {n}") for n in range(KEYS)]
    craftdesk_cli(server_environment, "workspace", "set-plan", workspace.slug, "free",
                  "--quota", str(QUOTA))
    servers = await start_servers(2 if backend == "postgresql" else 1)

    plan = list(
        zip(
            range(REQUESTS),
            itertools.cycle(servers),
            itertools.cycle(keys),
            itertools.cycle(["/v1/auth/key", "/v1/projects"]),
            strict=False,
        )
    )
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=20) as http:
        responses = await asyncio.gather(
            *(http.get(server.url + path, headers=bearer(key)) for _, server, key, path in plan)
        )

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: QUOTA, 429: REQUESTS - QUOTA}, statuses
    for response in responses:
        if response.status_code == 429:
            assert response.json()["code"] == "quota_exceeded"
            assert response.headers["content-type"].startswith("application/problem+json")
            assert int(response.headers["Retry-After"]) > 0
    successes_per_key = Counter(
        key for (_, _, key, _), response in zip(plan, responses, strict=True)
        if response.status_code == 200
    )
    if len(servers) > 1:  # both processes really took part in admitting
        assert {
            server.url for (_, server, _, _), response in zip(plan, responses, strict=True)
            if response.status_code == 200
        } == {server.url for server in servers}

    stored = await stored_usage(world.app, workspace.id, keys)
    period = BillingPeriod.containing(workspace.billing_anchor, utcnow())
    assert stored.workspace == {period.start: QUOTA}
    assert stored.key_period == {key: successes_per_key[key] for key in keys}
    assert sum(stored.key_period.values()) == QUOTA
    assert sum(stored.key_daily.values()) == QUOTA
