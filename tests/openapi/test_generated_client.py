"""A Python client generated with openapi-python-client from the served OpenAPI document,
with no warning, does the seed's calls and parses every documented error into its
``Problem`` model.

The generated client runs in-process: it takes an injected httpx client, here one on the
app's ASGI transport, so each call goes through the whole app on the test's database.
``raise_on_unexpected_status`` makes any status the document does not list fail the test.
"""

import importlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import World
from tests.live.server import LiveServer, server_env, start_server
from tests.live.test_seed_examples import readme_example

VENV_BIN = Path(sys.executable).parent
PACKAGE = "craftdesk_client"
CONFIG = f"""\
package_name_override: {PACKAGE}
project_name_override: craftdesk-client
post_hooks: []
"""


@pytest.fixture(scope="session")
def generated(document_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The generated package's parent folder, on ``sys.path`` for the session."""
    out = tmp_path_factory.mktemp("generated")
    config = out / "config.yaml"
    config.write_text(CONFIG)
    result = subprocess.run(
        [
            str(VENV_BIN / "openapi-python-client"),
            "generate",
            "--path", str(document_file),
            "--config", str(config),
            "--meta", "none",
            "--output-path", str(out / PACKAGE),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output
    assert output.strip() == f"Generating {out / PACKAGE}", output
    sys.path.insert(0, str(out))
    yield out
    sys.path.remove(str(out))
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]


def load(generated: Path, name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


MakeClient = Callable[[str | None], Any]


@pytest.fixture
async def make_client(app: FastAPI, generated: Path) -> AsyncIterator[MakeClient]:
    """``make_client(key)``: the generated ``AuthenticatedClient`` with that key (or none),
    on the app in-process."""
    client_module = load(generated, "client")
    opened: list[httpx.AsyncClient] = []

    def make(key: str | None) -> Any:
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {key}"} if key else {},
        )
        opened.append(http)
        client = client_module.AuthenticatedClient(
            base_url="http://testserver", token=key or "", raise_on_unexpected_status=True
        )
        return client.set_async_httpx_client(http)

    yield make
    for http in opened:
        await http.aclose()


def assert_problem(generated: Path, response: Any, status: int, code: str) -> None:
    problem = load(generated, "models").Problem
    assert response.status_code == status, response.content
    assert isinstance(response.parsed, problem), response.parsed
    assert (response.parsed.status, response.parsed.code) == (status, code)
    assert response.parsed.detail


async def test_the_generated_client_lists_and_creates_projects(
    generated: Path, make_client: MakeClient, world: World
) -> None:
    create_project = load(generated, "api.projects.create_project")
    list_projects = load(generated, "api.projects.list_projects")
    models = load(generated, "models")
    workspace, owner = await world.workspace()
    client = make_client(await world.key(workspace, owner))

    empty = await list_projects.asyncio_detailed(client=client)
    created = await create_project.asyncio_detailed(
        client=client, body=models.ProjectCreate(name="Launch plan")
    )
    listed = await list_projects.asyncio_detailed(client=client)

    assert empty.status_code == 200
    assert isinstance(empty.parsed, models.PageProjectOut) and empty.parsed.data == []
    assert created.status_code == 201 and isinstance(created.parsed, models.ProjectOut)
    assert (created.parsed.name, created.parsed.description) == ("Launch plan", "")
    assert [project.name for project in listed.parsed.data] == ["Launch plan"]
    assert listed.parsed.next_cursor is None
    assert listed.headers["X-RateLimit-Remaining"] == "997"


async def test_the_generated_client_reads_the_calling_key_with_its_enums(
    generated: Path, make_client: MakeClient, world: World
) -> None:
    get_calling_key = load(generated, "api.auth.get_calling_key")
    models = load(generated, "models")
    workspace, owner = await world.workspace()
    client = make_client(await world.key(workspace, owner, scope="read_only"))

    key = (await get_calling_key.asyncio_detailed(client=client)).parsed

    assert isinstance(key, models.CallingKey)
    assert key.scope == models.CallingKeyScope.READ_ONLY
    assert key.role == models.CallingKeyRole.OWNER
    assert key.permissions.projects == models.ResourceAccessProjects.READ
    assert key.quota.limit == 1000


async def test_each_documented_error_parses_into_the_problem_model(
    generated: Path, make_client: MakeClient, world: World
) -> None:
    create_project = load(generated, "api.projects.create_project")
    get_project = load(generated, "api.projects.get_project")
    list_projects = load(generated, "api.projects.list_projects")
    models = load(generated, "models")
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    read_only = await world.key(workspace, owner, scope="read_only")
    body = models.ProjectCreate(name="Launch plan")

    answers = [
        (await list_projects.asyncio_detailed(client=make_client(None)), 401,
         "missing_credentials"),
        (await list_projects.asyncio_detailed(client=make_client("cdk_nope")), 401,
         "malformed_credentials"),
        (await create_project.asyncio_detailed(client=make_client(read_only), body=body), 403,
         "insufficient_scope"),
        (await get_project.asyncio_detailed(project_id=12345, client=make_client(key)), 404,
         "not_found"),
        (await create_project.asyncio_detailed(
            client=make_client(key), body=models.ProjectCreate(name="")), 422,
         "validation_error"),
    ]  # fmt: skip
    for response, status, code in answers:
        assert_problem(generated, response, status, code)

    await world.set_plan(workspace, quota=4)  # 3 counted above: the 401s are not
    assert (await list_projects.asyncio_detailed(client=make_client(key))).status_code == 200
    over = await list_projects.asyncio_detailed(client=make_client(key))
    assert_problem(generated, over, 429, "quota_exceeded")
    assert int(over.headers["Retry-After"]) > 0


@pytest.fixture
def live(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(server_env(database_url), tmp_path)
    yield server
    server.stop()


def run_readme_step(command: list[str], cwd: Path, **env: str) -> str:
    result = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.mark.slow
async def test_the_readme_generated_client_example_runs_as_written(
    live: LiveServer, world: World, tmp_path: Path
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    generate = readme_example("### A generated client", "sh").replace(
        "http://localhost:8000", live.url
    )
    use = readme_example("### A generated client", "python").replace(
        "http://localhost:8000", live.url
    )
    (tmp_path / "example.py").write_text(use)

    generated = run_readme_step(["bash", "-euo", "pipefail", "-c", generate], tmp_path)
    printed = run_readme_step(
        [sys.executable, "example.py"], tmp_path, CRAFTDESK_API_KEY=key, PYTHONPATH=str(tmp_path)
    )

    assert "warning" not in generated.lower(), generated
    assert printed == "['Launch plan']\n"
