"""CORS for a dashboard served from another origin (``CRAFTDESK_CORS_ORIGINS``): the allowed
origins may call the API with the session cookie; any other origin gets no CORS grant."""

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.async_api import Browser

from craftdesk.app import EXPOSED_HEADERS, create_app
from craftdesk.config import Settings
from tests.conftest import PASSWORD, TEST_PEPPER, World, bearer
from tests.dashboard.live import Seed
from tests.live.server import LiveServer

DASHBOARD = "https://dashboard.craftdesk.test"
PREFLIGHT = {
    "Origin": DASHBOARD,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type, x-csrf-token",
}


@pytest.fixture
async def cors_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        key_pepper=TEST_PEPPER,
        cors_origins=[DASHBOARD],
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def test_the_origins_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRAFTDESK_CORS_ORIGINS", f"{DASHBOARD}, https://admin.craftdesk.test")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.cors_origins == [DASHBOARD, "https://admin.craftdesk.test"]


async def test_a_preflight_from_the_dashboard_origin_is_granted_with_credentials(
    cors_client: httpx.AsyncClient,
) -> None:
    response = await cors_client.options("/v1/api-keys", headers=PREFLIGHT)

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == DASHBOARD
    assert response.headers["access-control-allow-credentials"] == "true"
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {"content-type", "x-csrf-token"} <= allowed
    assert "DELETE" in response.headers["access-control-allow-methods"]


async def test_a_preflight_from_another_origin_gets_no_grant(
    cors_client: httpx.AsyncClient,
) -> None:
    response = await cors_client.options(
        "/v1/api-keys", headers={**PREFLIGHT, "Origin": "https://evil.example"}
    )

    # Starlette refuses it (400) and grants no origin: the browser blocks the real request.
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_a_signed_in_request_from_the_dashboard_origin_can_be_read(
    cors_client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    signed_in = await cors_client.post(
        "/v1/sessions",
        json={"workspace": workspace.slug, "email": owner.email, "password": PASSWORD},
        headers={"Origin": DASHBOARD},
    )
    keys = await cors_client.get("/v1/api-keys", headers={"Origin": DASHBOARD})
    elsewhere = await cors_client.get("/v1/api-keys", headers={"Origin": "https://evil.example"})

    assert signed_in.headers["access-control-allow-origin"] == DASHBOARD
    assert keys.status_code == 200
    assert keys.headers["access-control-allow-origin"] == DASHBOARD
    assert keys.headers["access-control-allow-credentials"] == "true"
    assert "access-control-allow-origin" not in elsewhere.headers


async def test_without_configured_origins_nothing_is_granted(client: httpx.AsyncClient) -> None:
    response = await client.options("/v1/api-keys", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in response.headers


async def test_cors_exposes_every_rate_limit_header_and_the_request_id(
    cors_client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)

    response = await cors_client.get("/v1/auth/key", headers={"Origin": DASHBOARD, **bearer(key)})

    exposed = {
        name.strip() for name in response.headers["access-control-expose-headers"].split(",")
    }
    assert exposed == {
        "RateLimit",
        "RateLimit-Policy",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Used",
        "X-RateLimit-Reset",
        "Retry-After",
        "X-Request-ID",
    }
    sent = {name.lower() for name in response.headers}
    assert {name.lower() for name in exposed} - sent == {"retry-after"}  # only on 429 and 503


class _BlankPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server hook
        body = b"<!doctype html><title>Another dashboard origin</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def other_origins() -> Iterator[list[str]]:
    """Two pages on loopback ports: the configured dashboard origin, and one not allowed."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _BlankPage) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    yield [f"http://localhost:{s.server_address[1]}" for s in servers]
    for server, thread in zip(servers, threads, strict=True):
        server.shutdown()
        server.server_close()
        thread.join()


CROSS_ORIGIN_SESSION = """
async ({api, workspace, email, password}) => {
  const json = {'Content-Type': 'application/json'};
  try {
    const signIn = await fetch(`${api}/v1/sessions`, {
      method: 'POST', credentials: 'include', headers: json,
      body: JSON.stringify({workspace, email, password}),
    });
    const {csrf_token} = await signIn.json();
    const created = await fetch(`${api}/v1/api-keys`, {
      method: 'POST', credentials: 'include', headers: {...json, 'X-CSRF-Token': csrf_token},
      body: JSON.stringify({name: 'Made from the dashboard origin'}),
    });
    const listed = await fetch(`${api}/v1/api-keys`, {credentials: 'include'});
    return {
      signIn: signIn.status, created: created.status,
      names: (await listed.json()).data.map((key) => key.name),
    };
  } catch (error) {
    return {blocked: String(error)};
  }
}
"""


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_a_dashboard_on_an_allowed_origin_works_with_the_cookie_in_a_browser(
    browser: Browser,
    start_live_server: Callable[..., LiveServer],
    other_origins: list[str],
    seed: Seed,
) -> None:
    allowed, not_allowed = other_origins
    server = start_live_server(CRAFTDESK_CORS_ORIGINS=allowed)
    # localhost on both sides: another origin (port) but the same site, as
    # dashboard.example.com and api.example.com are, so the SameSite=Lax cookie goes along.
    api = server.url.replace("127.0.0.1", "localhost")
    workspace, owner = await seed.workspace()
    context = await browser.new_context()
    try:
        page = await context.new_page()
        credentials = {
            "api": api,
            "workspace": workspace.slug,
            "email": owner.email,
            "password": PASSWORD,
        }

        await page.goto(allowed)
        from_allowed = await page.evaluate(CROSS_ORIGIN_SESSION, credentials)
        await page.goto(not_allowed)
        from_elsewhere = await page.evaluate(CROSS_ORIGIN_SESSION, credentials)
    finally:
        await context.close()

    assert from_allowed == {
        "signIn": 201,
        "created": 201,
        "names": ["Made from the dashboard origin"],
    }
    assert "blocked" in from_elsewhere


READ_HEADERS = """
async ({api, key, names}) => {
  const response = await fetch(`${api}/v1/auth/key`, {headers: {Authorization: `Bearer ${key}`}});
  return Object.fromEntries(names.map((name) => [name, response.headers.get(name)]));
}
"""


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_browser_code_on_an_allowed_origin_reads_the_rate_limit_headers(
    browser: Browser,
    start_live_server: Callable[..., LiveServer],
    other_origins: list[str],
    seed: Seed,
) -> None:
    allowed, _ = other_origins
    server = start_live_server(CRAFTDESK_CORS_ORIGINS=allowed)
    workspace, owner = await seed.workspace()
    key = await seed.key(workspace, owner)
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(allowed)
        read = await page.evaluate(
            READ_HEADERS, {"api": server.url, "key": key, "names": EXPOSED_HEADERS}
        )
    finally:
        await context.close()

    assert read.pop("Retry-After") is None  # sent on 429 and 503 only
    assert read["X-RateLimit-Used"] == "1"
    assert read["RateLimit-Policy"] == '"billing-period";q=1000'
    assert all(value for value in read.values()), read
