"""The product doc's three examples (cURL, Python, JavaScript), run for real against a live server.

Each snippet is the seed's, with the URL pointing at the live server and the key read from
``CRAFTDESK_API_KEY`` as the seed's "Use environment variables" advice shows. Each also runs
without the Authorization header and must get 401 with the Bearer challenge.
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import World, bearer
from tests.live.conftest import StartServers
from tests.live.server import LiveServer

pytestmark = pytest.mark.slow

CHALLENGE = 'Bearer realm="craftdesk"'
PROJECT = "Launch plan"

PYTHON_EXAMPLE = """\
import ast
import json
import os
import re

import requests

api_key = os.getenv("CRAFTDESK_API_KEY")
headers = {
    "Authorization": f"Bearer {api_key}",
    "Content-Type": "application/json"
}
response = requests.get(
    "%(url)s/v1/projects",
    headers=headers
)
projects = response.json()
print(json.dumps({"status": response.status_code, "body": projects}))
"""

PYTHON_WITHOUT_HEADER = """\
import json

import requests

response = requests.get("%(url)s/v1/projects", headers={"Content-Type": "application/json"})
print(json.dumps({
    "status": response.status_code,
    "www_authenticate": response.headers.get("WWW-Authenticate"),
    "body": response.json(),
}))
"""

JAVASCRIPT_EXAMPLE = """\
const apiKey = process.env.CRAFTDESK_API_KEY;
fetch("%(url)s/v1/projects", {
  method: "GET",
  headers: {
    "Authorization": `Bearer ${apiKey}`,
    "Content-Type": "application/json"
  }
})
.then(response => response.json())
.then(data => console.log(data))
.catch(error => console.error(error));
"""

JAVASCRIPT_WITHOUT_HEADER = """\
const response = await fetch("%(url)s/v1/projects", {
  headers: { "Content-Type": "application/json" }
});
console.log(JSON.stringify({
  status: response.status,
  www_authenticate: response.headers.get("WWW-Authenticate"),
  body: await response.json()
}));
"""


@pytest.fixture
async def live(start_servers: StartServers) -> LiveServer:
    return (await start_servers(1))[0]


@pytest.fixture
async def api_key(world: World, live: LiveServer) -> str:
    """A key of a workspace holding one project, created through the live server."""
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner, name="CI/CD Pipeline")
    async with httpx.AsyncClient(base_url=live.url) as http:
        created = await http.post("/v1/projects", json={"name": PROJECT}, headers=bearer(key))
    assert created.status_code == 201, created.text
    return key


def run(command: list[str], key: str | None = None, cwd: Path | None = None) -> str:
    env = {name: value for name, value in os.environ.items() if name != "CRAFTDESK_API_KEY"}
    if key is not None:
        env["CRAFTDESK_API_KEY"] = key
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    return result.stdout


def assert_projects(body: dict[str, object]) -> None:
    assert isinstance(body["data"], list)
    assert [project["name"] for project in body["data"]] == [PROJECT]  # type: ignore[index]


def assert_challenged(status: int, www_authenticate: str | None, body: dict[str, str]) -> None:
    assert status == 401
    assert www_authenticate == CHALLENGE
    assert body["code"] == "missing_credentials"


async def test_curl_example_lists_projects_and_without_the_header_is_challenged(
    live: LiveServer, api_key: str
) -> None:
    url = f"{live.url}/v1/projects"
    example = (
        f"curl -s -w '%{{http_code}}' {url} "
        '-H "Authorization: Bearer $CRAFTDESK_API_KEY" -H "Content-Type: application/json"'
    )
    output = run(["bash", "-c", example], key=api_key)
    assert output.endswith("200"), output
    assert_projects(json.loads(output[: -len("200")]))

    headers_and_body = run(
        ["curl", "-s", "-i", url, "-H", "Content-Type: application/json"]
    )
    head, _, body = headers_and_body.partition("\n\n")  # text mode turned CRLF into LF
    status_line, *header_lines = head.splitlines()
    headers = dict(line.split(": ", 1) for line in header_lines)
    lowered = {name.lower(): value for name, value in headers.items()}
    status = int(status_line.split()[1])
    assert_challenged(status, lowered.get("www-authenticate"), json.loads(body))


async def test_python_requests_example_lists_projects_and_without_the_header_is_challenged(
    live: LiveServer, api_key: str, tmp_path: Path
) -> None:
    script = tmp_path / "example.py"
    script.write_text(PYTHON_EXAMPLE % {"url": live.url})
    result = json.loads(run([sys.executable, str(script)], key=api_key))
    assert result["status"] == 200
    assert_projects(result["body"])

    script.write_text(PYTHON_WITHOUT_HEADER % {"url": live.url})
    result = json.loads(run([sys.executable, str(script)]))
    assert_challenged(result["status"], result["www_authenticate"], result["body"])


def readme_example(after: str, language: str) -> str:
    """The README's first ``language`` block after the words ``after``, as written there."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    found = re.search(f"{re.escape(after)}.*?```{language}\n(.*?)```", readme, flags=re.DOTALL)
    assert found is not None, f"no {language} example after {after!r} in the README"
    return found.group(1)


async def test_the_readme_python_example_prints_the_projects(
    live: LiveServer, api_key: str, tmp_path: Path
) -> None:
    example = readme_example("The same with Python", "python")
    script = tmp_path / "readme_example.py"
    script.write_text(example.replace("http://localhost:8000", live.url))

    printed = run([sys.executable, str(script)], key=api_key)

    projects = ast.literal_eval(printed)  # print() of the parsed JSON: a Python literal
    assert_projects(projects)
    assert projects["next_cursor"] is None
    assert "# {'data': [], 'next_cursor': None}" in example  # what it prints on a new workspace


async def test_javascript_fetch_example_lists_projects_and_without_the_header_is_challenged(
    live: LiveServer, api_key: str, tmp_path: Path
) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the seed's JavaScript example needs node ≥ 18 (fetch)")
    script = tmp_path / "example.mjs"
    script.write_text(JAVASCRIPT_EXAMPLE % {"url": live.url})
    # The seed logs the parsed object, which node prints in its inspect format, not JSON.
    printed = run([node, str(script)], key=api_key)
    assert "data: [" in printed and f"name: '{PROJECT}'" in printed, printed
    assert "next_cursor: null" in printed, printed

    script.write_text(JAVASCRIPT_WITHOUT_HEADER % {"url": live.url})
    result = json.loads(run([node, str(script)]))
    assert_challenged(result["status"], result["www_authenticate"], result["body"])
