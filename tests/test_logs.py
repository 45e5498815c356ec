import json
import logging
import sqlite3

import asyncpg
import httpx
import pytest

from craftdesk.config import Settings
from craftdesk.db import Database
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


async def test_a_database_error_never_carries_the_statements_parameters(
    settings: Settings,
) -> None:
    """What a failing statement raises (and so any traceback logged of it) names the SQL,
    never the values sent with it: those include key and password hashes."""
    db = await Database.open(settings.database_url, settings)
    secret = "9f86d081884c7d659a2feaa0c55ad015"
    try:
        with pytest.raises((sqlite3.Error, asyncpg.PostgresError)) as raised:
            await db.fetch("SELECT * FROM no_such_table WHERE x = $1", secret)
    finally:
        await db.close()
    assert "no_such_table" in str(raised.value)
    assert secret not in str(raised.value)
