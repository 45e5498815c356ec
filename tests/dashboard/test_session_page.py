"""Signing in and out of the dashboard in Chromium, and what happens when the session ends."""

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.conftest import PASSWORD
from tests.dashboard.conftest import Team, sign_in
from tests.dashboard.live import Seed
from tests.live.server import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def test_a_wrong_password_shows_one_generic_error(page: Page, team: Team) -> None:
    await page.goto(f"/dashboard?workspace={team.workspace.slug}")
    await expect(page.get_by_label("Workspace", exact=True)).to_have_value(team.workspace.slug)
    await page.get_by_label("Email", exact=True).fill(team.owner.email)
    await page.get_by_label("Password", exact=True).fill("not the password")
    await page.get_by_role("button", name="Sign in").click()

    await expect(page.get_by_role("alert")).to_have_text(
        "The workspace, email or password is wrong. Check them and try again."
    )
    await expect(page.get_by_role("heading", name="API Keys")).to_be_hidden()


async def test_signing_in_shows_who_and_where_and_survives_a_reload(page: Page, team: Team) -> None:
    await sign_in(page, team.workspace, team.owner)
    await expect(page.get_by_role("banner")).to_contain_text("Acme Robotics")
    await expect(page.get_by_role("banner")).to_contain_text("Business plan")
    await expect(page.get_by_role("banner")).to_contain_text(team.owner.email)

    await page.reload()
    await page.get_by_role("button", name="Generate New Key").click()
    dialog = page.get_by_role("dialog", name="Generate New Key")
    await dialog.get_by_label("Name", exact=True).fill("After reload")
    await dialog.get_by_role("button", name="Generate", exact=True).click()

    await expect(page.get_by_role("dialog", name="Your new API key")).to_be_visible()


async def test_signing_out_ends_the_session_on_the_server(
    page: Page, server: LiveServer, team: Team
) -> None:
    await sign_in(page, team.workspace, team.owner)
    [cookie] = [c for c in await page.context.cookies() if c["name"] == "craftdesk_session"]

    await page.get_by_role("button", name="Sign out").click()

    await expect(page.get_by_role("status")).to_have_text("You are signed out.")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    stale_cookie = {cookie["name"]: cookie["value"]}
    async with httpx.AsyncClient(base_url=server.url, cookies=stale_cookie) as api:
        stale = await api.get("/v1/api-keys")
    assert stale.status_code == 401


async def test_a_lost_session_returns_to_sign_in_with_the_reason(page: Page, seed: Seed) -> None:
    workspace, owner = await seed.workspace("Solo", plan="pro")
    await sign_in(page, workspace, owner)
    await page.context.clear_cookies()

    await page.get_by_role("button", name="Generate New Key").click()
    dialog = page.get_by_role("dialog", name="Generate New Key")
    await dialog.get_by_label("Name", exact=True).fill("Too late")
    await dialog.get_by_role("button", name="Generate", exact=True).click()

    await expect(page.get_by_role("status")).to_have_text(
        "Your session has ended. Sign in again to continue."
    )
    await expect(page.get_by_role("dialog")).to_have_count(0)
    await page.get_by_label("Email", exact=True).fill(owner.email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text("No API keys yet")).to_be_visible()
