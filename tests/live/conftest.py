"""Live servers: real uvicorn processes on the test's database, stopped at teardown.

``start_servers(n)`` starts ``n`` processes on the ``database_url`` fixture's database (the
same one the ``world`` fixture seeds), waits until each answers ``/healthz`` and returns them.
Each gets a free loopback port and its own log file; every one still running is sent SIGTERM
and waited for at teardown, before the database is dropped, and a traceback in any server's
log fails the test (a 500 or a crashed background task must not pass unnoticed).
"""

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from craftdesk.auth.tokens import parse_key
from craftdesk.keys.models import ApiKey
from craftdesk.metering.models import KeyDailyUsage, KeyUsage, WorkspaceUsage
from tests.conftest import TEST_PEPPER

VENV_BIN = Path(sys.executable).parent
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(database_url: str) -> dict[str, str]:
    """The environment of a child process: ours without CRAFTDESK_*, then the test's own."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CRAFTDESK_")}
    env.update(
        CRAFTDESK_DATABASE_URL=database_url,
        CRAFTDESK_KEY_PEPPER=TEST_PEPPER,
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    @property
    def exited(self) -> bool:
        return self.process.poll() is not None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        """Ask for a graceful shutdown (what uvicorn gets from a supervisor)."""
        if not self.exited:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Its exit status; a process still up after ``timeout`` is killed and fails the test."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"{self.url} did not stop within {timeout} s of SIGTERM:\n{self.log()}")
        finally:
            self._log.close()

    def stop(self) -> int:
        self.terminate()
        return self.wait()

    async def wait_healthy(self, deadline: float) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=1.0) as http:
            while True:
                if self.exited:
                    pytest.fail(f"server {self.url} exited at start-up:\n{self.log()}")
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"{self.url} not healthy in {START_TIMEOUT} s:\n{self.log()}")
                await asyncio.sleep(0.05)  # polling interval, not a timing assumption


StartServers = Callable[[int], Awaitable[list[LiveServer]]]


def spawn_server(env: dict[str, str], workdir: Path) -> LiveServer:
    """Start one uvicorn process on a free port; it logs to a file in ``workdir``."""
    port = free_port()
    log_path = workdir / f"uvicorn-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            str(VENV_BIN / "python"), "-m", "uvicorn", "craftdesk.app:create_app",
            "--factory", "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
        ],
        env=env,
        cwd=workdir,  # no stray .env
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return LiveServer(process, f"http://127.0.0.1:{port}", log_path, log)


@pytest.fixture
def server_environment(database_url: str) -> dict[str, str]:
    return server_env(database_url)


@pytest.fixture
def start_servers(
    server_environment: dict[str, str], tmp_path: Path
) -> Iterator[StartServers]:
    started: list[LiveServer] = []

    async def start(count: int = 1) -> list[LiveServer]:
        servers = [spawn_server(server_environment, tmp_path) for _ in range(count)]
        started.extend(servers)
        deadline = time.monotonic() + START_TIMEOUT
        await asyncio.gather(*(server.wait_healthy(deadline) for server in servers))
        return servers

    yield start

    for server in started:  # all at once: they shut down in parallel
        server.terminate()
    problems = []
    for server in started:
        if not server._log.closed:
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
    async with app.state.sessionmaker() as session:
        workspace = {
            start: requests
            for start, requests in await session.execute(
                select(WorkspaceUsage.period_start, WorkspaceUsage.requests).where(
                    WorkspaceUsage.workspace_id == workspace_id
                )
            )
        }
        totals = {}
        for table in (KeyUsage, KeyDailyUsage):
            rows = await session.execute(
                select(ApiKey.public_id, func.coalesce(func.sum(table.requests), 0))
                .outerjoin(table, table.api_key_id == ApiKey.id)
                .where(ApiKey.public_id.in_(ids))
                .group_by(ApiKey.public_id)
            )
            totals[table] = {ids[public_id]: int(n) for public_id, n in rows}
    return StoredUsage(workspace, totals[KeyUsage], totals[KeyDailyUsage])
