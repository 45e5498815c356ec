"""Browser tests: one Chromium for the whole run, a live server per test on the test's fresh
database (SQLite or PostgreSQL, from the ``database_url`` fixture), a new browser context
per test.

Playwright's async API needs one event loop for the browser's whole life, so the browser
tests and their async fixtures run in the session's loop (``loop_scope="session"``).
"""

import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from fastapi import FastAPI
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from craftdesk.db import utcnow
from craftdesk.projects.queries import create_project
from craftdesk.workspaces.queries import WorkspaceRow
from tests.conftest import IN_CI, PASSWORD, Member
from tests.dashboard.live import CHROMIUM, CHROMIUM_ARGS, Seed, seeding
from tests.live.server import LiveServer, server_env, start_server

# Chromium logs every 4xx fetch; the sign-in page's session probe is an expected 401.
_EXPECTED_CONSOLE = re.compile(
    r"Failed to load resource: the server responded with a status of 4\d\d"
)


@pytest.fixture
def start_live_server(database_url: str, tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start servers on the test's database with extra ``CRAFTDESK_*`` settings; stop them after."""
    servers: list[LiveServer] = []

    def start(**env: str) -> LiveServer:
        server = start_server(server_env(database_url, **env), tmp_path)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_live_server: Callable[..., LiveServer]) -> LiveServer:
    return start_live_server()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        reason = f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser, server: LiveServer) -> AsyncIterator[Page]:
    """A fresh browser profile on the live server. Fails the test on any script error or
    Content-Security-Policy violation the page reports."""
    context = await browser.new_context(
        base_url=server.url,
        viewport={"width": 1400, "height": 900},
        locale="en-US",
        timezone_id="UTC",
    )
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    context.set_default_timeout(10_000)
    tab = await context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not _EXPECTED_CONSOLE.search(message.text):
            problems.append(message.text)

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield tab
    await context.close()
    assert not problems, f"the page reported errors: {problems}\nserver log:\n{server.log()}"


@pytest_asyncio.fixture(loop_scope="session")
async def seed(database_url: str) -> AsyncIterator[Seed]:
    async with seeding(database_url) as helpers:
        yield helpers


@dataclass
class Team:
    workspace: WorkspaceRow
    owner: Member


@pytest_asyncio.fixture(loop_scope="session")
async def team(seed: Seed) -> Team:
    """A Business workspace and its owner."""
    workspace, owner = await seed.workspace("Acme Robotics", plan="business")
    return Team(workspace, owner)


async def sign_in(page: Page, workspace: WorkspaceRow, member: Member) -> None:
    await page.goto("/dashboard")
    await page.get_by_label("Workspace", exact=True).fill(workspace.slug)
    await page.get_by_label("Email", exact=True).fill(member.email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="API Keys", level=1).wait_for()
    await expect(page.locator("#main")).to_have_attribute("aria-busy", "false")


@pytest.fixture
def seed_projects(app: FastAPI) -> Callable[[WorkspaceRow, str], Awaitable[int]]:
    """``await seed_projects(workspace, name)`` adds a project and returns its id."""

    async def add(workspace: WorkspaceRow, name: str) -> int:
        async with app.state.db.transaction() as tx:
            project = await create_project(tx, workspace.id, name, "", utcnow())
        return int(project["id"])

    return add
