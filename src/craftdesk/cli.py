"""``craftdesk``: serve, migrate, and administer workspaces, members and keys.

Scriptable: the value asked for goes alone to stdout, everything else to stderr; an error
(bad input, bad configuration, an unknown workspace or key, a database that is missing or
unreachable) prints one clear line and exits non-zero, never a traceback.
"""

import argparse
import asyncio
import datetime as dt
import getpass
import json
import logging
import os
import re
import sqlite3
import sys
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import asyncpg
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from craftdesk.audit.service import CLI, Target, record
from craftdesk.auth.tokens import display_prefix
from craftdesk.config import Settings
from craftdesk.db import Database, Transaction, Unavailable
from craftdesk.errors import ProblemError
from craftdesk.keys import queries as key_queries
from craftdesk.keys import service as key_service
from craftdesk.keys.queries import ApiKeyRow
from craftdesk.keys.routes import KeyOut, workspace_keys
from craftdesk.members.queries import list_members
from craftdesk.members.service import change_role, remove
from craftdesk.schemas import MAX_ID, Name
from craftdesk.workspaces import queries as workspace_queries
from craftdesk.workspaces.models import PLANS, ROLES
from craftdesk.workspaces.queries import MembershipRow, WorkspaceRow
from craftdesk.workspaces.service import add_member, create_workspace, get_workspace

T = TypeVar("T")
PASSWORD_VARIABLE = "CRAFTDESK_PASSWORD"
EMAIL = re.compile(r"[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00.]+")


class CommandError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """Usage errors are one line too (argparse would print the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def say(message: str) -> None:
    print(message, file=sys.stderr)


# Arguments, checked as argparse reads them.

_NAME = TypeAdapter(Name)


def name_argument(value: str) -> str:
    try:
        return _NAME.validate_python(value)
    except ValidationError:
        raise argparse.ArgumentTypeError("a name is 1 to 100 characters, not blank") from None


def email_argument(value: str) -> str:
    email = value.strip().lower()
    if len(email) > 254 or not EMAIL.fullmatch(email):
        raise argparse.ArgumentTypeError(f"{value!r} is not an email address")
    return email


def id_argument(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{value!r} is not an id (a whole number from 1)")
    return int(value)


def grace_argument(value: str) -> int:
    if not value.isdigit() or int(value) > key_service.MAX_GRACE_SECONDS:
        raise argparse.ArgumentTypeError(
            f"{value!r}: the grace period is 0 to {key_service.MAX_GRACE_SECONDS} seconds"
        )
    return int(value)


def _add_password_options(parser: argparse.ArgumentParser, flag: str) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        flag,
        dest="password",
        metavar="PW",
        help=f"the new account's password (it stays in the shell's history: prefer "
        f"{PASSWORD_VARIABLE}, --password-stdin, or the prompt on a terminal)",
    )
    group.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    parser.set_defaults(password_flag=flag)


# Running work against the database.


async def _in_transaction(settings: Settings, work: Callable[[Transaction], Awaitable[T]]) -> T:
    """``work`` in one transaction: it commits if ``work`` returns, and not otherwise."""
    database = await Database.open(settings.database_url, settings)
    try:
        async with database.transaction() as tx:
            return await work(tx)
    finally:
        await database.close()


def _run(settings: Settings, work: Callable[[Transaction], Awaitable[T]]) -> T:
    return asyncio.run(_in_transaction(settings, work))


async def _workspace(tx: Transaction, slug: str) -> WorkspaceRow:
    workspace = await get_workspace(tx, slug)
    if workspace is None:
        raise CommandError(f"no workspace with slug {slug!r}")
    return workspace


async def _key(tx: Transaction, slug: str, key_id: int) -> tuple[WorkspaceRow, ApiKeyRow]:
    workspace = await _workspace(tx, slug)
    key = await key_queries.lock_key(tx, workspace.id, key_id)
    if key is None:
        raise CommandError(f"no key {key_id} in workspace {slug!r} (see craftdesk key list)")
    return workspace, key


async def _membership(tx: Transaction, slug: str, email: str) -> MembershipRow:
    workspace = await _workspace(tx, slug)
    membership = await workspace_queries.membership_by_email(
        tx, workspace.id, email.strip().lower()
    )
    if membership is None:
        raise CommandError(f"{email} is not a member of {slug}")
    return membership


def _when(instant: dt.datetime | None) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if instant else "never"


def _one_line(text: str) -> str:
    return re.sub(r"[\t\r\n]+", " ", text)


# Passwords: from the command line, CRAFTDESK_PASSWORD, standard input, or a prompt.


def _given_password(args: argparse.Namespace) -> tuple[str, str] | None:
    """The password handed to the command without asking, and where it came from."""
    if args.password is not None:
        return args.password, str(args.password_flag)
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), "standard input"
    if PASSWORD_VARIABLE in os.environ:
        return os.environ[PASSWORD_VARIABLE], PASSWORD_VARIABLE
    return None


def _ask_password(email: str) -> tuple[str, str]:
    if not sys.stdin.isatty():
        raise CommandError(
            f"no password for {email}'s new account: set {PASSWORD_VARIABLE}, pass it on "
            "standard input with --password-stdin, or run on a terminal to be asked"
        )
    password = getpass.getpass(f"Password for {email}: ")
    if password and getpass.getpass("Repeat it: ") != password:
        raise CommandError("the two passwords differ")
    return password, "the prompt"


def _new_account_password(
    settings: Settings, args: argparse.Namespace, slug: str | None, email: str
) -> str | None:
    """The password for ``email``'s new account; None when the account exists already, since
    it keeps its own password (one given anyway is refused rather than silently ignored)."""
    given = _given_password(args)

    async def has_account(tx: Transaction) -> bool:
        if slug is not None:
            await _workspace(tx, slug)
        return await workspace_queries.user_by_email(tx, email) is not None

    if _run(settings, has_account):
        if given is not None:
            raise CommandError(
                f"{email} already has an account, which keeps its own password: leave off "
                f"the password ({given[1]}) to add them with it"
            )
        say(f"{email} already has an account: they sign in with their current password")
        return None
    password, source = given if given is not None else _ask_password(email)
    if not password:
        raise CommandError(f"the password ({source}) is empty")
    return password


# The commands.


async def connection_budget_warning(settings: Settings, workers: int) -> str | None:
    """What to say when ``workers`` processes could open more connections than PostgreSQL
    accepts (under load, the requests over its limit would get 503)."""
    if not settings.database_url.startswith("postgresql"):
        return None

    async def check(tx: Transaction) -> str | None:
        limit = int(await tx.fetchval("SHOW max_connections"))
        reserved = int(await tx.fetchval("SHOW superuser_reserved_connections"))
        wanted = workers * settings.db_max_connections
        if wanted <= limit - reserved:
            return None
        return (
            f"{workers} workers × {settings.db_max_connections} connections = {wanted}, over "
            f"the {limit - reserved} PostgreSQL accepts (max_connections {limit}, {reserved} "
            "reserved); under load some requests would get 503. Lower "
            f"CRAFTDESK_DB_MAX_CONNECTIONS to {(limit - reserved) // workers} or fewer, or "
            "raise max_connections."
        )

    return await _in_transaction(settings, check)


def _migrate(settings: Settings) -> None:
    from alembic.util import CommandError as MigrationError

    from craftdesk.migrate import upgrade

    try:
        upgrade(settings.database_url)
    except MigrationError as exc:
        raise CommandError(f"migrations: {_first_line(exc)}") from None


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from craftdesk.logs import logging_config

    _migrate(settings)
    warning = asyncio.run(connection_budget_warning(settings, args.workers))
    if warning:
        say(f"craftdesk serve: {warning}")
    uvicorn.run(
        "craftdesk.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=logging_config(settings.log_level),
        access_log=False,
        # The app reads X-Forwarded-For itself, from CRAFTDESK_TRUSTED_PROXIES only:
        # uvicorn's would believe any such header from 127.0.0.1.
        proxy_headers=False,
        server_header=False,
    )


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> None:
    _migrate(settings)
    say("database is at the latest revision")


def cmd_workspace_create(args: argparse.Namespace, settings: Settings) -> str:
    password = _new_account_password(settings, args, None, args.owner_email)

    async def work(tx: Transaction) -> str:
        workspace = await create_workspace(
            tx,
            name=args.name,
            owner_email=args.owner_email,
            owner_password=password,
            plan=args.plan,
        )
        return workspace.slug

    return _run(settings, work)


def cmd_workspace_set_plan(args: argparse.Namespace, settings: Settings) -> None:
    async def work(tx: Transaction) -> None:
        workspace = await _workspace(tx, args.slug)
        await workspace_queries.set_plan(tx, workspace.id, args.plan, args.quota)
        quota = args.quota if args.quota is not None else settings.plan_quota(args.plan)
        say(f"{workspace.slug}: plan {args.plan}, {quota} requests per period")

    _run(settings, work)


def cmd_member_add(args: argparse.Namespace, settings: Settings) -> str:
    password = _new_account_password(settings, args, args.slug, args.email)

    async def work(tx: Transaction) -> str:
        membership = await add_member(
            tx,
            await _workspace(tx, args.slug),
            email=args.email,
            password=password,
            role=args.role,
        )
        return str(membership.id)

    return _run(settings, work)


def cmd_member_list(args: argparse.Namespace, settings: Settings) -> str:
    async def work(tx: Transaction) -> str:
        workspace = await _workspace(tx, args.slug)
        members = await list_members(tx, workspace.id, 0, MAX_ID)
        return "\n".join(
            f"{m['id']}\t{m['email']}\t{m['role']}\t{_when(m['created_at'])}" for m in members
        )

    return _run(settings, work)


def cmd_member_set_role(args: argparse.Namespace, settings: Settings) -> None:
    async def work(tx: Transaction) -> None:
        membership = await _membership(tx, args.slug, args.email)
        before = membership.role
        if (await change_role(tx, membership, args.role, actor=CLI)) != membership:
            say(f"{args.email}: {before} → {args.role} in {args.slug}")
        else:
            say(f"{args.email} is {args.role} in {args.slug} already")

    _run(settings, work)


def cmd_member_remove(args: argparse.Namespace, settings: Settings) -> None:
    async def work(tx: Transaction) -> None:
        membership = await _membership(tx, args.slug, args.email)
        revoked = await remove(tx, membership, actor=CLI)
        say(
            f"removed {args.email} from {args.slug}: {revoked} of their keys revoked, "
            "their dashboard sessions ended"
        )

    _run(settings, work)


def cmd_key_create(args: argparse.Namespace, settings: Settings) -> str:
    async def work(tx: Transaction) -> str:
        membership = await _membership(tx, args.slug, args.email)
        key, issued = await key_service.issue_key(
            tx,
            pepper=settings.pepper,
            workspace_id=membership.workspace_id,
            created_by_id=membership.user_id,
            membership_id=membership.id,
            name=args.name,
            scope=args.scope,
        )
        await record(
            tx,
            workspace_id=membership.workspace_id,
            action="key.created",
            actor=CLI,
            target=Target("api_key", key.id, args.name),
            details={"prefix": display_prefix(key.public_id), "scope": args.scope},
        )
        return issued.key

    return _run(settings, work)


def _key_line(key: KeyOut) -> str:
    return "\t".join(
        [
            str(key.id),
            _one_line(key.name),
            f"{key.prefix}…{key.last_four}",
            key.scope,
            key.status,
            _when(key.created_at),
            _when(key.last_used_at),
        ]
    )


def cmd_key_list(args: argparse.Namespace, settings: Settings) -> str:
    async def work(tx: Transaction) -> str:
        keys = await workspace_keys(tx, await _workspace(tx, args.slug))
        if args.json:
            return json.dumps([key.model_dump(mode="json") for key in keys], indent=2)
        return "\n".join(_key_line(key) for key in keys)

    return _run(settings, work)


def cmd_key_revoke(args: argparse.Namespace, settings: Settings) -> None:
    async def work(tx: Transaction) -> None:
        _, key = await _key(tx, args.slug, args.key_id)
        label = f"key {key.id} ({_one_line(key.name)}, {display_prefix(key.public_id)}…"
        if await key_service.revoke_key(tx, key, actor=CLI):
            say(f"{label}{key.last_four}) revoked: it gets 401 from its next request on")
        else:
            say(f"{label}{key.last_four}) was revoked already")

    _run(settings, work)


def cmd_key_rotate(args: argparse.Namespace, settings: Settings) -> str:
    async def work(tx: Transaction) -> str:
        workspace, old = await _key(tx, args.slug, args.key_id)
        key, issued = await key_service.rotate_key(
            tx,
            old,
            plan=workspace.plan,
            pepper=settings.pepper,
            grace_seconds=args.grace_seconds,
            actor=CLI,
        )
        expired = await key_queries.get_key(tx, workspace.id, old.id)
        assert expired is not None
        say(
            f"key {old.id} rotated: the new key is {key.id} "
            f"({display_prefix(key.public_id)}…{key.last_four}); the old one expires at "
            f"{_when(expired.expires_at)}"
        )
        return issued.key

    return _run(settings, work)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="craftdesk", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="apply migrations, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(handler=cmd_serve)

    db = commands.add_parser("db", help="database migrations").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="alembic upgrade head").set_defaults(handler=cmd_db_upgrade)

    workspace = commands.add_parser("workspace", help="workspaces").add_subparsers(
        dest="workspace_command", required=True
    )
    create = workspace.add_parser("create", help="create a workspace; prints its slug")
    create.add_argument("--name", required=True, type=name_argument)
    create.add_argument("--owner-email", required=True, type=email_argument)
    _add_password_options(create, "--owner-password")
    create.add_argument("--plan", choices=PLANS, default="free")
    create.set_defaults(handler=cmd_workspace_create)
    set_plan = workspace.add_parser("set-plan", help="change a workspace's plan and quota")
    set_plan.add_argument("slug")
    set_plan.add_argument("plan", choices=PLANS)
    set_plan.add_argument(
        "--quota", type=int, help="requests per billing period, overriding the plan's"
    )
    set_plan.set_defaults(handler=cmd_workspace_set_plan)

    member = commands.add_parser("member", help="members").add_subparsers(
        dest="member_command", required=True
    )
    add = member.add_parser("add", help="add a member; prints the member id")
    add.add_argument("slug")
    add.add_argument("--email", required=True, type=email_argument)
    _add_password_options(add, "--password")
    add.add_argument("--role", choices=ROLES, default="member")
    add.set_defaults(handler=cmd_member_add)
    member_list = member.add_parser(
        "list", help="the workspace's members, a line each: id, email, role, added"
    )
    member_list.add_argument("slug")
    member_list.set_defaults(handler=cmd_member_list)
    set_role = member.add_parser("set-role", help="change a member's role")
    set_role.add_argument("slug")
    set_role.add_argument("email", type=email_argument)
    set_role.add_argument("role", choices=ROLES)
    set_role.set_defaults(handler=cmd_member_set_role)
    member_remove = member.add_parser(
        "remove", help="remove a member: revokes their keys, ends their sessions"
    )
    member_remove.add_argument("slug")
    member_remove.add_argument("email", type=email_argument)
    member_remove.set_defaults(handler=cmd_member_remove)

    key = commands.add_parser("key", help="API keys").add_subparsers(
        dest="key_command", required=True
    )
    key_create = key.add_parser("create", help="create an API key; prints the key alone")
    key_create.add_argument("slug")
    key_create.add_argument(
        "--email", required=True, type=email_argument, help="the member the key acts for"
    )
    key_create.add_argument("--name", required=True, type=name_argument)
    key_create.add_argument("--scope", choices=("full", "read_only"), default="full")
    key_create.set_defaults(handler=cmd_key_create)
    key_list = key.add_parser(
        "list",
        help="every key of the workspace, a line each: id, name, prefix…last 4, scope, "
        "status, created, last used (never a secret)",
    )
    key_list.add_argument("slug")
    key_list.add_argument(
        "--json", action="store_true", help="a JSON array of the objects GET /v1/api-keys returns"
    )
    key_list.set_defaults(handler=cmd_key_list)
    key_revoke = key.add_parser("revoke", help="revoke a key at once, everywhere")
    key_revoke.add_argument("slug")
    key_revoke.add_argument("key_id", type=id_argument)
    key_revoke.set_defaults(handler=cmd_key_revoke)
    key_rotate = key.add_parser(
        "rotate", help="a new key with the same name and scope; prints the new key alone"
    )
    key_rotate.add_argument("slug")
    key_rotate.add_argument("key_id", type=id_argument)
    key_rotate.add_argument(
        "--grace-seconds",
        type=grace_argument,
        default=0,
        help="how long the old key keeps working (0, the default, to 2592000 = 30 days)",
    )
    key_rotate.set_defaults(handler=cmd_key_rotate)
    return parser


# Errors: one line each.


def _first_line(error: object) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def configuration_problem(error: ValidationError) -> str:
    """The first bad setting, named by its variable."""
    first = error.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    if not first["loc"]:  # a rule across settings, whose message names its variables
        return f"configuration error: {message}"
    return f"configuration error: CRAFTDESK_{str(first['loc'][0]).upper()}: {message}"


def _unopenable_sqlite(database_url: str) -> str:
    return (
        f"the SQLite database {make_url(database_url).database} cannot be opened or created: "
        "does its folder exist? (CRAFTDESK_DATABASE_URL)"
    )


def _check_sqlite_folder(database_url: str) -> None:
    """Refuse a SQLite file in a folder that does not exist before connecting (aiosqlite's
    thread, when its connection fails, can outlive the event loop and print a traceback)."""
    if not database_url.startswith("sqlite"):
        return
    path = make_url(database_url).database
    if path and path != ":memory:" and not Path(path).parent.is_dir():
        raise CommandError(_unopenable_sqlite(database_url))


def database_problem(error: Exception, database_url: str) -> str:
    """One line for what the driver (asyncpg, sqlite3) said, with what to do about it."""
    cause = error.__cause__ if isinstance(error, Unavailable) and error.__cause__ else error
    reason = _first_line(cause) or type(cause).__name__
    sqlstate = str(getattr(cause, "sqlstate", None) or "")
    if sqlstate == "3D000":  # invalid_catalog_name: 'database "x" does not exist'
        return f"{reason}: create it, or fix CRAFTDESK_DATABASE_URL"
    if reason == "unable to open database file":
        return _unopenable_sqlite(database_url)
    if sqlstate == "42P01" or reason.startswith("no such table"):
        return f"the database is not set up ({reason}): run craftdesk db upgrade first"
    if sqlstate.startswith("28"):  # invalid authorization
        return f"the database refused the connection: {reason} (CRAFTDESK_DATABASE_URL)"
    return f"database error: {reason}"


def _fail(message: str, status: int = 1) -> NoReturn:
    print(f"craftdesk: {message}", file=sys.stderr)
    sys.exit(status)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s"
    )
    try:
        settings = Settings()
    except ValidationError as exc:
        _fail(configuration_problem(exc))
    try:
        if getattr(args, "quota", None) is not None and args.quota < 0:
            raise CommandError("--quota must be 0 or more")
        _check_sqlite_folder(settings.database_url)
        result: Any = args.handler(args, settings)
    except (CommandError, ProblemError) as exc:
        _fail(str(exc))
    except DBAPIError as exc:  # from the migrations (Alembic runs on SQLAlchemy)
        _fail(database_problem(exc.orig or exc, settings.database_url))
    except (asyncpg.PostgresError, sqlite3.Error, Unavailable, OSError) as exc:
        unreachable = exc.__cause__ if isinstance(exc, Unavailable) else exc
        if isinstance(unreachable, OSError):
            _fail(f"cannot reach the database: {unreachable.strerror or _first_line(exc)}")
        _fail(database_problem(exc, settings.database_url))
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        if settings.log_level.upper() == "DEBUG":
            traceback.print_exc()
        _fail(
            f"unexpected error ({type(exc).__name__}): {_first_line(exc)} "
            "(CRAFTDESK_LOG_LEVEL=DEBUG prints the traceback)"
        )
    if result:
        try:
            print(result)
        except BrokenPipeError:  # e.g. `craftdesk key list acme | head -1`: nothing to add
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    main()
