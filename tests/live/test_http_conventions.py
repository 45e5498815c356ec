"""The HTTP conventions on a real uvicorn process, read off the socket as sent: gzip for the
OpenAPI document (and HEAD with the same headers, no body), none for the hot path, and a
trailing slash answered with a 404 problem, not a redirect."""

import gzip
import http.client
import json
from urllib.parse import urlsplit

import pytest

from tests.live.conftest import StartServers
from tests.live.server import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture
async def live(start_servers: StartServers) -> LiveServer:
    return (await start_servers(1))[0]


def request(
    server: LiveServer, method: str, path: str, headers: dict[str, str]
) -> tuple[http.client.HTTPResponse, bytes]:
    address = urlsplit(server.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


def test_the_openapi_document_goes_gzipped_and_head_sends_its_headers_only(
    live: LiveServer,
) -> None:
    get, body = request(live, "GET", "/v1/openapi.json", {"Accept-Encoding": "gzip, br"})
    head, nothing = request(live, "HEAD", "/v1/openapi.json", {"Accept-Encoding": "gzip, br"})
    plain, plain_body = request(live, "GET", "/v1/openapi.json", {})

    assert get.status == 200 and get.headers["Content-Encoding"] == "gzip"
    assert int(get.headers["Content-Length"]) == len(body) < len(plain_body) / 4
    assert json.loads(gzip.decompress(body)) == json.loads(plain_body)
    assert head.status == 200 and nothing == b""
    for name in ("Content-Encoding", "Content-Length", "Content-Type", "Vary"):
        assert head.headers[name] == get.headers[name], name
    assert plain.headers["Content-Encoding"] is None


def test_the_health_check_is_not_compressed(live: LiveServer) -> None:
    response, body = request(live, "GET", "/healthz", {"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] is None
    assert json.loads(body) == {"status": "ok"}


def test_a_trailing_slash_is_a_404_problem_without_a_redirect(live: LiveServer) -> None:
    response, body = request(live, "GET", "/v1/projects/", {})

    assert response.status == 404
    assert response.headers["Location"] is None
    assert response.headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["detail"] == "No such route. Drop the trailing slash: /v1/projects"
