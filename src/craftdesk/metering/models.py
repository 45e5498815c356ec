import datetime as dt

from sqlalchemy import BigInteger, Date, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from craftdesk.db import Base, UTCDateTime


class WorkspaceUsage(Base):
    """Requests admitted for a workspace in one billing period: the number the quota caps."""

    __tablename__ = "workspace_usage"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    period_start: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)


class KeyUsage(Base):
    """Requests one key made in one billing period (these add up to the workspace's)."""

    __tablename__ = "key_usage"

    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    period_start: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)


class KeyDailyUsage(Base):
    """Requests one key made on one UTC day: the per-day series of the usage chart."""

    __tablename__ = "key_daily_usage"

    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)


class KeyRateWindow(Base):
    """Requests one key was admitted in one window of its rate limit (fixed windows, aligned
    on the epoch: ``window_start`` is a multiple of the limit's seconds)."""

    __tablename__ = "key_rate_windows"

    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch seconds
    requests: Mapped[int] = mapped_column(Integer, default=0)
