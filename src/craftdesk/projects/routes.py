import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel

from craftdesk.auth.bearer import KeyRoute, require_permission
from craftdesk.auth.principal import Principal
from craftdesk.db import Db, utcnow
from craftdesk.errors import KEY_ROUTE_ERRORS, NotFound
from craftdesk.pagination import Page, Pagination, page
from craftdesk.projects import queries
from craftdesk.schemas import Body, Id, Text, Title, respond

router = APIRouter(
    prefix="/v1/projects", tags=["projects"], responses=KEY_ROUTE_ERRORS, route_class=KeyRoute
)

Status = Literal["todo", "doing", "done"]


class ProjectOut(BaseModel):
    id: int
    name: str
    description: str
    created_at: dt.datetime
    updated_at: dt.datetime


class ProjectCreate(Body):
    name: Title
    description: Text = ""


class ProjectUpdate(Body):
    name: Title | None = None
    description: Text | None = None


class TaskOut(BaseModel):
    id: int
    project_id: int
    title: str
    status: Status
    created_at: dt.datetime
    updated_at: dt.datetime


class TaskCreate(Body):
    title: Title
    status: Status = "todo"


class TaskUpdate(Body):
    title: Title | None = None
    status: Status | None = None


def _no_project(project_id: int) -> NotFound:
    return NotFound(f"No project {project_id} in this workspace.")


def _no_task(project_id: int, task_id: int) -> NotFound:
    return NotFound(f"No task {task_id} in project {project_id} of this workspace.")


@router.get("", summary="List projects", response_model=Page[ProjectOut])
async def list_projects(
    db: Db,
    principal: Annotated[Principal, require_permission("projects", "read")],
    params: Pagination,
) -> Response:
    rows = await queries.list_projects(
        db, principal.workspace_id, params.after, params.fetch, principal.project_ids
    )
    return respond(page(rows, params))


@router.post("", status_code=201, summary="Create a project", response_model=ProjectOut)
async def create_project(
    body: ProjectCreate,
    db: Db,
    principal: Annotated[Principal, require_permission("projects", "write")],
) -> Response:
    principal.require_all_projects()
    row = await queries.create_project(
        db, principal.workspace_id, body.name, body.description, utcnow()
    )
    return respond(dict(row), 201)


@router.get("/{project_id}", summary="Get a project", response_model=ProjectOut)
async def get_project(
    project_id: Id,
    db: Db,
    principal: Annotated[Principal, require_permission("projects", "read")],
) -> Response:
    principal.require_project(project_id)
    row = await queries.get_project(db, principal.workspace_id, project_id)
    if row is None:
        raise _no_project(project_id)
    return respond(dict(row))


@router.patch("/{project_id}", summary="Update a project", response_model=ProjectOut)
async def update_project(
    project_id: Id,
    body: ProjectUpdate,
    db: Db,
    principal: Annotated[Principal, require_permission("projects", "write")],
) -> Response:
    principal.require_project(project_id)
    row = await queries.update_project(
        db, principal.workspace_id, project_id, body.name, body.description, utcnow()
    )
    if row is None:
        raise _no_project(project_id)
    return respond(dict(row))


@router.delete("/{project_id}", status_code=204, summary="Delete a project and its tasks")
async def delete_project(
    project_id: Id,
    db: Db,
    principal: Annotated[Principal, require_permission("projects", "delete")],
) -> Response:
    principal.require_project(project_id)
    deleted = await queries.delete_project(db, principal.workspace_id, project_id)
    if not deleted:
        raise _no_project(project_id)
    return Response(status_code=204)


@router.get("/{project_id}/tasks", summary="List a project's tasks", response_model=Page[TaskOut])
async def list_tasks(
    project_id: Id,
    db: Db,
    principal: Annotated[Principal, require_permission("tasks", "read")],
    params: Pagination,
) -> Response:
    principal.require_project(project_id)
    rows = await queries.list_tasks(
        db, principal.workspace_id, project_id, params.after, params.fetch
    )
    if rows is None:
        raise _no_project(project_id)
    return respond(page(rows, params))


@router.post(
    "/{project_id}/tasks", status_code=201, summary="Create a task", response_model=TaskOut
)
async def create_task(
    project_id: Id,
    body: TaskCreate,
    db: Db,
    principal: Annotated[Principal, require_permission("tasks", "write")],
) -> Response:
    principal.require_project(project_id)
    row = await queries.create_task(
        db, principal.workspace_id, project_id, body.title, body.status, utcnow()
    )
    if row is None:
        raise _no_project(project_id)
    return respond(dict(row), 201)


@router.get("/{project_id}/tasks/{task_id}", summary="Get a task", response_model=TaskOut)
async def get_task(
    project_id: Id,
    task_id: Id,
    db: Db,
    principal: Annotated[Principal, require_permission("tasks", "read")],
) -> Response:
    principal.require_project(project_id)
    row = await queries.get_task(db, principal.workspace_id, project_id, task_id)
    if row is None:
        raise _no_task(project_id, task_id)
    return respond(dict(row))


@router.patch("/{project_id}/tasks/{task_id}", summary="Update a task", response_model=TaskOut)
async def update_task(
    project_id: Id,
    task_id: Id,
    body: TaskUpdate,
    db: Db,
    principal: Annotated[Principal, require_permission("tasks", "write")],
) -> Response:
    principal.require_project(project_id)
    row = await queries.update_task(
        db, principal.workspace_id, project_id, task_id, body.title, body.status, utcnow()
    )
    if row is None:
        raise _no_task(project_id, task_id)
    return respond(dict(row))


@router.delete("/{project_id}/tasks/{task_id}", status_code=204, summary="Delete a task")
async def delete_task(
    project_id: Id,
    task_id: Id,
    db: Db,
    principal: Annotated[Principal, require_permission("tasks", "delete")],
) -> Response:
    principal.require_project(project_id)
    deleted = await queries.delete_task(db, principal.workspace_id, project_id, task_id)
    if not deleted:
        raise _no_task(project_id, task_id)
    return Response(status_code=204)
