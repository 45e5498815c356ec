"""PostgreSQL goes away and comes back: 503 within 2 s, no hang, recovery without restart.

A TCP proxy between the app and PostgreSQL plays the network: ``cut()`` drops every
connection and refuses new ones, ``hang()`` accepts and never answers, ``restore()`` forwards
again.
"""

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from craftdesk.app import create_app
from craftdesk.config import Settings
from tests.conftest import POSTGRES_URL, TEST_PEPPER, World, bearer


class Proxy:
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.mode = "forward"
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            writer.close()
            return
        if self.mode == "hang":
            self.writers.add(writer)
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                if self.mode != "forward":
                    return
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()

    def cut(self, mode: str = "cut") -> None:
        self.mode = mode
        for writer in list(self.writers):
            writer.close()
        self.writers.clear()

    def restore(self) -> None:
        self.mode = "forward"

    async def close(self) -> None:
        self.cut()
        for task in list(self.tasks):
            task.cancel()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
async def proxied(database_url: str) -> AsyncIterator[tuple[Proxy, httpx.AsyncClient, World]]:
    port = int(POSTGRES_URL.rsplit(":", 1)[1].split("/")[0])
    proxy = Proxy(port)
    proxy_port = await proxy.start()
    url = database_url.replace(f"127.0.0.1:{port}", f"127.0.0.1:{proxy_port}")
    settings = Settings(_env_file=None, database_url=url, key_pepper=TEST_PEPPER)  # type: ignore[call-arg]
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield proxy, client, World(app)
    await proxy.close()


@pytest.mark.parametrize("failure", ["cut", "hang"])
async def test_outage_answers_503_quickly_then_recovers(
    proxied: tuple[Proxy, httpx.AsyncClient, World], failure: str
) -> None:
    proxy, client, world = proxied
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    assert (await client.get("/v1/projects", headers=bearer(key))).status_code == 200

    proxy.cut(failure)
    for path in ("/v1/projects", "/v1/auth/key"):
        started = time.monotonic()
        response = await client.get(path, headers=bearer(key))
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "database_unavailable"
        assert time.monotonic() - started < 2.5
    started = time.monotonic()
    assert (await client.get("/readyz")).status_code == 503
    assert time.monotonic() - started < 2.5
    assert (await client.get("/healthz")).status_code == 200

    proxy.restore()
    deadline = time.monotonic() + 10
    while (status := (await client.get("/readyz")).status_code) != 200:
        assert time.monotonic() < deadline, "the server did not recover by itself"
    assert status == 200
    statuses = [
        (await client.get("/v1/projects", headers=bearer(key))).status_code for _ in range(3)
    ]
    assert statuses[-1] == 200


async def test_nothing_is_half_written_in_an_outage(
    proxied: tuple[Proxy, httpx.AsyncClient, World],
) -> None:
    proxy, client, world = proxied
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    ok = [
        r.status_code
        for r in await asyncio.gather(
            *(
                client.post("/v1/projects", json={"name": f"p{n}"}, headers=bearer(key))
                for n in range(20)
            )
        )
    ]
    proxy.cut()
    failed = await asyncio.gather(
        *(
            client.post("/v1/projects", json={"name": f"q{n}"}, headers=bearer(key))
            for n in range(20)
        )
    )
    assert {r.status_code for r in failed} == {503}
    proxy.restore()
    db = world.app.state.db
    for _ in range(50):
        try:
            names = {row["name"] for row in await db.fetch("SELECT name FROM projects")}
            used = await db.fetchval("SELECT requests FROM workspace_usage")
            break
        except Exception:
            await asyncio.sleep(0.1)
    assert names == {f"p{n}" for n in range(20)}
    assert ok.count(201) == 20
    assert used == 20


async def test_a_request_that_finds_every_connection_taken_waits_then_gets_503(
    database_url: str,
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        key_pepper=TEST_PEPPER,
        db_max_connections=2,  # the key gate keeps one
        db_pool_timeout_seconds=0.5,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        world = World(app)
        workspace, owner = await world.workspace()
        key = await world.key(workspace, owner)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/v1/projects", headers=bearer(key))).status_code == 200
            pool = app.state.db.pool
            held = await pool.acquire()
            try:
                await held.execute("SELECT 1")
                started = time.monotonic()
                response = await client.get("/v1/projects", headers=bearer(key))
                waited = time.monotonic() - started
            finally:
                await pool.release(held)
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "database_unavailable"
            assert int(response.headers["retry-after"]) > 0
            assert waited >= 0.5
            assert (await client.get("/v1/projects", headers=bearer(key))).status_code == 200
