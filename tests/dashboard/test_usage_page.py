"""Usage in Chromium: the workspace's plan, quota, used, remaining and reset date, and each
key's per-day chart over the billing period."""

import datetime as dt
import re

import httpx
import pytest
from playwright.async_api import Page, expect

from craftdesk.metering.periods import BillingPeriod
from tests.conftest import bearer
from tests.dashboard.conftest import Team, sign_in
from tests.dashboard.live import Seed
from tests.live.server import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


def as_shown(instant: dt.datetime) -> str:
    """How the page (en-US, UTC) writes a date: "Dec 27, 2026"."""
    return f"{instant:%b} {instant.day}, {instant.year}"


async def call_api(server: LiveServer, key: str, times: int) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers=bearer(key)) as api:
        for _ in range(times):
            assert (await api.get("/v1/projects")).status_code == 200


async def test_usage_shows_plan_quota_used_remaining_and_reset_date(
    page: Page, server: LiveServer, team: Team, seed: Seed
) -> None:
    await seed.set_plan(team.workspace, quota=500)
    key = await seed.key(team.workspace, team.owner, name="Importer")
    await call_api(server, key, 3)
    period = BillingPeriod.containing(team.workspace.billing_anchor, dt.datetime.now(dt.UTC))

    await sign_in(page, team.workspace, team.owner)
    await page.get_by_role("link", name="Usage").click()

    usage = page.get_by_role("region", name="Usage")
    await expect(usage.locator("#usage-plan")).to_have_text("Business")
    await expect(usage.locator("#usage-quota")).to_have_text("500")
    await expect(usage.locator("#usage-used")).to_have_text("3")
    await expect(usage.locator("#usage-remaining")).to_have_text("497")
    await expect(usage.locator("#usage-reset")).to_contain_text(as_shown(period.end))
    await expect(usage.get_by_role("progressbar", name="Quota used")).to_have_attribute(
        "value", "0.006"
    )
    await expect(
        page.locator("#keys-body tr", has_text="Importer").locator(".cell-requests")
    ).to_have_text("3")


async def test_the_chart_has_a_bar_per_day_of_the_period_with_its_requests(
    page: Page, server: LiveServer, team: Team, seed: Seed
) -> None:
    key = await seed.key(team.workspace, team.owner, name="Nightly export")
    period = await seed.move_billing_anchor(team.workspace, days_ago=10)
    today = dt.datetime.now(dt.UTC).date()
    await seed.backfill_usage(
        team.workspace,
        key,
        period,
        {today - dt.timedelta(days=9): 5, today - dt.timedelta(days=3): 12},
    )
    await call_api(server, key, 2)

    await sign_in(page, team.workspace, team.owner)

    chart = page.get_by_role("img", name="Requests per day for Nightly export")
    busiest = today - dt.timedelta(days=3)
    # (Followed by "By outcome: 2 succeeded, …" once the two requests' lines are written.)
    await expect(chart).to_have_accessible_description(
        re.compile(f"^19 requests this period; busiest day {busiest:%b} {busiest.day} with 12\\.")
    )
    bars = chart.locator("rect.chart-bar")
    days_so_far = (today - period.start.date()).days + 1
    await expect(bars).to_have_count(days_so_far)
    for day, requests in [(9, 5), (3, 12), (1, 0)]:
        bar = chart.locator(f'rect[data-day="{today - dt.timedelta(days=day)}"]')
        await expect(bar).to_have_attribute("data-requests", str(requests))
    today_bar = chart.locator(f'rect[data-day="{today}"]')
    await expect(today_bar).to_have_attribute("data-requests", "2")
    await expect(today_bar).to_have_class("chart-bar chart-bar-today")
    tall = await chart.locator(f'rect[data-day="{today - dt.timedelta(days=3)}"]').bounding_box()
    short = await today_bar.bounding_box()
    assert tall and short and tall["height"] == pytest.approx(6 * short["height"], rel=0.05)

    await page.get_by_text("Daily numbers").click()
    rows = page.locator("#chart-table-body tr")
    await expect(rows).to_have_count(days_so_far)
    today_cells = rows.last.locator("td")
    await expect(today_cells.nth(0)).to_have_text(f"{today:%b} {today.day}")
    await expect(today_cells.nth(1)).to_have_text("2")


async def test_a_key_s_usage_button_shows_its_chart(
    page: Page, server: LiveServer, team: Team, seed: Seed
) -> None:
    busy = await seed.key(team.workspace, team.owner, name="Busy")
    await seed.key(team.workspace, team.owner, name="Quiet")
    await call_api(server, busy, 1)
    await sign_in(page, team.workspace, team.owner)
    await expect(page.get_by_role("img", name="Requests per day for Busy")).to_be_visible()

    await page.get_by_role("button", name="Usage chart of Quiet").click()

    picker = page.get_by_role("combobox", name="Key", exact=True)
    await expect(picker).to_be_focused()
    await expect(picker.locator("option:checked")).to_contain_text("Quiet")
    await expect(page.get_by_role("img", name="Requests per day for Quiet")).to_be_visible()
    await expect(page.get_by_text("No requests with this key yet this period")).to_be_visible()
