import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from craftdesk.metering.periods import BillingPeriod
from tests.conftest import _asyncpg_dsn

UTC = dt.UTC
instants = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(UTC)
)


def test_anchor_on_the_31st_clamps_like_stripe() -> None:
    anchor = dt.datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
    starts = []
    instant = anchor
    for _ in range(4):
        period = BillingPeriod.containing(anchor, instant)
        starts.append(period.start)
        instant = period.end
    assert starts == [
        dt.datetime(2026, 1, 31, 9, 30, tzinfo=UTC),
        dt.datetime(2026, 2, 28, 9, 30, tzinfo=UTC),
        dt.datetime(2026, 3, 31, 9, 30, tzinfo=UTC),
        dt.datetime(2026, 4, 30, 9, 30, tzinfo=UTC),
    ]


def test_leap_year_february_ends_on_the_29th() -> None:
    anchor = dt.datetime(2028, 1, 30, tzinfo=UTC)
    period = BillingPeriod.containing(anchor, dt.datetime(2028, 2, 15, tzinfo=UTC))
    assert period.end == dt.datetime(2028, 2, 29, tzinfo=UTC)
    assert period.start == anchor


def test_boundary_instant_opens_the_new_period() -> None:
    anchor = dt.datetime(2026, 3, 15, 12, tzinfo=UTC)
    boundary = dt.datetime(2026, 4, 15, 12, tzinfo=UTC)
    assert BillingPeriod.containing(anchor, boundary).start == boundary
    just_before = boundary - dt.timedelta(microseconds=1)
    assert BillingPeriod.containing(anchor, just_before).end == boundary


@given(anchor=instants, instant=instants)
def test_period_contains_the_instant_and_starts_on_the_anchor_day(
    anchor: dt.datetime, instant: dt.datetime
) -> None:
    period = BillingPeriod.containing(anchor, instant)
    assert period.start <= instant < period.end
    assert 28 <= (period.end - period.start).days <= 31
    assert period.start.time() == anchor.time()
    assert (
        period.start.day == anchor.day
        or period.start.day < anchor.day
        and ((period.start + dt.timedelta(days=1)).day == 1)
    )


@given(anchor=instants, instant=instants)
def test_next_period_begins_where_this_one_ends(anchor: dt.datetime, instant: dt.datetime) -> None:
    period = BillingPeriod.containing(anchor, instant)
    following = BillingPeriod.containing(anchor, period.end)
    assert following.start == period.end
    assert following.end > following.start


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
async def postgres(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    # A session time zone far from UTC: the periods must not depend on it.
    connection = await asyncpg.connect(
        _asyncpg_dsn(database_url), server_settings={"TimeZone": "Pacific/Kiritimati"}
    )
    yield connection
    await connection.close()


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(anchor=instants, instant=instants)
@example(  # the 31st, clamped to February's end in a leap year
    anchor=dt.datetime(2026, 1, 31, 9, 30, tzinfo=UTC), instant=dt.datetime(2028, 3, 1, tzinfo=UTC)
)
@example(  # the boundary instant opens the new period
    anchor=dt.datetime(2026, 3, 15, 12, tzinfo=UTC),
    instant=dt.datetime(2026, 4, 15, 12, tzinfo=UTC),
)
@example(  # one microsecond before it
    anchor=dt.datetime(2026, 3, 15, 12, tzinfo=UTC),
    instant=dt.datetime(2026, 4, 15, 11, 59, 59, 999999, tzinfo=UTC),
)
async def test_postgresql_counts_in_the_same_period_as_python(
    postgres: asyncpg.Connection, anchor: dt.datetime, instant: dt.datetime
) -> None:
    """The key gate meters on PostgreSQL with the period PostgreSQL computes; the usage
    routes read it back with the period Python computes. They must be the same row."""
    start = await postgres.fetchval("SELECT billing_period_start($1, $2)", anchor, instant)
    assert start == BillingPeriod.containing(anchor, instant).start
