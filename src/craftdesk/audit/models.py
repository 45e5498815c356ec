import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from craftdesk.db import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    """One recorded action. Append-only: actor and target are copied in (ids, email, name)
    rather than referenced, so the record outlives what it names. Never holds a secret."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_workspace_id_id", "workspace_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None only for a failed sign-in to a workspace that does not exist.
    workspace_id: Mapped[int | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(32))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_user_id: Mapped[int | None]
    actor_email: Mapped[str | None] = mapped_column(String(254))
    actor_key_id: Mapped[int | None]
    target_type: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[int | None]
    target_label: Mapped[str | None] = mapped_column(String(254))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    client_ip: Mapped[str | None] = mapped_column(String(45))
