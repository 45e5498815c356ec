"""A shared Chromium and data seeded straight into a live server's database (started with
``tests.live.server``): what the browser tests and the screenshot script share."""

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace

from sqlalchemy import select, update

from craftdesk.config import Settings
from craftdesk.db import create_engine, make_sessionmaker
from craftdesk.keys.models import ApiKey
from craftdesk.metering.models import KeyDailyUsage, KeyUsage, WorkspaceUsage
from craftdesk.metering.periods import BillingPeriod
from craftdesk.projects.models import Project
from craftdesk.workspaces.models import Workspace
from craftdesk.workspaces.service import add_member
from tests.conftest import PASSWORD, TEST_PEPPER, Member, World

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@asynccontextmanager
async def seeding(database_url: str) -> AsyncIterator["Seed"]:
    """A ``Seed`` on its own engine, in the running event loop."""
    engine = create_engine(database_url)
    settings = Settings(_env_file=None, database_url=database_url, key_pepper=TEST_PEPPER)  # type: ignore[call-arg]
    app = SimpleNamespace(
        state=SimpleNamespace(sessionmaker=make_sessionmaker(engine), settings=settings)
    )
    try:
        yield Seed(app)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


class Seed(World):
    """The ``world`` helpers, plus what only a test can do: age a key, backfill usage."""

    async def project(self, workspace: Workspace, name: str) -> int:
        async with self.app.state.sessionmaker() as session:
            project = Project(workspace_id=workspace.id, name=name)
            session.add(project)
            await session.commit()
            return project.id

    async def member_with_email(self, workspace: Workspace, email: str, role: str) -> Member:
        """A member with the given (say, very long) email."""
        async with self.app.state.sessionmaker() as session:
            membership = await add_member(
                session, workspace, email=email, password=PASSWORD, role=role
            )
            await session.commit()
        return Member(membership.user_id, membership.id, email, role)

    async def key_id(self, key: str) -> int:
        public_id = key.split("_")[1]
        async with self.app.state.sessionmaker() as session:
            return int(await session.scalar(select(ApiKey.id).where(ApiKey.public_id == public_id)))

    async def age_key(self, key: str, days: int) -> None:
        """Pretend the key was created ``days`` ago."""
        await self.update_key(key, created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=days))

    async def expire_key(self, key: str, at: dt.datetime) -> None:
        """Set the key's expiry, even in the past (the API accepts only future ones)."""
        await self.update_key(key, expires_at=at)

    async def update_key(self, key: str, **values: object) -> None:
        """Set columns of the key's row directly (what the API would not let a test set)."""
        key_id = await self.key_id(key)
        async with self.app.state.sessionmaker() as session:
            await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(**values))
            await session.commit()

    async def move_billing_anchor(self, workspace: Workspace, days_ago: int) -> BillingPeriod:
        """Start the workspace's billing period ``days_ago`` days back (for a fuller chart)."""
        now = dt.datetime.now(dt.UTC)
        anchor = now - dt.timedelta(days=days_ago)
        async with self.app.state.sessionmaker() as session:
            await session.execute(
                update(Workspace).where(Workspace.id == workspace.id).values(billing_anchor=anchor)
            )
            await session.commit()
        return BillingPeriod.containing(anchor, now)

    async def backfill_usage(
        self, workspace: Workspace, key: str, period: BillingPeriod, per_day: dict[dt.date, int]
    ) -> None:
        """Record past requests of a key per day, as the gate would have counted them."""
        key_id = await self.key_id(key)
        total = sum(per_day.values())
        async with self.app.state.sessionmaker() as session:
            for day, requests in per_day.items():
                session.add(KeyDailyUsage(api_key_id=key_id, day=day, requests=requests))
            session.add(KeyUsage(api_key_id=key_id, period_start=period.start, requests=total))
            usage = await session.get(WorkspaceUsage, (workspace.id, period.start))
            if usage is None:
                session.add(
                    WorkspaceUsage(
                        workspace_id=workspace.id, period_start=period.start, requests=total
                    )
                )
            else:
                usage.requests += total
            await session.commit()
