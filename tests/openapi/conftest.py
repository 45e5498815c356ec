"""The OpenAPI document as the server serves it, fetched once per run (it does not depend on
the database), and written to a file for the tools that read one."""

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from craftdesk.app import create_app
from craftdesk.config import Settings
from tests.conftest import TEST_PEPPER


async def _fetch() -> dict[str, Any]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url="sqlite+aiosqlite://",
        key_pepper=TEST_PEPPER,
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/v1/openapi.json")
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture(scope="session")
def document() -> dict[str, Any]:
    return asyncio.run(_fetch())


@pytest.fixture(scope="session")
def document_file(document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_text(json.dumps(document, indent=2))
    return path
