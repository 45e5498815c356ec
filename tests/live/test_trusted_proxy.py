"""Behind a trusted proxy, a live server takes the client's address from X-Forwarded-For."""

import httpx
import pytest

from tests.conftest import World, bearer
from tests.live.conftest import StartServers
from tests.live.server import server_env

pytestmark = pytest.mark.slow


@pytest.fixture
def server_environment(database_url: str) -> dict[str, str]:
    return server_env(database_url, CRAFTDESK_TRUSTED_PROXIES="127.0.0.1/32")


async def test_a_trusted_proxy_forwards_the_client_address(
    world: World, start_servers: StartServers
) -> None:
    workspace, owner = await world.workspace()
    key = await world.key(workspace, owner, allowed_ips=["10.0.0.0/8", "2001:db8::/32"])
    [server] = await start_servers(1)
    async with httpx.AsyncClient(timeout=20) as http:
        for client_ip, status in (("10.0.0.1", 200), ("2001:db8::5", 200), ("11.0.0.1", 403)):
            response = await http.get(
                server.url + "/v1/auth/key",
                headers={**bearer(key), "X-Forwarded-For": client_ip},
            )
            assert response.status_code == status, (client_ip, response.text)
        direct = await http.get(server.url + "/v1/auth/key", headers=bearer(key))
    assert direct.status_code == 403  # without the header, the proxy itself is the client
    assert "127.0.0.1" in direct.json()["detail"]
