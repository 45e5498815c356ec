"""Who is calling with a key, what the key may do, and the quota state it was admitted under."""

import datetime as dt
from collections.abc import Mapping
from typing import NamedTuple

from craftdesk.auth.permissions import effective_access, role_allows, scope_allows
from craftdesk.errors import Forbidden, InsufficientScope
from craftdesk.metering.periods import BillingPeriod


class KeyRate(NamedTuple):
    """A key's own rate limit, as of a request: ``limit`` requests per fixed window of
    ``seconds`` (aligned on the epoch, starting at ``window_start``), ``used`` of them."""

    limit: int
    seconds: int
    used: int
    window_start: int

    def seconds_left(self, now: dt.datetime) -> int:
        return max(1, self.window_start + self.seconds - int(now.timestamp()))


class Quota(NamedTuple):
    limit: int
    used: int
    period: BillingPeriod
    key_rate: KeyRate | None = None

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def raw_headers(self, now: dt.datetime) -> list[tuple[bytes, bytes]]:
        """RateLimit headers (IETF httpapi draft) and GitHub-style ``X-RateLimit-*``, as ASGI
        wants them (every key-authenticated response carries them, so no dict in between).
        A key with its own rate limit adds it as a second policy, ``"key"``."""
        remaining = self.remaining
        reset_in = self.period.seconds_left(now)
        policy = b'"billing-period";q=%d' % self.limit
        state = b'"billing-period";r=%d;t=%d' % (remaining, reset_in)
        rate = self.key_rate
        if rate is not None:
            policy += b', "key";q=%d;w=%d' % (rate.limit, rate.seconds)
            state += b', "key";r=%d;t=%d' % (
                max(0, rate.limit - rate.used),
                rate.seconds_left(now),
            )
        return [
            (b"ratelimit-policy", policy),
            (b"ratelimit", state),
            (b"x-ratelimit-limit", b"%d" % self.limit),
            (b"x-ratelimit-remaining", b"%d" % remaining),
            (b"x-ratelimit-used", b"%d" % self.used),
            (b"x-ratelimit-reset", b"%d" % self.period.end.timestamp()),
        ]


class Principal(NamedTuple):
    """An admitted key: checked, counted, with its creator's role as of this request.

    A tuple, as ``Quota``: the gate makes one per request, and a tuple is the cheapest
    immutable record to make.
    """

    key_id: int
    public_id: str
    key_name: str
    scope: str
    access: Mapping[str, str]
    project_ids: list[int] | None
    expires_at: dt.datetime | None
    user_id: int
    role: str
    workspace_id: int
    workspace_slug: str
    workspace_name: str
    plan: str
    quota: Quota

    @property
    def permissions(self) -> dict[str, str]:
        return effective_access(self.access, self.role)

    def require(self, resource: str, action: str) -> None:
        if not scope_allows(self.access, resource, action):
            raise InsufficientScope(
                f"This {self.scope} key lacks the permission {resource}:{action} "
                f"(its {resource} access is '{self.access[resource]}'). "
                "Use a key whose scope grants it."
            )
        if not role_allows(self.role, resource, action):
            raise Forbidden(
                f"The key's creator is a workspace {self.role}, and that role lacks the "
                f"permission {resource}:{action}. Ask a workspace owner or admin.",
                code="insufficient_role",
            )

    def require_project(self, project_id: int) -> None:
        if self.project_ids is not None and project_id not in self.project_ids:
            raise InsufficientScope(
                f"This key is limited to the projects {self.project_ids} and lacks access to "
                f"project {project_id}. Use a key scoped to that project."
            )

    def require_all_projects(self) -> None:
        if self.project_ids is not None:
            raise InsufficientScope(
                f"This key is limited to the projects {self.project_ids} and cannot create "
                "projects. Use a key that is not limited to projects."
            )
