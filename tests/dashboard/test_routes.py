"""Serving the dashboard: the page and its assets under a strict Content-Security-Policy,
nothing fetched from the network, and the projects list the key form needs."""

import re
from html.parser import HTMLParser

import httpx
import pytest

from craftdesk.assets import CONTENT_SECURITY_POLICY
from craftdesk.dashboard.routes import STATIC_DIR
from tests.conftest import World, bearer, sign_in

ASSETS = sorted(path.name for path in STATIC_DIR.iterdir() if path.name != "index.html")
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_text.append(data)


def test_the_policy_allows_no_inline_code_and_no_framing() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "unsafe-eval" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/"])
async def test_the_page_is_served_with_the_security_headers(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "Generate New Key" in response.text


async def test_the_page_has_no_inline_script_style_or_handler(client: httpx.AsyncClient) -> None:
    page = _Tags()
    page.feed((await client.get("/dashboard")).text)
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert scripts == [{"type": "module", "src": "/dashboard/static/app.js"}]
    assert page.script_text == []
    for tag, attrs in page.tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], tag
    assert "<style" not in (await client.get("/dashboard")).text


@pytest.mark.parametrize("name", ASSETS)
async def test_every_asset_is_served_and_fetches_nothing_from_the_network(
    client: httpx.AsyncClient, name: str
) -> None:
    response = await client.get(f"/dashboard/static/{name}")
    assert response.status_code == 200
    expected = {"js": "text/javascript", "css": "text/css"}[name.rsplit(".", 1)[1]]
    assert response.headers["content-type"].startswith(expected)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    outside = re.findall(
        r"(?:https?:)?//[\w.-]+\.\w+[^\s'\"`)]*", response.text.replace(SVG_NAMESPACE, "")
    )
    assert outside == []
    assert "innerHTML" not in response.text and "insertAdjacentHTML" not in response.text
    assert "localStorage" not in response.text and "sessionStorage" not in response.text


async def test_every_module_the_page_imports_is_served(client: httpx.AsyncClient) -> None:
    pending, seen = ["app.js"], set()
    while pending:
        name = pending.pop()
        seen.add(name)
        source = (await client.get(f"/dashboard/static/{name}")).text
        for imported in re.findall(r"from '\./([\w.-]+\.js)'", source):
            if imported not in seen:
                pending.append(imported)
    assert seen == {name for name in ASSETS if name.endswith(".js")}


async def test_an_unchanged_asset_is_answered_304(client: httpx.AsyncClient) -> None:
    first = await client.get("/dashboard/static/app.js")
    again = await client.get(
        "/dashboard/static/app.js", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize("name", ["nope.js", "..%2Fapp.py", "..%2F..%2Fconfig.py", "index.html"])
async def test_anything_else_under_static_is_404(client: httpx.AsyncClient, name: str) -> None:
    response = await client.get(f"/dashboard/static/{name}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_projects_for_the_picker_are_the_signed_in_workspace_s(
    client: httpx.AsyncClient, world: World, seed_projects
) -> None:
    workspace, owner = await world.workspace("Acme", plan="business")
    other, _ = await world.workspace("Globex")
    mine = [await seed_projects(workspace, name) for name in ("Website", "Mobile")]
    await seed_projects(other, "Secret")
    await sign_in(client, workspace, owner)

    response = await client.get("/v1/dashboard/projects")

    assert response.status_code == 200
    assert response.json() == {
        "data": [{"id": mine[0], "name": "Website"}, {"id": mine[1], "name": "Mobile"}],
        "next_cursor": None,
    }


async def test_projects_for_the_picker_need_a_session(
    client: httpx.AsyncClient, world: World
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)

    anonymous = await client.get("/v1/dashboard/projects")
    with_key = await client.get("/v1/dashboard/projects", headers=bearer(key))

    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_signed_in"
    assert with_key.status_code == 403 and with_key.json()["code"] == "session_required"
