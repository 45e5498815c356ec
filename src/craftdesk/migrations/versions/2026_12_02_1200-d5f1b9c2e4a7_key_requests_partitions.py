"""the request log partitioned by day on PostgreSQL, so that pruning drops a day whole

``key_requests`` becomes a table partitioned by range of ``at``: a partition per UTC day that
has lines (``key_requests_20261201``; the application creates the next days' itself:
``craftdesk.activity.partitions``) and a default partition. Its lines are copied over, ids
kept (the same sequence goes on). The primary key becomes ``(id, at)`` (a partitioned table's
must hold the partition key), the index of ``at`` a BRIN. It copies every line in one
transaction: 9-12 s a million lines measured (``bench/request_log.py``). SQLite keeps its table.

Revision ID: d5f1b9c2e4a7
Revises: aec3bd74356d
Create Date: 2026-12-02 12:00:00
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d5f1b9c2e4a7"
down_revision: str | None = "aec3bd74356d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = "id, api_key_id, at, method, path, status, code, ip, user_agent, request_id, duration_ms"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE key_requests RENAME TO key_requests_unpartitioned")
    op.execute("ALTER SEQUENCE key_requests_id_seq OWNED BY NONE")
    op.execute("ALTER TABLE key_requests_unpartitioned DROP CONSTRAINT pk_key_requests")
    op.execute("DROP INDEX ix_key_requests_api_key_id_id, ix_key_requests_at")
    op.execute(
        """CREATE TABLE key_requests (
               id bigint NOT NULL DEFAULT nextval('key_requests_id_seq'),
               api_key_id integer NOT NULL,
               at timestamp with time zone NOT NULL,
               method varchar(8) NOT NULL,
               path varchar(512) NOT NULL,
               status smallint NOT NULL,
               code varchar(32) NOT NULL,
               ip varchar(45),
               user_agent varchar(256),
               request_id varchar(64) NOT NULL,
               duration_ms double precision NOT NULL,
               CONSTRAINT pk_key_requests PRIMARY KEY (id, at),
               CONSTRAINT fk_key_requests_api_key_id_api_keys FOREIGN KEY (api_key_id)
                   REFERENCES api_keys (id) ON DELETE CASCADE
           ) PARTITION BY RANGE (at)"""
    )
    op.execute("ALTER SEQUENCE key_requests_id_seq OWNED BY key_requests.id")
    op.execute("CREATE TABLE key_requests_default PARTITION OF key_requests DEFAULT")
    days = op.get_bind().execute(
        sa.text("SELECT DISTINCT (at AT TIME ZONE 'UTC')::date FROM key_requests_unpartitioned")
    )
    for (day,) in days:
        op.execute(
            f"CREATE TABLE key_requests_{day:%Y%m%d} PARTITION OF key_requests "
            f"FOR VALUES FROM ('{day} 00:00+00') TO ('{day + dt.timedelta(days=1)} 00:00+00')"
        )
    op.execute(
        f"INSERT INTO key_requests ({COLUMNS}) SELECT {COLUMNS} FROM key_requests_unpartitioned"
    )
    op.execute("DROP TABLE key_requests_unpartitioned")
    # Built after the copy, once per partition: faster than kept up row by row.
    op.execute("CREATE INDEX ix_key_requests_api_key_id_id ON key_requests (api_key_id, id)")
    op.execute("CREATE INDEX ix_key_requests_at ON key_requests USING brin (at)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE TABLE key_requests_unpartitioned (LIKE key_requests INCLUDING DEFAULTS)")
    op.execute(
        f"INSERT INTO key_requests_unpartitioned ({COLUMNS}) SELECT {COLUMNS} FROM key_requests"
    )
    op.execute("ALTER SEQUENCE key_requests_id_seq OWNED BY NONE")
    op.execute("DROP TABLE key_requests")  # and its partitions
    op.execute("ALTER TABLE key_requests_unpartitioned RENAME TO key_requests")
    op.execute("ALTER SEQUENCE key_requests_id_seq OWNED BY key_requests.id")
    op.execute(
        """ALTER TABLE key_requests
               ADD CONSTRAINT pk_key_requests PRIMARY KEY (id),
               ADD CONSTRAINT fk_key_requests_api_key_id_api_keys FOREIGN KEY (api_key_id)
                   REFERENCES api_keys (id) ON DELETE CASCADE"""
    )
    op.execute("CREATE INDEX ix_key_requests_api_key_id_id ON key_requests (api_key_id, id)")
    op.execute("CREATE INDEX ix_key_requests_at ON key_requests (at)")
