import httpx
import pytest
from fastapi import FastAPI

from craftdesk.app import create_app
from craftdesk.config import Settings


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_openapi_has_the_bearer_scheme_so_authorize_works(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/v1/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    assert spec["paths"]["/v1/projects"]["get"]["security"] == [{"ApiKey": []}]
    problem = spec["paths"]["/v1/projects"]["get"]["responses"]["401"]["content"]
    assert "application/problem+json" in problem
    docs = await client.get("/v1/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_unknown_route_is_a_problem_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz", headers={"X-Request-ID": "abc-123"})).headers[
        "x-request-id"
    ] == "abc-123"
    made = (await client.get("/healthz", headers={"X-Request-ID": "bad id\t"})).headers[
        "x-request-id"
    ]
    assert len(made) == 32


def test_production_settings_need_a_pepper() -> None:
    with pytest.raises(ValueError, match="CRAFTDESK_KEY_PEPPER"):
        Settings(_env_file=None, env="production", key_pepper="short")  # type: ignore[call-arg]
    ok = Settings(_env_file=None, env="production", key_pepper="x" * 40)  # type: ignore[call-arg]
    assert ok.pepper == b"x" * 40


def test_cors_origins_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRAFTDESK_CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings(_env_file=None).cors_origins == ["https://a.example", "https://b.example"]  # type: ignore[call-arg]


async def test_unreachable_database_is_503_and_readyz_says_so() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none",
        key_pepper="p" * 40,
    )
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            from craftdesk.auth.tokens import generate_key

            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["code"] == "database_unavailable"
            api = await client.get(
                "/v1/projects", headers={"Authorization": f"Bearer {generate_key().key}"}
            )
            assert api.status_code == 503 and api.json()["code"] == "database_unavailable"
            assert (await client.get("/healthz")).status_code == 200
