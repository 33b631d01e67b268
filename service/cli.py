"""The `agensium` command: dev, api, worker, migrate, users (create, list, grant, rotate-key, disable, enable);
and the API's client commands submit, tasks, download, watch, transform, lineage (service/client.py), search and
aggregate (service/search_client.py).

Exit status: 0 success, 1 failure, 2 usage error (argparse's own).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shlex
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from service.config import Settings

if TYPE_CHECKING:
    from service.store import TaskStore

log = logging.getLogger("agensium")
T = TypeVar("T")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_sort_values_joined(sys.argv[1:] if argv is None else argv))
    from service import logs

    logs.configure(*log_options(args.command))
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 1
    except Exception as error:  # one line for the user; the traceback with -v style logging
        log.debug("command failed", exc_info=True)
        print(f"agensium {args.command}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


def _sort_values_joined(argv: Sequence[str]) -> list[str]:
    """`agensium search ... --sort -amount`: the descending sort reads as a value, not as an unknown option."""
    try:
        from service.search_client import join_sort_values
    except ImportError:  # the client is optional for the server side
        return list(argv)
    return join_sort_values(argv)


def command_path() -> str:
    """`agensium` as a new shell runs it, for the commands the launcher's banner and the client's hints print:
    the absolute path of the script installed beside this Python (a venv's bin/, which a new shell's PATH does
    not have), else this Python with `-m service.cli`."""
    script = Path(sys.executable).parent / "agensium"
    if script.is_file():
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m service.cli"


def log_options(command: str) -> tuple[Literal["json", "console"], str]:
    """(format, level) of this process's logs (service/logs.py): AGENSIUM_LOG_FORMAT, else JSON lines for the
    servers (`api`, `worker`) unless their stderr is a terminal (as under `agensium dev` run by a person), and
    console lines for every other command (dev's own lines, users, the client commands)."""
    try:
        settings = Settings()
    except ValueError:  # invalid settings: the command reports them itself
        settings = Settings.model_construct()
    if settings.log_format:
        return settings.log_format, settings.log_level
    server = command in ("api", "worker") and not sys.stderr.isatty()
    return ("json" if server else "console"), settings.log_level


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agensium", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = commands.add_parser("dev", help="run the API and a worker with their services, for development")
    dev.add_argument("--embedded", action="store_true", help="start embedded PostgreSQL, Valkey and SeaweedFS")
    dev.add_argument("--data-dir", default=".agensium", type=Path, help="embedded servers' data (%(default)s)")
    dev.add_argument("--port", default=8000, type=int, help="API port on 127.0.0.1 (%(default)s)")
    dev.set_defaults(func=_dev)

    api = commands.add_parser("api", help="run the HTTP API (uvicorn)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", default=8000, type=int)
    api.add_argument("--workers", default=1, type=int, help="uvicorn worker processes (%(default)s)")
    api.set_defaults(func=_api)

    worker = commands.add_parser("worker", help="run an arq worker")
    worker.set_defaults(func=_worker)

    migrate = commands.add_parser("migrate", help="create the database if needed and apply migrations")
    migrate.add_argument(
        "--ensure-bucket", action="store_true", help="also create the S3 bucket with its browser CORS rule"
    )
    migrate.set_defaults(func=_migrate)

    users = commands.add_parser("users", help="manage users")
    user_commands = users.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    create = user_commands.add_parser("create", help="create a user; prints its id and API key as JSON")
    create.add_argument("name")
    create.add_argument("--credits", default=0, type=int)
    create.add_argument("--admin", action="store_true")
    create.set_defaults(func=_users_create)
    _add_user_admin_parsers(user_commands)

    _add_client_commands(commands)
    return parser


def _add_user_admin_parsers(user_commands: Any) -> None:
    """users list | grant | rotate-key | disable | enable: USER is a name or a user id (a name several users
    share is refused; name the one by its id)."""
    listing = user_commands.add_parser("list", help="every user: name, id, admin, credits, disabled, created")
    listing.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    listing.set_defaults(func=_users_list)

    grant = user_commands.add_parser("grant", help="add credits to a user (a grant line in its ledger)")
    grant.add_argument("user", metavar="USER", help="name or user id")
    grant.add_argument("credits", type=_positive_int, help="credits to add (> 0)")
    grant.add_argument("--reason", default="grant", help="the ledger line's reason (%(default)s)")
    grant.set_defaults(func=_users_grant)

    rotate = user_commands.add_parser("rotate-key", help="a new API key for a user; prints it; the old one stops")
    rotate.add_argument("user", metavar="USER", help="name or user id")
    rotate.set_defaults(func=_users_rotate_key)

    disable = user_commands.add_parser("disable", help="refuse a user's API key and stream tokens (401)")
    disable.add_argument("user", metavar="USER", help="name or user id")
    disable.set_defaults(func=_users_disable, disabled=True)

    enable = user_commands.add_parser("enable", help="accept a disabled user's API key again")
    enable.add_argument("user", metavar="USER", help="name or user id")
    enable.set_defaults(func=_users_disable, disabled=False)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _add_client_commands(commands: Any) -> None:
    try:
        from service.client import add_client_parsers
    except ImportError as error:  # the client is optional for the server side
        log.debug("the API client's commands are unavailable: %s", error)
        return
    add_client_parsers(commands)


# --- commands -------------------------------------------------------------------------------


def _dev(args: argparse.Namespace) -> int:
    from service.dev import run_dev

    return run_dev(data_dir=args.data_dir, port=args.port, embedded_only=args.embedded)


def _api(args: argparse.Namespace) -> int:
    import uvicorn

    from service import logs
    from service.api.app import KEEP_ALIVE_S
    from service.api.tokens import signing_key

    signing_key(Settings())  # no AGENSIUM_SECRET_KEY: one line and exit 1 here, not a traceback per process
    uvicorn.run(
        "service.api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,  # the API logs each request itself, with its ids (service/api/app.py)
        log_config=logs.dict_config(*log_options("api")),  # again in each uvicorn worker process
        lifespan="on",
        timeout_keep_alive=KEEP_ALIVE_S,
        # Nothing in the API reads the client address or scheme that X-Forwarded-* would rewrite: without the
        # proxy-headers middleware every request is one ASGI layer shorter.
        proxy_headers=False,
        backlog=4096,  # wrk's or a load balancer's connection bursts wait in the kernel rather than being refused
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    from worker.settings import run

    run(Settings())  # arq's run_worker with options built from Settings; stops on SIGINT/SIGTERM
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from service.dev import ensure_database
    from service.storage import Storage
    from service.store import apply_migrations

    settings = Settings()

    async def migrate() -> list[str]:
        await ensure_database(settings.database_url)
        applied = await apply_migrations(settings.database_url)
        if args.ensure_bucket:
            async with Storage(settings) as storage:
                await storage.ensure_bucket()
        return applied

    applied = asyncio.run(migrate())
    print(f"applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''}")
    return 0


def _users_create(args: argparse.Namespace) -> int:
    user_id, api_key = _with_store(
        lambda store: store.create_user(name=args.name, is_admin=args.admin, credits=args.credits)
    )
    print(json.dumps({"user_id": str(user_id), "api_key": api_key}))
    return 0


class UserNotFound(LookupError):
    """USER names no user, or several (the message says which and how to pick one)."""


def _with_store(work: Callable[[TaskStore], Awaitable[T]]) -> T:
    """Run `work` with a one-connection store on the configured database."""
    from service.store import TaskStore

    settings = Settings()

    async def run() -> T:
        store = await TaskStore.connect(settings.database_url, min_size=1, max_size=1)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


async def _resolve_user(store: TaskStore, ref: str) -> Any:
    """The one user that `ref` names: its id, else its name; UserNotFound when none or several match."""
    rows = await store.find_users(ref)
    by_id = [r for r in rows if str(r["id"]) == ref.lower()]
    if by_id:
        return by_id[0]
    if not rows:
        raise UserNotFound(f"no user is named {ref!r} or has that id")
    if len(rows) > 1:
        ids = ", ".join(f"{r['id']} (created {r['created_at']:%Y-%m-%d %H:%M})" for r in rows)
        raise UserNotFound(f"{len(rows)} users are named {ref!r}: {ids}; name one by its id")
    return rows[0]


def _user_command(args: argparse.Namespace, work: Callable[[TaskStore], Awaitable[int]]) -> int:
    """Run a users command; a USER that names no one or several is one line on stderr and exit 1."""
    try:
        return _with_store(work)
    except UserNotFound as error:
        print(f"agensium users {args.users_command}: {error}", file=sys.stderr)
        return 1


def _users_list(args: argparse.Namespace) -> int:
    async def work(store: TaskStore) -> int:
        rows = [
            {
                "name": r["name"],
                "user_id": str(r["id"]),
                "is_admin": r["is_admin"],
                "credits": r["credits"],
                "disabled_at": r["disabled_at"].isoformat() if r["disabled_at"] else None,
                "created_at": r["created_at"].isoformat(),
            }
            for r in await store.list_users()
        ]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            _print_table(
                ["NAME", "ID", "ADMIN", "CREDITS", "DISABLED", "CREATED"],
                [
                    [
                        u["name"],
                        u["user_id"],
                        "yes" if u["is_admin"] else "no",
                        str(u["credits"]),
                        (u["disabled_at"] or "")[:19].replace("T", " ") or "no",
                        u["created_at"][:19].replace("T", " "),
                    ]
                    for u in rows
                ],
            )
        return 0

    return _user_command(args, work)


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _users_grant(args: argparse.Namespace) -> int:
    async def work(store: TaskStore) -> int:
        user = await _resolve_user(store, args.user)
        balance = await store.grant_credits(str(user["id"]), args.credits, args.reason)
        if balance is None:
            raise UserNotFound(f"user {user['id']} was deleted")
        granted = {"user_id": str(user["id"]), "name": user["name"], "granted": args.credits, "credits": balance}
        print(json.dumps(granted))
        return 0

    return _user_command(args, work)


def _users_rotate_key(args: argparse.Namespace) -> int:
    async def work(store: TaskStore) -> int:
        user = await _resolve_user(store, args.user)
        api_key = await store.rotate_api_key(str(user["id"]))
        if api_key is None:
            raise UserNotFound(f"user {user['id']} was deleted")
        print(json.dumps({"user_id": str(user["id"]), "api_key": api_key}))
        print(ACCESS_CHANGE_NOTE, file=sys.stderr)
        return 0

    return _user_command(args, work)


def _users_disable(args: argparse.Namespace) -> int:
    async def work(store: TaskStore) -> int:
        user = await _resolve_user(store, args.user)
        if not await store.set_disabled(str(user["id"]), args.disabled):
            raise UserNotFound(f"user {user['id']} was deleted")
        state = "disabled" if args.disabled else "enabled"
        print(json.dumps({"user_id": str(user["id"]), "name": user["name"], "state": state}))
        if args.disabled:
            print(ACCESS_CHANGE_NOTE, file=sys.stderr)
        return 0

    return _user_command(args, work)


# Every API process drops the user from its auth cache when told (PostgreSQL NOTIFY, service/store.py
# listen_user_changes); stream tokens are checked against the database each time a stream opens.
ACCESS_CHANGE_NOTE = "note: running API processes refuse the old key at once; streams already open stay open."


if __name__ == "__main__":
    sys.exit(main())
