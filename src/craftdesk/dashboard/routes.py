"""The dashboard page and its assets, under a strict Content-Security-Policy, and the one
read the page needs that no session route offered: the workspace's projects (for the
project picker of custom-scope keys).

The assets are read once at import: a handful of small files, answered from memory
(``craftdesk.assets``).
"""

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy import select

from craftdesk.assets import MEDIA_TYPES, Asset
from craftdesk.auth.sessions import CurrentUser
from craftdesk.db import Session
from craftdesk.errors import SESSION_ROUTE_ERRORS, NotFound
from craftdesk.pagination import Page, PageParams, page_params, paginate
from craftdesk.projects.models import Project

STATIC_DIR = Path(__file__).parent / "static"

router = APIRouter(tags=["dashboard"])

_PAGE = Asset.from_path(STATIC_DIR / "index.html")
_ASSETS = {
    path.name: Asset.from_path(path)
    for path in sorted(STATIC_DIR.iterdir())
    if path.suffix in MEDIA_TYPES and path.name != "index.html"
}


@router.get("/dashboard", include_in_schema=False)
@router.get("/dashboard/", include_in_schema=False)
async def dashboard_page(request: Request) -> Response:
    return await _PAGE.response(request)


@router.get("/dashboard/static/{name}", include_in_schema=False)
async def dashboard_asset(name: str, request: Request) -> Response:
    asset = _ASSETS.get(name)
    if asset is None:
        raise NotFound(f"No dashboard asset {name!r}.")
    return await asset.response(request)


class ProjectRef(BaseModel):
    id: int
    name: str


@router.get(
    "/v1/dashboard/projects",
    summary="The workspace's projects, for the project picker of custom-scope keys",
    responses=SESSION_ROUTE_ERRORS,
)
async def dashboard_projects(
    user: CurrentUser, session: Session, page: Annotated[PageParams, Depends(page_params)]
) -> Page[ProjectRef]:
    stmt = select(Project.id, Project.name).where(Project.workspace_id == user.workspace_id)
    rows, cursor = await paginate(session, stmt, Project.id, page)
    return Page(data=[ProjectRef(id=id_, name=name) for id_, name in rows], next_cursor=cursor)
