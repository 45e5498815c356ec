"""billing period functions in PostgreSQL

The key gate meters a batch in one statement, so PostgreSQL itself finds each workspace's
billing period from its anchor, as ``craftdesk.metering.periods.BillingPeriod`` does: in UTC,
whole months from the anchor, a day past the month's end clamped to its last day (PostgreSQL's
``timestamp + interval 'n months'`` clamps that way). Written as plain expressions, so the
planner inlines them. SQLite has no SQL functions: its gate computes the period in Python.

Revision ID: 3c1d7e9a5b20
Revises: f0a50b2c8b9c
Create Date: 2026-11-27 21:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3c1d7e9a5b20"
down_revision: str | None = "f0a50b2c8b9c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = [
    (
        "billing_months(anchor timestamp, instant timestamp)",
        "integer",
        "SELECT ((date_part('year', instant) - date_part('year', anchor)) * 12"
        " + date_part('month', instant) - date_part('month', anchor))::integer",
    ),
    (
        "billing_period_start_utc(anchor timestamp, instant timestamp)",
        "timestamp",
        "SELECT anchor + make_interval(months => billing_months(anchor, instant)"
        " - (anchor + make_interval(months => billing_months(anchor, instant)) > instant)::integer)",
    ),
    (
        "billing_period_start(anchor timestamptz, instant timestamptz)",
        "timestamptz",
        "SELECT billing_period_start_utc(anchor AT TIME ZONE 'UTC', instant AT TIME ZONE 'UTC')"
        " AT TIME ZONE 'UTC'",
    ),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for signature, returns, body in FUNCTIONS:
        op.execute(
            f"CREATE FUNCTION {signature} RETURNS {returns} "
            f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ {body} $$"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for signature, _, _ in reversed(FUNCTIONS):
        op.execute(f"DROP FUNCTION {signature}")
