"""``craftdesk``: serve, migrate, and set up workspaces, members and keys.

Scriptable: the value asked for goes alone to stdout, everything else to stderr; an error
prints one clear line and exits non-zero.
"""

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from craftdesk.audit.service import CLI, Target, record
from craftdesk.auth.tokens import display_prefix
from craftdesk.config import Settings
from craftdesk.db import create_engine, make_sessionmaker
from craftdesk.errors import ProblemError
from craftdesk.keys.service import issue_key
from craftdesk.workspaces.models import PLANS, ROLES, Membership, User, Workspace
from craftdesk.workspaces.service import add_member, create_workspace, get_workspace


class CommandError(Exception):
    pass


async def _in_session(
    settings: Settings, work: Callable[[Any], Awaitable[str | None]]
) -> str | None:
    engine = create_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


async def _workspace(session: Any, slug: str) -> Workspace:
    workspace = await get_workspace(session, slug)
    if workspace is None:
        raise CommandError(f"no workspace with slug {slug!r}")
    return workspace


async def connection_budget_warning(settings: Settings, workers: int) -> str | None:
    """What to say when ``workers`` processes could open more connections than PostgreSQL
    accepts (under load, the requests over its limit would get 503)."""
    if not settings.database_url.startswith("postgresql"):
        return None

    async def check(session: Any) -> str | None:
        limit = int(await session.scalar(text("SHOW max_connections")))
        reserved = int(await session.scalar(text("SHOW superuser_reserved_connections")))
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

    return await _in_session(settings, check)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from craftdesk.logs import logging_config
    from craftdesk.migrate import upgrade

    upgrade(settings.database_url)
    warning = asyncio.run(connection_budget_warning(settings, args.workers))
    if warning:
        print(f"craftdesk serve: {warning}", file=sys.stderr)
    uvicorn.run(
        "craftdesk.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=logging_config(settings.log_level),
        access_log=False,
        proxy_headers=True,
        server_header=False,
    )


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> None:
    from craftdesk.migrate import upgrade

    upgrade(settings.database_url)
    print("database is at the latest revision", file=sys.stderr)


def cmd_workspace_create(args: argparse.Namespace, settings: Settings) -> str | None:
    async def work(session: Any) -> str:
        workspace = await create_workspace(
            session,
            name=args.name,
            owner_email=args.owner_email,
            owner_password=args.owner_password,
            plan=args.plan,
        )
        return workspace.slug

    return asyncio.run(_in_session(settings, work))


def cmd_workspace_set_plan(args: argparse.Namespace, settings: Settings) -> str | None:
    async def work(session: Any) -> None:
        workspace = await _workspace(session, args.slug)
        workspace.plan = args.plan
        workspace.quota_override = args.quota
        quota = args.quota if args.quota is not None else settings.plan_quota(args.plan)
        print(f"{workspace.slug}: plan {args.plan}, {quota} requests per period", file=sys.stderr)

    return asyncio.run(_in_session(settings, work))


def cmd_member_add(args: argparse.Namespace, settings: Settings) -> str | None:
    async def work(session: Any) -> str:
        membership = await add_member(
            session,
            await _workspace(session, args.slug),
            email=args.email,
            password=args.password,
            role=args.role,
        )
        return str(membership.id)

    return asyncio.run(_in_session(settings, work))


def cmd_key_create(args: argparse.Namespace, settings: Settings) -> str | None:
    async def work(session: Any) -> str:
        workspace = await _workspace(session, args.slug)
        membership = (
            await session.execute(
                select(Membership.user_id, Membership.id)
                .join(User, Membership.user_id == User.id)
                .where(Membership.workspace_id == workspace.id, User.email == args.email.lower())
            )
        ).first()
        if membership is None:
            raise CommandError(f"{args.email} is not a member of {args.slug}")
        key, issued = await issue_key(
            session,
            pepper=settings.pepper,
            workspace_id=workspace.id,
            created_by_id=membership.user_id,
            membership_id=membership.id,
            name=args.name,
            scope=args.scope,
        )
        record(
            session,
            workspace_id=workspace.id,
            action="key.created",
            actor=CLI,
            target=Target("api_key", key.id, args.name),
            details={"prefix": display_prefix(key.public_id), "scope": args.scope},
        )
        return issued.key

    return asyncio.run(_in_session(settings, work))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="craftdesk", description=__doc__.splitlines()[0])
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
    create.add_argument("--name", required=True)
    create.add_argument("--owner-email", required=True)
    create.add_argument("--owner-password", required=True)
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
    add.add_argument("--email", required=True)
    add.add_argument("--password", required=True)
    add.add_argument("--role", choices=ROLES, default="member")
    add.set_defaults(handler=cmd_member_add)

    key = commands.add_parser("key", help="API keys").add_subparsers(
        dest="key_command", required=True
    )
    key_create = key.add_parser("create", help="create an API key; prints the key alone")
    key_create.add_argument("slug")
    key_create.add_argument("--email", required=True, help="the member the key acts for")
    key_create.add_argument("--name", required=True)
    key_create.add_argument("--scope", choices=("full", "read_only"), default="full")
    key_create.set_defaults(handler=cmd_key_create)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s"
    )
    try:
        settings = Settings()
        if getattr(args, "quota", None) is not None and args.quota < 0:
            raise CommandError("--quota must be 0 or more")
        result = args.handler(args, settings)
    except ValidationError as exc:
        error = exc.errors()[0]
        sys.exit(f"craftdesk: configuration error: {error['msg'].removeprefix('Value error, ')}")
    except (CommandError, ProblemError) as exc:
        sys.exit(f"craftdesk: {exc}")
    except (OSError, DBAPIError) as exc:
        reason = getattr(exc, "strerror", None) or type(getattr(exc, "orig", exc)).__name__
        sys.exit(f"craftdesk: cannot reach the database: {reason}")
    if result is not None:
        print(result)


if __name__ == "__main__":
    main()
