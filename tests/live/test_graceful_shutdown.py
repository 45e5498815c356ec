"""SIGTERM during a burst: every request in flight is answered and counted, nothing else is.

The client sends 200 requests over 50 connections; at the first answer the server gets
SIGTERM. Requests already sent must still get their 200 (uvicorn drains them, then the key
gate's lifespan shutdown answers whatever it still holds); later ones are refused. The stored
count must equal the 200s the clients received, per workspace and per key.
"""

import asyncio
import signal
from collections import Counter

import httpx
import pytest

from craftdesk.db import utcnow
from craftdesk.metering.periods import BillingPeriod
from tests.conftest import World, bearer
from tests.live.conftest import StartServers, stored_usage

pytestmark = pytest.mark.slow

REQUESTS = 200
CONNECTIONS = 50  # the rest queue in the client and go out as connections free up


async def test_sigterm_during_a_burst_loses_no_count(
    world: World, start_servers: StartServers
) -> None:
    workspace, owner = await world.workspace()
    keys = [await world.key(workspace, owner, name=f"key {n}") for n in range(2)]
    [server] = await start_servers(1)

    async def call(http: httpx.AsyncClient, n: int) -> httpx.Response | httpx.TransportError:
        path = "/v1/auth/key" if n % 2 else "/v1/projects"
        try:
            response = await http.get(path, headers=bearer(keys[n % 2]))
        except httpx.TransportError as exc:  # refused once the server stopped listening
            return exc
        server.terminate()  # at the first answer, while the others are in flight; then a no-op
        return response

    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=20) as http:
        outcomes = await asyncio.gather(*(call(http, n) for n in range(REQUESTS)))
    # uvicorn re-raises the SIGTERM it handled once shut down, hence -SIGTERM as exit status.
    assert server.wait() in (0, -signal.SIGTERM), server.log()
    assert "Application shutdown complete." in server.log()

    answered = [
        (keys[n % 2], outcome) for n, outcome in enumerate(outcomes)
        if isinstance(outcome, httpx.Response)
    ]
    failures = Counter(type(o).__name__ for o in outcomes if not isinstance(o, httpx.Response))
    assert [r.status_code for _, r in answered] == [200] * len(answered), [
        (r.status_code, r.text) for _, r in answered if r.status_code != 200
    ]
    assert len(answered) > 1, "no request in flight at SIGTERM was answered"
    successes_per_key = Counter(key for key, _ in answered)

    stored = await stored_usage(world.app, workspace.id, keys)
    period = BillingPeriod.containing(workspace.billing_anchor, utcnow())
    assert stored.workspace == {period.start: len(answered)}, (
        f"{len(answered)} of {REQUESTS} answered 200; failed: {dict(failures)}"
    )
    assert stored.key_period == {key: successes_per_key[key] for key in keys}
    assert sum(stored.key_daily.values()) == len(answered)
