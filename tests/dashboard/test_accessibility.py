"""Accessibility basics in Chromium: every control has a name, and the whole key story works
with the keyboard alone, on a desktop screen and on a phone (where each key is drawn as a card)."""

import re

import pytest
from playwright.async_api import Locator, Page, expect

from tests.conftest import PASSWORD
from tests.dashboard.conftest import Team, sign_in
from tests.dashboard.live import Seed

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

WIDTHS = [1400, 390]
CONTROLS = "button, input, select, textarea, a[href], summary, [tabindex]:not([tabindex='-1'])"


async def assert_every_visible_control_is_named(scope: Locator) -> int:
    """Each visible control's accessible name, as Chromium computes it, has a word in it."""
    controls = scope.locator(CONTROLS)
    checked = 0
    for index in range(await controls.count()):
        control = controls.nth(index)
        if await control.is_visible():
            await expect(control).to_have_accessible_name(re.compile(r"\w"))
            checked += 1
    return checked


@pytest.mark.parametrize("width", WIDTHS)
async def test_every_control_has_an_accessible_name(
    page: Page, team: Team, seed: Seed, width: int
) -> None:
    await page.set_viewport_size({"width": width, "height": 900})
    await seed.project(team.workspace, "Website")
    await seed.key(team.workspace, team.owner, name="CI/CD Pipeline")
    await page.goto("/dashboard")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert await assert_every_visible_control_is_named(page.locator("#signin-view")) == 4

    await sign_in(page, team.workspace, team.owner)
    assert await assert_every_visible_control_is_named(page.locator("body")) >= 10

    await page.get_by_role("button", name="Rename CI/CD Pipeline").click()
    await assert_every_visible_control_is_named(page.locator("#keys-body"))
    await page.keyboard.press("Escape")
    await page.get_by_role("button", name="Restrict CI/CD Pipeline").click()
    assert await assert_every_visible_control_is_named(page.locator("#keys-body")) >= 10
    await page.keyboard.press("Escape")

    await page.get_by_role("button", name="Generate New Key").click()
    generate = page.get_by_role("dialog", name="Generate New Key")
    await generate.get_by_role("radio", name="Custom").check()
    await generate.get_by_role("radio", name="Only the projects chosen below").check()
    await generate.get_by_label("Expiry (optional)").select_option("date")
    assert await assert_every_visible_control_is_named(generate) >= 12
    await generate.get_by_role("button", name="Cancel").click()

    for action, dialog_name in [
        ("Rotate", "Rotate “CI/CD Pipeline”"),
        ("Revoke", "Revoke “CI/CD Pipeline”?"),
    ]:
        await page.get_by_role("button", name=f"{action} CI/CD Pipeline").click()
        dialog = page.get_by_role("dialog", name=dialog_name)
        assert await assert_every_visible_control_is_named(dialog) >= 2
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()


@pytest.mark.parametrize("width", WIDTHS)
async def test_the_whole_key_story_works_by_keyboard(page: Page, team: Team, width: int) -> None:
    await page.set_viewport_size({"width": width, "height": 900})
    keyboard = page.keyboard
    await page.goto("/dashboard")
    await expect(page.get_by_label("Workspace", exact=True)).to_be_focused()
    await keyboard.type(team.workspace.slug)
    await keyboard.press("Tab")
    await keyboard.type(team.owner.email)
    await keyboard.press("Tab")
    await keyboard.type(PASSWORD)
    await keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="API Keys", level=1)).to_be_focused()

    await keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Generate New Key")).to_be_focused()
    await keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Generate New Key")
    await expect(dialog.get_by_label("Name", exact=True)).to_be_focused()
    await keyboard.type("Keyboard key")
    await keyboard.press("Tab")
    await expect(dialog.get_by_role("radio", name="Full Access")).to_be_focused()
    await keyboard.press("ArrowDown")
    await expect(dialog.get_by_role("radio", name="Read-Only")).to_be_checked()
    for _ in range(6):  # expiry, allowed IPs, the rate limit's two fields, Cancel, Generate
        await keyboard.press("Tab")
    await expect(dialog.get_by_role("button", name="Generate", exact=True)).to_be_focused()
    await keyboard.press("Enter")

    reveal = page.get_by_role("dialog", name="Your new API key")
    await expect(reveal.get_by_role("button", name="Copy API key")).to_be_focused()
    await keyboard.press("Enter")
    await expect(reveal.get_by_role("status")).to_have_text("Copied to the clipboard.")
    await keyboard.press("Tab")
    await expect(reveal.get_by_role("button", name="Done, I stored it")).to_be_focused()
    await keyboard.press("Enter")
    await expect(reveal).to_be_hidden()

    await expect(page.get_by_role("button", name="Rename Keyboard key")).to_be_focused()
    await keyboard.press("Enter")
    await expect(page.get_by_label("New name for Keyboard key")).to_be_focused()
    await keyboard.type("Renamed by keyboard")
    await keyboard.press("Escape")
    await expect(page.get_by_role("button", name="Rename Keyboard key")).to_be_focused()
    await keyboard.press("Enter")
    await keyboard.type("Renamed by keyboard")
    await keyboard.press("Enter")
    await expect(page.get_by_role("button", name="Rename Renamed by keyboard")).to_be_focused()

    await keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Restrict Renamed by keyboard")).to_be_focused()
    await keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Activity of Renamed by keyboard")).to_be_focused()
    await keyboard.press("Tab")
    await expect(
        page.get_by_role("button", name="Usage chart of Renamed by keyboard")
    ).to_be_focused()
    await keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Rotate Renamed by keyboard")).to_be_focused()
    await keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Revoke Renamed by keyboard")).to_be_focused()
    await keyboard.press("Enter")
    confirm = page.get_by_role("dialog", name="Revoke “Renamed by keyboard”?")
    await expect(confirm.get_by_role("button", name="Revoke key")).to_be_focused()
    await keyboard.press("Enter")
    await expect(confirm).to_be_hidden()
    await expect(page.locator("#keys-body .cell-status .badge")).to_have_text("Revoked")
    await expect(page.get_by_role("button", name="Rename Renamed by keyboard")).to_be_focused()
