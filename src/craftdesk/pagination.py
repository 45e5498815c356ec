"""Cursor pagination: ``{"data": [...], "next_cursor": ...}`` with ``limit`` ≤ 100."""

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from craftdesk.schemas import MAX_ID

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None


class PageParams(BaseModel):
    limit: int = 50
    cursor: str | None = None


def page_params(
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page, at most 100.")] = 50,
    cursor: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{1,18}$", description="`next_cursor` of the previous page."),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


async def paginate(
    session: AsyncSession,
    stmt: Select[*tuple[Any, ...]],
    id_column: InstrumentedAttribute[int],
    params: PageParams,
    *,
    newest_first: bool = False,
) -> tuple[list[Any], str | None]:
    """One page of ``stmt`` ordered by ``id_column``, and the cursor of the next page."""
    if params.cursor is not None:
        after = int(params.cursor)
        # Ids are 32-bit: a cursor past the largest is past every row, and must not reach
        # PostgreSQL as an out-of-range integer.
        if after <= MAX_ID:
            stmt = stmt.where(id_column < after if newest_first else id_column > after)
        elif not newest_first:
            return [], None
    stmt = stmt.order_by(id_column.desc() if newest_first else id_column).limit(params.limit + 1)
    rows = list((await session.execute(stmt)).all())
    has_more = len(rows) > params.limit
    rows = rows[: params.limit]
    next_cursor = None
    if has_more:
        last = rows[-1][0]
        next_cursor = str(getattr(last, id_column.key, last))
    return rows, next_cursor
