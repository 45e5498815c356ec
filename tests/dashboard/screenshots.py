"""Take the README's dashboard screenshots against a live server with demo data.

    .venv/bin/python -m tests.dashboard.screenshots [OUTPUT_DIR]   (default: docs/screenshots)

Seeds a fresh SQLite database (a Business workspace, its team, keys in every state, three
weeks of usage), serves it with uvicorn, signs in with Chromium and saves the API Keys page
at 1440, 1280 and 1024 px wide, the Usage card at 1440 px, and both on a 390 px phone (the
names in ``SHOTS``).
"""

import asyncio
import datetime as dt
import random
import sys
import tempfile
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright

from craftdesk.migrate import upgrade
from craftdesk.workspaces.queries import membership_by_email
from craftdesk.workspaces.service import add_member, create_workspace
from tests.conftest import PASSWORD, Member
from tests.dashboard.live import CHROMIUM, CHROMIUM_ARGS, Seed, seeding
from tests.live.server import server_env, start_server

OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SHOTS = [
    "api-keys.png",
    "usage-chart.png",
    "api-keys-1280.png",
    "api-keys-1024.png",
    "phone-keys.png",
    "phone-usage.png",
]


async def seed_demo(seed: Seed) -> tuple[str, str, dict[str, str]]:
    """The demo workspace; returns its slug, the owner's email and the keys by name."""
    async with seed.app.state.db.transaction() as tx:
        workspace = await create_workspace(
            tx,
            name="Acme Robotics",
            owner_email="maya@acme-robotics.com",
            owner_password=PASSWORD,
            plan="business",
        )
        team = {}
        for email, role in [
            ("dev@acme-robotics.com", "admin"),
            ("sam@acme-robotics.com", "member"),
        ]:
            membership = await add_member(tx, workspace, email=email, password=PASSWORD, role=role)
            team[role] = Member(membership.user_id, membership.id, email, role)
        owner_membership = await membership_by_email(tx, workspace.id, "maya@acme-robotics.com")
    assert owner_membership is not None
    owner = Member(owner_membership.user_id, owner_membership.id, "maya@acme-robotics.com", "owner")
    admin, member = team["admin"], team["member"]
    website = await seed.project(workspace, "Website")
    await seed.project(workspace, "Firmware")
    period = await seed.move_billing_anchor(workspace, days_ago=19)
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    rng = random.Random(7)

    def series(base: int, weekend: float, spread: float) -> dict[dt.date, int]:
        days = {}
        day = period.start.date()
        while day < today:
            level = base * (weekend if day.weekday() >= 5 else 1.0)
            days[day] = max(0, int(rng.gauss(level, level * spread)))
            day += dt.timedelta(days=1)
        return days

    keys = {
        "CI/CD Pipeline": await seed.key(workspace, owner, name="CI/CD Pipeline"),
        "Mobile App": await seed.key(workspace, member, scope="read_only", name="Mobile App"),
        "Analytics export": await seed.key(
            workspace,
            admin,
            scope="custom",
            name="Analytics export",
            permissions={"projects": "read", "tasks": "read", "members": "none"},
            project_ids=[website],
            expires_at=now + dt.timedelta(days=5),
        ),
        "Legacy webhook": await seed.key(workspace, owner, name="Legacy webhook"),
        "Zapier integration": await seed.key(
            workspace, admin, scope="read_only", name="Zapier integration"
        ),
        "Old staging key": await seed.key(workspace, owner, name="Old staging key"),
    }
    ages = {
        "CI/CD Pipeline": 41,
        "Mobile App": 16,
        "Analytics export": 9,
        "Legacy webhook": 143,
        "Zapier integration": 2,
        "Old staging key": 60,
    }
    for name, days in ages.items():
        await seed.age_key(keys[name], days)
    await seed.update_key(keys["Old staging key"], revoked_at=now - dt.timedelta(days=6))
    await seed.update_key(keys["Legacy webhook"], last_used_at=now - dt.timedelta(days=3))
    await seed.update_key(keys["Mobile App"], last_used_at=now - dt.timedelta(hours=2))
    await seed.backfill_usage(
        workspace, keys["CI/CD Pipeline"], period, series(420, 0.25, 0.3), outcomes=True
    )
    await seed.backfill_usage(
        workspace, keys["Mobile App"], period, series(150, 1.4, 0.2), outcomes=True
    )
    await seed.backfill_usage(
        workspace, keys["Analytics export"], period, series(60, 0.1, 0.5), outcomes=True
    )
    await seed.backfill_usage(
        workspace, keys["Legacy webhook"], period, series(6, 1.0, 0.8), outcomes=True
    )
    return workspace.slug, owner.email, keys


async def _seed(database_url: str) -> tuple[str, str, dict[str, str]]:
    async with seeding(database_url) as seed:
        return await seed_demo(seed)


async def _resize(page: Page, width: int, height: int) -> None:
    """Resize the window and wait for the chart to be drawn again at its new width."""
    await page.set_viewport_size({"width": width, "height": height})
    await page.wait_for_function(
        """() => {
          const canvas = document.getElementById('chart-canvas');
          return canvas.querySelector('svg')?.viewBox.baseVal.width === canvas.clientWidth;
        }"""
    )
    await page.evaluate("window.scrollTo(0, 0)")


async def _shoot(url: str, slug: str, email: str, keys: dict[str, str], output: Path) -> None:
    async with httpx.AsyncClient(base_url=url) as api:  # some of today's traffic, for real
        for n in range(240):
            key = keys["CI/CD Pipeline"] if n % 3 else keys["Analytics export"]
            await api.get("/v1/projects", headers={"Authorization": f"Bearer {key}"})
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(
            viewport={"width": 1440, "height": 900},
            locale="en-US",
            timezone_id="UTC",
            base_url=url,
        )
        await page.goto("/dashboard")
        await page.get_by_label("Workspace", exact=True).fill(slug)
        await page.get_by_label("Email", exact=True).fill(email)
        await page.get_by_label("Password", exact=True).fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_role("img", name="Requests per day for CI/CD Pipeline").wait_for()
        await page.locator("#page-title").blur()
        await page.mouse.move(0, 0)  # no hover effect in the pictures
        await page.screenshot(path=output / "api-keys.png")
        usage = page.get_by_role("region", name="Usage")
        await usage.scroll_into_view_if_needed()
        await usage.screenshot(path=output / "usage-chart.png")

        for width in (1280, 1024):
            await _resize(page, width, 900)
            await page.screenshot(path=output / f"api-keys-{width}.png")

        await _resize(page, 390, 844)
        await page.locator("#keys-section").evaluate(
            "(card) => window.scrollTo(0, card.offsetTop - 12)"
        )
        await page.screenshot(path=output / "phone-keys.png")
        await usage.screenshot(path=output / "phone-usage.png")
        await browser.close()


def main(output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        database_url = f"sqlite+aiosqlite:///{workdir}/demo.db"
        upgrade(database_url)
        slug, email, keys = asyncio.run(_seed(database_url))
        server = start_server(server_env(database_url), Path(workdir))
        try:
            asyncio.run(_shoot(server.url, slug, email, keys, output))
        finally:
            server.stop()
    print(f"saved {', '.join(SHOTS)} in {output}", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT)
