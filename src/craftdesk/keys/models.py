import datetime as dt
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from craftdesk.db import Base, UTCDateTime, utcnow

SCOPES = ("full", "read_only", "custom")


class ApiKey(Base):
    """An issued key. Only the HMAC of the full key string is stored, never the key."""

    __tablename__ = "api_keys"
    __table_args__ = (
        Index("ix_api_keys_workspace_id_created_at", "workspace_id", "created_at"),
        # The dashboard's list: a workspace's keys, newest (highest id) first.
        Index("ix_api_keys_workspace_id_id", "workspace_id", "id"),
        CheckConstraint("scope IN ('full', 'read_only', 'custom')", name="scope"),
        {"sqlite_autoincrement": True},  # an id is never handed out twice
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    created_by_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # The membership the key acts for: the key works only while that very membership exists.
    # Removing the member ends it for good; adding the same person back makes a new one.
    membership_id: Mapped[int | None] = mapped_column(
        ForeignKey("memberships.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    last_four: Mapped[str] = mapped_column(String(4))
    scope: Mapped[str] = mapped_column(String(16))
    permissions: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    project_ids: Mapped[list[int] | None] = mapped_column(JSON)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Where and with what the key was last used (as coarse as last_used_at).
    last_used_ip: Mapped[str | None] = mapped_column(String(45))
    last_used_user_agent: Mapped[str | None] = mapped_column(String(256))
    # The last time the key was tried while revoked or expired, and since when it has been
    # (within 24 h of each other): a ``revoked_in_use`` alert's source.
    last_refused_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    refused_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Why: "revoked" (by a person), "member_removed", "rotated" or "leaked" (found in public).
    revoked_reason: Mapped[str | None] = mapped_column(String(16))
    # Where a leaked key was found in public (GitHub's secret scanning alert), if said.
    leaked_url: Mapped[str | None] = mapped_column(Text)
    # CIDR ranges the key may be used from (a JSON array); NULL: anywhere.
    allowed_ips: Mapped[list[str] | None] = mapped_column(JSON)
    # The key's own rate limit: at most rate_limit_requests per fixed window of
    # rate_limit_seconds; NULL: none.
    rate_limit_requests: Mapped[int | None] = mapped_column(Integer)
    rate_limit_seconds: Mapped[int | None] = mapped_column(Integer)
    # Unique: a key is rotated (has a successor) once at most.
    rotated_from_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), unique=True)
