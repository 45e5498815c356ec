"""SIGKILL one of two server processes under load on PostgreSQL, then restart it.

A request's count commits before its response is written, so after the crash the stored
usage equals the 200s the clients received, plus at most the requests that were in flight on
the killed process (their count may have committed while their response was lost). Nothing
is counted twice, and the quota is never passed.
"""

import asyncio
import signal

import httpx
import pytest

from craftdesk.db import utcnow
from craftdesk.metering.periods import BillingPeriod
from tests.conftest import World, bearer
from tests.live.conftest import StartServers, stored_usage

pytestmark = pytest.mark.slow

QUOTA = 600
CLIENTS = 60
PER_CLIENT = 15


@pytest.fixture
def backend() -> str:
    return "postgresql"


async def test_sigkill_during_load_loses_and_doubles_nothing(
    world: World, start_servers: StartServers
) -> None:
    workspace, owner = await world.workspace()
    await world.set_plan(workspace, quota=QUOTA)
    keys = [await world.key(workspace, owner, name=f"key {n}") for n in range(3)]
    steady, victim = await start_servers(2)
    replacement = []
    in_flight_on_victim = 0
    statuses: list[int] = []
    killed = asyncio.Event()

    async def client(n: int) -> None:
        nonlocal in_flight_on_victim
        async with httpx.AsyncClient(timeout=20) as http:
            for i in range(PER_CLIENT):
                server = victim if n % 2 and not killed.is_set() else steady
                if replacement and n % 4 == 1:
                    server = replacement[0]
                try:
                    response = await http.get(
                        f"{server.url}/v1/auth/key", headers=bearer(keys[(n + i) % 3])
                    )
                except httpx.TransportError:
                    assert server is victim
                    in_flight_on_victim += 1
                    continue
                statuses.append(response.status_code)
                if len(statuses) == CLIENTS * PER_CLIENT // 3 and not killed.is_set():
                    victim.process.send_signal(signal.SIGKILL)
                    killed.set()

    async def restart_after_kill() -> None:
        await killed.wait()
        victim.wait()
        replacement.extend(await start_servers(1))

    await asyncio.gather(*(client(n) for n in range(CLIENTS)), restart_after_kill())
    assert killed.is_set() and victim.process.returncode == -signal.SIGKILL

    assert set(statuses) <= {200, 429}, statuses
    successes = statuses.count(200)
    assert successes <= QUOTA
    stored = await stored_usage(world.app, workspace.id, keys)
    period = BillingPeriod.containing(workspace.billing_anchor, utcnow())
    total = stored.workspace[period.start]
    assert successes <= total <= min(QUOTA, successes + in_flight_on_victim), (
        successes, in_flight_on_victim, total,
    )
    assert sum(stored.key_period.values()) == total == sum(stored.key_daily.values())
