"""The Bearer dependency: every key-authenticated request goes through ``authenticate``.

parse header → check format (no database) → gate: look up, check state, meter → permission.
Routes declare what they need:
``principal: Annotated[Principal, require_permission("tasks", "write")]``.
"""

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from craftdesk.auth.principal import Principal
from craftdesk.auth.tokens import MalformedKey, hash_key, parse_key
from craftdesk.errors import QuotaExceeded, Unauthorized

WORKSPACE_HEADER = "craftdesk-workspace"


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, ``None`` without one."""
    header = request.headers.get("authorization")
    return None if header is None else _token(header)


def _token(header: str) -> str | None:
    """``Bearer 1*SP token`` (RFC 6750); any other whitespace stays in the token and makes
    it malformed."""
    scheme, _, token = header.strip(" \t").partition(" ")
    return token.strip(" ") if scheme.lower() == "bearer" else None


class ApiKeyBearer(HTTPBearer):
    """The API key scheme in OpenAPI ("Authorize" in the docs), and the check itself.

    One dependency rather than the scheme plus a function depending on it: each level of
    FastAPI dependencies costs every request some microseconds.
    """

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        headers = request.headers
        header = headers.get("authorization")
        if header is None or not header.strip():
            raise Unauthorized(
                "missing_credentials",
                "Send your API key in the Authorization header: 'Authorization: Bearer <key>'.",
                token_sent=False,
            )
        token = _token(header)
        if token is None:
            raise Unauthorized(
                "missing_credentials",
                "Only Bearer API keys are accepted. Send 'Authorization: Bearer <key>'.",
                token_sent=False,
            )
        try:
            public_id = parse_key(token)
        except MalformedKey:
            raise Unauthorized(
                "malformed_credentials",
                "The Authorization header must be 'Bearer <key>' with a whole CraftDesk key "
                "(cdk_…). Check for a missing, cut or extra character.",
            ) from None
        state = request.app.state
        try:
            principal: Principal = await state.gate.admit(
                public_id, hash_key(state.settings.pepper, token), headers.get(WORKSPACE_HEADER)
            )
        except QuotaExceeded as exc:
            request.state.quota = exc.quota
            raise
        request.state.quota = principal.quota
        return principal


authenticate = ApiKeyBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from Settings → Integrations → API Keys: `Authorization: Bearer cdk_…`",
)

Authenticated = Annotated[Principal, Depends(authenticate)]


def require_permission(resource: str, action: str) -> Any:
    """A dependency admitting keys whose scope and creator's role both grant the action."""

    async def dependency(principal: Authenticated) -> Principal:
        principal.require(resource, action)
        return principal

    return Depends(dependency)
