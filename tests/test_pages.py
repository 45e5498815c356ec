"""A page of a project's tasks, or of a key's request log, reads that project's or key's
rows only, however another's grow: a big project or a busy key beside a small one must not
make the small one's pages slow. On PostgreSQL the plan a prepared statement keeps is made
once for every parent, from statistics that may be old (the README's "A page" says which
lists rely on them); SQLite plans each statement afresh."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from craftdesk.activity import partitions
from craftdesk.activity import queries as activity
from craftdesk.db import Database, utcnow
from craftdesk.projects import queries as projects
from tests.conftest import Recording, World

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])

SMALL, BIG = 20, 5000


def _rows_read(plan: dict[str, Any], table: str) -> int:
    """The rows the plan's scans of ``table`` (or of its partitions) read: those kept and
    those filtered out."""
    read = 0
    if plan.get("Relation Name", "").startswith(table):
        read += plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)
    for child in plan.get("Plans", []):
        read += _rows_read(child, table)
    return read


async def _generic_plan_reads(db: Database, table: str, sql: str, args: tuple[Any, ...]) -> int:
    async with db.transaction() as tx:
        # The plan a prepared statement keeps once it has run a few times: one for any
        # parent and cursor.
        await tx.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await tx.execute(f"PREPARE page AS {sql}")
        values = ", ".join(str(int(value)) for value in args)
        [plan] = json.loads(
            await tx.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE page ({values})")
        )
        await tx.execute("DEALLOCATE page")
    return _rows_read(plan["Plan"], table)


@dataclass
class Case:
    table: str
    parents: Callable[[World], Awaitable[tuple[int, int, int]]]  # workspace, small one, big one
    add: str  # INSERT … SELECT of $2 rows under the parent $1, numbered n, at $3
    page: Callable[[Any, int, int], Awaitable[Any]]  # on a ``Queries``: (workspace, parent)


async def _projects(world: World) -> tuple[int, int, int]:
    workspace, _ = await world.workspace()
    small, big = [
        await world.app.state.db.fetchval(
            """INSERT INTO projects (workspace_id, name, description, created_at, updated_at)
               VALUES ($1, $2, '', now(), now()) RETURNING id""",
            workspace.id,
            name,
        )
        for name in ("Small", "Big")
    ]
    return workspace.id, small, big


async def _keys(world: World) -> tuple[int, int, int]:
    # Today's partition first: the app makes it as it starts, and a line written while it
    # is attached is refused (the log's writer keeps it for its next try; this test would
    # fail).
    for _ in range(100):
        if utcnow().date() in await partitions.partition_days(world.app.state.db):
            break
        await asyncio.sleep(0.05)
    workspace, owner = await world.workspace()
    for _ in range(2):
        await world.key(workspace, owner)
    small, big = await world.app.state.db.fetch("SELECT id FROM api_keys ORDER BY id")
    return workspace.id, small["id"], big["id"]


CASES = {
    "a project's tasks": Case(
        "tasks",
        _projects,
        """INSERT INTO tasks (workspace_id, project_id, title, status, created_at, updated_at)
           SELECT p.workspace_id, p.id, 'Task ' || n, 'todo', $3, $3
           FROM projects AS p, generate_series(1, $2) AS n WHERE p.id = $1""",
        lambda db, workspace_id, project_id: projects.list_tasks(
            db, workspace_id, project_id, 0, 51
        ),
    ),
    "a key's request log": Case(
        "key_requests",
        _keys,
        """INSERT INTO key_requests (api_key_id, at, method, path, status, code, request_id,
                                     duration_ms)
           SELECT $1, $3, 'GET', '/v1/projects', 200, 'ok', md5(n::text), 1.0
           FROM generate_series(1, $2) AS n""",
        lambda db, _, key_id: activity.list_requests(db, key_id, 2**62, 51, None, None),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_small_parents_page_reads_none_of_a_big_ones_rows(world: World, case: str) -> None:
    """The statistics see the small parent's rows only; then the big one grows past them."""
    db, now = world.app.state.db, utcnow()
    spec = CASES[case]
    workspace_id, small, big = await spec.parents(world)
    await db.execute(spec.add, small, SMALL, now)
    await db.execute(f"ANALYZE {spec.table}")
    await db.execute(spec.add, big, BIG, now)

    recording = Recording("postgresql")
    await spec.page(recording, workspace_id, small)
    (sql, args), *_ = recording.statements  # the page's (an empty one then asks for its parent)
    page = await spec.page(db, workspace_id, small)
    assert len(page) >= SMALL
    assert await _generic_plan_reads(db, spec.table, sql, args) == len(page)
