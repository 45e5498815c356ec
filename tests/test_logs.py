import json
import logging

import httpx
import pytest

from tests.conftest import World, bearer


async def test_access_log_is_json_with_the_request_id(
    client: httpx.AsyncClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    from craftdesk.logs import JsonFormatter

    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    access = logging.getLogger("craftdesk.access")
    access.addHandler(caplog.handler)
    try:
        response = await client.get(
            "/v1/projects", headers={**bearer(key), "X-Request-ID": "req-42"}
        )
    finally:
        access.removeHandler(caplog.handler)
    assert response.headers["x-request-id"] == "req-42"
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    entry = next(line for line in lines if line.get("path") == "/v1/projects")
    assert entry["request_id"] == "req-42"
    assert entry["status"] == 200 and entry["method"] == "GET"
    assert entry["level"] == "info" and "duration_ms" in entry
    assert key not in json.dumps(lines)
