"""A key's requests on several server processes all reach its log, once each, within 5 s."""

import asyncio
import itertools
import time
import uuid

import httpx
import pytest

from tests.conftest import PASSWORD, World, bearer
from tests.live.conftest import StartServers

pytestmark = pytest.mark.slow


async def test_mixed_traffic_over_two_processes_is_logged_once_per_request(
    world: World, start_servers: StartServers
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner, scope="read_only")
    servers = await start_servers(2)
    paths = [
        ("GET", "/v1/projects", 200),
        ("GET", "/v1/projects/999999", 404),
        ("POST", "/v1/projects", 403),
    ]
    sent: dict[str, tuple[str, str, int]] = {}
    async with httpx.AsyncClient(timeout=20) as http:
        for (method, path, status), server in zip(
            paths * 4, itertools.cycle(servers), strict=False
        ):
            request_id = uuid.uuid4().hex
            response = await http.request(
                method,
                server.url + path,
                json={"name": "x"} if method == "POST" else None,
                headers={**bearer(key), "X-Request-ID": request_id},
            )
            assert response.status_code == status, response.text
            sent[request_id] = (method, path, status)
        signed = await http.post(
            servers[0].url + "/v1/sessions",
            json={"workspace": workspace.slug, "email": owner.email, "password": PASSWORD},
        )
        key_id = (await http.get(servers[0].url + "/v1/api-keys")).json()["data"][0]["id"]
        assert signed.status_code == 201
        deadline = time.monotonic() + 5
        while True:
            lines = (
                await http.get(servers[1].url + f"/v1/api-keys/{key_id}/requests?limit=100")
            ).json()["data"]
            if len(lines) >= len(sent) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    logged = {line["request_id"]: (line["method"], line["path"], line["status"]) for line in lines}
    assert len(lines) == len(sent)  # once each
    assert logged == sent
    assert {line["code"] for line in lines} == {"ok", "not_found", "insufficient_scope"}
