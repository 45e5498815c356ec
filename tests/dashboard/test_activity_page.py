"""What each key did, in Chromium: its Activity view (the request log, newest first, with its
filters and its "Older" pages, by mouse and by keyboard), the alert badges, the chart of the
day's outcomes and the "Unused for 30 days" filter.

The server writes the log's lines about once a second, in its own process: a test waits for
them through the API (``logged``) before it opens the page that shows them."""

import asyncio
import datetime as dt
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from tests.conftest import bearer
from tests.conftest import sign_in as api_sign_in
from tests.dashboard.conftest import Team, sign_in
from tests.dashboard.live import Seed
from tests.dashboard.test_layout import assert_nothing_scrolls_sideways
from tests.live.server import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

AGENT = (
    "inventory-sync/4.2.0 (+https://integrations.example.com/inventory-sync; "
    "contact: platform-team@example.com) python-httpx/0.27"
)


async def until(check: Callable[[], Awaitable[Any]], what: str, seconds: float = 10.0) -> Any:
    """``check()``'s first truthy answer; fails the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        answer = await check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s: {what}")
        await asyncio.sleep(0.1)  # polling interval, not a timing assumption


async def logged(server: LiveServer, team: Team, key_id: int, lines: int) -> list[dict[str, Any]]:
    """The key's log once it has ``lines`` lines (as the owner reads it through the API)."""
    async with httpx.AsyncClient(base_url=server.url) as owner:
        await api_sign_in(owner, team.workspace, team.owner)

        async def read() -> list[dict[str, Any]] | None:
            page = (await owner.get(f"/v1/api-keys/{key_id}/requests?limit=100")).json()
            return page["data"] if len(page["data"]) >= lines else None

        found: list[dict[str, Any]] = await until(read, f"{lines} lines in key {key_id}'s log")
        return found


async def alerted(server: LiveServer, team: Team, key_id: int, kind: str) -> None:
    """Wait until the key carries an alert of this kind."""
    async with httpx.AsyncClient(base_url=server.url) as owner:
        await api_sign_in(owner, team.workspace, team.owner)

        async def read() -> bool:
            key = (await owner.get(f"/v1/api-keys/{key_id}")).json()
            return any(alert["kind"] == kind for alert in key["alerts"])

        await until(read, f"a {kind} alert on key {key_id}")


async def send(
    server: LiveServer, key: str, requests: list[tuple[str, str, int]], **body: Any
) -> list[str]:
    """Send each (method, path, expected status) with the key; returns their request ids."""
    ids = []
    headers = {**bearer(key), "User-Agent": AGENT}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as api:
        for method, path, status in requests:
            payload = (body or None) if method == "POST" else None
            sent = await api.request(method, path, json=payload)
            assert sent.status_code == status, sent.text
            ids.append(sent.headers["X-Request-ID"])
    return ids


def activity_of(page: Page, name: str) -> Locator:
    return page.get_by_role("dialog", name=f"Activity of “{name}”")


def fact(dialog: Locator, term: str) -> Locator:
    """What the Activity view's head says of the key under ``term`` ("Last IP"…)."""
    term_node = dialog.page.locator("dt", has_text=term)
    return dialog.locator(".activity-fact", has=term_node).locator("dd")


def key_row(page: Page, name: str) -> Locator:
    return page.locator(
        "#keys-body tr", has=page.locator(".key-name", has_text=re.compile(f"^{re.escape(name)}$"))
    )


async def test_the_activity_view_shows_mixed_traffic_newest_first_with_codes_and_ip(
    page: Page, server: LiveServer, team: Team, seed: Seed
) -> None:
    key = await seed.key(team.workspace, team.owner, scope="read_only", name="Status page")
    key_id = await seed.key_id(key)
    ids = await send(
        server,
        key,
        [
            ("GET", "/v1/projects", 200),
            ("GET", "/v1/projects/999999", 404),
            ("POST", "/v1/projects", 403),  # a read-only key writing
        ],
        name="Nope",
    )
    await seed.update_key(key, revoked_at=dt.datetime.now(dt.UTC), revoked_reason="revoked")
    ids += await send(server, key, [("GET", "/v1/projects", 401)])
    await logged(server, team, key_id, 4)
    await alerted(server, team, key_id, "revoked_in_use")

    await sign_in(page, team.workspace, team.owner)
    row = key_row(page, "Status page")
    badge = row.locator(".alert-badge")
    await expect(badge).to_have_text("Revoked key in use")
    await expect(badge).to_have_accessible_description(
        re.compile(r"^The key is revoked but still tried \(last at .+\): update the integration")
    )
    button = row.get_by_role("button", name="Activity of Status page")
    await button.click()

    dialog = activity_of(page, "Status page")
    await expect(dialog).to_be_visible()
    lines = dialog.locator("#activity-lines tr")
    await expect(lines).to_have_count(4)
    await expect(dialog.locator(".line-code")).to_have_text(
        ["key_revoked", "insufficient_scope", "not_found", "ok"]
    )
    await expect(dialog.locator(".line-status")).to_have_text(["401", "403", "404", "200"])
    await expect(dialog.locator(".line-method")).to_have_text(["GET", "POST", "GET", "GET"])
    await expect(dialog.locator(".line-path")).to_have_text(
        ["/v1/projects", "/v1/projects", "/v1/projects/999999", "/v1/projects"]
    )
    await expect(dialog.locator(".line-ip")).to_have_text(["127.0.0.1"] * 4)
    await expect(dialog.locator(".line-request-id")).to_have_text(list(reversed(ids)))
    await expect(dialog.get_by_role("status")).to_have_text("4 requests, newest first.")

    # The user agent is cut to fit on screen; the whole of it is the text and the tooltip.
    agent = lines.first.locator(".user-agent")
    await expect(agent).to_have_text(AGENT)
    await expect(agent).to_have_attribute("title", AGENT)
    assert await agent.evaluate("(node) => node.scrollWidth > node.clientWidth")
    # The key's last use (its last authenticated request: the 403) heads the view.
    await expect(fact(dialog, "Last IP")).to_have_text("127.0.0.1")
    await expect(fact(dialog, "Last user agent")).to_have_text(AGENT)

    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(button).to_be_focused()


async def test_the_log_filters_by_code_and_status_and_pages_with_older(
    page: Page, server: LiveServer, team: Team, seed: Seed
) -> None:
    key = await seed.key(team.workspace, team.owner, name="Importer")
    key_id = await seed.key_id(key)
    sent = (
        [("GET", "/v1/projects", 200)] * 4
        + [("GET", "/v1/projects/999999", 404)] * 3
        + [("POST", "/v1/projects", 422)] * 2
        + [("GET", "/v1/members", 200)] * 3
    )
    ids = await send(server, key, sent)
    await logged(server, team, key_id, len(sent))
    newest_first = list(reversed(ids))

    await sign_in(page, team.workspace, team.owner)
    await page.get_by_role("button", name="Activity of Importer").click()
    dialog = activity_of(page, "Importer")
    lines = dialog.locator(".line-request-id")
    await expect(lines).to_have_count(len(sent))

    await dialog.get_by_label("Per page").select_option("10")
    await expect(lines).to_have_text(newest_first[:10])
    await expect(dialog.get_by_role("status")).to_have_text(
        "10 requests, newest first; older ones follow."
    )
    older = dialog.get_by_role("button", name="Older")
    await older.click()
    await expect(lines).to_have_text(newest_first)
    await expect(older).to_be_hidden()
    await expect(dialog.locator("#activity-lines tr").nth(10)).to_be_focused()

    await dialog.get_by_label("Code").fill("not_found")
    await dialog.get_by_role("button", name="Filter", exact=True).click()
    await expect(dialog.locator(".line-code")).to_have_text(["not_found"] * 3)
    await expect(dialog.get_by_role("status")).to_have_text(
        "3 requests with code not_found, newest first."
    )

    await dialog.get_by_label("Code").fill("")
    await dialog.get_by_label("Status").fill("422")
    await dialog.get_by_label("Status").press("Enter")
    await expect(dialog.locator(".line-status")).to_have_text(["422", "422"])
    await expect(dialog.locator(".line-code")).to_have_text(["validation_error"] * 2)

    await dialog.get_by_label("Code").fill("ok")
    await dialog.get_by_role("button", name="Filter", exact=True).click()
    await expect(dialog.get_by_text("No requests match these filters.")).to_be_visible()
    await expect(lines).to_have_count(0)

    await dialog.get_by_role("button", name="Clear filters").click()
    await expect(lines).to_have_text(newest_first[:10])


async def test_a_key_never_used_has_an_empty_log_that_says_so(
    page: Page, team: Team, seed: Seed
) -> None:
    await seed.key(team.workspace, team.owner, name="Fresh")
    await sign_in(page, team.workspace, team.owner)

    await page.get_by_role("button", name="Activity of Fresh").click()

    dialog = activity_of(page, "Fresh")
    await expect(dialog.get_by_text("No requests with this key yet")).to_be_visible()
    await expect(fact(dialog, "Last used")).to_have_text("never")
    await expect(dialog.get_by_role("button", name="Older")).to_be_hidden()
    await dialog.get_by_role("button", name="Close").click()
    await expect(page.get_by_role("button", name="Activity of Fresh")).to_be_focused()


async def test_the_activity_view_works_by_keyboard(
    page: Page, server: LiveServer, team: Team, seed: Seed
) -> None:
    key = await seed.key(team.workspace, team.owner, name="Keyboard key")
    ids = await send(server, key, [("GET", "/v1/projects", 200), ("GET", "/v1/members", 200)])
    await logged(server, team, await seed.key_id(key), 2)
    await sign_in(page, team.workspace, team.owner)
    keyboard = page.keyboard
    await page.get_by_role("heading", name="API Keys", level=1).focus()

    for control in [
        page.get_by_role("button", name="Generate New Key"),
        page.get_by_role("checkbox", name="Unused for 30 days"),
        page.get_by_role("button", name="Rename Keyboard key"),
        page.get_by_role("button", name="Restrict Keyboard key"),
        page.get_by_role("button", name="Activity of Keyboard key"),
    ]:
        await keyboard.press("Tab")
        await expect(control).to_be_focused()
    await keyboard.press("Enter")

    dialog = activity_of(page, "Keyboard key")
    await expect(dialog.get_by_label("Status")).to_be_focused()
    await expect(dialog.locator(".line-request-id")).to_have_text(list(reversed(ids)))
    await keyboard.press("Tab")
    await expect(dialog.get_by_label("Code")).to_be_focused()
    await keyboard.type("not_found")
    await keyboard.press("Enter")
    await expect(dialog.get_by_text("No requests match these filters.")).to_be_visible()
    await keyboard.press("Shift+Tab")
    await expect(dialog.get_by_label("Status")).to_be_focused()
    await keyboard.press("Tab")
    await keyboard.press("Control+A")
    await keyboard.type("ok")
    await keyboard.press("Enter")
    await expect(dialog.locator(".line-code")).to_have_text(["ok", "ok"])

    await keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(page.get_by_role("button", name="Activity of Keyboard key")).to_be_focused()


async def test_unused_keys_have_a_badge_and_a_filter_of_their_own(
    page: Page, team: Team, seed: Seed
) -> None:
    forgotten = await seed.key(team.workspace, team.owner, name="Forgotten cron job")
    await seed.age_key(forgotten, days=31)
    await seed.key(team.workspace, team.owner, name="Fresh")
    old_but_busy = await seed.key(team.workspace, team.owner, name="Old but busy")
    await seed.age_key(old_but_busy, days=60)
    await seed.update_key(old_but_busy, last_used_at=dt.datetime.now(dt.UTC))

    await sign_in(page, team.workspace, team.owner)

    badge = key_row(page, "Forgotten cron job").locator(".alert-badge")
    await expect(badge).to_have_text("Unused 30 days")
    await expect(badge).to_have_accessible_description(
        "Not used for 30 days or more: revoke it if nothing needs it."
    )
    await expect(key_row(page, "Fresh").locator(".alert-badge")).to_have_count(0)
    await expect(key_row(page, "Old but busy").locator(".alert-badge")).to_have_count(0)

    unused = page.get_by_role("checkbox", name="Unused for 30 days")
    await unused.check()
    await expect(page.locator("#keys-body .key-name")).to_have_text(["Forgotten cron job"])
    await unused.uncheck()
    await expect(page.locator("#keys-body tr")).to_have_count(3)

    await seed.update_key(forgotten, last_used_at=dt.datetime.now(dt.UTC))
    await page.reload()
    await expect(page.locator("#keys-body tr")).to_have_count(3)
    await unused.check()
    await expect(page.locator("#keys-body tr")).to_have_count(0)
    await expect(page.get_by_text("No key has gone unused for 30 days.")).to_be_visible()


@pytest.mark.parametrize("width", [1024, 390])
async def test_alert_badges_fit_without_sideways_scrolling(
    page: Page, server: LiveServer, team: Team, seed: Seed, width: int
) -> None:
    name = "Production deploy pipeline for the EU-West data warehouse nightly sync"
    key = await seed.key(team.workspace, team.owner, name=name)
    await seed.age_key(key, days=120)
    revoked = await seed.key(team.workspace, team.owner, name="Revoked but still tried")
    await seed.update_key(revoked, revoked_at=dt.datetime.now(dt.UTC))
    await send(server, revoked, [("GET", "/v1/projects", 401)])
    await alerted(server, team, await seed.key_id(revoked), "revoked_in_use")
    await page.set_viewport_size({"width": width, "height": 900})

    await sign_in(page, team.workspace, team.owner)

    await expect(key_row(page, name).locator(".alert-badge")).to_have_text("Unused 30 days")
    await expect(key_row(page, "Revoked but still tried").locator(".alert-badge")).to_have_text(
        "Revoked key in use"
    )
    await assert_nothing_scrolls_sideways(page)
    await page.get_by_role("button", name="Activity of Revoked but still tried").click()
    dialog = activity_of(page, "Revoked but still tried")
    await expect(dialog.locator(".line-code")).to_have_text(["key_revoked"])
    box = await dialog.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= width
    for scrolled in [dialog, dialog.locator(".activity-wrap")]:
        assert await scrolled.evaluate("(node) => node.scrollWidth <= node.clientWidth")


async def test_the_chart_stacks_each_day_s_outcomes_with_a_legend(
    page: Page, server: LiveServer, team: Team, seed: Seed
) -> None:
    key = await seed.key(team.workspace, team.owner, scope="read_only", name="Mixed")
    sent = (
        [("GET", "/v1/projects", 200)] * 3
        + [("GET", "/v1/projects/999999", 404)] * 2
        + [("POST", "/v1/projects", 403)] * 2
    )
    await send(server, key, sent, name="Nope")
    await logged(server, team, await seed.key_id(key), len(sent))
    today = dt.datetime.now(dt.UTC).date()

    await sign_in(page, team.workspace, team.owner)

    chart = page.get_by_role("img", name="Requests per day for Mixed")
    await expect(chart).to_have_accessible_description(
        "7 requests this period; busiest day "
        f"{today:%b} {today.day} with 7. By outcome: 3 succeeded, 2 other errors, "
        "2 refused (401, 403)."
    )
    day = chart.locator(f'g.chart-day[data-day="{today}"]')
    segments = day.locator("rect.chart-segment")
    await expect(segments).to_have_count(3)
    assert [
        (await segment.get_attribute("data-series"), await segment.get_attribute("data-count"))
        for segment in await segments.all()
    ] == [("ok", "3"), ("error", "2"), ("refused", "2")]
    boxes = [await segment.bounding_box() for segment in await segments.all()]
    heights = [box["height"] for box in boxes if box]
    bar = await day.locator("rect.chart-bar").bounding_box()
    assert bar and sum(heights) == pytest.approx(bar["height"], abs=2)  # (today: outlined)
    assert heights[0] == pytest.approx(1.5 * heights[1], rel=0.05)

    legend = page.get_by_role("list", name="Outcomes")
    await expect(legend.get_by_role("listitem")).to_have_text(
        ["Succeeded3", "Other errors (404, 422, …)2", "Refused (401, 403)2"]
    )
    await page.get_by_text("Daily numbers").click()
    today_row = page.locator("#chart-table-body tr").last
    await expect(today_row.locator("td")).to_have_text(
        [f"{today:%b} {today.day}", "7", "ok 3, insufficient_scope 2, not_found 2"]
    )
