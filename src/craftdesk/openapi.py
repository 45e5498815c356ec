"""The OpenAPI document at ``/v1/openapi.json``: what FastAPI derives from the routes, plus
what the routes cannot say, so that client generators (openapi-python-client,
openapi-typescript) and linters (Spectral, Redocly) take it as it is.

- **Operation ids** are the route function's name, which reads as a method name
  (``list_projects``); ``OPERATION_IDS`` renames the few that do not.
- **Problem**: every error response refers to one ``Problem`` component (``errors.py``).
- **Response headers**, documented by status and credentials, as the middleware and the
  error classes set them: the quota headers on every counted response to an API key (not on
  its 401s, nor on a 403 refused before counting), ``WWW-Authenticate`` on 401 and 403,
  ``Retry-After`` on 429 and 503. A route that sets ``Cache-Control`` says so itself
  (``no_store``). Headers a response always carries are ``required``.
- **Public operations** say ``security: []`` (``PUBLIC``); every other one names its scheme.
- **Credentials**: each operation's description ends with what it needs, down to the
  permission a key route declares (``require_permission``).
"""

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from craftdesk.auth.bearer import Requirement
from craftdesk.errors import Problem

# Route function names that do not read as a client's method name.
OPERATION_IDS = {
    "healthz": "get_health",
    "readyz": "get_readiness",
    "calling_key": "get_calling_key",
    "current_session": "get_current_session",
    "create_key": "create_api_key",
    "list_keys": "list_api_keys",
    "get_key": "get_api_key",
    "update_key": "update_api_key",
    "key_usage": "get_api_key_usage",
    "key_requests": "list_api_key_requests",
    "revoke_key": "revoke_api_key",
    "rotate_key": "rotate_api_key",
    "get_usage": "get_workspace_usage",
    "dashboard_projects": "list_dashboard_projects",
}

TAGS: list[dict[str, Any]] = [
    {"name": "health", "description": "Probes for load balancers and orchestrators; public."},
    {
        "name": "auth",
        "description": "The calling API key: its permissions, its workspace and the quota.",
    },
    {"name": "projects", "description": "Projects and their tasks (API key)."},
    {"name": "members", "description": "The workspace's team members (API key)."},
    {
        "name": "sessions",
        "description": "Dashboard sign-in: a session cookie, and a CSRF token for unsafe requests.",
    },
    {
        "name": "api-keys",
        "description": "Key management, from a signed-in dashboard session: generate, list, "
        "rename, rotate and revoke keys, and read their usage.",
    },
    {
        "name": "usage",
        "description": "The workspace's plan and quota this billing period (signed-in session).",
    },
    {"name": "audit", "description": "The workspace's audit trail (signed-in owners and admins)."},
    {
        "name": "secret-scanning",
        "description": "Alerts from GitHub's secret scanning partner program: keys found in "
        "public are revoked at once (signed by GitHub; no key, no session).",
    },
    {"name": "dashboard", "description": "Reads the web dashboard needs (signed-in session)."},
]

# Relative: the server that serves this document (RFC 3986 reference, OpenAPI 3.1 §4.8.5).
SERVERS = [{"url": "/", "description": "The server this document comes from"}]

PUBLIC: dict[str, Any] = {"security": []}

_QUOTA_HEADERS = {
    "RateLimit-Policy": (
        "string",
        'The quota: `"billing-period";q=<requests per billing period>` (IETF httpapi '
        "RateLimit header fields draft).",
    ),
    "RateLimit": (
        "string",
        '`"billing-period";r=<requests remaining>;t=<seconds until the period resets>`.',
    ),
    "X-RateLimit-Limit": ("integer", "Requests allowed this billing period."),
    "X-RateLimit-Remaining": ("integer", "Requests left this billing period."),
    "X-RateLimit-Used": ("integer", "Requests counted this billing period."),
    "X-RateLimit-Reset": ("integer", "When the billing period resets, in epoch seconds."),
}
_CHALLENGE = (
    'The Bearer challenge (RFC 6750): `Bearer realm="craftdesk"`, with `error="invalid_token"` '
    "when a token was sent"
)
# Components by name; a response names its header after the HTTP header it documents.
HEADERS: dict[str, dict[str, Any]] = {
    **{
        name: {"description": description, "required": True, "schema": {"type": kind}}
        for name, (kind, description) in _QUOTA_HEADERS.items()
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
    "Challenge": {
        "description": f"{_CHALLENGE}.",
        "required": True,
        "schema": {"type": "string"},
    },
    "ScopeChallenge": {
        "description": 'When the key\'s scope lacks the permission: `Bearer realm="craftdesk", '
        'error="insufficient_scope"` (RFC 6750).',
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": "`no-store`: the response holds a secret; keep no copy.",
        "required": True,
        "schema": {"type": "string", "enum": ["no-store"]},
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def no_store(status: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route whose ``status`` answer carries ``Cache-Control: no-store``."""
    return {status: {"headers": {"Cache-Control": _ref("Cache-Control")}}}


def name_operations(routes: list[BaseRoute]) -> None:
    """Give each documented route its operation id (``OPERATION_IDS`` or its function's name)."""
    for route in routes:
        if isinstance(route, APIRoute) and route.include_in_schema and not route.operation_id:
            route.operation_id = OPERATION_IDS.get(route.name, route.name)


def _permissions(dependant: Dependant) -> list[str]:
    """The ``resource:action`` permissions the route's dependencies require."""
    found = []
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, Requirement):
            found.append(f"`{dependency.call.resource}:{dependency.call.action}`")
        found += _permissions(dependency)
    return found


def _credentials(route: APIRoute, method: str, operation: dict[str, Any]) -> str:
    schemes = {name for entry in operation.get("security", []) for name in entry}
    if "ApiKey" in schemes:
        needed = _permissions(route.dependant)
        if not needed:
            return "**Credentials**: an API key, of any scope."
        return (
            "**Credentials**: an API key whose scope, and its creator's role, grant "
            f"{' and '.join(needed)}."
        )
    if "DashboardSession" in schemes:
        csrf = "" if method in ("GET", "HEAD") else ", and its CSRF token in `X-CSRF-Token`"
        return f"**Credentials**: a signed-in dashboard session (its cookie){csrf}."
    return "**Credentials**: none; public."


def _describe_credentials(document: dict[str, Any], routes: list[BaseRoute]) -> None:
    for route in routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in route.methods or ():
                operation = document["paths"][route.path_format][method.lower()]
                said = _credentials(route, method, operation)
                description = operation.get("description")
                operation["description"] = f"{description}\n\n{said}" if description else said


def _headers_for(status: str, key_route: bool) -> dict[str, Any]:
    """The headers of a ``status`` response, by HTTP header name."""
    headers: dict[str, Any] = {}
    if status == "401":
        headers["WWW-Authenticate"] = _ref("Challenge")
    elif key_route and status == "403":
        # A 403 for scope or role was counted, and says so; one refused before counting
        # (plan_required) was not and carries no quota.
        headers |= {
            name: {**HEADERS[name], "required": False, "description": f"{description} "
                   "Sent when the request was counted (a 403 for scope or role)."}
            for name, (_, description) in _QUOTA_HEADERS.items()
        }  # fmt: skip
        headers["WWW-Authenticate"] = _ref("ScopeChallenge")
    elif key_route and status != "503":
        headers |= {name: _ref(name) for name in _QUOTA_HEADERS}  # every counted answer
    if status in ("429", "503"):
        headers["Retry-After"] = _ref("Retry-After")
    return headers


def _document_headers(operation: dict[str, Any]) -> None:
    key_route = any("ApiKey" in entry for entry in operation.get("security", []))
    for status, response in operation["responses"].items():
        headers = _headers_for(status, key_route)
        if headers:
            response["headers"] = {**headers, **response.get("headers", {})}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The document, made once per app."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=TAGS,
            servers=SERVERS,
        )
        components = document["components"]
        components["schemas"]["Problem"] = Problem.model_json_schema()
        components["headers"] = HEADERS
        for path_item in document["paths"].values():
            for operation in path_item.values():
                _document_headers(operation)
        _describe_credentials(document, app.routes)
        app.openapi_schema = document
    return app.openapi_schema
