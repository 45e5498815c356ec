"""The OpenAPI document is good enough to generate clients from: one Problem component,
operation ids that read as method names, enums in responses, the response headers, servers,
explicit public operations, described tags, and request bodies that do not require what has
a default."""

import re
from collections.abc import Iterator
from typing import Any

import httpx

from tests.conftest import World, bearer

# Clients are generated with these method names: renaming one breaks them.
STABLE_OPERATION_IDS = {
    ("GET", "/healthz"): "get_health",
    ("GET", "/readyz"): "get_readiness",
    ("GET", "/v1/auth/key"): "get_calling_key",
    ("GET", "/v1/projects"): "list_projects",
    ("POST", "/v1/projects"): "create_project",
    ("GET", "/v1/projects/{project_id}"): "get_project",
    ("PATCH", "/v1/projects/{project_id}"): "update_project",
    ("DELETE", "/v1/projects/{project_id}"): "delete_project",
    ("GET", "/v1/projects/{project_id}/tasks"): "list_tasks",
    ("POST", "/v1/projects/{project_id}/tasks"): "create_task",
    ("GET", "/v1/projects/{project_id}/tasks/{task_id}"): "get_task",
    ("PATCH", "/v1/projects/{project_id}/tasks/{task_id}"): "update_task",
    ("DELETE", "/v1/projects/{project_id}/tasks/{task_id}"): "delete_task",
    ("GET", "/v1/members"): "list_members",
    ("GET", "/v1/members/{member_id}"): "get_member",
    ("PATCH", "/v1/members/{member_id}"): "update_member",
    ("DELETE", "/v1/members/{member_id}"): "delete_member",
    ("POST", "/v1/sessions"): "sign_in",
    ("GET", "/v1/sessions/current"): "get_current_session",
    ("DELETE", "/v1/sessions/current"): "sign_out",
    ("POST", "/v1/api-keys"): "create_api_key",
    ("GET", "/v1/api-keys"): "list_api_keys",
    ("GET", "/v1/api-keys/{key_id}"): "get_api_key",
    ("PATCH", "/v1/api-keys/{key_id}"): "update_api_key",
    ("DELETE", "/v1/api-keys/{key_id}"): "revoke_api_key",
    ("GET", "/v1/api-keys/{key_id}/usage"): "get_api_key_usage",
    ("POST", "/v1/api-keys/{key_id}/rotate"): "rotate_api_key",
    ("GET", "/v1/usage"): "get_workspace_usage",
    ("GET", "/v1/audit-events"): "list_audit_events",
    ("GET", "/v1/dashboard/projects"): "list_dashboard_projects",
    ("POST", "/v1/secret-scanning/github"): "revoke_leaked_keys",
}
VERBS = ("get", "list", "create", "update", "delete", "revoke", "rotate", "sign")
QUOTA_HEADERS = {
    "RateLimit",
    "RateLimit-Policy",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Used",
    "X-RateLimit-Reset",
}
PUBLIC_OPERATIONS = {"get_health", "get_readiness", "sign_in", "revoke_leaked_keys"}


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {operation["operationId"]: operation for _, _, operation in operations(document)}


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def header_names(response: dict[str, Any]) -> set[str]:
    return set(response.get("headers", {}))


def test_every_error_response_refers_to_the_one_problem_component(
    document: dict[str, Any],
) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert problem["required"] == ["type", "title", "status", "detail", "code"]
    errors = 0
    for _, _, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                errors += 1
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }
    assert errors > 100
    inlined = [node for node in walk(document["paths"]) if node.get("title") == "Problem"]
    assert inlined == []


def test_operation_ids_read_as_method_names_are_unique_and_stable(
    document: dict[str, Any],
) -> None:
    ids = {(method, path): op["operationId"] for method, path, op in operations(document)}
    assert len(set(ids.values())) == len(ids)
    for operation_id in ids.values():
        assert re.fullmatch(r"[a-z]+(_[a-z]+)+", operation_id), operation_id
        assert operation_id.split("_")[0] in VERBS, operation_id
    assert {key: ids.get(key) for key in STABLE_OPERATION_IDS} == STABLE_OPERATION_IDS


def test_responses_state_their_enums(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    def enum(schema: str, field: str) -> list[str]:
        return list(schemas[schema]["properties"][field]["enum"])

    assert enum("CallingKey", "scope") == ["full", "read_only", "custom"]
    assert enum("CallingKey", "role") == ["owner", "admin", "member"]
    assert enum("KeyOut", "scope") == ["full", "read_only", "custom"]
    assert enum("KeyOut", "status") == ["active", "expired", "revoked"]
    assert enum("MemberOut", "role") == ["owner", "admin", "member"]
    assert enum("SessionOut", "role") == ["owner", "admin", "member"]
    assert enum("TaskOut", "status") == ["todo", "doing", "done"]
    for schema in ("WorkspaceRef", "WorkspaceOut", "WorkspaceUsageOut"):
        assert enum(schema, "plan") == ["free", "pro", "business"]
    for resource in ("projects", "tasks", "members"):
        assert enum("ResourceAccess", resource) == ["none", "read", "write"]
    for schema in ("CallingKey", "KeyOut"):
        permissions = schemas[schema]["properties"]["permissions"]
        assert permissions.get("$ref") == "#/components/schemas/ResourceAccess", permissions


def test_key_routes_document_the_quota_headers_on_every_counted_answer(
    document: dict[str, Any],
) -> None:
    key_routes = [op for _, _, op in operations(document) if op["security"] == [{"ApiKey": []}]]
    assert len(key_routes) == 15
    for operation in key_routes:
        for status, response in operation["responses"].items():
            if status in ("401", "503"):
                assert not QUOTA_HEADERS & header_names(response), (operation, status)
            else:
                assert header_names(response) >= QUOTA_HEADERS, (operation, status)
        forbidden = operation["responses"]["403"]["headers"]
        assert "WWW-Authenticate" in forbidden
        # a 403 refused before counting (plan_required) carries no quota
        assert not any(forbidden[name]["required"] for name in QUOTA_HEADERS)
    headers = document["components"]["headers"]
    assert all(headers[name]["required"] for name in QUOTA_HEADERS)


def test_challenges_retry_after_and_no_store_are_documented(document: dict[str, Any]) -> None:
    operations_by_id = by_id(document)
    for operation_id, operation in operations_by_id.items():
        responses = operation["responses"]
        if "401" in responses:
            assert responses["401"]["headers"]["WWW-Authenticate"] == {
                "$ref": "#/components/headers/Challenge"
            }
        for status in ("429", "503"):
            if status in responses:
                assert "Retry-After" in header_names(responses[status]), operation_id
    no_store = {
        "create_api_key": "201",
        "rotate_api_key": "201",
        "sign_in": "201",
        "get_current_session": "200",
    }
    for operation_id, status in no_store.items():
        response = operations_by_id[operation_id]["responses"][status]
        cache_control = response["headers"]["Cache-Control"]
        assert cache_control == {"$ref": "#/components/headers/Cache-Control"}
        assert "content" in response  # the success body is still documented
    assert "503" in operations_by_id["get_readiness"]["responses"]


async def test_the_documented_headers_are_the_ones_sent(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    answered = await client.get("/v1/projects", headers=bearer(key))
    refused = await client.get("/v1/projects")

    assert [name for name in QUOTA_HEADERS if name not in answered.headers] == []
    assert refused.headers["www-authenticate"] == 'Bearer realm="craftdesk"'
    assert [name for name in QUOTA_HEADERS if name in refused.headers] == []


def test_servers_tags_and_security_are_explicit(document: dict[str, Any]) -> None:
    assert document["servers"] == [
        {"url": "/", "description": "The server this document comes from"}
    ]
    described = {tag["name"] for tag in document["tags"] if tag.get("description")}
    for method, path, operation in operations(document):
        assert set(operation["tags"]) <= described, (method, path)
        assert "security" in operation, (method, path)
        assert operation["description"].endswith("."), (method, path)
        public = operation["security"] == []
        assert public == (operation["operationId"] in PUBLIC_OPERATIONS), (method, path)


async def test_the_public_operations_answer_without_credentials(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
    sign_in = await client.post("/v1/sessions", json={})
    assert sign_in.status_code == 422  # judged on its body, not refused for credentials
    # Not enabled without CRAFTDESK_GITHUB_SCANNING_KEYS_FILE; its signature is its credential.
    assert (await client.post("/v1/secret-scanning/github", content=b"[]")).status_code == 404


def test_request_bodies_require_nothing_that_has_a_default(document: dict[str, Any]) -> None:
    """openapi-typescript makes a property with a ``default`` required, so a request body
    schema states its defaults in words (``test_tools`` type-checks ``{name}``)."""
    schemas = document["components"]["schemas"]
    bodies = {
        ref["$ref"].rsplit("/", 1)[1]
        for _, _, operation in operations(document)
        for ref in walk(operation.get("requestBody", {}))
        if "$ref" in ref
    }
    assert {"ProjectCreate", "TaskCreate", "KeyCreate", "KeyRotate", "SignInBody"} <= bodies
    bodies.add("CustomPermissions")  # inside KeyCreate
    for name in bodies:
        schema = schemas[name]
        assert not [node for node in walk(schema) if "default" in node], name
    project = schemas["ProjectCreate"]
    assert project["required"] == ["name"]
    assert project["properties"]["description"]["description"] == 'Defaults to `""`.'
    assert "required" not in schemas["KeyRotate"]
