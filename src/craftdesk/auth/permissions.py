"""What a key may do: its scope intersected with its creator's current role.

Actions are ``read``, ``write`` and ``delete``. A key's access per resource type is
``none``, ``read`` or ``write`` (``write`` includes read and delete); a role grants:

    owner, admin   everything, including member management
    member         reads everything, writes projects and tasks, deletes tasks but no project
"""

from collections.abc import Mapping
from typing import Literal, get_args

from pydantic import BaseModel

Resource = Literal["projects", "tasks", "members"]
Action = Literal["read", "write", "delete"]
Access = Literal["none", "read", "write"]
Role = Literal["owner", "admin", "member"]
Scope = Literal["full", "read_only", "custom"]

RESOURCES: tuple[Resource, ...] = get_args(Resource)


class ResourceAccess(BaseModel):
    """A key's access per resource type, as responses show it."""

    projects: Access
    tasks: Access
    members: Access


_ACCESS_ACTIONS: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "read": frozenset({"read"}),
    "write": frozenset({"read", "write", "delete"}),
}
_EVERYTHING: dict[str, frozenset[str]] = {r: _ACCESS_ACTIONS["write"] for r in RESOURCES}
ROLE_ACTIONS: dict[str, dict[str, frozenset[str]]] = {
    "owner": _EVERYTHING,
    "admin": _EVERYTHING,
    "member": {
        "projects": frozenset({"read", "write"}),
        "tasks": _ACCESS_ACTIONS["write"],
        "members": _ACCESS_ACTIONS["read"],
    },
}


_SCOPE_ACCESS: dict[str, Mapping[str, str]] = {
    "full": dict.fromkeys(RESOURCES, "write"),
    "read_only": dict.fromkeys(RESOURCES, "read"),
}


def scope_access(scope: str, permissions: dict[str, str] | None) -> Mapping[str, str]:
    """The access a key's scope grants per resource type, before the role is applied."""
    if scope in _SCOPE_ACCESS:
        return _SCOPE_ACCESS[scope]
    granted = permissions or {}
    return {resource: granted.get(resource, "none") for resource in RESOURCES}


def scope_allows(access: Mapping[str, str], resource: str, action: str) -> bool:
    return action in _ACCESS_ACTIONS[access[resource]]


def role_allows(role: str, resource: str, action: str) -> bool:
    return action in ROLE_ACTIONS[role][resource]


def effective_access(access: Mapping[str, str], role: str) -> dict[str, str]:
    """Per resource type, the strongest access both the scope and the role grant."""
    result: dict[str, str] = {}
    for resource in RESOURCES:
        allowed = _ACCESS_ACTIONS[access[resource]] & ROLE_ACTIONS[role][resource]
        result[resource] = (
            "write" if "write" in allowed else "read" if "read" in allowed else "none"
        )
    return result
