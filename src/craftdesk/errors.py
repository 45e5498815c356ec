"""Every error the API answers with, rendered as RFC 9457 problem details.

    ProblemError                       (status, code, title, detail)
    ├── Unauthorized        401        missing_credentials, malformed_credentials, invalid_key,
    │                                  key_revoked, key_expired, workspace_mismatch,
    │                                  not_signed_in, invalid_login
    ├── Forbidden           403        insufficient_scope, insufficient_role, plan_required,
    │                                  session_required, csrf_failed
    ├── NotFound            404        not_found
    ├── Conflict            409        conflict, last_owner
    ├── Unprocessable       422        validation_error (rules a schema cannot state)
    ├── QuotaExceeded       429        quota_exceeded (Retry-After)
    │   └── RateLimited     429        rate_limited: the key's own rate limit (Retry-After)
    ├── TooManyAttempts     429        too_many_attempts (Retry-After)
    └── DatabaseUnavailable 503        database_unavailable

Request validation errors, and bodies that are not even UTF-8, become 422
``validation_error``; Starlette's own HTTP errors (404 route, 405 method with an ``Allow``
header naming every method of the path, 413 body) keep their status with a matching code.
"""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from craftdesk.db import IntegrityViolation, Unavailable

logger = logging.getLogger("craftdesk.errors")

PROBLEM_JSON = "application/problem+json"
REALM = 'Bearer realm="craftdesk"'


class Problem(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str = Field(description="The HTTP status's phrase.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong and what to do about it.")
    code: str = Field(
        description="A stable machine-readable code, e.g. `invalid_key` or `quota_exceeded`."
    )


class ProblemError(Exception):
    status = 500
    code = "internal_error"
    # The existing key the problem is about (the key gate sets it): for the key's request log.
    key_id: int | None = None

    def __init__(
        self, detail: str, *, code: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.code
        self.headers = headers or {}

    def problem(self) -> dict[str, Any]:
        return problem_body(self.status, self.code, self.detail)


class Unauthorized(ProblemError):
    """401. ``token_sent`` adds ``error="invalid_token"`` to the challenge (RFC 6750)."""

    status = 401

    def __init__(self, code: str, detail: str, *, token_sent: bool = True):
        challenge = f'{REALM}, error="invalid_token"' if token_sent else REALM
        super().__init__(detail, code=code, headers={"WWW-Authenticate": challenge})


class Forbidden(ProblemError):
    status = 403


class InsufficientScope(Forbidden):
    code = "insufficient_scope"

    def __init__(self, detail: str):
        super().__init__(
            detail, headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope"'}
        )


class NotFound(ProblemError):
    status = 404
    code = "not_found"


class Conflict(ProblemError):
    status = 409
    code = "conflict"


class Unprocessable(ProblemError):
    status = 422
    code = "validation_error"


class QuotaExceeded(ProblemError):
    status = 429
    code = "quota_exceeded"
    quota: Any = None  # the workspace's Quota, for the rate-limit headers


class RateLimited(QuotaExceeded):
    code = "rate_limited"


class TooManyAttempts(ProblemError):
    status = 429
    code = "too_many_attempts"


class DatabaseUnavailable(ProblemError):
    status = 503
    code = "database_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "The database is unreachable or overloaded right now. Retry in a few seconds.",
            headers={"Retry-After": "2"},
        )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries documenting ``statuses`` as problem details (the ``Problem``
    component, which ``craftdesk.openapi`` adds to the document with the headers)."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


KEY_ROUTE_ERRORS = problem_responses(401, 403, 404, 409, 422, 429, 503)
SESSION_ROUTE_ERRORS = problem_responses(401, 403, 404, 409, 422, 429, 503)


def problem_body(status: int, code: str, detail: str) -> dict[str, Any]:
    return {
        "type": f"https://craftdesk.app/problems/{code.replace('_', '-')}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }


class ProblemResponse(JSONResponse):
    """A problem details response; it leaves its ``code`` in the request's state, where the
    request log reads it."""

    media_type = PROBLEM_JSON

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None):
        super().__init__(problem_body(status, code, detail), status_code=status, headers=headers)
        self.code = code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})["problem_code"] = self.code
        await super().__call__(scope, receive, send)


def problem_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return ProblemResponse(status, code, detail, headers)


_STARLETTE_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "Fix the request and retry. " + "; ".join(parts)


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method served at the request's path. Starlette's own ``Allow`` names only the
    first matching route's, while FastAPI makes one route per method."""
    routes = request.app.router.routes
    methods = {
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    }
    if "GET" in methods:
        methods.add("HEAD")  # served by the middleware as a GET without the body
    return ", ".join(sorted(methods))


def _routed_without_trailing_slash(request: Request) -> bool:
    """Whether the path is a route but for its trailing slash (the app redirects none)."""
    path = request.scope["path"]
    if path == "/" or not path.endswith("/"):
        return False
    scope = {**request.scope, "path": path[:-1]}
    return any(route.matches(scope)[0] is not Match.NONE for route in request.app.router.routes)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(422, "validation_error", _describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's one 400 here: a body it cannot even decode (not UTF-8). That is an
            # invalid body like any other, so it gets the same 422 as malformed JSON.
            return problem_response(
                422, "validation_error", "Fix the request and retry. body: send UTF-8 JSON."
            )
        code = _STARLETTE_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            detail = "No such route. See /v1/docs for the API reference."
            if _routed_without_trailing_slash(request):
                detail = f"No such route. Drop the trailing slash: {request.url.path[:-1]}"
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
            detail = f"This path does not take that method. Use one of: {headers['Allow']}."
        return problem_response(exc.status_code, code, detail, headers)

    @app.exception_handler(IntegrityViolation)
    async def _conflict(request: Request, exc: IntegrityViolation) -> JSONResponse:
        return problem_response(
            409, "conflict", "The request conflicts with the current state. Reload and retry."
        )

    @app.exception_handler(Unavailable)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(OSError)
    @app.exception_handler(TimeoutError)
    @app.exception_handler(PoolTimeout)  # every connection stayed taken
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, IntegrityError):
            return problem_response(
                409, "conflict", "The request conflicts with the current state. Reload and retry."
            )
        logger.warning("database unavailable: %s", type(exc).__name__)
        error = DatabaseUnavailable()
        return problem_response(error.status, error.code, error.detail, error.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return problem_response(
            500, "internal_error", "Something went wrong on our side. Retry later."
        )
