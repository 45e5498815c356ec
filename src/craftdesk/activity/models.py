import datetime as dt

from sqlalchemy import (
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from craftdesk.db import Base, UTCDateTime


class KeyRequest(Base):
    """One request that presented an existing key, whatever its outcome: the key's request
    log (never a secret, never a body). Written in batches off the request's path.

    On PostgreSQL the table is partitioned by day of ``at`` (``craftdesk.activity.partitions``,
    migration ``d5f1b9c2e4a7``), so its primary key is ``(id, at)``: a partitioned table's
    unique keys must hold the partition key. ``id`` stays unique (one sequence) and the pages
    of a key's log still go by ``id``, on the index ``(api_key_id, id)`` of every partition.
    There the index of ``at`` is a BRIN (some kilobytes a million lines): only the default
    partition's pruning reads it.
    """

    __tablename__ = "key_requests"
    __table_args__ = (
        Index("ix_key_requests_api_key_id_id", "api_key_id", "id"),
        Index("ix_key_requests_at", "at", postgresql_using="brin"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))
    status: Mapped[int] = mapped_column(SmallInteger)
    code: Mapped[str] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(256))
    request_id: Mapped[str] = mapped_column(String(64))
    duration_ms: Mapped[float] = mapped_column(Float)


class KeyDailyOutcome(Base):
    """How one key's requests ended on one UTC day, by code (``ok`` for 2xx/3xx)."""

    __tablename__ = "key_daily_outcomes"

    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)


class KeyIp(Base):
    """An address a key was used from: first and last seen (a ``new_ip`` alert's source).
    An address not seen for 30 days starts over as new."""

    __tablename__ = "key_ips"
    __table_args__ = (
        # The key list's ``new_ip`` hint: a key's newest address, and its first one.
        Index("ix_key_ips_api_key_id_first_seen", "api_key_id", "first_seen"),
    )

    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    ip: Mapped[str] = mapped_column(String(45), primary_key=True)
    first_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class KeyMinuteOutcome(Base):
    """A key's requests, and those of them answered 401 or 403, per minute (epoch // 60), kept
    two hours: a ``failing`` alert's source."""

    __tablename__ = "key_minute_outcomes"
    __table_args__ = (
        # The key list's ``failing`` hint: the minutes with refused requests only.
        Index(
            "ix_key_minute_outcomes_refused",
            "api_key_id",
            "minute",
            sqlite_where=text("failed > 0"),
            postgresql_where=text("failed > 0"),
        ),
    )

    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
