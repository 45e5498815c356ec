"""The seed's dashboard story, end to end in Chromium: sign in → generate → copy → the key
works with the API → a reload shows no secret → rename → revoke → the key gets 401."""

import re

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.conftest import bearer
from tests.dashboard.conftest import Team, sign_in
from tests.live.server import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def test_generate_copy_use_rename_and_revoke_a_key(
    page: Page, server: LiveServer, team: Team
) -> None:
    await sign_in(page, team.workspace, team.owner)
    await expect(page.get_by_text("No API keys yet")).to_be_visible()

    await page.get_by_role("button", name="Generate New Key").click()
    dialog = page.get_by_role("dialog", name="Generate New Key")
    await expect(dialog.get_by_label("Name", exact=True)).to_have_attribute(
        "placeholder", re.compile("CI/CD Pipeline")
    )
    await dialog.get_by_label("Name", exact=True).fill("CI/CD Pipeline")
    await dialog.get_by_role("button", name="Generate", exact=True).click()

    reveal = page.get_by_role("dialog", name="Your new API key")
    await expect(reveal).to_contain_text(
        "Copy and store the key immediately — You won't see it again"
    )
    await reveal.get_by_role("button", name="Copy API key").click()
    await expect(reveal.get_by_role("status")).to_have_text("Copied to the clipboard.")
    key = await page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(r"cdk_[0-9A-Za-z]{12}_[0-9A-Za-z]{38,}", key)
    await expect(reveal.locator("#new-key")).to_have_text(key)

    async with httpx.AsyncClient(base_url=server.url) as api:
        works = await api.get("/v1/projects", headers=bearer(key))
        assert works.status_code == 200, works.text

        await reveal.get_by_role("button", name="Done, I stored it").click()
        await expect(reveal).to_be_hidden()
        assert key not in await page.content()
        assert await page.evaluate("JSON.stringify({...localStorage, ...sessionStorage})") == "{}"

        row = page.locator("#keys-body tr", has_text="CI/CD Pipeline")
        await expect(row).to_contain_text(f"{key[:16]}…{key[-4:]}")
        await expect(row).to_contain_text("Full Access")
        await expect(row.locator(".badge-active")).to_have_text("Active")

        await page.reload()
        await expect(row).to_be_visible()
        await expect(row.locator(".cell-last-used")).to_have_text("just now")
        await expect(row.locator(".cell-requests")).to_have_text("1")
        assert key not in await page.content()
        assert key[16:-4] not in await page.content()

        await row.get_by_role("button", name="Rename CI/CD Pipeline").click()
        rename = row.get_by_label("New name for CI/CD Pipeline")
        await rename.fill("Deploy bot")
        await rename.press("Enter")
        renamed = page.locator("#keys-body tr", has_text="Deploy bot")
        await expect(renamed.locator(".key-name")).to_have_text("Deploy bot")
        await expect(page.get_by_role("status").first).to_contain_text("renamed")
        assert (await api.get("/v1/projects", headers=bearer(key))).status_code == 200

        await renamed.get_by_role("button", name="Revoke Deploy bot").click()
        confirm = page.get_by_role("dialog", name="Revoke “Deploy bot”?")
        await expect(confirm).to_contain_text("401 Unauthorized")
        await confirm.get_by_role("button", name="Revoke key").click()
        await expect(renamed.locator(".cell-status .badge")).to_have_text("Revoked")
        await expect(renamed.get_by_role("button", name="Revoke Deploy bot")).to_have_count(0)

        refused = await api.get("/v1/projects", headers=bearer(key))
        assert refused.status_code == 401
        assert refused.json()["code"] == "key_revoked"


async def test_cancelling_a_revoke_keeps_the_key_working(
    page: Page, server: LiveServer, team: Team, seed
) -> None:
    key = await seed.key(team.workspace, team.owner, name="Mobile App")
    await sign_in(page, team.workspace, team.owner)

    await page.get_by_role("button", name="Revoke Mobile App").click()
    await page.get_by_role("dialog").get_by_role("button", name="Cancel").click()

    await expect(page.get_by_role("dialog")).to_have_count(0)
    await expect(
        page.locator("#keys-body tr", has_text="Mobile App").locator(".cell-status .badge")
    ).to_have_text("Active")
    async with httpx.AsyncClient(base_url=server.url) as api:
        assert (await api.get("/v1/projects", headers=bearer(key))).status_code == 200
