"""The craftdesk command: the value alone on stdout, one clear line and non-zero on errors."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from craftdesk.audit.models import AuditEvent
from craftdesk.auth.tokens import parse_key
from craftdesk.cli import connection_budget_warning
from craftdesk.config import Settings
from craftdesk.db import create_engine
from tests.conftest import TEST_PEPPER, bearer
from tests.live.server import free_port, server_env

CRAFTDESK = str(Path(sys.executable).with_name("craftdesk"))


def run(
    database_url: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "CRAFTDESK_DATABASE_URL": database_url,
        "CRAFTDESK_KEY_PEPPER": TEST_PEPPER,
        **(env or {}),
    }
    return subprocess.run(
        [CRAFTDESK, *args], capture_output=True, text=True, env=environment, timeout=60
    )


async def test_workspace_member_and_key_from_the_command_line(
    database_url: str, client: httpx.AsyncClient, app: FastAPI
) -> None:
    created = run(
        database_url,
        "workspace",
        "create",
        "--name",
        "Acme Inc",
        "--owner-email",
        "ops@acme.test",
        "--owner-password",
        "pw-1",
    )
    assert created.returncode == 0, created.stderr
    slug = created.stdout.strip()
    assert slug == "acme-inc"

    member = run(
        database_url,
        "member",
        "add",
        slug,
        "--email",
        "dev@acme.test",
        "--password",
        "pw-2",
        "--role",
        "member",
    )
    assert member.returncode == 0 and member.stdout.strip().isdigit()

    key_run = run(
        database_url,
        "key",
        "create",
        slug,
        "--email",
        "dev@acme.test",
        "--name",
        "CI",
        "--scope",
        "read_only",
    )
    assert key_run.returncode == 0
    key = key_run.stdout.strip()
    assert key_run.stdout == key + "\n"
    parse_key(key)
    assert key not in key_run.stderr

    async with app.state.sessionmaker() as session:
        audited = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "key.created")
        )
    assert audited is not None and audited.actor_type == "cli" and audited.target_label == "CI"
    assert key not in str(audited.details)

    me = (await client.get("/v1/auth/key", headers=bearer(key))).json()
    assert me["scope"] == "read_only" and me["role"] == "member" and me["workspace"]["slug"] == slug

    plan = run(database_url, "workspace", "set-plan", slug, "business", "--quota", "42")
    assert plan.returncode == 0 and plan.stdout == ""
    me = (await client.get("/v1/auth/key", headers=bearer(key))).json()
    assert me["workspace"]["plan"] == "business" and me["quota"]["limit"] == 42


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("key", "create", "nope", "--email", "a@b.c", "--name", "x"), "no workspace"),
        (("workspace", "set-plan", "nope", "pro"), "no workspace"),
        (("member", "add", "nope", "--email", "a@b.c", "--password", "p"), "no workspace"),
    ],
)
def test_errors_are_one_line_and_non_zero(
    database_url: str, args: tuple[str, ...], message: str
) -> None:
    result = run(database_url, *args)
    assert result.returncode != 0
    assert result.stdout == ""
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_key_for_a_non_member_is_refused(database_url: str) -> None:
    slug = run(
        database_url,
        "workspace",
        "create",
        "--name",
        "A",
        "--owner-email",
        "o@a.test",
        "--owner-password",
        "pw",
    ).stdout.strip()
    result = run(database_url, "key", "create", slug, "--email", "stranger@a.test", "--name", "x")
    assert result.returncode != 0 and "not a member" in result.stderr


@pytest.mark.usefixtures("backend")
def test_production_refuses_to_start_without_a_real_pepper(database_url: str) -> None:
    result = run(
        database_url,
        "db",
        "upgrade",
        env={"CRAFTDESK_ENV": "production", "CRAFTDESK_KEY_PEPPER": ""},
    )
    assert result.returncode != 0
    assert "CRAFTDESK_KEY_PEPPER" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_database_is_one_clear_line() -> None:
    result = run(
        "postgresql+asyncpg://postgres@127.0.0.1:1/none", "workspace", "set-plan", "x", "pro"
    )
    assert result.returncode != 0
    assert "cannot reach the database" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_serve_warns_when_its_workers_could_open_more_connections_than_postgresql_takes(
    database_url: str,
) -> None:
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        limit = int(await conn.scalar(text("SHOW max_connections")))
        reserved = int(await conn.scalar(text("SHOW superuser_reserved_connections")))
    await engine.dispose()
    fits = (limit - reserved) // settings.db_max_connections
    assert await connection_budget_warning(settings, fits) is None
    warning = await connection_budget_warning(settings, fits + 1)
    assert warning is not None
    assert f"{fits + 1} workers × {settings.db_max_connections} connections" in warning
    assert "CRAFTDESK_DB_MAX_CONNECTIONS" in warning


def test_serve_refuses_cors_for_any_origin(database_url: str) -> None:
    result = run(database_url, "serve", env={"CRAFTDESK_CORS_ORIGINS": "*"})
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "CRAFTDESK_CORS_ORIGINS" in lines[0] and "'*'" in lines[0], lines


@pytest.mark.slow
def test_serve_answers_without_naming_its_server_software(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {**server_env(database_url), "CRAFTDESK_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [CRAFTDESK, "serve", "--port", str(port)], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "not serving"
                time.sleep(0.1)  # polling interval, not a timing assumption
        assert response.status_code == 200
        assert "server" not in response.headers
    finally:
        server.terminate()
        server.wait(15)
