#!/usr/bin/env python3
"""Load test: 2 server processes on one PostgreSQL database, keys created and revoked under load.

    .venv/bin/python scripts/load.py [--duration 60] [--connections 200] [--kill-one]

Holds ``--connections`` concurrent connections for ``--duration`` seconds against
``GET /v1/auth/key`` and ``GET /v1/projects`` on every process, while a dashboard session creates
a key and revokes an older one twice a second. After each revoke answers, the revoked key is
tried on every process at once and must get 401 ``key_revoked``; no request that starts after a
revoke may succeed with that key. With ``--kill-one`` the second process is killed with SIGKILL
halfway and restarted. At the end the stored usage must equal the admitted responses the clients
received, give or take the requests that were in flight on the killed process (their count may
have committed while the response was lost).

Loopback only; stops by itself; exits non-zero on any unexpected status, violation or mismatch.
"""

import argparse
import asyncio
import collections
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from craftdesk.migrate import upgrade  # noqa: E402

ADMIN_DSN = os.environ.get(
    "CRAFTDESK_LOAD_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PEPPER = "load-test-pepper-" + "x" * 32
PASSWORD = "load-test-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CRAFTDESK_DATABASE_URL": database_url,
        "CRAFTDESK_KEY_PEPPER": PEPPER,
        "CRAFTDESK_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "craftdesk.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )


async def wait_ready(port: int, deadline: float = 20) -> None:
    end = time.monotonic() + deadline
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > end:
                raise SystemExit(f"server on port {port} did not start")
            await asyncio.sleep(0.1)


def run_cli(database_url: str, *args: str) -> str:
    env = {**os.environ, "CRAFTDESK_DATABASE_URL": database_url, "CRAFTDESK_KEY_PEPPER": PEPPER}
    craftdesk = str(Path(sys.executable).with_name("craftdesk"))
    return subprocess.run(
        [craftdesk, *args], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


class Connection:
    """A bare HTTP/1.1 keep-alive connection: the load generator must cost far less CPU than
    the servers it loads (httpx at 200 connections was the bottleneck)."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, key: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n"
        self.writer.write(request.encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        if length is None:
            raise ValueError("response without Content-Length")
        return int(head[9:12]), await self.reader.readexactly(int(length.group(1)))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Stats:
    def __init__(self) -> None:
        self.statuses: collections.Counter[int] = collections.Counter()
        self.latencies: list[float] = []
        self.transport_errors = 0
        self.in_doubt = 0
        self.violations: list[str] = []
        self.unexpected: list[str] = []


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--kill-one", action="store_true")
    args = parser.parse_args()

    name = f"craftdesk_load_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    database_url = (
        ADMIN_DSN.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0] + f"/{name}"
    )
    servers: dict[int, subprocess.Popen[bytes]] = {}
    try:
        await asyncio.to_thread(upgrade, database_url)
        slug = run_cli(
            database_url,
            "workspace",
            "create",
            "--name",
            "Load",
            "--owner-email",
            "load@example.com",
            "--owner-password",
            PASSWORD,
            "--plan",
            "business",
        )
        run_cli(database_url, "workspace", "set-plan", slug, "business", "--quota", "1000000000")
        keys = [
            run_cli(
                database_url,
                "key",
                "create",
                slug,
                "--email",
                "load@example.com",
                "--name",
                f"load-{n}",
            )
            for n in range(10)
        ]
        ports = [free_port() for _ in range(args.processes)]
        for port in ports:
            servers[port] = start_server(database_url, port)
        await asyncio.gather(*(wait_ready(port) for port in ports))
        stats = await run_load(args, ports, keys, slug, servers, database_url)
    finally:
        for process in servers.values():
            process.send_signal(signal.SIGTERM)
        for process in servers.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    db = await asyncpg.connect(ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}")
    stored = await db.fetchval("SELECT coalesce(sum(requests), 0) FROM workspace_usage")
    per_key = await db.fetchval("SELECT coalesce(sum(requests), 0) FROM key_usage")
    await db.close()
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()
    return report(args, stats, stored, per_key)


async def run_load(args, ports, keys, slug, servers, database_url) -> Stats:  # type: ignore[no-untyped-def]
    stats = Stats()
    active: list[str] = list(keys)
    revoked_at: dict[str, float] = {}
    revoking: set[str] = set()
    stop_at = time.monotonic() + args.duration
    killed: set[int] = set()
    limits = httpx.Limits(
        max_connections=args.connections + 20, max_keepalive_connections=args.connections + 20
    )
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def worker(n: int) -> None:
            path = ("/v1/auth/key", "/v1/projects")[n % 2]
            port = ports[n % len(ports)]
            connection = Connection(port)
            while time.monotonic() < stop_at:
                key = (
                    random.choice(active)
                    if random.random() > 0.05 or not revoked_at
                    else random.choice(list(revoked_at))
                )
                started = time.monotonic()
                try:
                    status, body = await connection.get(path, key)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    connection.close()
                    stats.transport_errors += 1
                    if port in killed:
                        stats.in_doubt += 1
                        await asyncio.sleep(0.05)
                    continue
                stats.latencies.append(time.monotonic() - started)
                stats.statuses[status] += 1
                if status == 200 and key in revoked_at and started > revoked_at[key]:
                    stats.violations.append(f"revoked key accepted on port {port}")
                if status not in (200, 401, 429):
                    stats.unexpected.append(f"{status} {body[:200]!r}")
                if status == 401 and key not in revoked_at and key not in revoking:
                    stats.unexpected.append(f"401 for an active key: {body[:200]!r}")
            connection.close()

        async def churn() -> None:
            session = httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}", timeout=10)
            signed = await session.post(
                "/v1/sessions",
                json={"workspace": slug, "email": "load@example.com", "password": PASSWORD},
            )
            csrf = {"X-CSRF-Token": signed.json()["csrf_token"]}
            ids: collections.deque[tuple[int, str]] = collections.deque()
            try:
                while time.monotonic() < stop_at - 1:
                    created = (
                        await session.post("/v1/api-keys", json={"name": "churn"}, headers=csrf)
                    ).json()
                    ids.append((created["id"], created["key"]))
                    active.append(created["key"])
                    if len(ids) > 3:
                        key_id, key = ids.popleft()
                        active.remove(key)
                        revoking.add(key)
                        revoke = await session.delete(f"/v1/api-keys/{key_id}", headers=csrf)
                        assert revoke.status_code == 200
                        revoked_at[key] = time.monotonic()
                        for port in ports:
                            if port in killed:
                                continue
                            check = await client.get(
                                f"http://127.0.0.1:{port}/v1/auth/key",
                                headers={"Authorization": f"Bearer {key}"},
                            )
                            if check.status_code != 401 or check.json()["code"] != "key_revoked":
                                stats.violations.append(
                                    f"revoked key got {check.status_code} on port {port}"
                                )
                    await asyncio.sleep(0.5)
            finally:
                await session.aclose()

        async def killer() -> None:
            await asyncio.sleep(args.duration / 2)
            port = ports[-1]
            killed.add(port)
            servers[port].send_signal(signal.SIGKILL)
            servers[port].wait()
            print(f"killed the server on port {port} with SIGKILL", file=sys.stderr)
            await asyncio.sleep(2)
            servers[port] = start_server(database_url, port)
            await wait_ready(port)
            killed.discard(port)
            print(f"restarted the server on port {port}", file=sys.stderr)

        tasks = [worker(n) for n in range(args.connections)] + [churn()]
        if args.kill_one:
            tasks.append(killer())
        await asyncio.gather(*tasks)
    return stats


def report(args, stats: Stats, stored: int, per_key: int) -> int:  # type: ignore[no-untyped-def]
    total = sum(stats.statuses.values())
    admitted = total - stats.statuses[401] - stats.statuses[429] - stats.statuses[503]
    latencies = sorted(stats.latencies)
    p50 = statistics.median(latencies) * 1000 if latencies else 0
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else 0
    print(
        f"connections {args.connections}, {args.processes} processes, {args.duration:.0f} s"
        f"{', one killed with SIGKILL and restarted' if args.kill_one else ''}"
    )
    print(f"requests {total} ({total / args.duration:.0f}/s), p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(
        f"statuses {dict(sorted(stats.statuses.items()))}, "
        f"transport errors {stats.transport_errors}"
        f" (in flight on the killed process: {stats.in_doubt})"
    )
    print(f"stored usage {stored} (per-key sum {per_key}), admitted responses received {admitted}")
    failures = []
    if stats.unexpected:
        failures.append(f"{len(stats.unexpected)} unexpected responses, e.g. {stats.unexpected[0]}")
    if stats.violations:
        failures.append(
            f"{len(stats.violations)} revocation violations, e.g. {stats.violations[0]}"
        )
    if stored != per_key:
        failures.append("workspace and per-key counts differ")
    if not admitted <= stored <= admitted + stats.in_doubt:
        failures.append("stored usage does not match the admitted responses")
    if stats.transport_errors > stats.in_doubt:
        failures.append(
            f"{stats.transport_errors - stats.in_doubt} transport errors outside the kill"
        )
    for failure in failures:
        print(f"FAIL: {failure}")
    print("OK" if not failures else "FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
