"""Cursor pagination: ``{"data": [...], "next_cursor": ...}`` with ``limit`` ≤ 100.

A page's query asks for ``limit + 1`` rows after (or, newest first, before) the cursor's id
(``after``, ``up_to``);
``page`` keeps ``limit`` of them and makes the next cursor from the last one kept.
"""

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from craftdesk.db import Row
from craftdesk.schemas import MAX_ID

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None


class PageParams(BaseModel):
    limit: int = 50
    cursor: str | None = None

    @property
    def after(self) -> int:
        """The id the page starts after, oldest first (past ``MAX_ID``: past every row)."""
        return 0 if self.cursor is None else min(int(self.cursor), MAX_ID)

    @property
    def up_to(self) -> int:
        """The largest id the page may hold, newest first (ids are 32-bit on PostgreSQL)."""
        return MAX_ID if self.cursor is None else min(int(self.cursor) - 1, MAX_ID)

    @property
    def fetch(self) -> int:
        """How many rows a page's query asks for: one more tells whether another page follows."""
        return self.limit + 1


async def page_params(
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page, at most 100.")] = 50,
    cursor: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{1,18}$", description="`next_cursor` of the previous page."),
    ] = None,
) -> PageParams:
    # async: FastAPI runs a plain function dependency in its thread pool.
    return PageParams.model_construct(limit=limit, cursor=cursor)


Pagination = Annotated[PageParams, Depends(page_params)]


def page(
    rows: Sequence[Row], params: PageParams, item: Callable[[Row], Any] = dict
) -> dict[str, Any]:
    """The page of ``rows`` (a query's ``params.fetch`` rows, each with an ``id``), each
    made an item by ``item`` (by default the row as it is, as a dict)."""
    kept = rows[: params.limit]
    next_cursor = str(kept[-1]["id"]) if len(rows) > params.limit else None
    return {"data": [item(row) for row in kept], "next_cursor": next_cursor}
