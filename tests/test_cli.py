"""The craftdesk command: the value alone on stdout, one clear line and non-zero on errors."""

import asyncio
import os
import pty
import subprocess
import sys
import time
from pathlib import Path
from select import select as wait_readable

import httpx
import pytest
from fastapi import FastAPI

from craftdesk.auth.tokens import parse_key
from craftdesk.cli import connection_budget_warning
from craftdesk.config import Settings
from craftdesk.db import Database
from craftdesk.workspaces.service import create_workspace
from tests.conftest import TEST_PEPPER, bearer
from tests.live.server import free_port, server_env

CRAFTDESK = str(Path(sys.executable).with_name("craftdesk"))


def environment(database_url: str, env: dict[str, str] | None = None) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if k != "CRAFTDESK_PASSWORD"}
    return {
        **inherited,
        "CRAFTDESK_DATABASE_URL": database_url,
        "CRAFTDESK_KEY_PEPPER": TEST_PEPPER,
        **(env or {}),
    }


def run(
    database_url: str, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CRAFTDESK, *args],
        capture_output=True,
        text=True,
        env=environment(database_url, env),
        input=stdin if stdin is not None else "",
        timeout=60,
    )


async def cli(
    database_url: str, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``run`` from a test whose app serves in this process: the event loop goes on while the
    command runs, as it would in a server of its own, so the app's batch writers commit and
    release the rows the command may wait for (blocking the loop held them: a flaky timeout)."""
    return await asyncio.to_thread(run, database_url, *args, env=env, stdin=stdin)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr


async def test_workspace_member_and_key_from_the_command_line(
    database_url: str, client: httpx.AsyncClient, app: FastAPI
) -> None:
    created = await cli(
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

    member = await cli(
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

    key_run = await cli(
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

    audited = await app.state.db.fetchrow(
        "SELECT actor_type, target_label, details FROM audit_events WHERE action = $1",
        "key.created",
    )
    assert audited is not None
    assert audited["actor_type"] == "cli" and audited["target_label"] == "CI"
    assert key not in str(audited["details"])

    me = (await client.get("/v1/auth/key", headers=bearer(key))).json()
    assert me["scope"] == "read_only" and me["role"] == "member" and me["workspace"]["slug"] == slug

    plan = await cli(database_url, "workspace", "set-plan", slug, "business", "--quota", "42")
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
    db = await Database.open(database_url, settings)
    try:
        limit = int(await db.fetchval("SHOW max_connections"))
        reserved = int(await db.fetchval("SHOW superuser_reserved_connections"))
    finally:
        await db.close()
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
        [CRAFTDESK, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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


def test_python_dash_m_craftdesk_is_the_same_program() -> None:
    module = subprocess.run(
        [sys.executable, "-m", "craftdesk", "key", "--help"], capture_output=True, text=True
    )
    script = subprocess.run([CRAFTDESK, "key", "--help"], capture_output=True, text=True)
    assert module.returncode == script.returncode == 0
    assert module.stdout == script.stdout and "rotate" in module.stdout


async def _signs_in(client: httpx.AsyncClient, slug: str, email: str, password: str) -> bool:
    response = await client.post(
        "/v1/sessions", json={"workspace": slug, "email": email, "password": password}
    )
    return response.status_code == 201


async def test_passwords_come_from_the_environment_or_standard_input(
    database_url: str, client: httpx.AsyncClient
) -> None:
    created = await cli(
        database_url,
        *("workspace", "create", "--name", "Acme", "--owner-email", "o@acme.test"),
        env={"CRAFTDESK_PASSWORD": "from-the-environment"},
    )
    assert created.returncode == 0, created.stderr
    slug = created.stdout.strip()
    added = await cli(
        database_url,
        *("member", "add", slug, "--email", "dev@acme.test", "--password-stdin"),
        stdin="from standard input\n",
        env={"CRAFTDESK_PASSWORD": "not-this-one"},
    )
    assert added.returncode == 0, added.stderr
    assert await _signs_in(client, slug, "o@acme.test", "from-the-environment")
    assert await _signs_in(client, slug, "dev@acme.test", "from standard input")
    assert not await _signs_in(client, slug, "dev@acme.test", "not-this-one")


def _on_a_terminal(
    database_url: str, args: list[str], answers: list[str]
) -> tuple[int, str, str, str]:
    """Run craftdesk with a pseudo-terminal as its controlling terminal and standard input,
    typing each answer after its prompt; returns the exit code, stdout, stderr and what the
    terminal showed."""
    master, slave = pty.openpty()
    become_terminal_leader = (
        "import fcntl, os, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", become_terminal_leader, CRAFTDESK, *args],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(database_url),
    )
    os.close(slave)
    screen = b""
    typed = 0
    try:
        while process.poll() is None:
            ready, _, _ = wait_readable([master], [], [], 30)
            assert ready, f"no prompt within 30 s; the terminal shows {screen!r}"
            try:
                screen += os.read(master, 1024)
            except OSError:  # the terminal is gone: craftdesk has exited
                break
            if typed < len(answers) and screen.count(b": ") > typed:
                os.write(master, answers[typed].encode() + b"\n")
                typed += 1
        stdout, stderr = process.communicate(timeout=60)
    finally:
        os.close(master)
    return process.returncode, stdout.decode(), stderr.decode(), screen.decode()


async def test_a_password_left_off_is_asked_for_without_echo_on_a_terminal(
    database_url: str, client: httpx.AsyncClient
) -> None:
    args = ["workspace", "create", "--name", "Acme", "--owner-email", "o@acme.test"]
    code, stdout, stderr, screen = _on_a_terminal(database_url, args, ["typed-1", "typed-1"])
    assert code == 0, stderr
    assert "Password for o@acme.test:" in screen and "Repeat it:" in screen
    assert "typed-1" not in screen + stdout + stderr
    assert stdout == "acme\n"
    assert await _signs_in(client, "acme", "o@acme.test", "typed-1")

    code, stdout, stderr, _ = _on_a_terminal(
        database_url,
        ["member", "add", "acme", "--email", "dev@acme.test"],
        ["typed-2", "typo-2"],
    )
    assert code != 0 and stdout == "" and "differ" in stderr
    assert not await _signs_in(client, "acme", "dev@acme.test", "typed-2")


def test_without_a_password_or_a_terminal_the_command_says_how_to_give_one(
    database_url: str,
) -> None:
    result = run(database_url, "workspace", "create", "--name", "A", "--owner-email", "o@a.test")
    assert_one_line_error(result, "CRAFTDESK_PASSWORD", "--password-stdin", "terminal")


async def test_an_existing_owner_keeps_their_password_and_a_new_one_is_refused(
    database_url: str, client: httpx.AsyncClient
) -> None:
    first = await cli(
        database_url,
        *("workspace", "create", "--name", "First", "--owner-email", "o@acme.test"),
        env={"CRAFTDESK_PASSWORD": "the-first-one"},
    )
    assert first.returncode == 0, first.stderr
    refused = await cli(
        database_url,
        *("workspace", "create", "--name", "Second", "--owner-email", "o@acme.test"),
        *("--owner-password", "a-second-one"),
    )
    assert_one_line_error(refused, "already has an account", "--owner-password")
    assert "a-second-one" not in refused.stderr

    second = await cli(
        database_url, "workspace", "create", "--name", "Second", "--owner-email", "O@acme.test"
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout == "second\n"
    assert "already has an account" in second.stderr and "current password" in second.stderr
    assert await _signs_in(client, "second", "o@acme.test", "the-first-one")
    assert not await _signs_in(client, "second", "o@acme.test", "a-second-one")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("workspace", "create", "--name", "  ", "--owner-email", "o@a.test"), ["--name"]),
        (("workspace", "create", "--name", "A", "--owner-email", "not-an-email"), ["email"]),
        (("key", "create", "acme", "--email", "o@acme.test", "--name", ""), ["--name"]),
        (("key", "rotate", "acme", "abc"), ["key_id", "'abc'"]),
        (("key", "rotate", "acme", "1", "--grace-seconds", "-1"), ["0 to 2592000"]),
        (("member", "set-role", "acme", "o@acme.test", "boss"), ["invalid choice"]),
    ],
)
def test_bad_arguments_are_one_line_and_non_zero(args: tuple[str, ...], words: list[str]) -> None:
    assert_one_line_error(run("sqlite+aiosqlite:///unused.db", *args), *words)


async def test_bad_input_found_in_the_database_is_one_line_and_non_zero(
    database_url: str, app: FastAPI
) -> None:
    async with app.state.db.transaction() as tx:
        await create_workspace(tx, name="Acme", owner_email="o@acme.test", owner_password="pw-1")
    for args, stdin, words in [
        (
            ("workspace", "create", "--name", "A", "--owner-email", "n@a.test")
            + ("--owner-password", ""),
            None,
            ["empty"],
        ),
        (("member", "add", "acme", "--email", "a@acme.test", "--password-stdin"), "\n", ["empty"]),
        (("key", "revoke", "acme", "99999"), None, ["no key 99999"]),
        (("key", "list", "nope"), None, ["no workspace"]),
        (("member", "list", "nope"), None, ["no workspace"]),
        (("member", "set-role", "acme", "stranger@acme.test", "admin"), None, ["not a member"]),
        (("member", "remove", "acme", "stranger@acme.test"), None, ["not a member"]),
    ]:
        assert_one_line_error(await cli(database_url, *args, stdin=stdin), *words)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"CRAFTDESK_ENV": "prod"}, ["CRAFTDESK_ENV", "'development' or 'production'"]),
        (
            {"CRAFTDESK_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres"},
            ["CRAFTDESK_DATABASE_URL", "postgresql+asyncpg://"],
        ),
        ({"CRAFTDESK_QUOTA_FREE": "lots"}, ["CRAFTDESK_QUOTA_FREE"]),
    ],
)
def test_bad_configuration_names_the_variable(
    tmp_path: Path, env: dict[str, str], words: list[str]
) -> None:
    for command in (("db", "upgrade"), ("key", "list", "acme")):
        result = run(f"sqlite+aiosqlite:///{tmp_path}/craftdesk.db", *command, env=env)
        assert_one_line_error(result, *words)


def _missing_database(database_url: str, tmp_path: Path) -> str:
    if database_url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{tmp_path}/no-such-folder/craftdesk.db"
    return database_url.rsplit("/", 1)[0] + "/craftdesk_no_such_database"


def test_a_database_that_does_not_exist_is_one_line_saying_so(
    database_url: str, tmp_path: Path
) -> None:
    for command in (("serve",), ("key", "list", "acme")):
        result = run(_missing_database(database_url, tmp_path), *command)
        if database_url.startswith("sqlite"):
            assert_one_line_error(result, "no-such-folder", "does its folder exist")
        else:
            assert_one_line_error(result, '"craftdesk_no_such_database" does not exist')
        assert "CRAFTDESK_DATABASE_URL" in result.stderr


@pytest.mark.usefixtures("backend")
def test_a_database_not_migrated_yet_says_to_run_db_upgrade(tmp_path: Path) -> None:
    result = run(f"sqlite+aiosqlite:///{tmp_path}/empty.db", "key", "list", "acme")
    assert_one_line_error(result, "craftdesk db upgrade")
