"""`runwire serve | worker | db upgrade`."""

import argparse
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from runwire import schema
from runwire.config import Settings
from runwire.db import create_db_engine


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {key: value for key in ("host", "port", "data_dir") if (value := getattr(args, key, None)) is not None}
    return Settings(**overrides)


def serve(args: argparse.Namespace) -> None:
    from runwire.main import create_app

    settings = _settings(args)
    app = create_app(settings, run_executor=not args.no_executor)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)


def db_upgrade(args: argparse.Namespace) -> None:
    settings = _settings(args)
    engine = create_db_engine(settings.resolved_database_url)
    try:
        schema.upgrade(engine)
    finally:
        engine.dispose()
    print(f"database is at the newest schema: {engine.url.render_as_string(hide_password=True)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runwire", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="run the HTTP API and the executor")
    serve_parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="port to listen on (default 3026)")
    serve_parser.add_argument("--data-dir", type=Path, help="where the embedded SQLite files live (default ./.runwire)")
    serve_parser.add_argument("--no-executor", action="store_true", help="serve the API only; execute no runs")
    serve_parser.set_defaults(handler=serve)

    db_parser = commands.add_parser("db", help="database administration")
    db_commands = db_parser.add_subparsers(dest="db_command", required=True)
    upgrade_parser = db_commands.add_parser("upgrade", help="apply every pending migration")
    upgrade_parser.add_argument("--data-dir", type=Path, help="where the embedded SQLite files live")
    upgrade_parser.set_defaults(handler=db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.handler(args)
