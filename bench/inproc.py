"""The server's own CPU per request, route by route, in process: no HTTP, no wrk.

``bench/run`` measures what a client sees, on two cores that wrk, the server and PostgreSQL
share, so its figures move with the machine's phase. This drives the ASGI app directly
(``bench/run``'s seed, the same routes, ``--concurrency`` requests in flight on uvloop) and
reports the CPU time of this process per request, which is what a change to the server's
own code moves. PostgreSQL's CPU, in its own processes, is not in it; ``--pg-cpu`` adds the
CPU time of the database's backends per request, read from ``/proc``.

    .venv/bin/python bench/inproc.py --db postgres --routes projects,tasks --requests 4000
    .venv/bin/python bench/inproc.py --db sqlite --rounds 3 --profile /tmp/prof  # cProfile

Rounds interleave the routes (``/healthz`` first in each), and each figure is the median over
the rounds.
"""

import argparse
import asyncio
import cProfile
import itertools
import json
import os
import statistics
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402  (bench/bench.py: the seed and the routes)


def _requests(route: bench.Route, setup: bench.Setup) -> list[tuple[str, str, list, bytes]]:
    """(method, path, headers, body) of each request the route rotates over, as wrk's."""
    variables = bench.load(route, setup)
    paths = variables["BENCH_PATHS"].split(",")
    bodies = [b.encode() for b in variables["BENCH_BODIES"].split("\n") if b] or [b""]
    keys = variables.get("BENCH_KEYS", "").split(",") if "BENCH_KEYS" in variables else [None]
    made = []
    for key in keys:
        for path in paths:
            for body in bodies:
                headers = [(b"host", b"127.0.0.1"), (b"user-agent", b"inproc")]
                if key:
                    headers.append((b"authorization", f"Bearer {key}".encode()))
                if route.name == "api-keys":
                    headers.append((b"cookie", setup.cookie.encode()))
                if body:
                    headers += [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]
                made.append((route.method, path, headers, body))
    return made


async def _call(
    app: Any, method: str, path: str, headers: list, body: bytes
) -> tuple[int, list, bytes]:
    """One request through the ASGI app: its status, headers and body."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000), "state": {},
    }
    sent = False
    status = 0
    response_headers: list = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, response_headers
        if message["type"] == "http.response.start":
            status, response_headers = message["status"], message["headers"]
        else:
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, response_headers, b"".join(chunks)


def _pg_backends(dbname: str) -> list[int]:
    """The PostgreSQL backends connected to ``dbname`` (their title names it)."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        with suppress(OSError):
            if f" {dbname} " in entry.read_text().replace("\0", " ") + " ":
                pids.append(int(entry.parent.name))
    return pids


async def _drive(app: Any, requests: list, count: int, concurrency: int) -> None:
    done = 0

    async def worker(offset: int) -> None:
        nonlocal done
        n = offset
        while done < count:
            done += 1
            method, path, headers, body = requests[n % len(requests)]
            n += 1
            status, _, content = await _call(app, method, path, headers, body)
            if status >= 400:
                raise SystemExit(f"{method} {path}: {status} {content[:300]!r}")

    await asyncio.gather(*(worker(i) for i in range(concurrency)))


async def measure(args: argparse.Namespace, url: str, setup: bench.Setup) -> dict[str, list]:
    from craftdesk.app import create_app
    from craftdesk.config import Settings

    settings = Settings(database_url=url, key_pepper=bench.PEPPER, log_level="WARNING",
                        cors_origins=[])
    app = create_app(settings)
    dbname = url.rsplit("/", 1)[1]
    # per route, per round: (CPU µs a request, of which in the kernel, PostgreSQL's)
    results: dict[str, list] = {route.name: [] for route in args.route_list}
    async with app.router.lifespan_context(app):
        if "api-keys" in [r.name for r in args.route_list]:  # the dashboard's session
            body = json.dumps({"workspace": setup.slug, "email": bench.EMAIL,
                               "password": bench.PASSWORD}).encode()
            status, headers, _ = await _call(app, "POST", "/v1/sessions", [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode())], body)
            assert status == 201, status
            setup.cookie = next(
                value.split(b";", 1)[0].decode() for name, value in headers
                if name == b"set-cookie" and value.startswith(b"craftdesk_session=")
            )
        loads = {route.name: _requests(route, setup) for route in args.route_list}
        for route in args.route_list:  # warm-up
            await _drive(app, loads[route.name], args.requests // 4, args.concurrency)
        for _ in range(args.rounds):
            for route in args.route_list:
                pg = bench.cpu_seconds(_pg_backends(dbname)) if args.pg_cpu else 0.0
                profile = cProfile.Profile() if args.profile else None
                before = os.times()
                if profile:
                    profile.enable()
                await _drive(app, loads[route.name], args.requests, args.concurrency)
                if profile:
                    profile.disable()
                    args.profile.mkdir(parents=True, exist_ok=True)
                    profile.dump_stats(args.profile / f"{route.name.replace('/', '_')}.prof")
                after = os.times()
                used = (after.user - before.user) / args.requests * 1e6
                kernel = (after.system - before.system) / args.requests * 1e6
                pg_used = ((bench.cpu_seconds(_pg_backends(dbname)) - pg) / args.requests * 1e6
                           if args.pg_cpu else 0.0)
                results[route.name].append((used + kernel, kernel, pg_used))
    return results


def main() -> None:
    """Its own options here; the rest are ``bench/run``'s (``--db``, ``--routes``, ``--keys``,
    ``--projects``, ``--rounds``…), with its defaults; the peer's routes are left out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="per route and round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--pg-cpu", action="store_true",
                        help="add the CPU of the database's PostgreSQL backends")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="a cProfile per route")
    args, rest = parser.parse_known_args()
    vars(args).update(vars(bench.parse_args(rest)))
    args.route_list = [route for route in args.route_list if not route.peer]
    backends = ["sqlite", "postgresql"] if args.db == "both" else [
        "sqlite" if args.db == "sqlite" else "postgresql"
    ]
    import uvloop

    for backend, keys, projects in itertools.product(
        backends, args.key_counts, args.project_counts
    ):
        with bench.fresh_database(backend, args) as url:
            env = {**os.environ, "CRAFTDESK_DATABASE_URL": url,
                   "CRAFTDESK_KEY_PEPPER": bench.PEPPER, "CRAFTDESK_ENV": "development",
                   "CRAFTDESK_LOG_LEVEL": "WARNING"}
            setup = bench.set_up(env, args, args.route_list, keys, projects)
            results = uvloop.run(measure(args, url, setup))
        base = statistics.median(run[0] for run in results["healthz"])
        print(f"{backend}, {setup.total_keys:,} keys, {setup.total_projects:,} projects: "
              f"server CPU µs per request (median of {args.rounds} rounds of "
              f"{args.requests}, {args.concurrency} in flight)")
        for name, runs in results.items():
            cpu = statistics.median(run[0] for run in runs)
            kernel = statistics.median(run[1] for run in runs)
            line = (f"  {name:12} {cpu:7.1f}  (in the kernel {kernel:5.1f}; "
                    f"{base / cpu:.2f} of /healthz's)")
            if args.pg_cpu:
                line += f"  + PostgreSQL {statistics.median(run[2] for run in runs):6.1f}"
            print(line)


if __name__ == "__main__":
    main()
