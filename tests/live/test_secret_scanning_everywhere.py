"""A key GitHub reports found in public, to one process, is refused by another process at its
very next request (nothing about a key is cached)."""

from pathlib import Path

import httpx
import pytest

from tests.conftest import World, bearer
from tests.keys.github_signing import GitHubSigner, alert, body_of, write_keys_file
from tests.live.conftest import StartServers
from tests.live.server import server_env

pytestmark = pytest.mark.slow


@pytest.fixture
def github() -> GitHubSigner:
    return GitHubSigner()


@pytest.fixture
def server_environment(database_url: str, tmp_path: Path, github: GitHubSigner) -> dict[str, str]:
    keys_file = write_keys_file(tmp_path / "github-keys.json", github)
    return server_env(database_url, CRAFTDESK_GITHUB_SCANNING_KEYS_FILE=str(keys_file))


async def test_a_leaked_key_reported_to_one_process_is_refused_by_the_other(
    world: World, start_servers: StartServers, github: GitHubSigner
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner)
    a, b = await start_servers(2)
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=10) as on_a,
        httpx.AsyncClient(base_url=b.url, timeout=10) as on_b,
    ):
        assert (await on_b.get("/v1/auth/key", headers=bearer(key))).status_code == 200

        body = body_of(alert(key))
        reported = await on_a.post(
            "/v1/secret-scanning/github", content=body, headers=github.headers(body)
        )
        assert reported.status_code == 200, reported.text
        assert reported.json()[0]["label"] == "true_positive"

        refused = await on_b.get("/v1/auth/key", headers=bearer(key))
        assert refused.status_code == 401 and refused.json()["code"] == "key_revoked"
        assert (await on_a.get("/v1/projects", headers=bearer(key))).status_code == 401
