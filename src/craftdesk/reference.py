"""The API reference at ``/v1/docs``: Swagger UI on ``/v1/openapi.json``, working offline.

Swagger UI's files come from the ``fastapi-standalone-docs`` package (Swagger UI's own
distribution, with its Apache-2.0 license), not from a CDN; the page and its start-up script
are ours, so that the page runs under the dashboard's Content-Security-Policy (nothing
inline) and asks no other host for anything (no validator badge, no favicon). Links are
relative, so the reference also works under a path prefix.
"""

from importlib.resources import files

from fastapi import APIRouter, Request, Response

from craftdesk.assets import MEDIA_TYPES, Asset
from craftdesk.errors import NotFound
from craftdesk.routing import Route

SWAGGER_UI = files("fastapi_standalone_docs") / "static" / "swagger"

PAGE = b"""\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CraftDesk API reference</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/start.js"></script>
</body>
</html>
"""

START = b"""\
// Swagger UI on this server's OpenAPI document (relative to /v1/docs: /v1/openapi.json).
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""

_PAGE = Asset(PAGE, MEDIA_TYPES[".html"])
_ASSETS = {
    "start.js": Asset(START, MEDIA_TYPES[".js"]),
    "swagger-ui.css": Asset((SWAGGER_UI / "swagger-ui.css").read_bytes(), MEDIA_TYPES[".css"]),
    "swagger-ui-bundle.js": Asset(
        (SWAGGER_UI / "swagger-ui-bundle.js").read_bytes(), MEDIA_TYPES[".js"]
    ),
}

router = APIRouter(tags=["reference"], include_in_schema=False, route_class=Route)


@router.get("/v1/docs")
async def reference_page(request: Request) -> Response:
    return await _PAGE.response(request)


@router.get("/v1/docs/{name}")
async def reference_asset(name: str, request: Request) -> Response:
    asset = _ASSETS.get(name)
    if asset is None:
        raise NotFound(f"No API reference file {name!r}. The reference is at /v1/docs.")
    return await asset.response(request)
