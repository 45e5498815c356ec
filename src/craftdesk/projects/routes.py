import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel
from sqlalchemy import select

from craftdesk.auth.bearer import KeyRoute, require_permission
from craftdesk.auth.principal import Principal
from craftdesk.db import Session
from craftdesk.errors import KEY_ROUTE_ERRORS, NotFound
from craftdesk.pagination import Page, PageParams, page_params, paginate
from craftdesk.projects.models import Project, Task
from craftdesk.schemas import Body, Id, Text, Title

router = APIRouter(
    prefix="/v1/projects", tags=["projects"], responses=KEY_ROUTE_ERRORS, route_class=KeyRoute
)

Status = Literal["todo", "doing", "done"]
Pagination = Annotated[PageParams, Depends(page_params)]


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


def _project_out(project: Project) -> ProjectOut:
    return ProjectOut.model_validate(project, from_attributes=True)


def _task_out(task: Task) -> TaskOut:
    return TaskOut.model_validate(task, from_attributes=True)


async def _project(session: Session, principal: Principal, project_id: int) -> Project:
    principal.require_project(project_id)
    project = await session.get(Project, project_id)
    if project is None or project.workspace_id != principal.workspace_id:
        raise NotFound(f"No project {project_id} in this workspace.")
    return project


async def _task(session: Session, principal: Principal, project_id: int, task_id: int) -> Task:
    principal.require_project(project_id)
    task = await session.get(Task, task_id)
    if task is None or task.project_id != project_id or task.workspace_id != principal.workspace_id:
        raise NotFound(f"No task {task_id} in project {project_id} of this workspace.")
    return task


@router.get("", summary="List projects")
async def list_projects(
    session: Session,
    principal: Annotated[Principal, require_permission("projects", "read")],
    page: Pagination,
) -> Page[ProjectOut]:
    stmt = select(Project).where(Project.workspace_id == principal.workspace_id)
    if principal.project_ids is not None:
        stmt = stmt.where(Project.id.in_(principal.project_ids))
    rows, cursor = await paginate(session, stmt, Project.id, page)
    return Page(data=[_project_out(row[0]) for row in rows], next_cursor=cursor)


@router.post("", status_code=201, summary="Create a project")
async def create_project(
    body: ProjectCreate,
    session: Session,
    principal: Annotated[Principal, require_permission("projects", "write")],
) -> ProjectOut:
    principal.require_all_projects()
    project = Project(workspace_id=principal.workspace_id, **body.model_dump())
    session.add(project)
    await session.commit()
    return _project_out(project)


@router.get("/{project_id}", summary="Get a project")
async def get_project(
    project_id: Id,
    session: Session,
    principal: Annotated[Principal, require_permission("projects", "read")],
) -> ProjectOut:
    return _project_out(await _project(session, principal, project_id))


@router.patch("/{project_id}", summary="Update a project")
async def update_project(
    project_id: Id,
    body: ProjectUpdate,
    session: Session,
    principal: Annotated[Principal, require_permission("projects", "write")],
) -> ProjectOut:
    project = await _project(session, principal, project_id)
    for field, value in body.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(project, field, value)
    await session.commit()
    return _project_out(project)


@router.delete("/{project_id}", status_code=204, summary="Delete a project and its tasks")
async def delete_project(
    project_id: Id,
    session: Session,
    principal: Annotated[Principal, require_permission("projects", "delete")],
) -> Response:
    project = await _project(session, principal, project_id)
    await session.delete(project)
    await session.commit()
    return Response(status_code=204)


@router.get("/{project_id}/tasks", summary="List a project's tasks")
async def list_tasks(
    project_id: Id,
    session: Session,
    principal: Annotated[Principal, require_permission("tasks", "read")],
    page: Pagination,
) -> Page[TaskOut]:
    await _project(session, principal, project_id)
    stmt = select(Task).where(Task.project_id == project_id)
    rows, cursor = await paginate(session, stmt, Task.id, page)
    return Page(data=[_task_out(row[0]) for row in rows], next_cursor=cursor)


@router.post("/{project_id}/tasks", status_code=201, summary="Create a task")
async def create_task(
    project_id: Id,
    body: TaskCreate,
    session: Session,
    principal: Annotated[Principal, require_permission("tasks", "write")],
) -> TaskOut:
    await _project(session, principal, project_id)
    task = Task(workspace_id=principal.workspace_id, project_id=project_id, **body.model_dump())
    session.add(task)
    await session.commit()
    return _task_out(task)


@router.get("/{project_id}/tasks/{task_id}", summary="Get a task")
async def get_task(
    project_id: Id,
    task_id: Id,
    session: Session,
    principal: Annotated[Principal, require_permission("tasks", "read")],
) -> TaskOut:
    return _task_out(await _task(session, principal, project_id, task_id))


@router.patch("/{project_id}/tasks/{task_id}", summary="Update a task")
async def update_task(
    project_id: Id,
    task_id: Id,
    body: TaskUpdate,
    session: Session,
    principal: Annotated[Principal, require_permission("tasks", "write")],
) -> TaskOut:
    task = await _task(session, principal, project_id, task_id)
    for field, value in body.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(task, field, value)
    await session.commit()
    return _task_out(task)


@router.delete("/{project_id}/tasks/{task_id}", status_code=204, summary="Delete a task")
async def delete_task(
    project_id: Id,
    task_id: Id,
    session: Session,
    principal: Annotated[Principal, require_permission("tasks", "delete")],
) -> Response:
    task = await _task(session, principal, project_id, task_id)
    await session.delete(task)
    await session.commit()
    return Response(status_code=204)
