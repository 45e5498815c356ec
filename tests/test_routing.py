"""Routes answer through their plan (``craftdesk.routing``) exactly as FastAPI's own handler
would: the same status, problem and body for good and bad requests alike."""

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from craftdesk.auth.bearer import KeyRoute
from craftdesk.routing import Route
from tests.conftest import World, bearer, sign_in


def planned(route: Route) -> bool:
    return getattr(route.app, "__qualname__", "").startswith("Route.__init__")


def test_the_routes_integrators_and_the_dashboard_call_are_planned(app: FastAPI) -> None:
    # Every router names ``route_class=Route``: one that forgot it would not show below.
    others = {route.path for route in app.router.routes if isinstance(route, APIRoute)} - {
        route.path for route in app.router.routes if isinstance(route, Route)
    }
    assert others == {"/healthz", "/readyz"}  # the app's own, answered by FastAPI
    routes = [route for route in app.router.routes if isinstance(route, Route)]
    assert all(planned(route) for route in routes if isinstance(route, KeyRoute))
    fallback = {
        (method, route.path) for route in routes if not planned(route) for method in route.methods
    }
    # Each returns a model for FastAPI to serialize, or sets a cookie on a Response parameter.
    assert fallback == {
        ("POST", "/v1/sessions"),
        ("GET", "/v1/sessions/current"),
        ("GET", "/v1/usage"),
    }


def unplanned(app: FastAPI) -> Callable[[], Any]:
    """Make every route fall back to FastAPI's handler (as ``dependency_overrides`` does);
    returns the undo."""

    def unused() -> None:  # pragma: no cover - never called
        raise AssertionError

    app.dependency_overrides[unused] = unused
    return app.dependency_overrides.clear


REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v1/projects", {}),
    ("GET", "/v1/projects?limit=0", {}),
    ("GET", "/v1/projects?limit=abc&cursor=x", {}),
    ("GET", "/v1/projects?limit=101", {}),
    ("GET", "/v1/projects?limit=2&limit=3", {}),
    ("GET", "/v1/projects/abc", {}),
    ("GET", "/v1/projects/1.0", {}),
    ("GET", "/v1/projects/99999999999", {}),
    ("GET", "/v1/projects/999999/tasks", {}),
    ("GET", "/v1/projects/{project}/tasks?cursor=-1", {}),
    ("POST", "/v1/projects", {"content": b"{not json"}),
    ("POST", "/v1/projects", {"content": b'{"name": "x"}'}),  # no content type
    (
        "POST",
        "/v1/projects",
        {"content": b'{"name": "x"}', "headers": {"Content-Type": "text/plain"}},
    ),
    ("POST", "/v1/projects", {"json": {"name": "x", "extra": 1}}),
    ("POST", "/v1/projects", {"json": []}),
    ("POST", "/v1/projects", {"json": {"name": ""}}),
    (
        "POST",
        "/v1/projects",
        {
            "content": b'{"name": "Same"}',
            "headers": {"Content-Type": "application/merge-patch+json"},
        },
    ),
    ("POST", "/v1/projects/{project}/tasks", {"json": {"title": "t", "status": "nope"}}),
    ("PATCH", "/v1/projects/{project}", {"json": {"name": None}}),
    ("PATCH", "/v1/projects/{project}", {}),
    ("GET", "/v1/members?limit=-5", {}),
    ("GET", "/v1/api-keys?limit=1000", {"session": True}),
    ("GET", "/v1/api-keys/0", {"session": True}),
    ("PATCH", "/v1/api-keys/{key}", {"session": True, "json": {"rate_limit": {"requests": 0}}}),
    ("GET", "/v1/api-keys/{key}/requests?status=abc", {"session": True}),
]


async def test_planned_answers_equal_fastapis_own(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace(plan="business")
    key = await world.key(workspace, owner)
    project = (await client.post("/v1/projects", json={"name": "P"}, headers=bearer(key))).json()
    csrf = await sign_in(client, workspace, owner)
    key_id = (await client.get("/v1/api-keys")).json()["data"][0]["id"]

    async def answer(method: str, path: str, options: dict[str, Any]) -> tuple[int, Any]:
        options = dict(options)
        headers = dict(options.pop("headers", {}))
        headers.update(csrf if options.pop("session", False) else bearer(key))
        url = path.format(project=project["id"], key=key_id)
        response = await client.request(method, url, headers=headers, **options)
        body = response.json() if response.content else None
        if isinstance(body, dict):  # what differs between two creations
            for varying in ("id", "created_at", "updated_at"):
                body.pop(varying, None)
        return response.status_code, body

    # Each request twice in a row, planned then FastAPI's: what one changes, the other sees.
    statuses = set()
    for request in REQUESTS:
        mine = await answer(*request)
        statuses.add(mine[0])
        undo = unplanned(app)
        try:
            theirs = await answer(*request)
        finally:
            undo()
        assert mine == theirs, request
        assert mine[0] != 500, request
    assert {200, 201, 404, 422} <= statuses


PATHS = [
    "/",
    "/healthz",
    "/v1",
    "/v1/",
    "/v1/projects",
    "/v1/projects/",
    "/v1/projects/7",
    "/v1/projects/7/",
    "/v1/projects/abc/tasks",
    "/v1/projects/7/tasks/8",
    "/v1/projects7",
    "/v1/members/3",
    "/v1/api-keys",
    "/v1/api-keys/5/usage",
    "/v1/api-keys/5/rotate",
    "/v1/sessions/current",
    "/dashboard",
    "/dashboard/",
    "/dashboard/static/app.js",
    "/v1/docs/swagger-ui.css",
    "/v1/openapi.json",
    "/V1/PROJECTS",
]


def test_a_route_refuses_at_once_only_paths_its_pattern_refuses(app: FastAPI) -> None:
    """``Route.matches`` skips the regular expression for a path outside the route's literal
    prefix: every route must still match (fully or by path only) what FastAPI's own
    ``APIRoute.matches`` matches, for each method."""
    routes = [route for route in app.router.routes if isinstance(route, Route)]
    for route in routes:
        for path in PATHS:
            for method in ("GET", "POST", "PATCH", "DELETE"):
                scope = {"type": "http", "path": path, "method": method, "root_path": ""}
                ours, theirs = route.matches(scope), APIRoute.matches(route, scope)
                assert ours[0] == theirs[0], (route.path, path, method)
                assert ours[1] == theirs[1], (route.path, path, method)
