"""API keys on requests: every key route is a ``KeyRoute``, which calls ``authenticate``.

parse header → check format (no database) → gate: look up, check state, meter → permission.
Routes declare the permission they need in their signature:
``principal: Annotated[Principal, require_permission("tasks", "write")]``.
"""

from typing import Any

from fastapi import Depends, Request, Response
from fastapi.security import HTTPBearer

from craftdesk.auth.principal import Principal
from craftdesk.auth.tokens import MalformedKey, hash_key, parse_key
from craftdesk.errors import ProblemError, QuotaExceeded, Unauthorized
from craftdesk.routing import Handler, Route

API_KEY_DESCRIPTION = (
    "An API key from Settings → Integrations → API Keys: `Authorization: Bearer cdk_…`"
)
# The OpenAPI security of a KeyRoute that declares no permission (which would document it).
API_KEY_SECURITY: dict[str, Any] = {"security": [{"ApiKey": []}]}


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, ``None`` without one."""
    header, _ = _headers(request)
    return None if header is None else _token(header)


def _token(header: str) -> str | None:
    """``Bearer 1*SP token`` (RFC 6750); any other whitespace stays in the token and makes
    it malformed."""
    scheme, _, token = header.strip(" \t").partition(" ")
    return token.strip(" ") if scheme.lower() == "bearer" else None


def _headers(request: Request) -> tuple[str | None, str | None]:
    """The Authorization and CraftDesk-Workspace headers, in one pass over the raw headers
    (ASGI servers lower-case the names; the first of a repeated header counts)."""
    authorization = workspace = None
    for name, value in request.scope["headers"]:
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"craftdesk-workspace" and workspace is None:
            workspace = value.decode("latin-1")
    return authorization, workspace


async def authenticate(request: Request) -> Principal:
    """The key of the request, checked and counted: the one place a key is validated."""
    header, workspace = _headers(request)
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
            public_id,
            hash_key(state.settings.pepper, token),
            workspace,
            request.scope["state"]["client_ip"],
        )
    except ProblemError as exc:
        request.state.key_id = exc.key_id  # an existing key's request is in its log
        if isinstance(exc, QuotaExceeded):
            request.state.quota = exc.quota
        raise
    request.state.key_id = principal.key_id
    request.state.quota = principal.quota
    return principal


class KeyRoute(Route):
    """A route answered only to an admitted API key (the route class of the key routers).

    The key is checked and metered before the body is read or the route's dependencies are
    solved, so a bad key gets its 401 whatever the body.
    """

    def guard(self, handler: Handler) -> Handler:
        async def admitted_handler(request: Request) -> Response:
            request.state.principal = await authenticate(request)
            return await handler(request)

        return admitted_handler


def admitted(request: Request) -> Principal:
    """The key ``KeyRoute`` admitted for this request."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise RuntimeError(f"{request.url.path} needs a key but is not a KeyRoute")
    return principal


class Requirement(HTTPBearer):
    """A permission a route needs, documented as the API key scheme ("Authorize")."""

    def __init__(self, resource: str, action: str):
        super().__init__(auto_error=False, scheme_name="ApiKey", description=API_KEY_DESCRIPTION)
        self.resource = resource
        self.action = action

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        principal = admitted(request)
        principal.require(self.resource, self.action)
        return principal


def require_permission(resource: str, action: str) -> Any:
    """The admitted key, if its scope and its creator's role both grant the action."""
    return Depends(Requirement(resource, action))
