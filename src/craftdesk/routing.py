"""How a request reaches its route function: ``Route``, the route class of every router.

FastAPI builds each route from its signature as usual (the dependency tree, the validation of
path, query, cookie and body parameters, the OpenAPI document). Answering a request, though,
FastAPI 0.165 walks that tree afresh each time, re-deriving per parameter what never changes
(its kind, its alias, whether it is a list) and opening two exit stacks per request: about
70 µs of CPU for a route with three dependencies, more than its SQL. ``Route`` walks the same
tree once, when the app is built, into a plan (``_Step``) and runs the plan per request:

- the same order as FastAPI: each dependency's own dependencies first, then its parameters;
  a dependency whose parameters fail validation is not called; errors are collected and
  raised together as FastAPI's ``RequestValidationError`` (the same 422 problem);
- each dependency is called once per request (FastAPI's ``use_cache``);
- parameters are validated by FastAPI's own fields, with FastAPI's locations (``query.limit``);
- a JSON body is read and decoded as FastAPI does it (content type, ``json_invalid``).

A route the plan does not cover falls back to FastAPI's own handler: one whose function does
not answer a ``Response`` itself (it returns a model for FastAPI to serialize), or that uses a
dependency with ``yield``, a sync dependency, a ``Response`` or ``BackgroundTasks`` parameter,
a form body, or ``dependency_overrides``.
"""

import email.message
import inspect
import json
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, get_type_hints

from fastapi import Request, Response
from fastapi._compat import ModelField, Undefined
from fastapi._compat.shared import field_annotation_is_sequence
from fastapi.dependencies.models import (
    Dependant,
    _is_async_gen_callable,
    _is_coroutine_callable,
    _is_gen_callable,
)
from fastapi.dependencies.utils import (
    _get_param_aliases,
    _get_param_model,
    _validate_value_with_model_field,
    request_body_to_args,
    request_params_to_args,
)
from fastapi.exceptions import RequestValidationError
from fastapi.params import Form
from fastapi.routing import APIRoute, _extract_endpoint_context
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True, slots=True)
class _Param:
    """A path, query or cookie parameter."""

    field: ModelField
    source: str  # "path_params", "query_params", "headers" or "cookies": the Request's mapping
    alias: str | None  # None: FastAPI's general reading (a list, a model, several aliases)
    loc: tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Step:
    """A dependency (or the route function itself) and what it needs."""

    call: Callable[..., Any]
    name: str | None
    use_cache: bool
    dependencies: tuple["_Step", ...]
    params: tuple[_Param, ...]
    request_names: tuple[str, ...]  # its parameters that take the Request (or HTTPConnection)


_SOURCES = {
    "path": "path_params",
    "query": "query_params",
    "header": "headers",
    "cookie": "cookies",
}


def _param(field: ModelField) -> _Param:
    kind = field.field_info.in_.value  # type: ignore[attr-defined]
    aliases = _get_param_aliases(field, convert_underscores=kind == "header")
    simple = (
        kind != "header"
        and _get_param_model(field) is None
        and not field_annotation_is_sequence(field.field_info.annotation)
        and len(aliases) == 1
    )
    return _Param(field, _SOURCES[kind], aliases[0][1] if simple else None, (kind, aliases[0][1]))


def _plan(dependant: Dependant, *, route: bool = True) -> _Step | None:
    """The plan of ``dependant``, or ``None`` if it needs what only FastAPI's handler does
    (``route``: the route function, whose body parameters the handler reads; a dependency
    may not have any)."""
    call = dependant.call
    if (
        call is None
        or (dependant.body_params and not route)
        or not _is_coroutine_callable(call)
        or _is_gen_callable(call)
        or _is_async_gen_callable(call)
        or dependant.concurrency is not None
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or dependant.websocket_param_name
    ):
        return None
    dependencies = tuple(_plan(sub, route=False) for sub in dependant.dependencies)
    if None in dependencies:
        return None
    return _Step(
        call=call,
        name=dependant.name,
        use_cache=dependant.use_cache,
        dependencies=dependencies,  # type: ignore[arg-type]
        params=tuple(
            _param(field)
            for field in (
                *dependant.path_params,
                *dependant.query_params,
                *dependant.header_params,
                *dependant.cookie_params,
            )
        ),
        request_names=tuple(
            name
            for name in (dependant.request_param_name, dependant.http_connection_param_name)
            if name
        ),
    )


def _params(params: tuple[_Param, ...], request: Request, values: dict[str, Any]) -> list[Any]:
    errors: list[Any] = []
    for param in params:
        source: Mapping[str, Any] = getattr(request, param.source)
        if param.alias is None:
            found, failed = request_params_to_args([param.field], source)
            values.update(found)
            errors += failed
            continue
        value = source.get(param.alias)
        value, failed = _validate_value_with_model_field(
            field=param.field,
            value=Undefined if value is None else value,
            values=values,
            loc=param.loc,
        )
        if failed:
            errors += failed
        else:
            values[param.field.name] = value
    return errors


async def _solve(
    step: _Step, request: Request, solved: dict[Callable[..., Any], Any]
) -> tuple[dict[str, Any], list[Any]]:
    """The arguments of ``step.call`` (its dependencies called), and the validation errors."""
    values: dict[str, Any] = {}
    errors: list[Any] = []
    for dependency in step.dependencies:
        arguments, failed = await _solve(dependency, request, solved)
        if failed:
            errors += failed
            continue
        if dependency.use_cache and dependency.call in solved:
            value = solved[dependency.call]
        else:
            value = await dependency.call(**arguments)
            solved.setdefault(dependency.call, value)
        if dependency.name is not None:
            values[dependency.name] = value
    errors += _params(step.params, request, values)
    for name in step.request_names:
        values[name] = request
    return values, errors


def _is_json(content_type: str) -> bool:
    if content_type == "application/json":
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def _json_body(request: Request, strict_content_type: bool) -> Any:
    """The body as FastAPI's handler reads it: JSON if it says so, else the bytes."""
    try:
        body = await request.body()
        if not body:
            return Undefined
        content_type = request.headers.get("content-type")
        if (content_type and _is_json(content_type)) or (
            not content_type and not strict_content_type
        ):
            return json.loads(body)
        return body
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", exc.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": exc.msg},
                }
            ],
            body=exc.doc,
        ) from exc
    except HTTPException:
        raise
    except Exception as exc:
        raise HTTPException(400, "There was an error parsing the body") from exc


def _answers_response(call: Callable[..., Any]) -> bool:
    returns = get_type_hints(call).get("return")
    return inspect.isclass(returns) and issubclass(returns, Response)


class Route(APIRoute):
    """A route answered through its plan (see the module's docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.literal_prefix = self.path_format.split("{", 1)[0]
        plan = _plan(self.dependant) if _answers_response(endpoint) else None
        body_field = self.body_field
        if plan is None or (body_field is not None and isinstance(body_field.field_info, Form)):
            return  # FastAPI's handler, as APIRoute set it up
        fallback = self.app
        overrides = self.dependency_overrides_provider
        handler = self.guard(self.planned_handler(plan))

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if overrides is not None and getattr(overrides, "dependency_overrides", None):
                await fallback(scope, receive, send)
                return
            response = await handler(Request(scope, receive, send))
            await response(scope, receive, send)

        self.app = app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Starlette tries the routes in order, each with its path's regular expression
        and FastAPI's route context: 1-2 µs a route, 30 µs before the 22nd route answers.
        A path that does not start with the route's literal part (``/v1/projects/`` of
        ``/v1/projects/{project_id}``) is refused at once; any other goes the usual way."""
        if (
            scope["type"] == "http"
            and not scope.get("root_path")
            and not scope["path"].startswith(self.literal_prefix)
        ):
            return Match.NONE, {}
        return super().matches(scope)

    def guard(self, handler: Handler) -> Handler:
        """What runs around the route's handler, whichever answers (``KeyRoute``: the key
        check)."""
        return handler

    def get_route_handler(self) -> Handler:
        return self.guard(super().get_route_handler())

    def planned_handler(self, plan: _Step) -> Handler:
        """The request handler that runs ``plan``."""
        body_fields = self.dependant.body_params
        embed = self._embed_body_fields
        strict = bool(getattr(self.strict_content_type, "value", self.strict_content_type))
        endpoint = plan.call

        async def handler(request: Request) -> Response:
            body = Undefined
            if body_fields:
                body = await _json_body(request, strict)
            values, errors = await _solve(plan, request, {})
            if body_fields:
                found, failed = await request_body_to_args(body_fields, body, embed)
                values.update(found)
                errors += failed
            if errors:
                raise RequestValidationError(
                    errors,
                    body=None if body is Undefined else body,
                    endpoint_ctx=_extract_endpoint_context(endpoint),
                )
            response = await endpoint(**values)
            if not isinstance(response, Response):
                raise TypeError(f"{endpoint.__qualname__} must answer a Response")
            return response

        return handler
