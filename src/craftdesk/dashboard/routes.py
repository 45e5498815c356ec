"""The dashboard page and its assets, under a strict Content-Security-Policy, and the one
read the page needs that no session route offered: the workspace's projects (for the
project picker of custom-scope keys).

The assets are read once at import: a handful of small files, answered from memory with an
ETag so a reload costs a 304.
"""

import hashlib
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy import select

from craftdesk.auth.sessions import CurrentUser
from craftdesk.db import Session
from craftdesk.errors import SESSION_ROUTE_ERRORS, NotFound
from craftdesk.pagination import Page, PageParams, page_params, paginate
from craftdesk.projects.models import Project

STATIC_DIR = Path(__file__).parent / "static"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

router = APIRouter(tags=["dashboard"])


class _Asset:
    def __init__(self, path: Path):
        self.body = path.read_bytes()
        self.media_type = _MEDIA_TYPES[path.suffix]
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'

    def response(self, request: Request) -> Response:
        headers = {
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-cache",
            "ETag": self.etag,
        }
        if request.headers.get("if-none-match") == self.etag:
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


_PAGE = _Asset(STATIC_DIR / "index.html")
_ASSETS = {
    path.name: _Asset(path)
    for path in sorted(STATIC_DIR.iterdir())
    if path.suffix in _MEDIA_TYPES and path.name != "index.html"
}


@router.get("/dashboard", include_in_schema=False)
@router.get("/dashboard/", include_in_schema=False)
async def dashboard_page(request: Request) -> Response:
    return _PAGE.response(request)


@router.get("/dashboard/static/{name}", include_in_schema=False)
async def dashboard_asset(name: str, request: Request) -> Response:
    asset = _ASSETS.get(name)
    if asset is None:
        raise NotFound(f"No dashboard asset {name!r}.")
    return asset.response(request)


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
