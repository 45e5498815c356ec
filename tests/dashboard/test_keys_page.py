"""Settings → Integrations → API Keys in Chromium: scopes, who sees which keys, statuses,
the age flag, rotation with a grace period, and names shown as text."""

import datetime as dt
import re

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.conftest import bearer
from tests.dashboard.conftest import Team, sign_in
from tests.dashboard.live import Seed
from tests.live.server import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


def key_row(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(
        "#keys-body tr", has=page.locator(".key-name", has_text=re.compile(f"^{re.escape(name)}$"))
    )


async def generate(page: Page, name: str, scope: str = "Full Access") -> str:
    """Generate a key through the dialog; returns the key read from the reveal dialog."""
    await page.get_by_role("button", name="Generate New Key").click()
    dialog = page.get_by_role("dialog", name="Generate New Key")
    await dialog.get_by_label("Name", exact=True).fill(name)
    await dialog.get_by_role("radio", name=scope).check()
    await dialog.get_by_role("button", name="Generate", exact=True).click()
    reveal = page.get_by_role("dialog", name="Your new API key")
    key = await reveal.locator("#new-key").text_content()
    await reveal.get_by_role("button", name="Done, I stored it").click()
    assert key is not None
    return key


async def test_custom_scope_is_disabled_with_the_reason_outside_business(
    page: Page, seed: Seed
) -> None:
    workspace, owner = await seed.workspace("Free Co", plan="free")
    await sign_in(page, workspace, owner)

    await page.get_by_role("button", name="Generate New Key").click()
    dialog = page.get_by_role("dialog", name="Generate New Key")

    custom = dialog.get_by_role("radio", name="Custom")
    await expect(custom).to_be_disabled()
    await expect(custom).to_have_accessible_description(
        "Available on the Business plan only. This workspace is on the Free plan."
    )
    await expect(dialog.get_by_role("radio", name="Full Access")).to_be_checked()
    await expect(dialog.get_by_role("radio", name="Read-Only")).to_be_enabled()


async def test_a_read_only_key_reads_but_cannot_write(
    page: Page, server: LiveServer, team: Team
) -> None:
    await sign_in(page, team.workspace, team.owner)
    key = await generate(page, "Public status page", scope="Read-Only")

    await expect(key_row(page, "Public status page").locator(".cell-scope .scope")).to_have_text(
        "Read-Only"
    )
    async with httpx.AsyncClient(base_url=server.url, headers=bearer(key)) as api:
        assert (await api.get("/v1/projects")).status_code == 200
        refused = await api.post("/v1/projects", json={"name": "Nope"})
        assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"


async def test_a_custom_key_reaches_only_the_chosen_projects_and_resource_types(
    page: Page, server: LiveServer, team: Team, seed: Seed
) -> None:
    website = await seed.project(team.workspace, "Website")
    internal = await seed.project(team.workspace, "Internal tools")
    await sign_in(page, team.workspace, team.owner)

    await page.get_by_role("button", name="Generate New Key").click()
    dialog = page.get_by_role("dialog", name="Generate New Key")
    await dialog.get_by_label("Name", exact=True).fill("Website tasks bot")
    await dialog.get_by_role("radio", name="Custom").check()
    await dialog.get_by_label("Projects", exact=True).select_option("read")
    await dialog.get_by_label("Tasks", exact=True).select_option("write")
    await dialog.get_by_label("Members", exact=True).select_option("none")
    await dialog.get_by_role("radio", name="Only the projects chosen below").check()
    await dialog.get_by_role("checkbox", name="Website").check()
    await expect(dialog.get_by_role("checkbox", name="Internal tools")).not_to_be_checked()
    await dialog.get_by_role("button", name="Generate", exact=True).click()
    reveal = page.get_by_role("dialog", name="Your new API key")
    key = await reveal.locator("#new-key").text_content()
    await reveal.get_by_role("button", name="Done, I stored it").click()

    scope = key_row(page, "Website tasks bot").locator(".cell-scope")
    await expect(scope).to_contain_text("Custom")
    await expect(scope).to_contain_text("projects read · tasks write · members none")
    await expect(scope).to_contain_text("only Website")
    assert key is not None
    async with httpx.AsyncClient(base_url=server.url, headers=bearer(key)) as api:
        assert (await api.get(f"/v1/projects/{website}")).status_code == 200
        created = await api.post(f"/v1/projects/{website}/tasks", json={"title": "Ship it"})
        assert created.status_code == 201
        assert (await api.get(f"/v1/projects/{internal}")).status_code == 403
        assert (await api.get("/v1/members")).status_code == 403


async def test_owners_see_every_key_with_its_creator_and_members_their_own(
    page: Page, team: Team, seed: Seed
) -> None:
    member = await seed.member(team.workspace, role="member")
    await seed.key(team.workspace, team.owner, name="Owner's CI")
    await seed.key(team.workspace, member, name="Member's script")

    await sign_in(page, team.workspace, team.owner)
    await expect(page.locator("#keys-body tr")).to_have_count(2)
    creator = page.get_by_role("columnheader", name="Created by")
    await expect(creator).to_be_visible()
    await expect(key_row(page, "Member's script")).to_contain_text(member.email)
    await expect(key_row(page, "Owner's CI")).to_contain_text(team.owner.email)
    # Only a key's creator rotates it (the new key would act as them); the owner may revoke.
    theirs = key_row(page, "Member's script")
    await expect(theirs.get_by_role("button", name="Rotate Member's script")).to_have_count(0)
    await expect(theirs.get_by_role("button", name="Revoke Member's script")).to_be_visible()
    mine = key_row(page, "Owner's CI")
    await expect(mine.get_by_role("button", name="Rotate Owner's CI")).to_be_visible()

    await page.get_by_role("button", name="Sign out").click()
    await sign_in(page, team.workspace, member)
    await expect(page.locator("#keys-body tr")).to_have_count(1)
    await expect(key_row(page, "Member's script")).to_be_visible()
    await expect(creator).to_be_hidden()
    await expect(page.get_by_text("You see the keys you created.")).to_be_visible()


async def test_status_badges_and_the_age_flag(page: Page, team: Team, seed: Seed) -> None:
    now = dt.datetime.now(dt.UTC)
    old = await seed.key(team.workspace, team.owner, name="Legacy webhook")
    await seed.age_key(old, days=120)
    await seed.key(team.workspace, team.owner, name="Trial", expires_at=now + dt.timedelta(days=3))
    await seed.key(team.workspace, team.owner, name="Fresh")
    ended = await seed.key(team.workspace, team.owner, name="Ended")
    await seed.expire_key(ended, now - dt.timedelta(hours=1))

    await sign_in(page, team.workspace, team.owner)

    legacy = key_row(page, "Legacy webhook")
    await expect(legacy.locator(".cell-status .badge")).to_have_text("Active")
    await expect(legacy.locator(".badge-age")).to_have_text("Rotate regularly")
    await expect(legacy.locator(".cell-created")).to_contain_text("120 days old")
    await expect(key_row(page, "Fresh").locator(".badge-age")).to_have_count(0)
    await expect(key_row(page, "Fresh").locator(".cell-last-used")).to_have_text("never")
    trial = key_row(page, "Trial")
    await expect(trial.locator(".cell-status .badge")).to_have_text("Expires soon")
    await expect(trial.locator(".cell-status")).to_contain_text("expires in 3 days")
    await expect(key_row(page, "Ended").locator(".cell-status .badge")).to_have_text("Expired")
    await expect(key_row(page, "Ended").get_by_role("button", name="Rotate Ended")).to_have_count(0)


async def test_rotation_keeps_the_old_key_working_for_the_grace_period(
    page: Page, server: LiveServer, team: Team, seed: Seed
) -> None:
    old = await seed.key(team.workspace, team.owner, name="Billing sync")
    await sign_in(page, team.workspace, team.owner)

    await key_row(page, "Billing sync").get_by_role("button", name="Rotate Billing sync").click()
    dialog = page.get_by_role("dialog", name="Rotate “Billing sync”")
    await dialog.get_by_label("Old key stops working").select_option(label="After 24 hours")
    await dialog.get_by_role("button", name="Rotate key").click()
    reveal = page.get_by_role("dialog", name="Your new API key")
    await expect(reveal).to_contain_text("keeps working until")
    new = await reveal.locator("#new-key").text_content()
    await reveal.get_by_role("button", name="Done, I stored it").click()

    rows = key_row(page, "Billing sync")
    await expect(rows).to_have_count(2)
    old_row = page.locator("#keys-body tr", has_text=f"{old[:16]}…{old[-4:]}")
    await expect(old_row.locator(".cell-status .badge")).to_have_text("Expires soon")
    await expect(old_row.locator(".cell-status")).to_contain_text("expires in 24 hours")
    assert new is not None and new != old
    async with httpx.AsyncClient(base_url=server.url) as api:
        assert (await api.get("/v1/projects", headers=bearer(old))).status_code == 200
        assert (await api.get("/v1/projects", headers=bearer(new))).status_code == 200


async def test_rotating_without_grace_stops_the_old_key_at_once(
    page: Page, server: LiveServer, team: Team, seed: Seed
) -> None:
    old = await seed.key(team.workspace, team.owner, name="Leaked key")
    await sign_in(page, team.workspace, team.owner)

    await page.get_by_role("button", name="Rotate Leaked key").click()
    dialog = page.get_by_role("dialog", name="Rotate “Leaked key”")
    await dialog.get_by_label("Old key stops working").select_option(label="Immediately")
    await dialog.get_by_role("button", name="Rotate key").click()
    reveal = page.get_by_role("dialog", name="Your new API key")
    await expect(reveal).to_contain_text("has stopped working")
    await reveal.get_by_role("button", name="Done, I stored it").click()

    old_row = page.locator("#keys-body tr", has_text=f"{old[:16]}…{old[-4:]}")
    await expect(old_row.locator(".cell-status .badge")).to_have_text("Expired")
    async with httpx.AsyncClient(base_url=server.url) as api:
        refused = await api.get("/v1/projects", headers=bearer(old))
        assert refused.status_code == 401 and refused.json()["code"] == "key_expired"


async def test_a_key_name_is_shown_as_text_never_as_markup(
    page: Page, team: Team, seed: Seed
) -> None:
    name = "<img src=x onerror=\"document.title='pwned'\">"
    await seed.key(team.workspace, team.owner, name=name)
    await sign_in(page, team.workspace, team.owner)

    await expect(page.locator("#keys-body .key-name")).to_have_text(name)
    await expect(page.locator("#keys-body img")).to_have_count(0)
    assert await page.title() != "pwned"


async def test_an_expiry_date_is_sent_with_the_new_key(page: Page, team: Team) -> None:
    await sign_in(page, team.workspace, team.owner)
    await page.get_by_role("button", name="Generate New Key").click()
    dialog = page.get_by_role("dialog", name="Generate New Key")
    await dialog.get_by_label("Name", exact=True).fill("Contractor")
    await dialog.get_by_label("Expiry (optional)").select_option(label="In 30 days")
    await dialog.get_by_role("button", name="Generate", exact=True).click()
    await (
        page.get_by_role("dialog", name="Your new API key")
        .get_by_role("button", name="Done, I stored it")
        .click()
    )

    status = key_row(page, "Contractor").locator(".cell-status")
    await expect(status.locator(".badge")).to_have_text("Active")
    await expect(status).to_contain_text("expires in 30 days")


async def test_a_key_found_in_public_says_where_and_links_only_web_urls(
    page: Page, team: Team, seed: Seed
) -> None:
    now = dt.datetime.now(dt.UTC)
    url = "https://github.com/octocat/Hello-World/blob/1234567/config/.env"
    leaked = await seed.key(team.workspace, team.owner, name="Leaked on GitHub")
    await seed.update_key(leaked, revoked_at=now, revoked_reason="leaked", leaked_url=url)
    script = "javascript:document.title='pwned'"
    odd = await seed.key(team.workspace, team.owner, name="Odd URL")
    await seed.update_key(odd, revoked_at=now, revoked_reason="leaked", leaked_url=script)
    markup = "https://example.com/<img src=x onerror=\"document.title='pwned'\">"
    tagged = await seed.key(team.workspace, team.owner, name="Markup URL")
    await seed.update_key(tagged, revoked_at=now, revoked_reason="leaked", leaked_url=markup)
    by_hand = await seed.key(team.workspace, team.owner, name="By hand")
    await seed.update_key(by_hand, revoked_at=now, revoked_reason="revoked")
    removed = await seed.key(team.workspace, team.owner, name="Former member's")
    await seed.update_key(removed, revoked_at=now, revoked_reason="member_removed")

    await sign_in(page, team.workspace, team.owner)

    status = key_row(page, "Leaked on GitHub").locator(".cell-status")
    await expect(status.locator(".badge")).to_have_text("Revoked")
    await expect(status).to_contain_text(f"Revoked automatically: found in public at {url}")
    link = status.get_by_role("link", name=url)
    await expect(link).to_have_attribute("href", url)
    await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")

    odd_status = key_row(page, "Odd URL").locator(".cell-status")
    await expect(odd_status).to_contain_text(f"found in public at {script}")
    await expect(odd_status.get_by_role("link")).to_have_count(0)
    markup_status = key_row(page, "Markup URL").locator(".cell-status")
    await expect(markup_status).to_contain_text(f"found in public at {markup}")
    await expect(page.locator("#keys-body img")).to_have_count(0)

    await expect(key_row(page, "By hand").locator(".revoked-reason")).to_have_count(0)
    await expect(key_row(page, "Former member's").locator(".revoked-reason")).to_have_text(
        "Revoked: member removed"
    )
    assert await page.title() != "pwned"
