"""A key's rate limit is exact across server processes, and a live server believes no
X-Forwarded-For from a peer it does not trust (uvicorn's own handling is off)."""

import asyncio
import itertools
from collections import Counter

import httpx
import pytest

from tests.conftest import World, bearer
from tests.live.conftest import StartServers
from tests.live.server import server_env

pytestmark = pytest.mark.slow

LIMIT = 5
REQUESTS = 60


@pytest.fixture
def server_environment(database_url: str) -> dict[str, str]:
    # Trusts a proxy network, but not 127.0.0.1, where the test's requests come from.
    return server_env(database_url, CRAFTDESK_TRUSTED_PROXIES="192.0.2.0/24")


async def test_a_rate_limit_admits_exactly_its_requests_across_processes(
    world: World, start_servers: StartServers
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner, rate_limit=(LIMIT, 3600))
    servers = await start_servers(2)
    plan = list(zip(range(REQUESTS), itertools.cycle(servers), strict=False))
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=20) as http:
        responses = await asyncio.gather(
            *(http.get(server.url + "/v1/projects", headers=bearer(key)) for _, server in plan)
        )
    assert Counter(r.status_code for r in responses) == {200: LIMIT, 429: REQUESTS - LIMIT}
    assert {r.json()["code"] for r in responses if r.status_code == 429} == {"rate_limited"}
    counted = await world.app.state.db.fetchval(
        "SELECT sum(requests) FROM workspace_usage WHERE workspace_id = $1", workspace.id
    )
    assert counted == LIMIT  # the 429s are not counted against the quota


async def test_a_spoofed_forwarded_for_does_not_open_an_allowlist(
    world: World, start_servers: StartServers
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner, allowed_ips=["10.0.0.0/8"])
    [server] = await start_servers(1)
    async with httpx.AsyncClient(timeout=20) as http:
        spoofed = await http.get(
            server.url + "/v1/auth/key",
            headers={**bearer(key), "X-Forwarded-For": "10.0.0.1", "X-Real-IP": "10.0.0.1"},
        )
    assert spoofed.status_code == 403, spoofed.text
    assert spoofed.json()["code"] == "ip_not_allowed"
    assert "127.0.0.1" in spoofed.json()["detail"]
