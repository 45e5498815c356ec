"""A shared Chromium and data seeded straight into a live server's database (started with
``tests.live.server``): what the browser tests and the screenshot script share."""

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace

from craftdesk.config import Settings
from craftdesk.db import Database, utcnow
from craftdesk.metering.periods import BillingPeriod
from craftdesk.projects.queries import create_project
from craftdesk.workspaces.queries import WorkspaceRow
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
    """A ``Seed`` on its own connection to the database, in the running event loop."""
    settings = Settings(_env_file=None, database_url=database_url, key_pepper=TEST_PEPPER)  # type: ignore[call-arg]
    db = await Database.open(database_url, settings)
    app = SimpleNamespace(state=SimpleNamespace(db=db, settings=settings))
    try:
        yield Seed(app)  # type: ignore[arg-type]
    finally:
        await db.close()


class Seed(World):
    """The ``world`` helpers, plus what only a test can do: age a key, backfill usage."""

    async def project(self, workspace: WorkspaceRow, name: str) -> int:
        async with self.app.state.db.transaction() as tx:
            project = await create_project(tx, workspace.id, name, "", utcnow())
        return int(project["id"])

    async def member_with_email(self, workspace: WorkspaceRow, email: str, role: str) -> Member:
        """A member with the given (say, very long) email."""
        async with self.app.state.db.transaction() as tx:
            membership = await add_member(tx, workspace, email=email, password=PASSWORD, role=role)
        return Member(membership.user_id, membership.id, email, role)

    async def key_id(self, key: str) -> int:
        public_id = key.split("_")[1]
        return int(
            await self.app.state.db.fetchval(
                "SELECT id FROM api_keys WHERE public_id = $1", public_id
            )
        )

    async def age_key(self, key: str, days: int) -> None:
        """Pretend the key was created ``days`` ago."""
        await self.update_key(key, created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=days))

    async def expire_key(self, key: str, at: dt.datetime) -> None:
        """Set the key's expiry, even in the past (the API accepts only future ones)."""
        await self.update_key(key, expires_at=at)

    async def update_key(self, key: str, **values: object) -> None:
        """Set columns of the key's row directly (what the API would not let a test set)."""
        key_id = await self.key_id(key)
        columns = ", ".join(f"{column} = ${n}" for n, column in enumerate(values, start=2))
        async with self.app.state.db.transaction() as tx:
            await tx.execute(
                f"UPDATE api_keys SET {columns} WHERE id = $1", key_id, *values.values()
            )

    async def move_billing_anchor(self, workspace: WorkspaceRow, days_ago: int) -> BillingPeriod:
        """Start the workspace's billing period ``days_ago`` days back (for a fuller chart)."""
        now = dt.datetime.now(dt.UTC)
        anchor = now - dt.timedelta(days=days_ago)
        async with self.app.state.db.transaction() as tx:
            await tx.execute(
                "UPDATE workspaces SET billing_anchor = $2 WHERE id = $1", workspace.id, anchor
            )
        return BillingPeriod.containing(anchor, now)

    async def backfill_usage(
        self,
        workspace: WorkspaceRow,
        key: str,
        period: BillingPeriod,
        per_day: dict[dt.date, int],
        *,
        outcomes: bool = False,
    ) -> None:
        """Record past requests of a key per day, as the gate would have counted them; with
        ``outcomes``, also as the request log would have (a few 404s and 403s among them, and
        some 429s beside them, which the quota does not count)."""
        key_id = await self.key_id(key)
        total = sum(per_day.values())
        async with self.app.state.db.transaction() as tx:
            for day, requests in per_day.items():
                await tx.execute(
                    "INSERT INTO key_daily_usage (api_key_id, day, requests) VALUES ($1, $2, $3)",
                    key_id,
                    day,
                    requests,
                )
                if not outcomes:
                    continue
                not_found, refused = requests // 30, requests // 50
                for code, count in (
                    ("ok", requests - not_found - refused),
                    ("not_found", not_found),
                    ("insufficient_scope", refused),
                    ("rate_limited", requests // 40),
                ):
                    if count:
                        await tx.execute(
                            """INSERT INTO key_daily_outcomes (api_key_id, day, code, requests)
                               VALUES ($1, $2, $3, $4)""",
                            key_id,
                            day,
                            code,
                            count,
                        )
            await tx.execute(
                "INSERT INTO key_usage (api_key_id, period_start, requests) VALUES ($1, $2, $3)",
                key_id,
                period.start,
                total,
            )
            await tx.execute(
                """INSERT INTO workspace_usage (workspace_id, period_start, requests)
                   VALUES ($1, $2, $3)
                   ON CONFLICT (workspace_id, period_start)
                   DO UPDATE SET requests = workspace_usage.requests + excluded.requests""",
                workspace.id,
                period.start,
                total,
            )
