"""`runwire serve | worker | recover | db upgrade`."""

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from dbos import DBOS

from runwire import migrate
from runwire.config import Settings
from runwire.db import Database, create_db_engine
from runwire.logs import configure_logging

log = logging.getLogger("runwire.cli")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {key: value for key in ("host", "port", "data_dir") if (value := getattr(args, key, None)) is not None}
    return Settings(**overrides)


def serve(args: argparse.Namespace) -> None:
    from runwire.main import create_app

    settings = _settings(args)
    app = create_app(settings, run_executor=not args.no_executor)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)


def worker(args: argparse.Namespace) -> None:
    from runwire.runtime import Runtime

    settings = _settings(args)
    configure_logging(settings.log_level)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    runtime = Runtime(settings, execute=True)
    runtime.start()
    log.info("worker started", extra={"executor_id": settings.executor_id})
    try:
        stopping.wait()
    finally:
        runtime.stop()
    log.info("worker stopped", extra={"executor_id": settings.executor_id})


def recover(args: argparse.Namespace) -> None:
    from runwire.runs.executor import recover_executor

    settings = _settings(args)
    database = Database(settings.resolved_database_url, settings.database_pool_size)
    try:
        run_ids = recover_executor(settings, database, args.executor)
    finally:
        database.dispose()
    for run_id in run_ids:
        print(run_id)
    print(f"{len(run_ids)} run(s) of executor {args.executor!r} are back on the run queue for live executors")


def db_upgrade(args: argparse.Namespace) -> None:
    settings = _settings(args)
    engine = create_db_engine(settings.resolved_database_url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    DBOS.migrate(settings.resolved_dbos_url)
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

    worker_parser = commands.add_parser("worker", help="execute runs only (no HTTP); set RUNWIRE_EXECUTOR_ID")
    worker_parser.add_argument("--data-dir", type=Path, help="where the embedded SQLite files live")
    worker_parser.set_defaults(handler=worker)

    recover_parser = commands.add_parser("recover", help="put a dead executor's unfinished runs back on the queue")
    recover_parser.add_argument("--executor", required=True, help="the RUNWIRE_EXECUTOR_ID of the dead process")
    recover_parser.add_argument("--data-dir", type=Path, help="where the embedded SQLite files live")
    recover_parser.set_defaults(handler=recover)

    db_parser = commands.add_parser("db", help="database administration")
    db_commands = db_parser.add_subparsers(dest="db_command", required=True)
    upgrade_parser = db_commands.add_parser("upgrade", help="apply every pending migration")
    upgrade_parser.add_argument("--data-dir", type=Path, help="where the embedded SQLite files live")
    upgrade_parser.set_defaults(handler=db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.handler(args)
