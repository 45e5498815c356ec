"""The dashboard fits the screen, in Chromium at 1440, 1280, 1024 and 390 px wide: no sideways
scrolling of the page or the keys card, every key's actions on screen and clickable, a chart
whose labels stay readable. The keys are a realistic worst case: long names (one without a
space), a long creator email, a custom scope limited to long-named projects, seven-digit
request counts."""

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect

from tests.dashboard.conftest import Team, sign_in
from tests.dashboard.live import Seed

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

WIDTHS = [1440, 1280, 1024, 390]
LONG_EMAIL = "platform-integrations-service-account@acme-robotics-international.example.com"
DEPLOY = "Production deploy pipeline for the EU-West data warehouse nightly sync"
WEBHOOK = "webhook_receiver_for_the_legacy_billing_integration_v2"
MOBILE = "Mobile app (iOS and Android) read-only access for field technicians"
STAGING = "Old staging key, replaced by the production deploy pipeline in March"


@dataclass
class KeyActions:
    name: str
    actions: list[str]  # the accessible names' verbs, as in "Rotate <name>"


EVERY_ACTION = ["Rename", "Activity of", "Usage chart of", "Rotate", "Revoke"]
NOT_MINE = ["Rename", "Activity of", "Usage chart of", "Revoke"]  # only its creator rotates it
WORST_CASE = [
    KeyActions(DEPLOY, EVERY_ACTION),
    KeyActions(WEBHOOK, NOT_MINE),
    KeyActions(MOBILE, NOT_MINE),
    # Revoked: nothing to rotate or revoke.
    KeyActions(STAGING, ["Rename", "Activity of", "Usage chart of"]),
]


async def seed_worst_case(seed: Seed, team: Team) -> None:
    workspace = team.workspace
    bot = await seed.member_with_email(workspace, LONG_EMAIL, role="admin")
    projects = [
        await seed.project(workspace, name)
        for name in [
            "Website redesign 2027",
            "Firmware over-the-air updates",
            "Internal tools and dashboards",
        ]
    ]
    now = dt.datetime.now(dt.UTC)
    period = await seed.move_billing_anchor(workspace, days_ago=19)
    deploy = await seed.key(workspace, team.owner, name=DEPLOY)
    webhook = await seed.key(
        workspace,
        bot,
        scope="custom",
        name=WEBHOOK,
        permissions={"projects": "read", "tasks": "write", "members": "none"},
        project_ids=projects,
        expires_at=now + dt.timedelta(days=3),
    )
    mobile = await seed.key(workspace, bot, scope="read_only", name=MOBILE)
    staging = await seed.key(workspace, team.owner, name=STAGING)
    await seed.age_key(mobile, days=143)
    await seed.update_key(mobile, last_used_at=now - dt.timedelta(hours=2))
    await seed.update_key(staging, revoked_at=now - dt.timedelta(days=6))
    today = now.date()
    days = [period.start.date() + dt.timedelta(days=n) for n in range(19)]
    await seed.backfill_usage(
        workspace, deploy, period, {day: 65_000 + 1_000 * (n % 7) for n, day in enumerate(days)}
    )
    await seed.backfill_usage(workspace, webhook, period, {today - dt.timedelta(days=2): 12})


async def open_dashboard(page: Page, team: Team, seed: Seed, width: int) -> None:
    await seed_worst_case(seed, team)
    await page.set_viewport_size({"width": width, "height": 900})
    await sign_in(page, team.workspace, team.owner)
    await expect(page.locator("#keys-body tr")).to_have_count(len(WORST_CASE))


# Every text and control in the keys card, with its box, where it lies outside the card.
OUTSIDE_THE_CARD = """
(card) => {
  const box = card.getBoundingClientRect();
  const hiddenOnPurpose = (node) => node.closest('caption, .visually-hidden')
    || (node.closest('thead') && node.closest('thead').getBoundingClientRect().width <= 1);
  const outside = [];
  const check = (what, rect) => {
    if (rect.width > 0 && (rect.left < box.left - 0.5 || rect.right > box.right + 0.5)) {
      outside.push(`${what}: ${Math.round(rect.left)}..${Math.round(rect.right)}`);
    }
  };
  const walker = document.createTreeWalker(card, NodeFilter.SHOW_TEXT);
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    if (!text.textContent.trim() || hiddenOnPurpose(text.parentElement)) continue;
    const range = document.createRange();
    range.selectNodeContents(text);
    check(JSON.stringify(text.textContent.trim().slice(0, 40)), range.getBoundingClientRect());
  }
  for (const control of card.querySelectorAll('button, input, select')) {
    if (hiddenOnPurpose(control)) continue;
    const name = control.getAttribute('aria-label') || control.textContent;
    check(name, control.getBoundingClientRect());
  }
  return {outside, box: [Math.round(box.left), Math.round(box.right)]};
}
"""


async def assert_nothing_scrolls_sideways(page: Page) -> None:
    sizes: dict[str, Any] = await page.evaluate(
        """() => {
          const card = document.getElementById('keys-section');
          const wrap = card.querySelector('.table-wrap');
          return {
            page: [document.documentElement.scrollWidth, window.innerWidth],
            card: [card.scrollWidth, card.clientWidth],
            table: [wrap.scrollWidth, wrap.clientWidth],
            scrollX: window.scrollX,
          };
        }"""
    )
    for what in ("page", "card", "table"):
        scroll_width, width = sizes[what]
        assert scroll_width <= width, f"the {what} scrolls sideways: {sizes}"
    assert sizes["scrollX"] == 0
    overflow = await page.locator("#keys-section").evaluate(OUTSIDE_THE_CARD)
    assert not overflow["outside"], f"outside the keys card {overflow['box']}: {overflow}"


async def assert_on_screen_and_clickable(page: Page, control: Locator) -> None:
    """Its whole box inside the viewport once scrolled to (which must not scroll sideways),
    and a click at its centre lands on it, not on something drawn over it."""
    seen: dict[str, Any] = await control.evaluate(
        """(node) => {
          node.scrollIntoView({block: 'center', inline: 'nearest'});
          const r = node.getBoundingClientRect();
          const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
          return {
            left: r.left, right: r.right, top: r.top, bottom: r.bottom,
            width: document.documentElement.clientWidth, height: window.innerHeight,
            hit: node.contains(hit), scrollX: window.scrollX,
          };
        }"""
    )
    assert seen["scrollX"] == 0, f"reaching it scrolled sideways: {seen}"
    assert seen["left"] >= 0 and seen["right"] <= seen["width"], f"off screen: {seen}"
    assert seen["top"] >= 0 and seen["bottom"] <= seen["height"], f"off screen: {seen}"
    assert seen["hit"], f"covered by another element: {seen}"


@pytest.mark.parametrize("width", WIDTHS)
async def test_every_key_s_actions_are_on_screen_and_clickable_without_sideways_scrolling(
    page: Page, team: Team, seed: Seed, width: int
) -> None:
    await open_dashboard(page, team, seed, width)

    await assert_nothing_scrolls_sideways(page)
    for key in WORST_CASE:
        for action in key.actions:
            button = page.get_by_role("button", name=f"{action} {key.name}", exact=True)
            await expect(button).to_be_visible()
            await assert_on_screen_and_clickable(page, button)

    await page.get_by_role("button", name=f"Revoke {WEBHOOK}", exact=True).click()
    confirm = page.get_by_role("dialog", name=f"Revoke “{WEBHOOK}”?")
    await expect(confirm).to_be_visible()
    await assert_on_screen_and_clickable(page, confirm.get_by_role("button", name="Revoke key"))
    await confirm.get_by_role("button", name="Cancel").click()
    await expect(confirm).to_be_hidden()

    await page.get_by_role("button", name=f"Rotate {DEPLOY}", exact=True).click()
    rotate = page.get_by_role("dialog", name=f"Rotate “{DEPLOY}”")
    await assert_on_screen_and_clickable(page, rotate.get_by_role("button", name="Rotate key"))
    await page.keyboard.press("Escape")
    await expect(rotate).to_be_hidden()

    await page.get_by_role("button", name=f"Rename {MOBILE}", exact=True).click()
    new_name = page.get_by_label(f"New name for {MOBILE}")
    await expect(new_name).to_be_focused()
    await assert_on_screen_and_clickable(page, new_name)
    await assert_nothing_scrolls_sideways(page)
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("button", name=f"Rename {MOBILE}", exact=True)).to_be_focused()


async def test_revoking_on_a_phone_updates_the_key_in_place(
    page: Page, team: Team, seed: Seed
) -> None:
    await open_dashboard(page, team, seed, 390)

    await page.get_by_role("button", name=f"Revoke {WEBHOOK}", exact=True).click()
    await (
        page.get_by_role("dialog", name=f"Revoke “{WEBHOOK}”?")
        .get_by_role("button", name="Revoke key")
        .click()
    )

    row = page.locator("#keys-body tr", has_text=WEBHOOK)
    await expect(row.locator(".cell-status .badge")).to_have_text("Revoked")
    await expect(row.get_by_role("button", name=f"Revoke {WEBHOOK}")).to_have_count(0)
    await expect(page.get_by_role("status")).to_contain_text(f"“{WEBHOOK}” was revoked.")
    await expect(page.get_by_role("button", name=f"Rename {WEBHOOK}", exact=True)).to_be_focused()
    await assert_nothing_scrolls_sideways(page)


# Each label of the chart: its text, its font size as drawn on screen, and where it lies.
CHART_LABELS = """
(chart) => {
  const box = chart.getBoundingClientRect();
  return [...chart.querySelectorAll('text')].map((label) => {
    const r = label.getBoundingClientRect();
    return {
      text: label.textContent, kind: label.getAttribute('class'),
      px: parseFloat(getComputedStyle(label).fontSize) * label.getScreenCTM().a,
      left: r.left - box.left, right: box.right - r.right,
      top: r.top - box.top, bottom: box.bottom - r.bottom, x0: r.left, x1: r.right,
    };
  });
}
"""


async def assert_chart_is_readable(page: Page, key_name: str) -> list[dict[str, Any]]:
    chart = page.get_by_role("img", name=f"Requests per day for {key_name}")
    await chart.scroll_into_view_if_needed()
    labels: list[dict[str, Any]] = await chart.evaluate(CHART_LABELS)
    for label in labels:
        assert label["px"] >= 10, f"too small to read: {label}"
        assert min(label["left"], label["right"], label["top"], label["bottom"]) >= 0, (
            f"cut off at the chart's edge: {label}"
        )
    days = sorted(
        (label for label in labels if "chart-x-label" in label["kind"]), key=lambda lab: lab["x0"]
    )
    for before, after in zip(days, days[1:], strict=False):
        assert before["x1"] <= after["x0"], f"overlapping day labels: {before}, {after}"
    box = await chart.bounding_box()
    viewport = page.viewport_size
    assert box and viewport and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
    return labels


@pytest.mark.parametrize("width", WIDTHS)
async def test_the_chart_s_labels_are_readable(
    page: Page, team: Team, seed: Seed, width: int
) -> None:
    await open_dashboard(page, team, seed, width)

    labels = await assert_chart_is_readable(page, DEPLOY)
    assert len([lab for lab in labels if "chart-x-label" in lab["kind"]]) >= 3
    assert any(lab["text"] == "Today" for lab in labels)
    assert any(lab["text"].endswith(",000") for lab in labels)  # the 7-digit axis

    picker = page.get_by_role("combobox", name="Key", exact=True)
    await assert_on_screen_and_clickable(page, picker)
    await page.get_by_role("button", name=f"Usage chart of {STAGING}", exact=True).click()
    await assert_chart_is_readable(page, STAGING)
    await expect(page.get_by_text("No requests with this key yet this period")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_the_chart_is_drawn_again_at_its_new_width(
    page: Page, team: Team, seed: Seed
) -> None:
    await open_dashboard(page, team, seed, 1440)

    await page.set_viewport_size({"width": 390, "height": 900})

    width = await page.locator("#chart-canvas").evaluate("(canvas) => canvas.clientWidth")
    assert width < 400
    chart = page.get_by_role("img", name=f"Requests per day for {DEPLOY}")
    await expect(chart).to_have_attribute("viewBox", re.compile(f"^0 0 {width} "))
    await assert_chart_is_readable(page, DEPLOY)


async def test_the_stacked_keys_are_still_a_table_to_assistive_technology(
    page: Page, team: Team, seed: Seed
) -> None:
    """On a phone the rows are drawn as cards; Chromium's accessibility tree still has the
    table, its column headers, a row per key and its cells."""
    await open_dashboard(page, team, seed, 390)

    cdp = await page.context.new_cdp_session(page)
    tree = await cdp.send("Accessibility.getFullAXTree")
    nodes = {node["nodeId"]: node for node in tree["nodes"]}
    [table] = [
        node
        for node in nodes.values()
        if node.get("role", {}).get("value") == "table"
        and node.get("name", {}).get("value") == "API keys"
    ]
    roles: dict[str, int] = {}
    pending = list(table.get("childIds", []))
    while pending:
        node = nodes[pending.pop()]
        role = node.get("role", {}).get("value", "")
        roles[role] = roles.get(role, 0) + 1
        pending.extend(node.get("childIds", []))
    assert roles.get("columnheader") == 8, roles
    assert roles.get("row") == 1 + len(WORST_CASE), roles
    # The revoked key's card shows no empty actions cell.
    assert roles.get("cell") == 8 * len(WORST_CASE) - 1, roles
