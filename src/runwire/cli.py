"""`runwire serve | worker | check | recover | db upgrade | tools list | tools refresh`."""

import argparse
import logging
import os
import socket
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from dbos import DBOS

from runwire import migrate, startup_checks
from runwire.config import Settings, process_environment
from runwire.db import Database, create_db_engine
from runwire.drain import Drain, handle_signals
from runwire.logs import configure_logging
from runwire.serving import DrainingServer, serve_in_thread
from runwire.tools.mcp import config as tools_config

log = logging.getLogger("runwire.cli")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {key: value for key in ("host", "port", "data_dir") if (value := getattr(args, key, None)) is not None}
    return startup_checks.load_settings(**overrides)


def _checked(settings: Settings, *, port: int | None) -> socket.socket | None:
    """Run the start-up checks and raise every problem found. With a `port`, return a socket listening on it (held
    from now on, so that no other process takes it while this one starts)."""
    checks = startup_checks.run_checks(settings, port=False, create_data_dir=True)
    problems = [check.problem for check in checks if check.problem is not None]
    sock = None
    if port is not None:
        try:
            sock = startup_checks.bind_port(settings.host, port)
        except startup_checks.Problem as problem:
            problems.insert(0, problem)
    if problems:
        if sock is not None:
            sock.close()
        raise startup_checks.Problems(problems)
    return sock


def _refuse(message: str) -> NoReturn:
    print(f"runwire: {message}", file=sys.stderr)
    sys.exit(2)


def _check_tools_config(settings: Settings) -> None:
    """A malformed RUNWIRE_TOOLS_CONFIG stops the process before it starts anything."""
    try:
        tools_config.load(settings.tools_config, process_environment())
    except tools_config.ToolsConfigError as error:
        _refuse(f"RUNWIRE_TOOLS_CONFIG {error}")


def serve(args: argparse.Namespace) -> None:
    from runwire.main import create_app

    settings = _settings(args)
    configure_logging(settings.log_level)
    sock = _checked(settings, port=settings.port)
    assert sock is not None
    app = create_app(settings, run_executor=not args.no_executor)
    server = DrainingServer(app, settings, app.state.drain)
    try:
        server.run(sockets=[sock])
    except SystemExit:
        failure = getattr(app.state, "startup_failure", None)
        if server.started or failure is None:
            raise
        raise failure from None


def worker(args: argparse.Namespace) -> None:
    from runwire.main import create_worker_app
    from runwire.runtime import Runtime

    settings = _settings(args)
    configure_logging(settings.log_level)
    sock = _checked(settings, port=settings.metrics_port)
    drain = Drain(settings.shutdown_grace_seconds)
    stopping = threading.Event()
    handle_signals(drain, stopping)
    runtime = Runtime(settings, execute=True)
    runtime.start()
    drain.on_begin(runtime.begin_drain)
    endpoints = None if sock is None else serve_in_thread(create_worker_app(settings, runtime, drain), settings, sock)
    log.info("worker started", extra={"executor_id": settings.executor_id})
    try:
        stopping.wait()
        drain.begin()
    finally:
        runtime.stop(drain.deadline if drain.begun else None)
        if endpoints is not None:
            endpoints.stop()
    log.info("worker stopped", extra={"executor_id": settings.executor_id})


def check(args: argparse.Namespace) -> None:
    """Every start-up check, each printed with ok or its problem; exit status 1 when any failed."""
    try:
        settings = _settings(args)
    except startup_checks.Problems as failed:
        for problem in failed.problems:
            print(f"FAIL  settings: {problem.what}\n        {problem.fix}")
        sys.exit(1)
    checks = [
        startup_checks.Check("settings", note="every RUNWIRE_* value is allowed"),
        *startup_checks.run_checks(settings, port=not args.no_port, create_data_dir=False),
    ]
    for each in checks:
        if each.problem is None:
            print(f"ok    {each.name}: {each.note}")
        else:
            print(f"FAIL  {each.name}: {each.problem.what}\n        {each.problem.fix}")
    sys.exit(0 if all(each.ok for each in checks) else 1)


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


def tools_list(args: argparse.Namespace) -> None:
    settings = _settings(args)
    _print_tools(settings, refreshed=False, wait=args.wait)


def tools_refresh(args: argparse.Namespace) -> None:
    """Ask every running process to list its MCP servers' tools again: through a file in the data directory (the
    processes on this machine) and, on PostgreSQL, a NOTIFY (every process on the database); then list them here."""
    from runwire.runs.signals import Signal, raise_signal
    from runwire.runtime import REFRESH_STAMP

    settings = _settings(args)
    _check_tools_config(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / REFRESH_STAMP).touch()
    if not settings.is_sqlite:
        database = Database(settings.resolved_database_url, settings.database_pool_size)
        try:
            with database.writing() as session:
                raise_signal(Signal.TOOLS, None, session=session)
        finally:
            database.dispose()
    print("asked the running Runwire processes to list their MCP servers' tools again")
    _print_tools(settings, refreshed=True, wait=args.wait)


def _print_tools(settings: Settings, *, refreshed: bool, wait: float) -> None:
    """Every tool of this process's registry with its source and availability, MCP servers connected here."""
    from runwire.runtime import tool_sources
    from runwire.tools import registry

    try:
        found, servers = tool_sources(settings)
    except tools_config.ToolsConfigError as error:
        _refuse(f"RUNWIRE_TOOLS_CONFIG {error}")
    logging.disable(logging.WARNING)  # what goes wrong is printed below, not logged
    registry.install(found)
    registry.install(servers)
    try:
        servers.start()
        servers.wait_started(wait)
        if refreshed:
            servers.refresh_and_wait(wait)
        rows = []
        for tool in registry.all_tools():
            reason = tool.unavailable_reason(settings)
            rows.append((tool.id, tool.source, "available" if reason is None else f"unavailable: {reason}"))
        for name, state, reason in servers.status():
            if not servers.connections[name].tools_known:
                rows.append((f"{name}.*", f"mcp:{name}", f"unavailable ({state}): {reason}"))
    finally:
        registry.uninstall(servers)
        registry.uninstall(found)
        servers.stop()
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    for tool_id, source, availability in rows:
        print(f"{tool_id:<{width[0]}}  {source:<{width[1]}}  {availability}")
    for failure in found.failures:
        print(str(failure))


def _add_serving_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 3026)")
    parser.add_argument("--data-dir", type=Path, help="where the embedded SQLite files live (default ./.runwire)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runwire", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="run the HTTP API and the executor")
    _add_serving_arguments(serve_parser)
    serve_parser.add_argument("--no-executor", action="store_true", help="serve the API only; execute no runs")
    serve_parser.set_defaults(handler=serve)

    worker_parser = commands.add_parser("worker", help="execute runs only (no HTTP); set RUNWIRE_EXECUTOR_ID")
    worker_parser.add_argument("--data-dir", type=Path, help="where the embedded SQLite files live")
    worker_parser.set_defaults(handler=worker)

    check_parser = commands.add_parser("check", help="check the settings, data dir, port and databases; serve nothing")
    _add_serving_arguments(check_parser)
    check_parser.add_argument("--no-port", action="store_true", help="skip the port (for a worker, or a running serve)")
    check_parser.set_defaults(handler=check)

    recover_parser = commands.add_parser("recover", help="put a dead executor's unfinished runs back on the queue")
    recover_parser.add_argument("--executor", required=True, help="the RUNWIRE_EXECUTOR_ID of the dead process")
    recover_parser.add_argument("--data-dir", type=Path, help="where the embedded SQLite files live")
    recover_parser.set_defaults(handler=recover)

    tools_parser = commands.add_parser("tools", help="the tools: built in, from plugins, from MCP servers")
    tools_commands = tools_parser.add_subparsers(dest="tools_command", required=True)
    list_parser = tools_commands.add_parser("list", help="print every tool with its source and availability")
    refresh_parser = tools_commands.add_parser(
        "refresh", help="make every running process list its MCP servers' tools again, then print them"
    )
    for each, handler in ((list_parser, tools_list), (refresh_parser, tools_refresh)):
        each.add_argument("--data-dir", type=Path, help="where the embedded SQLite files live")
        each.add_argument(
            "--wait", type=float, default=10.0, help="seconds to wait for the MCP servers to answer (default 10)"
        )
        each.set_defaults(handler=handler)

    db_parser = commands.add_parser("db", help="database administration")
    db_commands = db_parser.add_subparsers(dest="db_command", required=True)
    upgrade_parser = db_commands.add_parser("upgrade", help="apply every pending migration")
    upgrade_parser.add_argument("--data-dir", type=Path, help="where the embedded SQLite files live")
    upgrade_parser.set_defaults(handler=db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run a command. A failure is printed as what went wrong and what to do, in a line or two each (the traceback
    only with RUNWIRE_LOG_LEVEL=DEBUG), and ends the process with status 2 for a problem the checks name, else 1."""
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except Exception as error:
        _fail(args, error)


def _fail(args: argparse.Namespace, error: Exception) -> None:
    command = " ".join(filter(None, (args.command, getattr(args, "db_command", None))))
    for handler in logging.getLogger("runwire").handlers:
        handler.flush()
    for problem in startup_checks.explain(error, _settings_or_none(args)):
        print(f"runwire {command}: {problem.what}\n  {problem.fix}", file=sys.stderr)
    if os.environ.get("RUNWIRE_LOG_LEVEL", "").strip().upper() == "DEBUG":
        traceback.print_exception(error, file=sys.stderr)
    sys.stderr.flush()
    # Threads a half-started process left running (DBOS's) must not keep it alive.
    os._exit(2 if isinstance(error, startup_checks.Problem | startup_checks.Problems) else 1)


def _settings_or_none(args: argparse.Namespace) -> Settings | None:
    try:
        return _settings(args)
    except startup_checks.Problems:
        return None
