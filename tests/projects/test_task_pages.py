"""A project's page of tasks reads that project's tasks only, however the others grow: a
big project next to a small one must not make the small one's page slow (PostgreSQL's plan
of a prepared statement is made for every project at once, from statistics that may be
old)."""

import json
from typing import Any

import pytest

from craftdesk.db import Row, utcnow
from craftdesk.projects import queries
from tests.conftest import World

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])


class _Recording:
    """A ``Queries`` that keeps the statement instead of running it."""

    dialect = "postgresql"

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        self.statements.append((sql, args))
        return []


def _rows_read(plan: dict[str, Any], table: str) -> int:
    """The rows the plan's scans of ``table`` read: those kept and those filtered out."""
    read = 0
    if plan.get("Relation Name") == table:
        read += plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)
    for child in plan.get("Plans", []):
        read += _rows_read(child, table)
    return read


async def test_a_small_projects_page_reads_none_of_a_big_ones_tasks(world: World) -> None:
    workspace, _ = await world.workspace()
    db, now = world.app.state.db, utcnow()
    small, big = [
        await db.fetchval(
            """INSERT INTO projects (workspace_id, name, description, created_at, updated_at)
               VALUES ($1, $2, '', $3, $3) RETURNING id""",
            workspace.id,
            name,
            now,
        )
        for name in ("Small", "Big")
    ]

    async def add_tasks(project_id: int, count: int) -> None:
        await db.execute(
            """INSERT INTO tasks (workspace_id, project_id, title, status, created_at, updated_at)
               SELECT $1, $2, 'Task ' || n, 'todo', $3, $3 FROM generate_series(1, $4) AS n""",
            workspace.id,
            project_id,
            now,
            count,
        )

    # The statistics see the small project's tasks only, then the big one grows past them.
    await add_tasks(small, 20)
    await db.execute("ANALYZE tasks")
    await add_tasks(big, 5000)

    recording = _Recording()
    await queries.list_tasks(recording, workspace.id, small, 0, 51)
    [(sql, args)] = recording.statements
    async with db.transaction() as tx:
        # The plan a prepared statement keeps once it has run a few times: one for any
        # project and cursor.
        await tx.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await tx.execute(f"PREPARE page (integer, integer, integer, integer) AS {sql}")
        values = ", ".join(str(int(value)) for value in args)
        [plan] = json.loads(
            await tx.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE page ({values})")
        )
        await tx.execute("DEALLOCATE page")
    assert _rows_read(plan["Plan"], "tasks") == 20
