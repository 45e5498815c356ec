"""Benchmark: unauthenticated ``GET /healthz`` against metered, authenticated ``GET /v1/auth/key``.

For each backend and table size asked for, on loopback only and stopping by itself:

1. creates a fresh database (a SQLite file in a temporary directory, or a new PostgreSQL
   database that is dropped at the end) and migrates it with ``craftdesk db upgrade``;
2. creates a workspace with a quota override of 1,000,000,000 requests and a few keys through
   the ``craftdesk`` command line, then seeds filler keys (real rows with distinct public ids
   and hashes, spread over 1,000 workspaces) until the table holds ``--keys`` keys;
3. starts one uvicorn process (no access log, log level warning);
4. alternates ``--rounds`` runs of wrk on each endpoint, ``--connections`` connections each;
5. stops the server cleanly (SIGTERM) and checks that every admitted request was counted:
   the workspace's usage equals its keys' period and daily counts, and covers every 2xx
   response wrk saw.

Prints one row per backend, table size and endpoint: requests/s (all rounds' requests over
all rounds' time), p50 and p99 over all the rounds' responses (wrk's latency histograms
merged; each round's own p99 is in its stderr line and in ``--json``), the ratio of
/v1/auth/key's requests/s to /healthz's (the median of the rounds' ratios, each round's
/v1/auth/key run against the /healthz run just before it, with their range: many short rounds,
so that a drift in the machine's speed hits both endpoints alike), and the server process's
CPU time per request (all its threads, from /proc).
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
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WRK_SCRIPT = ROOT / "bench" / "wrk.lua"
PEPPER = "bench-pepper-0123456789abcdefghijklmnopqrstuvwxyz"
PASSWORD = "bench password, not a secret"
QUOTA = 1_000_000_000
FILLER_WORKSPACES = 1_000
ENDPOINTS = {"healthz": "/healthz", "auth/key": "/v1/auth/key"}


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- databases ----------------------------------------------------------------------------


def _pg_dsn(url: str, database: str | None = None) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    return dsn if database is None else dsn.rsplit("/", 1)[0] + f"/{database}"


async def _pg_admin(admin_url: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_pg_dsn(admin_url), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


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
    keys: list[str]
    total_keys: int


def set_up(env: dict[str, str], args: argparse.Namespace, total_keys: int) -> Setup:
    craftdesk(env, "db", "upgrade")
    email = "bench@example.com"
    slug = craftdesk(
        env, "workspace", "create", "--name", "Bench", "--owner-email", email,
        "--owner-password", PASSWORD, "--plan", "business",
    )
    craftdesk(env, "workspace", "set-plan", slug, "business", "--quota", str(QUOTA))
    keys = [
        craftdesk(env, "key", "create", slug, "--email", email, "--name", f"bench {n}")
        for n in range(min(args.bench_keys, total_keys))
    ]
    filler = total_keys - len(keys)
    if filler > 0:
        started = time.monotonic()
        asyncio.run(seed_keys(env["CRAFTDESK_DATABASE_URL"], filler))
        log(f"seeded {filler:,} keys in {time.monotonic() - started:.1f} s")
    return Setup(slug, keys, total_keys)


def _filler_keys(count: int, taken: set[str]) -> Iterator[tuple[str, bytes, str]]:
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


async def seed_keys(url: str, count: int) -> None:
    """Insert ``count`` keys, spread over filler workspaces, each with its owner as creator.

    SQLite: SQLAlchemy Core executemany in one transaction; PostgreSQL: COPY.
    """
    from sqlalchemy import insert, select, text

    from craftdesk.db import create_engine, utcnow
    from craftdesk.keys.models import ApiKey
    from craftdesk.workspaces.models import Membership, User, Workspace

    engine = create_engine(url, timeout=60)
    now = utcnow()
    workspaces = min(FILLER_WORKSPACES, count)
    try:
        async with engine.begin() as conn:
            taken = set((await conn.execute(select(ApiKey.public_id))).scalars())
            tag = uuid.uuid4().hex[:8]
            workspace_ids = list((await conn.execute(
                insert(Workspace).returning(Workspace.id, sort_by_parameter_order=True),
                [
                    {"name": f"Filler {n}", "slug": f"filler-{tag}-{n}", "plan": "pro",
                     "billing_anchor": now, "created_at": now}
                    for n in range(workspaces)
                ],
            )).scalars())
            user_ids = list((await conn.execute(
                insert(User).returning(User.id, sort_by_parameter_order=True),
                [
                    {"email": f"filler-{tag}-{n}@example.com", "password_hash": "!",
                     "created_at": now}
                    for n in range(workspaces)
                ],
            )).scalars())
            membership_ids = list((await conn.execute(
                insert(Membership).returning(Membership.id, sort_by_parameter_order=True),
                [
                    {"workspace_id": w, "user_id": u, "role": "owner", "created_at": now}
                    for w, u in zip(workspace_ids, user_ids, strict=True)
                ],
            )).scalars())
            owners = list(zip(workspace_ids, user_ids, membership_ids, strict=True))

            rows = (
                {"public_id": public_id, "workspace_id": owners[n % workspaces][0],
                 "created_by_id": owners[n % workspaces][1],
                 "membership_id": owners[n % workspaces][2], "name": f"filler {n}",
                 "key_hash": key_hash, "last_four": last_four, "scope": "full",
                 "created_at": now}
                for n, (public_id, key_hash, last_four) in enumerate(_filler_keys(count, taken))
            )
            if conn.dialect.name == "postgresql":
                columns = ["public_id", "workspace_id", "created_by_id", "membership_id", "name",
                           "key_hash", "last_four", "scope", "created_at"]
                raw = (await conn.get_raw_connection()).driver_connection
                assert raw is not None
                await raw.copy_records_to_table(
                    "api_keys", columns=columns,
                    records=([row[c] for c in columns] for row in rows),
                )
            else:
                chunk: list[dict[str, Any]] = []
                for row in rows:
                    chunk.append(row)
                    if len(chunk) == 50_000:
                        await conn.execute(insert(ApiKey), chunk)
                        chunk = []
                if chunk:
                    await conn.execute(insert(ApiKey), chunk)
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


async def _metered(url: str, slug: str) -> tuple[int, int, int]:
    """The workspace's counted requests: its usage row, its keys' period and daily counts."""
    from sqlalchemy import func, select

    from craftdesk.db import create_engine
    from craftdesk.keys.models import ApiKey
    from craftdesk.metering.models import KeyDailyUsage, KeyUsage, WorkspaceUsage
    from craftdesk.workspaces.models import Workspace

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            workspace_id = (
                await conn.execute(select(Workspace.id).where(Workspace.slug == slug))
            ).scalar_one()
            keys = select(ApiKey.id).where(ApiKey.workspace_id == workspace_id)
            counts = []
            for query in (
                select(func.sum(WorkspaceUsage.requests)).where(
                    WorkspaceUsage.workspace_id == workspace_id
                ),
                select(func.sum(KeyUsage.requests)).where(KeyUsage.api_key_id.in_(keys)),
                select(func.sum(KeyDailyUsage.requests)).where(KeyDailyUsage.api_key_id.in_(keys)),
            ):
                counts.append(int((await conn.execute(query)).scalar() or 0))
            return counts[0], counts[1], counts[2]
    finally:
        await engine.dispose()


# --- server and load ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """One uvicorn process on 127.0.0.1; stopped with SIGTERM (a clean shutdown) at the end."""
    process = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "craftdesk.app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--no-access-log", "--log-level", "warning",
        ],
        env=env, cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise SystemExit(f"bench: the server exited with status {process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("bench: the server did not become ready within 30 s")
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log("the server did not stop within 30 s; killing it")
                process.kill()
                process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def profiled(
    process: subprocess.Popen[bytes], args: argparse.Namespace, name: str
) -> Iterator[None]:
    """With ``--profile DIR``, py-spy samples the server meanwhile (collapsed stacks)."""
    if args.profile is None:
        yield
        return
    args.profile.mkdir(parents=True, exist_ok=True)
    output = args.profile / f"{name.replace('/', '_')}.txt"
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    spy = subprocess.Popen(
        [py_spy, "record", "--pid", str(process.pid), "--format", "raw", "--rate", "250",
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


@dataclass
class Run:
    requests: int
    seconds: float
    non_2xx: int
    errors: int
    latency_us: Counter[int]  # how many responses took each latency, in µs
    cpu_us: float = 0.0  # the server process's CPU time (all threads) per request

    @property
    def p50_ms(self) -> float:
        return percentile_ms(self.latency_us, 50)

    @property
    def p99_ms(self) -> float:
        return percentile_ms(self.latency_us, 99)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def wrk(port: int, path: str, keys: list[str], args: argparse.Namespace, seconds: int) -> Run:
    env = {**os.environ, "BENCH_PATH": path, "BENCH_KEYS": ",".join(keys)}
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
    runs: dict[str, list[Run]] = field(default_factory=dict)
    metered: tuple[int, int, int] = (0, 0, 0)

    def rps(self, endpoint: str) -> float:
        runs = self.runs[endpoint]
        return sum(r.requests for r in runs) / sum(r.seconds for r in runs)

    def latency(self, endpoint: str, percent: float) -> float:
        return percentile_ms(sum((r.latency_us for r in self.runs[endpoint]), Counter()), percent)

    def cpu_us(self, endpoint: str) -> float:
        runs = self.runs[endpoint]
        return sum(r.cpu_us * r.requests for r in runs) / sum(r.requests for r in runs)

    @property
    def round_ratios(self) -> list[float]:
        """Each round's /v1/auth/key requests/s over the /healthz round just before it."""
        return [
            key.rps / health.rps
            for health, key in zip(self.runs["healthz"], self.runs["auth/key"], strict=True)
        ]

    @property
    def ratio(self) -> float:
        """The median of the rounds' ratios: the machine's speed may drift between rounds
        (other virtual machines on the host), and each round's pair sees the same speed."""
        return statistics.median(self.round_ratios)


def bench(backend: str, total_keys: int, args: argparse.Namespace) -> Result:
    log(f"{backend}, {total_keys:,} keys: setting up")
    result = Result(backend, total_keys, {name: [] for name in ENDPOINTS})
    with fresh_database(backend, args) as url:
        env = {
            **os.environ,
            "CRAFTDESK_DATABASE_URL": url,
            "CRAFTDESK_KEY_PEPPER": PEPPER,
            "CRAFTDESK_ENV": "development",
            "CRAFTDESK_LOG_LEVEL": "WARNING",
            "CRAFTDESK_CORS_ORIGINS": "",
        }
        setup = set_up(env, args, total_keys)
        port = free_port()
        served_ok = 0
        with server(env, port) as server_process:
            for name, path in ENDPOINTS.items():  # warm-up, not reported
                run = wrk(port, path, setup.keys if name == "auth/key" else [], args, args.warmup)
                if name == "auth/key":
                    served_ok += run.requests - run.non_2xx
            for round_ in range(1, args.rounds + 1):
                for name, path in ENDPOINTS.items():
                    cpu_before = cpu_seconds(server_process.pid)
                    with profiled(server_process, args, f"{backend}-{total_keys}-{name}-{round_}"):
                        run = wrk(port, path, setup.keys if name == "auth/key" else [], args,
                                  args.duration)
                    run.cpu_us = (cpu_seconds(server_process.pid) - cpu_before) * 1e6 / max(
                        1, run.requests
                    )
                    result.runs[name].append(run)
                    if name == "auth/key":
                        served_ok += run.requests - run.non_2xx
                    log(
                        f"{backend}, {total_keys:,} keys, round {round_}, {name}: "
                        f"{run.rps:,.0f} req/s, p50 {run.p50_ms:.1f} ms, "
                        f"p99 {run.p99_ms:.1f} ms, server CPU {run.cpu_us:.0f} µs/request"
                        + (f", {run.non_2xx} non-2xx" if run.non_2xx else "")
                        + (f", {run.errors} socket errors" if run.errors else "")
                    )
        result.metered = asyncio.run(_metered(url, setup.slug))
        check_metering(result, served_ok, args)
    return result


def check_metering(result: Result, served_ok: int, args: argparse.Namespace) -> None:
    """After a clean shutdown every admitted request is counted, in all three counters.

    wrk stops each run with up to one request per connection in flight: the server counts
    and answers those, but wrk no longer records them.
    """
    workspace, per_key, daily = result.metered
    in_flight = args.connections * (1 + args.rounds)
    bad = [
        run for runs in result.runs.values() for run in runs if run.non_2xx or run.errors
    ]
    if bad:
        log(f"WARNING: {len(bad)} runs had non-2xx responses or socket errors")
    if workspace == per_key == daily and served_ok <= workspace <= served_ok + in_flight:
        log(f"metering checked: {workspace:,} requests counted, wrk saw {served_ok:,} "
            f"answered (+{workspace - served_ok} in flight when wrk stopped)")
    else:
        raise SystemExit(
            f"bench: METERING MISMATCH: workspace {workspace:,}, keys {per_key:,}, "
            f"daily {daily:,}; wrk saw {served_ok:,} admitted responses"
        )


# --- report ---------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    header = (
        "backend", "keys in table", "endpoint", "requests/s", "p50 ms", "p99 ms",
        "ratio (rounds' range)",
        "server CPU µs/req",
    )
    rows = [header]
    for result in results:
        for name in ENDPOINTS:
            rows.append((
                result.backend, f"{result.keys:,}", f"GET {ENDPOINTS[name]}",
                f"{result.rps(name):,.0f}", f"{result.latency(name, 50):.1f}",
                f"{result.latency(name, 99):.1f}",
                f"{result.ratio:.2f} ({min(result.round_ratios):.2f}–"
                f"{max(result.round_ratios):.2f})" if name == "auth/key" else "",
                f"{result.cpu_us(name):.0f}",
            ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"
             for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run", description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both",
                        help="the backends to measure")
    parser.add_argument("--keys", default="10",
                        help="keys in the table, comma separated for several runs "
                             "(e.g. 10,1000000); above --bench-keys the rest are seeded")
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=10,
                        help="alternating rounds of /healthz then /v1/auth/key")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per endpoint")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--bench-keys", type=int, default=4,
                        help="keys the load rotates over, created with `craftdesk key create`")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "CRAFTDESK_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server's maintenance database, where the bench creates and drops "
             "its own (env CRAFTDESK_BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="sample the server with py-spy during each run (pip install "
                             "py-spy) and write collapsed stacks to DIR")
    args = parser.parse_args(argv)
    try:
        args.key_counts = [int(k.replace("_", "")) for k in args.keys.split(",")]
    except ValueError:
        parser.error("--keys takes numbers, comma separated")
    if any(k < 1 for k in args.key_counts) or args.bench_keys < 1:
        parser.error("--keys and --bench-keys must be at least 1")
    if args.threads > args.connections:
        parser.error("--threads must not exceed --connections")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # SIGTERM (and SIGHUP) unwind like Ctrl-C, so the server is stopped and the database dropped.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results = []
    started = dt.datetime.now(dt.UTC)
    try:
        for backend in backends:
            for total_keys in args.key_counts:
                results.append(bench("sqlite" if backend == "sqlite" else "postgresql",
                                     total_keys, args))
    except KeyboardInterrupt:
        with suppress(Exception):
            if results:
                print(table(results))
        raise SystemExit("bench: interrupted") from None
    print(
        f"{args.connections} connections, {args.rounds} alternating rounds of {args.duration:g} s "
        f"per endpoint, one uvicorn process, wrk -t{args.threads}; {started:%Y-%m-%d %H:%M} UTC"
    )
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([
            {
                "backend": r.backend, "keys": r.keys, "ratio": round(r.ratio, 3),
                "round_ratios": [round(x, 3) for x in r.round_ratios],
                **{
                    name: {"rps": round(r.rps(name), 1), "p50_ms": r.latency(name, 50),
                           "p99_ms": r.latency(name, 99),
                           "round_p99_ms": [run.p99_ms for run in r.runs[name]],
                           "server_cpu_us": round(r.cpu_us(name), 1)}
                    for name in ENDPOINTS
                },
                "metered": r.metered[0],
            }
            for r in results
        ], indent=2))


if __name__ == "__main__":
    main()
