"""Live servers: real uvicorn processes on the test's database, stopped at teardown.

``start_servers(n)`` starts ``n`` processes on the ``database_url`` fixture's database (the
same one the ``world`` fixture seeds), waits until each answers ``/healthz`` and returns them.
Each gets a free loopback port and its own log file; every one still running is sent SIGTERM
and waited for at teardown, before the database is dropped, and a traceback in any server's
log fails the test (a 500 or a crashed background task must not pass unnoticed).
"""

import asyncio
import datetime as dt
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI

from craftdesk.auth.tokens import parse_key
from tests.live.server import START_TIMEOUT, LiveServer, server_env, spawn_server

VENV_BIN = Path(sys.executable).parent

StartServers = Callable[[int], Awaitable[list[LiveServer]]]


@pytest.fixture
def server_environment(database_url: str) -> dict[str, str]:
    return server_env(database_url)


@pytest.fixture
def start_servers(server_environment: dict[str, str], tmp_path: Path) -> Iterator[StartServers]:
    started: list[LiveServer] = []

    async def start(count: int = 1) -> list[LiveServer]:
        servers = [spawn_server(server_environment, tmp_path) for _ in range(count)]
        started.extend(servers)
        deadline = time.monotonic() + START_TIMEOUT
        await asyncio.gather(
            *(asyncio.to_thread(server.wait_healthy, deadline) for server in servers)
        )
        return servers

    yield start

    for server in started:  # all at once: they shut down in parallel
        server.terminate()
    problems = []
    for server in started:
        if not server.stopped:
            try:
                server.wait()
            except pytest.fail.Exception as exc:
                problems.append(str(exc))
        if "Traceback" in server.log():
            problems.append(f"{server.url} logged a traceback:\n{server.log()}")
    if problems:
        pytest.fail("\n".join(problems))


def craftdesk_cli(env: dict[str, str], *args: str) -> str:
    """Run the ``craftdesk`` command line; its stdout, stripped."""
    result = subprocess.run(
        [str(VENV_BIN / "craftdesk"), *args], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, f"craftdesk {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


@dataclass
class StoredUsage:
    """What the database holds for a workspace: per period, and per key (by full key)."""

    workspace: dict[dt.datetime, int]
    key_period: dict[str, int]
    key_daily: dict[str, int]


async def stored_usage(app: FastAPI, workspace_id: int, keys: list[str]) -> StoredUsage:
    ids = {parse_key(key): key for key in keys}
    db = app.state.db
    rows = await db.fetch(
        "SELECT period_start, requests FROM workspace_usage WHERE workspace_id = $1",
        workspace_id,
    )
    workspace = {row["period_start"]: row["requests"] for row in rows}
    public_ids = ", ".join(f"${n}" for n in range(1, len(ids) + 1))
    totals = {}
    for table in ("key_usage", "key_daily_usage"):
        rows = await db.fetch(
            f"""SELECT k.public_id, COALESCE(SUM(u.requests), 0) FROM api_keys AS k
                LEFT JOIN {table} AS u ON u.api_key_id = k.id
                WHERE k.public_id IN ({public_ids}) GROUP BY k.public_id""",
            *ids,
        )
        totals[table] = {ids[public_id]: int(n) for public_id, n in rows}
    return StoredUsage(workspace, totals["key_usage"], totals["key_daily_usage"])
