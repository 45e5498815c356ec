"""What limits a leaked key: where it may be used from (``allowed_ips``) and how often
(``rate_limit``), checked in the key gate with the other key checks."""

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

import craftdesk.auth.gate
from craftdesk.app import create_app
from craftdesk.config import Settings
from tests.conftest import World, bearer, sign_in
from tests.hardening.test_limits import assert_problem


def _client(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _used(world: World, workspace_id: int) -> int:
    used = await world.app.state.db.fetchval(
        "SELECT COALESCE(sum(requests), 0) FROM workspace_usage WHERE workspace_id = $1",
        workspace_id,
    )
    return int(used)


async def test_a_key_limited_to_ranges_works_from_them_only(world: World) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner, allowed_ips=["10.0.0.0/8", "2001:db8::/32"])
    for ip in ("10.1.2.3", "2001:db8::7", "::ffff:10.9.9.9"):
        async with _client(world.app, ip) as client:
            response = await client.get("/v1/auth/key", headers=bearer(key))
            assert response.status_code == 200, (ip, response.text)
    for ip in ("11.0.0.1", "2001:db9::1", "127.0.0.1"):
        async with _client(world.app, ip) as client:
            refused = await client.get("/v1/projects", headers=bearer(key))
        assert_problem(refused, 403, "ip_not_allowed")
        assert ip in refused.json()["detail"]
    # Refused before metering: only the three requests from allowed addresses count.
    assert await _used(world, workspace.id) == 3


async def test_a_key_without_ranges_works_from_anywhere(world: World) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    async with _client(world.app, "198.51.100.4") as client:
        assert (await client.get("/v1/auth/key", headers=bearer(key))).status_code == 200


async def test_a_forwarded_for_header_from_an_untrusted_peer_is_not_believed(
    world: World,
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner, allowed_ips=["10.0.0.0/8"])
    async with _client(world.app, "127.0.0.1") as client:
        spoofed = await client.get(
            "/v1/auth/key", headers={**bearer(key), "X-Forwarded-For": "10.0.0.1"}
        )
    assert_problem(spoofed, 403, "ip_not_allowed")
    assert "127.0.0.1" in spoofed.json()["detail"]


@pytest.fixture
async def behind_proxy(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app behind a trusted proxy on 127.0.0.1 (and its own network 192.0.2.0/24)."""
    proxied = settings.model_copy(update={"trusted_proxies": ["127.0.0.1/32", "192.0.2.0/24"]})
    proxied.__dict__.pop("trusted_networks", None)
    application = create_app(proxied)
    async with application.router.lifespan_context(application):
        yield application


async def test_a_trusted_proxy_tells_the_client_address(behind_proxy: FastAPI) -> None:
    world = World(behind_proxy)
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner, allowed_ips=["10.0.0.0/8"])
    async with _client(behind_proxy, "127.0.0.1") as client:
        forwarded = await client.get(
            "/v1/auth/key", headers={**bearer(key), "X-Forwarded-For": "10.0.0.7"}
        )
        assert forwarded.status_code == 200, forwarded.text
        # Read from the right: the client wrote the first entry, the trusted proxies the rest.
        through_two = await client.get(
            "/v1/auth/key",
            headers={**bearer(key), "X-Forwarded-For": "198.51.100.1, 10.0.0.7, 192.0.2.9"},
        )
        assert through_two.status_code == 200, through_two.text
        spoofed = await client.get(
            "/v1/auth/key", headers={**bearer(key), "X-Forwarded-For": "10.0.0.7, 203.0.113.5"}
        )
    assert_problem(spoofed, 403, "ip_not_allowed")
    assert "203.0.113.5" in spoofed.json()["detail"]


async def test_allowed_ips_are_set_checked_and_cleared_in_the_dashboard(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    created = await client.post(
        "/v1/api-keys",
        json={"name": "CI", "allowed_ips": ["10.1.2.3/8", "2001:DB8::1", "10.0.0.0/8"]},
        headers=csrf,
    )
    assert created.status_code == 201, created.text
    assert created.json()["allowed_ips"] == ["10.0.0.0/8", "2001:db8::1/128"]
    key_id = created.json()["id"]
    for bad in (["nope"], [], ["10.0.0.0/33"], [f"10.0.{n}.0/24" for n in range(51)]):
        refused = await client.patch(
            f"/v1/api-keys/{key_id}", json={"allowed_ips": bad}, headers=csrf
        )
        assert_problem(refused, 422, "validation_error")
    renamed = await client.patch(f"/v1/api-keys/{key_id}", json={"name": "CI 2"}, headers=csrf)
    assert renamed.json()["allowed_ips"] == ["10.0.0.0/8", "2001:db8::1/128"]
    cleared = await client.patch(f"/v1/api-keys/{key_id}", json={"allowed_ips": None}, headers=csrf)
    assert cleared.json()["allowed_ips"] is None
    works = await client.get("/v1/auth/key", headers=bearer(created.json()["key"]))
    assert works.status_code == 200


async def test_a_rate_limit_admits_exactly_its_requests_per_window(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner, rate_limit=(5, 3600))
    responses = await asyncio.gather(
        *(client.get("/v1/auth/key", headers=bearer(key)) for _ in range(12))
    )
    assert Counter(r.status_code for r in responses) == {200: 5, 429: 7}
    for response in responses:
        assert '"key";q=5;w=3600' in response.headers["RateLimit-Policy"]
        if response.status_code == 429:
            assert_problem(response, 429, "rate_limited")
            assert 0 < int(response.headers["Retry-After"]) <= 3600
            assert '"key";r=0;' in response.headers["RateLimit"]
    # A rate-limited request is not counted against the quota.
    assert await _used(world, workspace.id) == 5

    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    monkeypatch.setattr(craftdesk.auth.gate, "utcnow", lambda: later)
    again = await client.get("/v1/auth/key", headers=bearer(key))
    assert again.status_code == 200, again.text
    assert '"key";r=4;' in again.headers["RateLimit"]


async def test_each_key_has_its_own_rate_limit(client: httpx.AsyncClient, world: World) -> None:
    workspace, owner = await world.workspace()
    limited = await world.key(workspace, owner, rate_limit=(2, 60))
    other = await world.key(workspace, owner)
    statuses = [
        (await client.get("/v1/auth/key", headers=bearer(limited))).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    free = await client.get("/v1/auth/key", headers=bearer(other))
    assert free.status_code == 200
    assert '"key"' not in free.headers["RateLimit-Policy"]


async def test_a_rate_limit_is_set_and_cleared_in_the_dashboard(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    csrf = await sign_in(client, workspace, owner)
    created = await client.post("/v1/api-keys", json={"name": "CI"}, headers=csrf)
    key_id, key = created.json()["id"], created.json()["key"]
    assert created.json()["rate_limit"] is None
    for bad in ({"requests": 0, "per_seconds": 1}, {"requests": 1, "per_seconds": 86_401}):
        refused = await client.patch(
            f"/v1/api-keys/{key_id}", json={"rate_limit": bad}, headers=csrf
        )
        assert_problem(refused, 422, "validation_error")
    limit = {"requests": 1, "per_seconds": 60}
    updated = await client.patch(f"/v1/api-keys/{key_id}", json={"rate_limit": limit}, headers=csrf)
    assert updated.json()["rate_limit"] == limit
    assert (await client.get("/v1/auth/key", headers=bearer(key))).status_code == 200
    assert_problem(await client.get("/v1/auth/key", headers=bearer(key)), 429, "rate_limited")
    cleared = await client.patch(f"/v1/api-keys/{key_id}", json={"rate_limit": None}, headers=csrf)
    assert cleared.json()["rate_limit"] is None
    assert (await client.get("/v1/auth/key", headers=bearer(key))).status_code == 200
    trail = (await client.get("/v1/audit-events")).json()["data"]
    assert [event["action"] for event in trail[:2]] == ["key.updated", "key.updated"]
    assert trail[1]["details"]["rate_limit"] == limit
