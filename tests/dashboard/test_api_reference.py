"""The API reference at /v1/docs works offline: in a browser that may reach nothing but the
live server on 127.0.0.1, Swagger UI renders every operation under the dashboard's
Content-Security-Policy (the ``page`` fixture fails on any violation or script error), and
"Authorize" with a key, then "Try it out", calls the API."""

from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Page, Route, expect

from tests.dashboard.conftest import Team
from tests.dashboard.live import Seed
from tests.live.server import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def only_loopback(page: Page) -> list[str]:
    """Abort every request to another host; the list collects them."""
    elsewhere: list[str] = []

    async def route(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    await page.route("**/*", route)
    return elsewhere


async def test_the_reference_renders_every_operation_with_nothing_from_another_host(
    page: Page, server: LiveServer
) -> None:
    elsewhere = await only_loopback(page)
    async with httpx.AsyncClient(base_url=server.url) as http:
        document = (await http.get("/v1/openapi.json")).json()
    operations = [op for item in document["paths"].values() for op in item.values()]

    await page.goto("/v1/docs")

    await expect(page.get_by_role("heading", name="CraftDesk API")).to_be_visible()
    await expect(page.locator(".opblock")).to_have_count(len(operations))
    await expect(page.locator("#operations-projects-list_projects")).to_contain_text(
        "List projects"
    )
    await expect(page.locator("#operations-api-keys-rotate_api_key")).to_contain_text(
        "/v1/api-keys/{key_id}/rotate"
    )
    assert elsewhere == []


async def test_authorize_with_a_key_then_try_it_out_calls_the_api(
    page: Page, team: Team, seed: Seed
) -> None:
    elsewhere = await only_loopback(page)
    key = await seed.key(team.workspace, team.owner, name="Reference key")
    await page.goto("/v1/docs")

    await page.get_by_role("button", name="Authorize").first.click()
    await page.locator("#auth-bearer-value").fill(key)
    await page.get_by_role("button", name="Apply credentials").first.click()
    await page.get_by_role("button", name="Close").first.click()
    operation = page.locator("#operations-auth-get_calling_key")
    await operation.locator(".opblock-summary-control").click()
    await operation.get_by_role("button", name="Try it out").click()
    await operation.get_by_role("button", name="Execute").click()

    status = operation.locator(".live-responses-table .response .response-col_status")
    await expect(status.first).to_have_text("200")
    await expect(operation.locator(".live-responses-table")).to_contain_text("Reference key")
    assert elsewhere == []
