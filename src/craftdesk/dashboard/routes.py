"""The dashboard page and its assets, under a strict Content-Security-Policy, and the one
read the page needs that no session route offered: the workspace's projects (for the
project picker of custom-scope keys).

The assets are read once at import: a handful of small files, answered from memory
(``craftdesk.assets``).
"""

from pathlib import Path

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from craftdesk.assets import MEDIA_TYPES, Asset
from craftdesk.auth.sessions import CurrentUser
from craftdesk.db import Db
from craftdesk.errors import SESSION_ROUTE_ERRORS, NotFound
from craftdesk.pagination import Page, Pagination, page
from craftdesk.projects.queries import list_project_names
from craftdesk.routing import Route
from craftdesk.schemas import respond

STATIC_DIR = Path(__file__).parent / "static"

router = APIRouter(tags=["dashboard"], route_class=Route)

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
    response_model=Page[ProjectRef],
)
async def dashboard_projects(user: CurrentUser, db: Db, params: Pagination) -> Response:
    rows = await list_project_names(db, user.workspace_id, params.after, params.fetch)
    return respond(page(rows, params))
