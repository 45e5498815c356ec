"""A key's allowed IPs and rate limit in Chromium: set when the key is generated, shown in the
keys table, edited and cleared in the inline form with the keyboard alone, refused values
shown with the API's message, and the key's real behaviour (403 ``ip_not_allowed``, 429
``rate_limited``) following what the page set."""

import re
from typing import Any

import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from tests.conftest import bearer
from tests.dashboard.conftest import Team, sign_in
from tests.dashboard.live import Seed
from tests.dashboard.test_keys_page import key_row
from tests.dashboard.test_layout import (
    WORST_CASE,
    assert_nothing_scrolls_sideways,
    assert_on_screen_and_clickable,
    seed_worst_case,
)
from tests.live.server import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


def controls_form(page: Page, name: str) -> Locator:
    return page.get_by_role("form", name=f"Allowed IPs and rate limit of {name}")


async def key_json(page: Page, name: str) -> dict[str, Any]:
    """The key as the API has it now, read with the page's session."""
    listed = await page.request.get("/v1/api-keys")
    assert listed.ok, await listed.text()
    data: list[dict[str, Any]] = (await listed.json())["data"]
    [key] = [key for key in data if key["name"] == name]
    return key


async def test_a_key_generated_with_allowed_ips_and_a_rate_limit_obeys_them(
    page: Page, server: LiveServer, team: Team
) -> None:
    await sign_in(page, team.workspace, team.owner)
    await page.get_by_role("button", name="Generate New Key").click()
    dialog = page.get_by_role("dialog", name="Generate New Key")
    await dialog.get_by_label("Name", exact=True).fill("Office sync")
    ips = dialog.get_by_label("Allowed IPs (optional)")
    await expect(ips).to_have_accessible_description(re.compile(r"e\.g\. 203\.0\.113\.0/24"))
    await ips.fill("10.0.0.0/8, 2001:db8::/32")
    await dialog.get_by_role("spinbutton", name="requests", exact=True).fill("2")
    await dialog.get_by_role("spinbutton", name="seconds", exact=True).fill("3600")
    await dialog.get_by_role("button", name="Generate", exact=True).click()
    reveal = page.get_by_role("dialog", name="Your new API key")
    key = await reveal.locator("#new-key").text_content()
    await reveal.get_by_role("button", name="Done, I stored it").click()
    assert key is not None

    row = key_row(page, "Office sync")
    await expect(row.locator(".controls-ips")).to_have_text("IPs: 10.0.0.0/8, 2001:db8::/32")
    await expect(row.locator(".controls-limit")).to_have_text("Limit: 2 / 3,600 s")
    assert (await key_json(page, "Office sync"))["rate_limit"] == {
        "requests": 2,
        "per_seconds": 3600,
    }

    async with httpx.AsyncClient(base_url=server.url, headers=bearer(key)) as api:
        refused = await api.get("/v1/auth/key")  # from 127.0.0.1, outside 10.0.0.0/8
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "ip_not_allowed"
        assert "127.0.0.1" in refused.json()["detail"]

        await row.get_by_role("button", name="Restrict Office sync").click()
        form = controls_form(page, "Office sync")
        await expect(form.get_by_label("Allowed IPs of Office sync")).to_have_value(
            "10.0.0.0/8\n2001:db8::/32"
        )
        await form.get_by_label("Allowed IPs of Office sync").fill("")
        await form.get_by_role("button", name="Save").click()
        await expect(page.get_by_role("status")).to_have_text(
            "“Office sync” now works from any IP, at most 2 requests per 3,600 seconds."
        )
        await expect(row.locator(".controls-ips")).to_have_text("Any IP")
        await expect(row.locator(".controls-limit")).to_have_text("Limit: 2 / 3,600 s")

        for _ in range(2):
            works = await api.get("/v1/auth/key")
            assert works.status_code == 200, works.text
        limited = await api.get("/v1/auth/key")
        assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) > 0


async def test_the_controls_are_edited_and_cleared_by_keyboard_alone(
    page: Page, server: LiveServer, team: Team, seed: Seed
) -> None:
    key = await seed.key(team.workspace, team.owner, name="Nightly export")
    await sign_in(page, team.workspace, team.owner)
    keyboard = page.keyboard
    row = key_row(page, "Nightly export")
    restrict = page.get_by_role("button", name="Restrict Nightly export")
    await expect(row.locator(".controls-ips")).to_have_text("Any IP")
    await expect(row.locator(".controls-limit")).to_have_count(0)
    await expect(restrict).to_have_attribute("aria-expanded", "false")

    await page.get_by_role("button", name="Rename Nightly export").focus()
    await keyboard.press("Tab")
    await expect(restrict).to_be_focused()
    await keyboard.press("Enter")
    form = controls_form(page, "Nightly export")
    ips = form.get_by_label("Allowed IPs of Nightly export")
    await expect(ips).to_be_focused()
    await expect(ips).to_have_value("")
    await expect(restrict).to_have_attribute("aria-expanded", "true")
    await keyboard.type("10.0.0.0/8")
    await keyboard.press("Enter")  # a new line in the field, not a submit
    await keyboard.type("192.168.1.7")
    await keyboard.press("Tab")
    await expect(form.get_by_role("spinbutton", name="requests")).to_be_focused()
    await keyboard.type("100")
    await keyboard.press("Tab")
    await keyboard.type("60")
    await keyboard.press("Enter")

    await expect(page.get_by_role("status")).to_have_text(
        "“Nightly export” now works only from 10.0.0.0/8, 192.168.1.7/32, "
        "at most 100 requests per 60 seconds."
    )
    await expect(restrict).to_be_focused()
    await expect(form).to_have_count(0)
    await expect(row.locator(".controls-ips")).to_have_text("IPs: 10.0.0.0/8, 192.168.1.7/32")
    await expect(row.locator(".controls-limit")).to_have_text("Limit: 100 / 60 s")
    async with httpx.AsyncClient(base_url=server.url, headers=bearer(key)) as api:
        refused = await api.get("/v1/auth/key")
        assert refused.status_code == 403 and refused.json()["code"] == "ip_not_allowed"

        # Escape closes the form without a change, back on its button.
        await keyboard.press("Enter")
        await expect(ips).to_have_value("10.0.0.0/8\n192.168.1.7/32")
        await expect(form.get_by_role("spinbutton", name="requests")).to_have_value("100")
        await expect(form.get_by_role("spinbutton", name="seconds")).to_have_value("60")
        await keyboard.press("ControlOrMeta+A")
        await keyboard.press("Delete")
        await keyboard.press("Escape")
        await expect(form).to_have_count(0)
        await expect(restrict).to_be_focused()
        await expect(row.locator(".controls-ips")).to_have_text("IPs: 10.0.0.0/8, 192.168.1.7/32")
        assert (await key_json(page, "Nightly export"))["allowed_ips"] == [
            "10.0.0.0/8",
            "192.168.1.7/32",
        ]

        # Cancel, reached with Tab, does the same.
        await keyboard.press("Enter")
        for _ in range(4):  # the rate limit's two fields, Save, Cancel
            await keyboard.press("Tab")
        await expect(form.get_by_role("button", name="Cancel")).to_be_focused()
        await keyboard.press("Enter")
        await expect(form).to_have_count(0)
        await expect(restrict).to_be_focused()

        # Emptied fields clear both: any IP, no limit.
        await keyboard.press("Enter")
        await expect(ips).to_be_focused()
        for _ in range(3):  # the IPs, then the two numbers
            await keyboard.press("ControlOrMeta+A")
            await keyboard.press("Delete")
            await keyboard.press("Tab")
        await expect(form.get_by_role("button", name="Save")).to_be_focused()
        await keyboard.press("Enter")
        await expect(page.get_by_role("status")).to_have_text(
            "“Nightly export” now works from any IP, with no rate limit."
        )
        await expect(restrict).to_be_focused()
        await expect(row.locator(".controls-ips")).to_have_text("Any IP")
        await expect(row.locator(".controls-limit")).to_have_count(0)
        cleared = await key_json(page, "Nightly export")
        assert cleared["allowed_ips"] is None and cleared["rate_limit"] is None
        works = await api.get("/v1/auth/key")
        assert works.status_code == 200, works.text
        assert '"key"' not in works.headers["RateLimit-Policy"]


async def test_a_bad_range_shows_the_api_s_message_and_changes_nothing(
    page: Page, team: Team, seed: Seed
) -> None:
    await seed.key(
        team.workspace,
        team.owner,
        name="Partner feed",
        allowed_ips=["10.0.0.0/8"],
        rate_limit=(100, 60),
    )
    await sign_in(page, team.workspace, team.owner)
    row = key_row(page, "Partner feed")

    await row.get_by_role("button", name="Restrict Partner feed").click()
    form = controls_form(page, "Partner feed")
    await form.get_by_label("Allowed IPs of Partner feed").fill("10.0.0.0/8\n300.1.2.3/24")
    await form.get_by_role("spinbutton", name="requests").fill("5")
    await form.get_by_role("button", name="Save").click()
    alert = form.get_by_role("alert")
    await expect(alert).to_contain_text(
        "'300.1.2.3/24' is not an IPv4 or IPv6 address or CIDR range"
    )
    await expect(form).to_be_visible()
    await expect(form.get_by_label("Allowed IPs of Partner feed")).to_have_value(
        "10.0.0.0/8\n300.1.2.3/24"
    )
    await expect(row.locator(".controls-limit")).to_have_text("Limit: 100 / 60 s")
    unchanged = await key_json(page, "Partner feed")
    assert unchanged["allowed_ips"] == ["10.0.0.0/8"]
    assert unchanged["rate_limit"] == {"requests": 100, "per_seconds": 60}

    # Half a rate limit is refused before anything is sent.
    await form.get_by_label("Allowed IPs of Partner feed").fill("10.0.0.0/8")
    await form.get_by_role("spinbutton", name="seconds").fill("")
    await form.get_by_role("button", name="Save").click()
    await expect(alert).to_have_text(
        "Fill in both the number of requests and the seconds of the rate limit, or neither."
    )
    await page.keyboard.press("Escape")
    await expect(form).to_have_count(0)
    assert (await key_json(page, "Partner feed"))["rate_limit"] == {
        "requests": 100,
        "per_seconds": 60,
    }

    # In the generate dialog too: the API's message beside the form, and no key made.
    await page.get_by_role("button", name="Generate New Key").click()
    dialog = page.get_by_role("dialog", name="Generate New Key")
    await dialog.get_by_label("Name", exact=True).fill("Typo")
    await dialog.get_by_label("Allowed IPs (optional)").fill("10.0.0.0/33")
    await dialog.get_by_role("button", name="Generate", exact=True).click()
    await expect(dialog.get_by_role("alert")).to_contain_text(
        "'10.0.0.0/33' is not an IPv4 or IPv6 address or CIDR range"
    )
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(page.locator("#keys-body tr")).to_have_count(1)


# A realistic worst case: a dozen full-length IPv6 ranges (and an IPv4 one).
LONG_IPV6 = [f"2001:db8:85a3:{n:x}00:abcd:8a2e:370:7334/128" for n in range(1, 13)] + [
    "198.51.100.0/24"
]
FENCED = "Payments reconciliation worker (EU data centre, fixed egress addresses)"


@pytest.mark.parametrize("width", [1024, 390])
async def test_a_long_ipv6_list_fits_without_sideways_scrolling(
    page: Page, team: Team, seed: Seed, width: int
) -> None:
    await seed_worst_case(seed, team)
    await seed.key(
        team.workspace,
        team.owner,
        name=FENCED,
        allowed_ips=LONG_IPV6,
        rate_limit=(1_000_000, 86_400),
    )
    await page.set_viewport_size({"width": width, "height": 900})
    await sign_in(page, team.workspace, team.owner)
    await expect(page.locator("#keys-body tr")).to_have_count(len(WORST_CASE) + 1)

    row = key_row(page, FENCED)
    await expect(row.locator(".controls-ips")).to_have_text(
        f"IPs: {', '.join(LONG_IPV6[:2])} +11 more"
    )
    await expect(row.locator(".controls-limit")).to_have_text("Limit: 1,000,000 / 86,400 s")
    await assert_nothing_scrolls_sideways(page)
    restrict = page.get_by_role("button", name=f"Restrict {FENCED}", exact=True)
    await assert_on_screen_and_clickable(page, restrict)

    await restrict.click()
    ips = page.get_by_label(f"Allowed IPs of {FENCED}")
    await expect(ips).to_be_focused()
    await expect(ips).to_have_value("\n".join(LONG_IPV6))
    await assert_nothing_scrolls_sideways(page)
    for control in [
        ips,
        controls_form(page, FENCED).get_by_role("spinbutton", name="seconds"),
        controls_form(page, FENCED).get_by_role("button", name="Save"),
    ]:
        await assert_on_screen_and_clickable(page, control)
    await page.keyboard.press("Escape")
    await expect(restrict).to_be_focused()
