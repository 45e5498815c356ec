"""Benchmark: the API's routes against unauthenticated ``GET /healthz``, and a Python peer.

For each backend, key-table size and project-table size asked for, on loopback only and
stopping by itself:

1. creates a fresh database (a SQLite file in a temporary directory, or a new PostgreSQL
   database that is dropped at the end) and migrates it with ``craftdesk db upgrade``;
2. creates a workspace (``craftdesk workspace create``, quota 1,000,000,000) and seeds it:
   ``--bench-projects`` projects, 20 tasks in the first, 10 members, and ``--bench-keys`` keys
   of its own for each key route (issued by ``craftdesk.keys.service.issue_key``), so that each
   route's stored count is checked on its own; then filler keys and filler projects (real rows
   spread over 1,000 other workspaces) until the tables hold ``--keys`` keys and ``--projects``
   projects;
3. starts one uvicorn process (no access log, log level warning), signs in to the dashboard
   (``POST /v1/sessions``) for ``GET /v1/api-keys``, and, for the ``peer-*`` routes, the Python
   peer (``bench/peer/``: Django + Django REST framework + djangorestframework-api-key under
   gunicorn, one process, 8 threads, ``gthread``) on the same database, reading the same rows;
4. checks each route once (its status, and that both servers' ``GET /v1/projects`` return the
   same page), warms each up, then runs ``--rounds`` rounds: in each, every route runs with wrk
   right after a ``/healthz`` run of its own, ``--connections`` connections each;
5. stops the servers cleanly (SIGTERM) and checks that every admitted request was counted:
   each route's keys' period and daily counts cover every response wrk saw for it, the
   workspace's usage equals its keys' counts, and the tasks created are those wrk saw created.

Prints one row per route: requests/s (all rounds' requests over all rounds' time), p50 and p99
over all the rounds' responses (wrk's latency histograms merged; each round's own p99 is in
its stderr line and in ``--json``), the ratio of its requests/s to /healthz's (the median of
the rounds' ratios, each round against the /healthz run just before it, with their range: many
short rounds, so that a drift in the machine's speed hits both alike), the server's CPU time
per request (all its processes and threads, from /proc) and its resident memory (VmRSS of the
serving process, sampled every 0.1 s: the highest while the route ran, and after its last
round). The peer's routes are paired with CraftDesk's /healthz run just before them, like
CraftDesk's own; ``× peer`` is CraftDesk's GET /v1/projects over the peer's, round by round.
Per-round lines go to stderr. ``--profile DIR`` also samples the server with py-spy.
"""

import argparse
import asyncio
import datetime as dt
import hmac
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WRK_SCRIPT = ROOT / "bench" / "wrk.lua"
PEER = ROOT / "bench" / "peer"
PEPPER = "bench-pepper-0123456789abcdefghijklmnopqrstuvwxyz"
# --key-controls: what the bench's keys carry then (a limit no run reaches: 10^6 per hour).
KEY_CONTROLS = {"allowed_ips": ["127.0.0.0/8", "10.0.0.0/8"], "rate_limit": (1_000_000, 3600)}
EMAIL = "bench@example.com"
PASSWORD = "bench password, not a secret"
QUOTA = 1_000_000_000
FILLER_WORKSPACES = 1_000
TASKS = 20  # in the project that GET …/tasks reads and PATCH updates
MEMBERS = 10  # in the bench workspace, its owner included
DESCRIPTION = "A project of the benchmark: a description of a realistic length, about a line."


@dataclass(frozen=True)
class Route:
    name: str  # as --routes names it
    method: str
    path: str  # as the table shows it
    peer: bool = False  # served by the Python peer
    keyed: bool = True  # sends an API key: CraftDesk meters it
    status: int = 200

    @property
    def label(self) -> str:
        return ("peer " if self.peer else "") + f"{self.method} {self.path}"


ROUTES = {
    route.name: route
    for route in (
        Route("healthz", "GET", "/healthz", keyed=False),
        Route("auth/key", "GET", "/v1/auth/key"),
        Route("projects", "GET", "/v1/projects"),
        Route("tasks", "GET", "/v1/projects/{id}/tasks"),
        Route("task-create", "POST", "/v1/projects/{id}/tasks", status=201),
        Route("task-update", "PATCH", "/v1/projects/{id}/tasks/{task_id}"),
        Route("members", "GET", "/v1/members"),
        Route("api-keys", "GET", "/v1/api-keys", keyed=False),  # a dashboard session's
        Route("peer-healthz", "GET", "/healthz", peer=True, keyed=False),
        Route("peer-projects", "GET", "/v1/projects", peer=True),
    )
}
CREATE_BODIES = ('{"title": "Benchmark task", "status": "todo"}', '{"title": "Another task"}')
UPDATE_BODIES = (
    '{"status": "doing"}',
    '{"status": "done"}',
    '{"title": "Renamed by the benchmark", "status": "todo"}',
)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- databases ----------------------------------------------------------------------------


def _pg_dsn(url: str, database: str | None = None) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    return dsn if database is None else dsn.rsplit("/", 1)[0] + f"/{database}"


async def _pg_admin(admin_url: str, sql: str) -> Any:
    """``sql``'s first value on the database of ``admin_url`` (None if it returns no row)."""
    import asyncpg

    connection = await asyncpg.connect(_pg_dsn(admin_url), timeout=5)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


def autovacuum_stand_in(backend: str, url: str) -> Callable[[], None]:
    """What stands in for PostgreSQL's autovacuum before each round, where the server runs
    without it (a test server may: autovacuum = off): ANALYZE, as autovacuum would once the
    writes changed a tenth of a table. Without it the statistics of the seed stay however
    the writes grow the tables, as no live database's do (they hid that the tasks list's
    plan depended on them: ``craftdesk.projects.queries.list_tasks``)."""
    if backend != "postgresql" or asyncio.run(_pg_admin(url, "SHOW autovacuum")) == "on":
        return lambda: None
    log("PostgreSQL runs without autovacuum here: ANALYZE before each round instead")
    return lambda: asyncio.run(_pg_admin(url, "ANALYZE"))


@contextmanager
def fresh_database(backend: str, args: argparse.Namespace) -> Iterator[str]:
    """A new, empty database's SQLAlchemy URL; removed afterwards."""
    if backend == "sqlite":
        directory = Path(tempfile.mkdtemp(prefix="craftdesk-bench-"))
        try:
            yield f"sqlite+aiosqlite:///{directory / 'bench.db'}"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    name = f"craftdesk_bench_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_pg_admin(args.postgres_url, f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # asyncpg's errors, OSError
        raise SystemExit(
            f"bench: cannot create a database on {args.postgres_url} ({exc}); "
            "pass --postgres-url, or --db sqlite"
        ) from None
    try:
        yield _pg_dsn(args.postgres_url, name).replace("postgresql://", "postgresql+asyncpg://")
    finally:
        asyncio.run(_pg_admin(args.postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def craftdesk(env: dict[str, str], *argv: str) -> str:
    """Run the ``craftdesk`` command line; its stdout, stripped."""
    done = subprocess.run(
        [sys.executable, "-m", "craftdesk.cli", *argv],
        env=env, cwd=ROOT, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench: craftdesk {argv[0]} {argv[1]} failed: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass
class Setup:
    slug: str
    workspace_id: int
    keys: dict[str, list[str]]  # each key route's own keys (the peer's for peer-projects)
    key_ids: dict[str, list[int]]
    read_project: int  # GET …/tasks lists its tasks, PATCH updates them
    write_project: int  # POST …/tasks adds to it
    task_ids: list[int]
    total_keys: int
    total_projects: int
    cookie: str = ""  # the dashboard session's, for GET /v1/api-keys


def set_up(
    env: dict[str, str], args: argparse.Namespace, routes: list[Route], total_keys: int,
    total_projects: int,
) -> Setup:
    craftdesk(env, "db", "upgrade")
    slug = craftdesk(
        env, "workspace", "create", "--name", "Bench", "--owner-email", EMAIL,
        "--owner-password", PASSWORD, "--plan", "business",
    )
    craftdesk(env, "workspace", "set-plan", slug, "business", "--quota", str(QUOTA))
    started = time.monotonic()
    setup = asyncio.run(seed(env["CRAFTDESK_DATABASE_URL"], slug, args, routes, total_keys,
                             total_projects))
    log(f"seeded {setup.total_keys:,} keys and {setup.total_projects:,} projects in "
        f"{time.monotonic() - started:.1f} s")
    return setup


async def seed(
    url: str, slug: str, args: argparse.Namespace, routes: list[Route], total_keys: int,
    total_projects: int,
) -> Setup:
    """The bench workspace's rows, then filler rows in other workspaces up to the sizes asked.

    Filler projects are inserted between the bench workspace's, so that its rows lie spread
    over the table as they would in a shared one. Then, on PostgreSQL, ANALYZE, as its
    autovacuum does on a live database. Not on SQLite, where nothing runs ANALYZE on a live
    CraftDesk database: statistics taken of the seed (20 tasks, all in one project) would
    stay as the tasks table grows, and made SQLite list a project's tasks by walking the
    whole table in id order (606 µs a page with 14,000 tasks) rather than by its index.
    """
    from sqlalchemy import insert, select, text
    from sqlalchemy.ext.asyncio import create_async_engine

    from craftdesk.config import Settings
    from craftdesk.db import Database, utcnow
    from craftdesk.keys.service import issue_key
    from craftdesk.projects.models import Project, Task
    from craftdesk.workspaces.models import Membership, User, Workspace

    # The filler rows go in bulk through SQLAlchemy Core; the keys through the service.
    engine = create_async_engine(url)
    now = utcnow()
    try:
        async with engine.begin() as conn:
            workspace_id, owner_id, membership_id = (await conn.execute(
                select(Workspace.id, Membership.user_id, Membership.id)
                .join(Membership, Membership.workspace_id == Workspace.id)
                .where(Workspace.slug == slug)
            )).one()
            user_ids = list((await conn.execute(
                insert(User).returning(User.id, sort_by_parameter_order=True),
                [{"email": f"member-{n}@bench.example.com", "password_hash": "!",
                  "created_at": now} for n in range(1, MEMBERS)],
            )).scalars())
            await conn.execute(insert(Membership), [
                {"workspace_id": workspace_id, "user_id": user_id,
                 "role": "admin" if n % 3 == 0 else "member", "created_at": now}
                for n, user_id in enumerate(user_ids)
            ])

        keys: dict[str, list[str]] = {}
        key_ids: dict[str, list[int]] = {}
        db = await Database.open(url, Settings(database_url=url, db_timeout_seconds=60))
        async with db.transaction() as tx:
            for route in routes:
                if route.keyed and not route.peer:
                    keys[route.name], key_ids[route.name] = [], []
                    for n in range(args.bench_keys):
                        api_key, issued = await issue_key(
                            tx, pepper=PEPPER.encode(), workspace_id=workspace_id,
                            created_by_id=owner_id, membership_id=membership_id,
                            name=f"bench {route.name} {n}", scope="full",
                            **(KEY_CONTROLS if args.key_controls else {}),
                        )
                        keys[route.name].append(issued.key)
                        key_ids[route.name].append(api_key.id)
        await db.close()
        bench_keys = sum(len(ids) for ids in key_ids.values())

        filler_keys = max(0, total_keys - bench_keys)
        filler_projects = total_projects - args.bench_projects
        async with engine.begin() as conn:
            owners = await _filler_owners(conn, now, FILLER_WORKSPACES
                                          if filler_keys or filler_projects else 0)
            project_ids = []
            for n in range(args.bench_projects):
                await _filler_projects(conn, owners, now, n * filler_projects
                                       // args.bench_projects,
                                       (n + 1) * filler_projects // args.bench_projects)
                project_ids.append((await conn.execute(insert(Project).returning(Project.id), {
                    "workspace_id": workspace_id, "name": f"Project {n + 1}",
                    "description": DESCRIPTION, "created_at": now, "updated_at": now,
                })).scalar_one())
            task_ids = list((await conn.execute(
                insert(Task).returning(Task.id, sort_by_parameter_order=True),
                [{"workspace_id": workspace_id, "project_id": project_ids[0],
                  "title": f"Task {n + 1}", "status": ("todo", "doing", "done")[n % 3],
                  "created_at": now, "updated_at": now} for n in range(TASKS)],
            )).scalars())
            if filler_keys:
                await _filler_keys(conn, owners, now, filler_keys)
        if engine.dialect.name == "postgresql":
            async with engine.begin() as conn:
                await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return Setup(
        slug=slug, workspace_id=workspace_id, keys=keys, key_ids=key_ids,
        read_project=project_ids[0], write_project=project_ids[-1], task_ids=task_ids,
        total_keys=bench_keys + filler_keys, total_projects=total_projects,
    )


async def _filler_owners(conn: Any, now: dt.datetime, count: int) -> list[tuple[int, int, int]]:
    """``count`` filler workspaces, each with its owner: (workspace, user, membership) ids."""
    from sqlalchemy import insert

    from craftdesk.workspaces.models import Membership, User, Workspace

    if not count:
        return []
    tag = uuid.uuid4().hex[:8]
    workspace_ids = list((await conn.execute(
        insert(Workspace).returning(Workspace.id, sort_by_parameter_order=True),
        [{"name": f"Filler {n}", "slug": f"filler-{tag}-{n}", "plan": "pro",
          "billing_anchor": now, "created_at": now} for n in range(count)],
    )).scalars())
    user_ids = list((await conn.execute(
        insert(User).returning(User.id, sort_by_parameter_order=True),
        [{"email": f"filler-{tag}-{n}@example.com", "password_hash": "!", "created_at": now}
         for n in range(count)],
    )).scalars())
    # A key works only while its membership exists: each filler key names its owner's.
    membership_ids = list((await conn.execute(
        insert(Membership).returning(Membership.id, sort_by_parameter_order=True),
        [{"workspace_id": w, "user_id": u, "role": "owner", "created_at": now}
         for w, u in zip(workspace_ids, user_ids, strict=True)],
    )).scalars())
    return list(zip(workspace_ids, user_ids, membership_ids, strict=True))


async def _filler_projects(
    conn: Any, owners: list[tuple[int, int, int]], now: dt.datetime, start: int, stop: int
) -> None:
    """Filler projects number ``start`` to ``stop`` (excluded), spread over the owners."""
    from sqlalchemy import insert

    from craftdesk.projects.models import Project

    for chunk in range(start, stop, 10_000):
        await conn.execute(insert(Project), [
            {"workspace_id": owners[n % len(owners)][0], "name": f"Filler project {n}",
             "description": DESCRIPTION, "created_at": now, "updated_at": now}
            for n in range(chunk, min(stop, chunk + 10_000))
        ])


def _filler_key_material(count: int, taken: set[str]) -> Iterator[tuple[str, bytes, str]]:
    """(public id, HMAC of the whole key, last four) of ``count`` new well-formed keys."""
    from craftdesk.auth.tokens import ALPHABET, KEY_ID_LENGTH, PREFIX, SECRET_LENGTH, checksum

    table = bytes(ord(ALPHABET[i % len(ALPHABET)]) for i in range(256))
    pepper = PEPPER.encode()
    made = 0
    while made < count:
        public_id = os.urandom(KEY_ID_LENGTH).translate(table).decode()
        if public_id in taken:
            continue
        taken.add(public_id)
        body = f"{PREFIX}{public_id}_{os.urandom(SECRET_LENGTH).translate(table).decode()}"
        key = body + checksum(body)
        yield public_id, hmac.new(pepper, key.encode(), "sha256").digest(), key[-4:]
        made += 1


async def _filler_keys(
    conn: Any, owners: list[tuple[int, int, int]], now: dt.datetime, count: int
) -> None:
    """``count`` keys spread over the filler workspaces, each created by its owner.

    SQLite: SQLAlchemy Core executemany; PostgreSQL: COPY.
    """
    from sqlalchemy import insert, select

    from craftdesk.keys.models import ApiKey

    taken = set((await conn.execute(select(ApiKey.public_id))).scalars())
    rows = (
        {"public_id": public_id, "workspace_id": owners[n % len(owners)][0],
         "created_by_id": owners[n % len(owners)][1],
         "membership_id": owners[n % len(owners)][2], "name": f"filler {n}",
         "key_hash": key_hash, "last_four": last_four, "scope": "full", "created_at": now}
        for n, (public_id, key_hash, last_four) in enumerate(_filler_key_material(count, taken))
    )
    if conn.dialect.name == "postgresql":
        columns = ["public_id", "workspace_id", "created_by_id", "membership_id", "name",
                   "key_hash", "last_four", "scope", "created_at"]
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        await raw.copy_records_to_table(
            "api_keys", columns=columns, records=([row[c] for c in columns] for row in rows),
        )
        return
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == 50_000:
            await conn.execute(insert(ApiKey), chunk)
            chunk = []
    if chunk:
        await conn.execute(insert(ApiKey), chunk)


@dataclass
class Stored:
    """What the database holds after the run."""

    workspace: int  # the bench workspace's usage this period
    per_key: int  # its keys' period counts, added up
    daily: int  # its keys' daily counts, added up
    routes: dict[str, tuple[int, int]]  # each route's keys: (period, daily)
    tasks_created: int  # tasks in the project POST …/tasks adds to


async def stored(url: str, setup: Setup) -> Stored:
    from sqlalchemy import func, select
    from sqlalchemy.ext.asyncio import create_async_engine

    from craftdesk.keys.models import ApiKey
    from craftdesk.metering.models import KeyDailyUsage, KeyUsage, WorkspaceUsage
    from craftdesk.projects.models import Task

    engine = create_async_engine(url)

    async def total(conn: Any, query: Any) -> int:
        return int((await conn.execute(query)).scalar() or 0)

    try:
        async with engine.connect() as conn:
            keys = select(ApiKey.id).where(ApiKey.workspace_id == setup.workspace_id)
            routes = {
                name: (
                    await total(conn, select(func.sum(KeyUsage.requests))
                                .where(KeyUsage.api_key_id.in_(ids))),
                    await total(conn, select(func.sum(KeyDailyUsage.requests))
                                .where(KeyDailyUsage.api_key_id.in_(ids))),
                )
                for name, ids in setup.key_ids.items()
            }
            return Stored(
                workspace=await total(conn, select(func.sum(WorkspaceUsage.requests))
                                      .where(WorkspaceUsage.workspace_id == setup.workspace_id)),
                per_key=await total(conn, select(func.sum(KeyUsage.requests))
                                    .where(KeyUsage.api_key_id.in_(keys))),
                daily=await total(conn, select(func.sum(KeyDailyUsage.requests))
                                  .where(KeyDailyUsage.api_key_id.in_(keys))),
                routes=routes,
                tasks_created=await total(conn, select(func.count())
                                          .where(Task.project_id == setup.write_project)),
            )
    finally:
        await engine.dispose()


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """A server under test: its port, the processes whose CPU time counts, and the one that
    serves (whose memory is reported)."""

    port: int
    pids: list[int]
    serving_pid: int


@contextmanager
def _running(argv: list[str], env: dict[str, str], cwd: Path, ready_url: str,
             what: str) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, once ``ready_url`` answers 200; stopped with SIGTERM (a clean
    shutdown) at the end."""
    process = subprocess.Popen(argv, env=env, cwd=cwd)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise SystemExit(f"bench: {what} exited with status {process.returncode}")
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: {what} did not become ready within 30 s")
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log(f"{what} did not stop within 30 s; killing it")
                process.kill()
                process.wait()


@contextmanager
def craftdesk_server(env: dict[str, str], port: int) -> Iterator[Served]:
    """One uvicorn process on 127.0.0.1 (no access log, log level warning)."""
    argv = [
        sys.executable, "-m", "uvicorn", "craftdesk.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--no-access-log", "--log-level", "warning", "--no-proxy-headers",
    ]
    with _running(argv, env, ROOT, f"http://127.0.0.1:{port}/readyz", "the server") as process:
        yield Served(port, [process.pid], process.pid)


def _peer_env(url: str) -> dict[str, str]:
    peer_url = url.replace("sqlite+aiosqlite://", "sqlite://").replace(
        "postgresql+asyncpg://", "postgresql://"
    )
    return {**os.environ, "CRAFTDESK_PEER_DATABASE_URL": peer_url,
            "DJANGO_SETTINGS_MODULE": "peer.settings", "PYTHONPATH": str(PEER)}


def peer_set_up(url: str, workspace_id: int, count: int) -> list[str]:
    """The peer's tables in the bench database (its migrations), and ``count`` keys of its own
    for the bench workspace."""
    try:
        import django  # noqa: F401
    except ImportError:
        raise SystemExit(
            "bench: the peer routes need the bench extra: pip install -e '.[bench]'"
        ) from None

    def manage(*argv: str) -> str:
        done = subprocess.run(
            [sys.executable, str(PEER / "manage.py"), *argv], env=_peer_env(url), cwd=PEER,
            capture_output=True, text=True, check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"bench: the peer's manage.py {argv[0]} failed: {done.stderr}")
        return done.stdout

    manage("migrate", "--noinput", "--verbosity", "0")
    return manage("peer_keys", "--workspace-id", str(workspace_id), "--count", str(count)).split()


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(stat.parent.name))
    return children


@contextmanager
def peer_server(url: str, port: int) -> Iterator[Served]:
    """The Python peer: gunicorn, one worker process with 8 threads (``gthread``)."""
    argv = [
        sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "8",
        "--worker-class", "gthread", "--bind", f"127.0.0.1:{port}", "--chdir", str(PEER),
        "--no-control-socket", "--log-level", "warning", "peer.wsgi:application",
    ]
    with _running(argv, _peer_env(url), PEER, f"http://127.0.0.1:{port}/healthz",
                  "the peer") as process:
        workers = _children(process.pid)
        if len(workers) != 1:
            raise SystemExit(f"bench: the peer has {len(workers)} worker processes, not 1")
        yield Served(port, [process.pid, *workers], workers[0])


def http(
    port: int, method: str, path: str, headers: dict[str, str] | None = None,
    body: str | None = None,
) -> tuple[int, Any, Any]:
    """One request: its status, headers and JSON body."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method, headers=headers or {},
        data=body.encode() if body is not None else None,
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode(errors="replace")


def sign_in(port: int, slug: str) -> str:
    """A dashboard session's Cookie header (``POST /v1/sessions``)."""
    status, headers, body = http(
        port, "POST", "/v1/sessions", {"Content-Type": "application/json"},
        json.dumps({"workspace": slug, "email": EMAIL, "password": PASSWORD}),
    )
    cookies = [c.split(";", 1)[0] for c in headers.get_all("Set-Cookie") or []]
    cookie = next((c for c in cookies if c.startswith("craftdesk_session=")), None)
    if status != 201 or cookie is None:
        raise SystemExit(f"bench: signing in failed: {status} {body}")
    return cookie


def load(route: Route, setup: Setup) -> dict[str, str]:
    """The route's requests, as wrk.lua's BENCH_* variables."""
    paths, bodies = [route.path], []
    if route.name == "tasks":
        paths = [f"/v1/projects/{setup.read_project}/tasks"]
    elif route.name == "task-create":
        paths, bodies = [f"/v1/projects/{setup.write_project}/tasks"], list(CREATE_BODIES)
    elif route.name == "task-update":
        paths = [f"/v1/projects/{setup.read_project}/tasks/{t}" for t in setup.task_ids]
        bodies = list(UPDATE_BODIES)
    variables = {"BENCH_METHOD": route.method, "BENCH_PATHS": ",".join(paths),
                 "BENCH_BODIES": "\n".join(bodies)}
    if route.keyed:
        variables["BENCH_KEYS"] = ",".join(setup.keys[route.name])
        variables["BENCH_SCHEME"] = "Api-Key" if route.peer else "Bearer"
    if route.name == "api-keys":
        variables["BENCH_COOKIE"] = setup.cookie
    return variables


def check_routes(
    routes: list[Route], setup: Setup, servers: dict[str, Served]
) -> dict[str, int]:
    """One request per route before the load: each must answer its status, and both servers'
    GET /v1/projects the same page. Returns how many requests each route got (CraftDesk
    counts those too)."""
    made: Counter[str] = Counter()
    pages = {}
    for route in routes:
        variables = load(route, setup)
        headers = {}
        if route.keyed:
            scheme = variables["BENCH_SCHEME"]
            headers["Authorization"] = f"{scheme} {variables['BENCH_KEYS'].split(',')[0]}"
        if "BENCH_COOKIE" in variables:
            headers["Cookie"] = variables["BENCH_COOKIE"]
        body = variables["BENCH_BODIES"].split("\n")[0] or None
        if body is not None:
            headers["Content-Type"] = "application/json"
        server = servers["peer" if route.peer else "ours"]
        path = variables["BENCH_PATHS"].split(",")[0]
        status, _, answer = http(server.port, route.method, path, headers, body)
        made[route.name] += 1
        if status != route.status:
            raise SystemExit(f"bench: {route.label} ({path}) answered {status}, not "
                             f"{route.status}: {answer}")
        if route.name in ("projects", "peer-projects"):
            pages[route.name] = answer
    if len(pages) == 2:
        if pages["projects"] != pages["peer-projects"]:
            raise SystemExit(f"bench: the peer's page differs from CraftDesk's: "
                             f"{pages['peer-projects']} != {pages['projects']}")
        log(f"both servers' GET /v1/projects return the same {len(pages['projects']['data'])} "
            "projects")
    return dict(made)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes used so far, all threads (Linux /proc)."""
    total = 0
    for pid in pids:
        with suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def memory_kb(pid: int, field_name: str = "VmRSS") -> int:
    """A line of /proc/PID/status, in kB: VmRSS (resident now) or VmHWM (its peak so far)."""
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


@contextmanager
def profiled(served: Served, args: argparse.Namespace, name: str) -> Iterator[None]:
    """With ``--profile DIR``, py-spy samples the serving process meanwhile (collapsed
    stacks)."""
    if args.profile is None:
        yield
        return
    args.profile.mkdir(parents=True, exist_ok=True)
    output = args.profile / f"{name.replace('/', '_')}.txt"
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    spy = subprocess.Popen(
        [py_spy, "record", "--pid", str(served.serving_pid), "--format", "raw", "--rate", "1000",
         "--nonblocking", "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


# --- load ---------------------------------------------------------------------------------


@dataclass
class Run:
    requests: int
    seconds: float
    non_2xx: int  # wrk's count of statuses ≥ 400
    errors: int
    latency_us: Counter[int]  # how many responses took each latency, in µs
    cpu_us: float = 0.0  # the server's CPU time (all its processes and threads) per request
    rss_peak_kb: int = 0  # the serving process's VmRSS: the highest sampled during the run
    rss_end_kb: int = 0  # and right after it

    @property
    def p50_ms(self) -> float:
        return percentile_ms(self.latency_us, 50)

    @property
    def p99_ms(self) -> float:
        return percentile_ms(self.latency_us, 99)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def wrk(port: int, variables: dict[str, str], args: argparse.Namespace, seconds: int) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")} | variables
    done = subprocess.run(
        [
            "wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{seconds}s",
            "--timeout", "10s", "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{port}",
        ],
        env=env, capture_output=True, text=True, check=False, timeout=seconds + 60,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"bench: wrk failed: {done.stderr.strip() or done.stdout.strip()}")
    data = json.loads(line.removeprefix("BENCH "))
    return Run(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        non_2xx=data["non_2xx"],
        errors=data["connect_errors"] + data["read_errors"] + data["write_errors"]
        + data["timeouts"],
        latency_us=Counter(dict(data["latency_us"])),
    )


def measure(
    served: Served, route: Route, setup: Setup, args: argparse.Namespace, name: str
) -> Run:
    """One wrk run of the route, with the server's CPU time and memory meanwhile."""
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while True:
            samples.append(memory_kb(served.serving_pid))
            if stop.wait(0.1):
                return

    cpu_before = cpu_seconds(served.pids)
    sampler = threading.Thread(target=sample, daemon=True)
    with profiled(served, args, name):
        sampler.start()
        try:
            run = wrk(served.port, load(route, setup), args, args.duration)
        finally:
            stop.set()
            sampler.join()
    run.cpu_us = (cpu_seconds(served.pids) - cpu_before) * 1e6 / max(1, run.requests)
    run.rss_end_kb = memory_kb(served.serving_pid)
    run.rss_peak_kb = max([*samples, run.rss_end_kb])
    settle(served)
    return run


def settle(served: Served, timeout: float = 5.0) -> None:
    """Wait until the server is idle: when wrk stops, up to one request per connection is
    still being served, and the next run (another route's) should neither wait for them nor
    be charged their CPU time. Idle: under 10 % of a core over 50 ms."""
    deadline = time.monotonic() + timeout
    before = cpu_seconds(served.pids)
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = cpu_seconds(served.pids)
        if now - before < 0.005:
            return
        before = now


def percentile_ms(histogram: Counter[int], percent: float) -> float:
    """The latency that ``percent`` % of the responses took at most (nearest rank)."""
    rank = max(1, math.ceil(sum(histogram.values()) * percent / 100))
    seen = 0
    for latency, count in sorted(histogram.items()):
        seen += count
        if seen >= rank:
            return latency / 1000
    return 0.0


@dataclass
class Result:
    backend: str
    keys: int
    projects: int
    routes: list[str]  # measured, /healthz first
    runs: dict[str, list[Run]] = field(default_factory=dict)
    ratios: dict[str, list[float]] = field(default_factory=dict)  # to the /healthz run before
    warmups: dict[str, Run] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)
    peak_kb: dict[str, int] = field(default_factory=dict)  # each server's VmHWM at the end
    stored: Stored | None = None

    def rps(self, name: str) -> float:
        runs = self.runs[name]
        return sum(r.requests for r in runs) / sum(r.seconds for r in runs)

    def latency(self, name: str, percent: float) -> float:
        return percentile_ms(sum((r.latency_us for r in self.runs[name]), Counter()), percent)

    def cpu_us(self, name: str) -> float:
        runs = self.runs[name]
        return sum(r.cpu_us * r.requests for r in runs) / sum(r.requests for r in runs)

    def rss_mb(self, name: str) -> tuple[float, float]:
        """The serving process's VmRSS: the highest while the route ran, and after its last
        round."""
        runs = self.runs[name]
        return max(r.rss_peak_kb for r in runs) / 1024, runs[-1].rss_end_kb / 1024

    def ratio(self, name: str) -> float:
        """The median of the rounds' ratios: the machine's speed may drift between rounds
        (other virtual machines on the host), and each round's pair sees the same speed."""
        return statistics.median(self.ratios[name])

    @property
    def peer_ratios(self) -> list[float]:
        """Each round's CraftDesk GET /v1/projects over the peer's (empty without both)."""
        if "projects" not in self.runs or "peer-projects" not in self.runs:
            return []
        return [
            ours.rps / peer.rps
            for ours, peer in zip(self.runs["projects"], self.runs["peer-projects"], strict=True)
        ]


def bench(
    backend: str, total_keys: int, total_projects: int, routes: list[Route],
    args: argparse.Namespace,
) -> Result:
    what = f"{backend}, {total_keys:,} keys, {total_projects:,} projects"
    log(f"{what}: setting up")
    with fresh_database(backend, args) as url:
        env = {
            **os.environ,
            "CRAFTDESK_DATABASE_URL": url,
            "CRAFTDESK_KEY_PEPPER": PEPPER,
            "CRAFTDESK_ENV": "development",
            "CRAFTDESK_LOG_LEVEL": "WARNING",
            "CRAFTDESK_CORS_ORIGINS": "",
        }
        setup = set_up(env, args, routes, total_keys, total_projects)
        if any(route.peer for route in routes):
            setup.keys["peer-projects"] = peer_set_up(url, setup.workspace_id, args.bench_keys)
        result = Result(backend, setup.total_keys, setup.total_projects,
                        [route.name for route in routes])
        result.runs = {route.name: [] for route in routes}
        result.ratios = {route.name: [] for route in routes[1:]}
        with ExitStack() as stack:
            servers = {"ours": stack.enter_context(craftdesk_server(env, free_port()))}
            if any(route.peer for route in routes):
                servers["peer"] = stack.enter_context(peer_server(url, free_port()))
            if "api-keys" in result.routes:
                setup.cookie = sign_in(servers["ours"].port, setup.slug)
            result.checks = check_routes(routes, setup, servers)
            for route in routes:  # warm-up, not reported
                server = servers["peer" if route.peer else "ours"]
                result.warmups[route.name] = wrk(server.port, load(route, setup), args,
                                                 args.warmup)
            healthz = routes[0]
            autovacuum = autovacuum_stand_in(backend, url)
            for round_ in range(1, args.rounds + 1):
                autovacuum()
                for route in routes[1:]:
                    tag = f"{backend}-{total_keys}-{total_projects}-{round_}"
                    health = measure(servers["ours"], healthz, setup, args,
                                     f"{tag}-{route.name}-healthz")
                    run = measure(servers["peer" if route.peer else "ours"], route, setup, args,
                                  f"{tag}-{route.name}")
                    result.runs["healthz"].append(health)
                    result.runs[route.name].append(run)
                    result.ratios[route.name].append(run.rps / health.rps)
                    log(
                        f"{what}, round {round_}, {route.name}: {run.rps:,.0f} req/s "
                        f"({run.rps / health.rps:.2f} of /healthz's {health.rps:,.0f}), "
                        f"p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms, "
                        f"server CPU {run.cpu_us:.0f} µs/request, RSS "
                        f"{run.rss_end_kb / 1024:.0f} MB"
                        + (f", {run.non_2xx} non-2xx" if run.non_2xx else "")
                        + (f", {run.errors} socket errors" if run.errors else "")
                    )
            result.peak_kb = {
                name: memory_kb(served.serving_pid, "VmHWM") for name, served in servers.items()
            }
        result.stored = asyncio.run(stored(url, setup))
        check_metering(result, setup, args)
    return result


def check_metering(result: Result, setup: Setup, args: argparse.Namespace) -> None:
    """After a clean shutdown every admitted request is counted, in all three counters, and
    each key route's own keys count exactly the requests that route was sent.

    wrk stops each run with up to one request per connection in flight: the server counts
    and answers those, but wrk no longer records them. wrk counts statuses of 400 and more
    together: those would be counted unless they were 429s, so they widen the range (no
    route is expected to answer any).
    """
    stored = result.stored
    assert stored is not None
    problems = []
    bad = [run for runs in result.runs.values() for run in runs if run.non_2xx or run.errors]
    if bad:
        log(f"WARNING: {len(bad)} runs had statuses ≥ 400 or socket errors")
    for name, (period, daily) in stored.routes.items():
        runs = [result.warmups[name], *result.runs[name]]
        answered = sum(r.requests - r.non_2xx for r in runs) + result.checks.get(name, 0)
        refused = sum(r.non_2xx for r in runs)
        in_flight = args.connections * len(runs)
        if period == daily and answered <= period <= answered + refused + in_flight:
            log(f"metering checked, {name}: {period:,} requests counted, wrk saw "
                f"{answered:,} answered (+{period - answered} in flight when wrk stopped)")
        else:
            problems.append(f"{name}: its keys counted {period:,} (daily {daily:,}); wrk saw "
                            f"{answered:,} answered 2xx and {refused:,} ≥ 400")
        if name == "task-create":
            if answered <= stored.tasks_created <= answered + in_flight:
                log(f"tasks checked: {stored.tasks_created:,} created, wrk saw {answered:,}")
            else:
                problems.append(f"task-create: {stored.tasks_created:,} tasks stored; wrk saw "
                                f"{answered:,} created")
    if not stored.workspace == stored.per_key == stored.daily:
        problems.append(f"workspace usage {stored.workspace:,}, its keys' {stored.per_key:,}, "
                        f"daily {stored.daily:,}")
    if problems:
        raise SystemExit("bench: METERING MISMATCH: " + "; ".join(problems))


# --- report ---------------------------------------------------------------------------------


def _ratio_cell(ratios: list[float], times: str = "") -> str:
    """The median and the range; three decimals below 0.1, where two would say little."""
    if not ratios:
        return ""

    def shown(x: float) -> str:
        return f"{x:.2f}" if x >= 0.1 else f"{x:.3f}"

    median = statistics.median(ratios)
    return f"{shown(median)}{times} ({shown(min(ratios))}–{shown(max(ratios))})"


def table(results: list[Result]) -> str:
    header = (
        "backend", "keys", "projects", "route", "requests/s", "p50 ms", "p99 ms",
        "ratio to /healthz (rounds' range)", "× peer", "server CPU µs/req", "RSS MB peak/end",
    )
    rows = [header]
    for result in results:
        for name in result.routes:
            peak, end = result.rss_mb(name)
            rows.append((
                result.backend, f"{result.keys:,}", f"{result.projects:,}", ROUTES[name].label,
                f"{result.rps(name):,.0f}", f"{result.latency(name, 50):.1f}",
                f"{result.latency(name, 99):.1f}", _ratio_cell(result.ratios.get(name, [])),
                _ratio_cell(result.peer_ratios, "×") if name == "projects" else "",
                f"{result.cpu_us(name):.0f}", f"{peak:.0f} / {end:.0f}",
            ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"
             for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def as_json(results: list[Result]) -> list[dict[str, Any]]:
    return [
        {
            "backend": r.backend, "keys": r.keys, "projects": r.projects,
            "routes": {
                name: {
                    "label": ROUTES[name].label, "rps": round(r.rps(name), 1),
                    "p50_ms": r.latency(name, 50), "p99_ms": r.latency(name, 99),
                    "round_p99_ms": [run.p99_ms for run in r.runs[name]],
                    "ratio": round(r.ratio(name), 3) if name in r.ratios else None,
                    "round_ratios": [round(x, 3) for x in r.ratios.get(name, [])],
                    "server_cpu_us": round(r.cpu_us(name), 1),
                    "rss_mb_peak": round(r.rss_mb(name)[0], 1),
                    "rss_mb_end": round(r.rss_mb(name)[1], 1),
                }
                for name in r.routes
            },
            "projects_vs_peer": [round(x, 3) for x in r.peer_ratios],
            "vm_hwm_mb": {name: round(kb / 1024, 1) for name, kb in r.peak_kb.items()},
            "metered": r.stored.workspace if r.stored else None,
        }
        for r in results
    ]


def _counts(parser: argparse.ArgumentParser, option: str, value: str) -> list[int]:
    try:
        counts = [int(n.replace("_", "")) for n in value.split(",")]
    except ValueError:
        parser.error(f"{option} takes numbers, comma separated")
    if any(n < 1 for n in counts):
        parser.error(f"{option} must be at least 1")
    return counts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run", description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both",
                        help="the backends to measure")
    parser.add_argument("--routes", default="all",
                        help="routes to measure, comma separated, or all: "
                             + ", ".join(ROUTES) + " (/healthz always runs, before each)")
    parser.add_argument("--keys", default="10",
                        help="keys in the table, comma separated for several runs "
                             "(e.g. 10,1000000); above the routes' own keys the rest are "
                             "seeded in other workspaces (the table holds at least the "
                             "routes' own)")
    parser.add_argument("--projects", default="10",
                        help="projects in the table, comma separated for several runs "
                             "(e.g. 10,100000); above --bench-projects the rest are seeded "
                             "in other workspaces")
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=10,
                        help="rounds, each running every route after a /healthz run of its own")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per route")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--bench-keys", type=int, default=4,
                        help="keys each key route rotates over (its own, so that each route's "
                             "count is checked on its own)")
    parser.add_argument("--bench-projects", type=int, default=10,
                        help="projects of the bench workspace: GET /v1/projects's page")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "CRAFTDESK_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server's maintenance database, where the bench creates and drops "
             "its own (env CRAFTDESK_BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--key-controls", action="store_true",
                        help="give the bench's keys an IP allowlist (loopback and 10.0.0.0/8) "
                             "and a rate limit they stay under, to measure what they cost")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="sample the server with py-spy during each run (pip install "
                             "py-spy) and write collapsed stacks to DIR")
    args = parser.parse_args(argv)
    args.key_counts = _counts(parser, "--keys", args.keys)
    args.project_counts = _counts(parser, "--projects", args.projects)
    names = list(ROUTES) if args.routes == "all" else args.routes.split(",")
    unknown = [name for name in names if name not in ROUTES]
    if unknown:
        parser.error(f"unknown routes: {', '.join(unknown)} (known: {', '.join(ROUTES)})")
    args.route_list = [ROUTES["healthz"]] + [
        route for route in ROUTES.values() if route.name in names and route.name != "healthz"
    ]
    if len(args.route_list) == 1:
        parser.error("--routes names no route besides healthz")
    if args.bench_keys < 1:
        parser.error("--bench-keys must be at least 1")
    if args.bench_projects < 2:
        parser.error("--bench-projects must be at least 2 (POST …/tasks adds to the last)")
    if min(args.project_counts) < args.bench_projects:
        parser.error("--projects must be at least --bench-projects")
    if args.threads > args.connections:
        parser.error("--threads must not exceed --connections")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # SIGTERM (and SIGHUP) unwind like Ctrl-C, so the servers are stopped and the database
    # dropped.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)
    backends = ["sqlite", "postgresql"] if args.db == "both" else [
        "sqlite" if args.db == "sqlite" else "postgresql"
    ]
    results = []
    started = dt.datetime.now(dt.UTC)
    try:
        for backend in backends:
            for total_keys in args.key_counts:
                for total_projects in args.project_counts:
                    results.append(bench(backend, total_keys, total_projects, args.route_list,
                                         args))
    except KeyboardInterrupt:
        with suppress(Exception):
            if results:
                print(table(results))
        raise SystemExit("bench: interrupted") from None
    peer = any(route.peer for route in args.route_list)
    print(
        f"{args.connections} connections, {args.rounds} rounds of {args.duration:g} s per route, "
        f"each after its own /healthz run; one uvicorn process"
        + ("; the peer: gunicorn, 1 process × 8 threads (gthread)" if peer else "")
        + ("; keys with an IP allowlist and a rate limit" if args.key_controls else "")
        + f"; wrk -t{args.threads}; {started:%Y-%m-%d %H:%M} UTC"
    )
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(as_json(results), indent=2))


if __name__ == "__main__":
    main()
