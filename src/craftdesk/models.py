"""Every table, imported in one place for Alembic and the drift test."""

from craftdesk.activity.models import KeyDailyOutcome, KeyIp, KeyMinuteOutcome, KeyRequest
from craftdesk.audit.models import AuditEvent
from craftdesk.auth.models import DashboardSession, LoginThrottle
from craftdesk.db import Base
from craftdesk.keys.models import ApiKey
from craftdesk.metering.models import KeyDailyUsage, KeyRateWindow, KeyUsage, WorkspaceUsage
from craftdesk.projects.models import Project, Task
from craftdesk.workspaces.models import Membership, User, Workspace

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "DashboardSession",
    "KeyDailyOutcome",
    "KeyDailyUsage",
    "KeyIp",
    "KeyMinuteOutcome",
    "KeyRateWindow",
    "KeyRequest",
    "KeyUsage",
    "LoginThrottle",
    "Membership",
    "Project",
    "Task",
    "User",
    "Workspace",
    "WorkspaceUsage",
]
