"""The `agensium` command: dev, api, worker, migrate, users create; and the API's client commands
submit, tasks, download, watch (service/client.py).

Exit status: 0 success, 1 failure, 2 usage error (argparse's own).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.config import Settings

log = logging.getLogger("agensium")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 1
    except Exception as error:  # one line for the user; the traceback with -v style logging
        log.debug("command failed", exc_info=True)
        print(f"agensium {args.command}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


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

    _add_client_commands(commands)
    return parser


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

    uvicorn.run(
        "service.api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        lifespan="on",
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
    from service.store import TaskStore

    settings = Settings()

    async def create() -> tuple[str, str]:
        store = await TaskStore.connect(settings.database_url, min_size=1, max_size=1)
        try:
            return await store.create_user(name=args.name, is_admin=args.admin, credits=args.credits)
        finally:
            await store.close()

    user_id, api_key = asyncio.run(create())
    print(json.dumps({"user_id": str(user_id), "api_key": api_key}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
