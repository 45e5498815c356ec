"""The API reference's page and files: served by this server under the dashboard's
Content-Security-Policy, with no inline code and no link to another host (the browser test,
``tests/dashboard/test_api_reference.py``, proves it renders offline)."""

import gzip
import re
from html.parser import HTMLParser
from importlib.resources import files

import httpx
import pytest

from craftdesk.assets import CONTENT_SECURITY_POLICY

SWAGGER_UI = files("fastapi_standalone_docs") / "static" / "swagger"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.inline: list[str] = []
        self._tag = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag = tag
        found = dict(attrs)
        self.links += [value for name, value in found.items() if name in ("src", "href") and value]
        if "style" in found or any(name.startswith("on") for name in found):
            self.inline.append(tag)

    def handle_data(self, data: str) -> None:
        if self._tag in ("script", "style") and data.strip():
            self.inline.append(data)


async def test_the_page_is_served_under_the_policy_with_only_local_links(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/docs")
    page = _Page()
    page.feed(response.text)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    assert page.inline == []
    assert page.links == [
        "data:,",  # the favicon: no request for one
        "docs/swagger-ui.css",
        "docs/swagger-ui-bundle.js",
        "docs/start.js",
    ]


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
    ],
)
async def test_each_file_is_served_compressed_once_and_revalidated(
    client: httpx.AsyncClient, name: str, media_type: str
) -> None:
    plain = await client.get(f"/v1/docs/{name}", headers={"Accept-Encoding": "identity"})
    compressed = await client.get(f"/v1/docs/{name}", headers={"Accept-Encoding": "gzip"})
    again = await client.get(f"/v1/docs/{name}", headers={"If-None-Match": plain.headers["etag"]})

    assert plain.status_code == 200 and plain.headers["content-type"].startswith(media_type)
    assert plain.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "content-encoding" not in plain.headers
    assert compressed.headers["content-encoding"] == "gzip"
    assert compressed.headers["vary"] == "Accept-Encoding"
    assert int(compressed.headers["content-length"]) < len(plain.content) / 2
    assert compressed.content == plain.content  # httpx decompressed it
    assert again.status_code == 304 and again.content == b""
    assert plain.content == (SWAGGER_UI / name).read_bytes()


async def test_the_start_script_asks_for_this_servers_document_and_no_validator(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/docs/start.js")
    script = response.text
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert 'url: "openapi.json"' in script
    assert "validatorUrl: null" in script
    assert not re.search(r"https?:", script)


async def test_the_raw_gzip_is_the_file(client: httpx.AsyncClient) -> None:
    async with client.stream(
        "GET", "/v1/docs/swagger-ui.css", headers={"Accept-Encoding": "gzip"}
    ) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert gzip.decompress(raw) == (SWAGGER_UI / "swagger-ui.css").read_bytes()


@pytest.mark.parametrize("path", ["/v1/redoc", "/v1/docs/oauth2-redirect.html", "/docs"])
async def test_other_reference_paths_are_problems_pointing_at_v1_docs(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "/v1/docs" in response.json()["detail"]
