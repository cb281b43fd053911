"""What a process needs before it starts, checked in seconds, each failure told in a line or two: what is wrong and
what to do. `runwire serve` and `runwire worker` run these checks before they start anything; `runwire check` runs
them alone and prints each. `explain` turns any other failure at start into the same kind of message.

Checked: every setting's value, the data dir, the port, Runwire's database (reachable, the credentials accepted,
its schema not newer than this release), DBOS's system database (the same), and the MCP tools config when there is
one. A database is given a few seconds to answer, never more.
"""

import contextlib
import errno
import os
import socket
import sqlite3
import tempfile
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types
import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from runwire import migrate
from runwire.config import Settings, _sqlalchemy_url, process_environment
from runwire.logs import redact
from runwire.runs import dbos_adapter
from runwire.tools.mcp import config as tools_config

CONNECT_TIMEOUT_SECONDS = 5
# Settings whose values are never printed: they can hold a password or a key.
SECRET_SETTINGS = frozenset({"database_url", "dbos_system_database_url", "llm_api_key", "metrics_token"})
# What a setting of a type the generic description does not fit takes.
ALLOWED = {
    "allowed_origins": "a comma list of origins such as https://runwire.example.com",
    "tool_allowed_hosts": "a comma list of host or host:port entries",
    "trusted_proxies": "a comma list of IP addresses or CIDR ranges such as 10.0.0.0/8,127.0.0.1",
}


class Problem(Exception):
    """A reason the process cannot start: `what` is wrong, and what to do about it (`fix`)."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.what, self.fix = what, fix

    def lines(self) -> list[str]:
        return [self.what, f"  {self.fix}"]


class Problems(Exception):
    """Several problems at once (every bad setting)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(problem.what for problem in problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Check:
    name: str
    problem: Problem | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None


# Settings


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment (and command-line `overrides`); Problems naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise Problems(setting_problems(error)) from None


def setting_problems(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        name = str(item["loc"][0]) if item["loc"] else "?"
        variable = f"RUNWIRE_{name.upper()}"
        field = Settings.model_fields.get(name)
        if name in SECRET_SETTINGS:
            shown = variable
        else:
            value = str(item.get("input", ""))
            shown = f"{variable}={value[:60]!r}{'...' if len(value) > 60 else ''}"
        message = str(item["msg"])
        reason = message.replace("Input should be ", "it should be ", 1).removeprefix("Value error, ")
        allowed = ALLOWED.get(name) or (_allowed(field) if field is not None else "")
        fix = f"Allowed: {allowed}." if allowed else f"Fix or unset {variable}."
        problems.append(Problem(f"{shown} is not allowed: {reason}.", fix))
    return problems


def _allowed(field: FieldInfo) -> str:
    """What a setting takes, in words: its type and bounds."""
    annotation = field.annotation
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(str(choice) for choice in typing.get_args(annotation))
    if annotation is bool:
        return "true or false"
    kinds: dict[object, str] = {int: "a whole number", float: "a number", Path: "a path", str: "text"}
    kind = kinds.get(annotation)
    if kind is None:
        return ""
    bounds = []
    for constraint in field.metadata:
        if isinstance(constraint, annotated_types.Ge):
            bounds.append(f"at least {constraint.ge}")
        elif isinstance(constraint, annotated_types.Gt):
            bounds.append(f"above {constraint.gt}")
        elif isinstance(constraint, annotated_types.Le):
            bounds.append(f"at most {constraint.le}")
        elif isinstance(constraint, annotated_types.Lt):
            bounds.append(f"below {constraint.lt}")
    return kind + (" " + " and ".join(bounds) if bounds else "")


# The data dir


def uses_data_dir(settings: Settings) -> bool:
    return settings.is_sqlite or settings.resolved_dbos_url.startswith("sqlite")


def check_data_dir(settings: Settings, *, create: bool) -> Check:
    """The data dir exists (or, with `create`, is created) and this user can write in it."""
    name = "data dir"
    if not uses_data_dir(settings):
        return Check(name, note="not used: both databases are PostgreSQL")
    path = settings.data_dir.absolute()
    fix = "Point RUNWIRE_DATA_DIR (or --data-dir) at a folder this user can write, or create it."
    if path.exists() and not path.is_dir():
        return Check(name, Problem(f"The data dir {path} is not a folder.", fix))
    if not path.exists():
        if not create:
            parent = next((p for p in path.parents if p.exists()), None)
            if parent is None or not parent.is_dir() or not _writable(parent):
                return Check(name, Problem(f"The data dir {path} does not exist and cannot be created.", fix))
            return Check(name, note=f"{path} (created at start)")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            return Check(name, Problem(f"The data dir {path} cannot be created: {error.strerror}.", fix))
    if not _writable(path):
        return Check(name, Problem(f"The data dir {path} is not writable by this user.", fix))
    for file_name in ("runwire.db", "dbos.db"):
        file = path / file_name
        if file.exists() and not os.access(file, os.R_OK | os.W_OK):
            return Check(name, Problem(f"{file} cannot be read and written by this user.", fix))
    return Check(name, note=str(path))


def _writable(folder: Path) -> bool:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".runwire-check-"):
            return True
    except OSError:
        return False


# The port


def bind_port(host: str, port: int) -> socket.socket:
    """A socket listening on host:port for the HTTP server, held from the check on; a Problem when it cannot be."""
    fix = "Stop the process that holds it, or choose another port with --port or RUNWIRE_PORT."
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise Problem(f"The address {host} (RUNWIRE_HOST) cannot be resolved: {error.strerror}.", _HOST_FIX) from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise Problem(f"Port {port} on {host} is already in use by another process.", fix) from None
        if error.errno == errno.EADDRNOTAVAIL:
            raise Problem(f"The address {host} (RUNWIRE_HOST) is not one of this machine's.", _HOST_FIX) from None
        if error.errno == errno.EACCES:
            raise Problem(
                f"Port {port} needs privileges this user does not have.", "Choose a port above 1023."
            ) from None
        raise Problem(f"Port {port} on {host} cannot be listened on: {error.strerror}.", fix) from None
    sock.set_inheritable(True)
    return sock


_HOST_FIX = "Set RUNWIRE_HOST (or --host) to 127.0.0.1, 0.0.0.0 or an address of this machine."


def check_port(host: str, port: int) -> Check:
    try:
        bind_port(host, port).close()
    except Problem as problem:
        return Check("port", problem)
    return Check("port", note=f"{host}:{port} is free")


# The databases


@contextlib.contextmanager
def _engine(url: str) -> Iterator[Engine]:
    """A throwaway engine that gives a server CONNECT_TIMEOUT_SECONDS to answer."""
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        yield engine
    finally:
        engine.dispose()


def _shown(url: str) -> str:
    """The URL as an operator wrote it, its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True).replace("+psycopg://", "://", 1)
    except sa.exc.ArgumentError:
        return "(not a URL)"


def database_problem(error: BaseException, url: str, variable: str) -> Problem:
    """What a failure to reach a database means, from the driver's words."""
    shown = _shown(url)
    text = " ".join(redact(str(getattr(error, "orig", None) or error)).split())
    lowered = text.lower()
    try:
        parsed = make_url(url)
        where, user, database = f"{parsed.host or 'localhost'}:{parsed.port or 5432}", parsed.username, parsed.database
    except sa.exc.ArgumentError:
        where, user, database = "?", None, None
    if isinstance(error, sa.exc.ArgumentError | sa.exc.NoSuchModuleError):
        return Problem(
            f"{variable} is not a database URL Runwire can use: {text}",
            "Use postgresql://user:password@host:5432/database, or unset it for SQLite in the data dir.",
        )
    if any(words in lowered for words in ("password authentication failed", "no password supplied", "pg_hba.conf")) or (
        "role" in lowered and "does not exist" in lowered
    ):
        return Problem(
            f"The database at {shown} refused the credentials of user {user!r}.",
            f"Check the user name and password in {variable} (and the server's pg_hba.conf).",
        )
    if "database" in lowered and "does not exist" in lowered:
        return Problem(
            f"The database {database!r} does not exist on {where}.",
            f"Create it (createdb -h {where.split(':')[0]} -U {user or 'postgres'} {database}), or fix {variable}.",
        )
    if any(
        words in lowered
        for words in ("connection refused", "timeout expired", "timed out", "no route to host", "could not translate")
    ) or ("could not connect" in lowered or "connection failed" in lowered):
        return Problem(
            f"Nothing answers as a database at {where} ({shown}): {_reason(lowered)}.",
            f"Start PostgreSQL there, or fix the host and port in {variable}.",
        )
    if "unable to open database file" in lowered or "readonly database" in lowered:
        return Problem(
            f"The SQLite file of {shown} cannot be opened for writing ({text}).",
            "Point RUNWIRE_DATA_DIR (or --data-dir) at a folder this user can write.",
        )
    if "file is not a database" in lowered:
        return Problem(f"{shown} is not a SQLite database file.", "Move it away, or point RUNWIRE_DATA_DIR elsewhere.")
    return Problem(f"The database at {shown} cannot be used: {text[:300]}", f"Check {variable} and the database.")


def _reason(lowered: str) -> str:
    for reason in ("connection refused", "timeout expired", "timed out", "no route to host"):
        if reason in lowered:
            return reason
    if "could not translate" in lowered:
        return "the host name is not known"
    return "no connection"


def _database_variable(settings: Settings) -> str:
    return "RUNWIRE_DATABASE_URL" if settings.database_url else "RUNWIRE_DATA_DIR"


def _dbos_variable(settings: Settings) -> str:
    if settings.dbos_system_database_url:
        return "RUNWIRE_DBOS_SYSTEM_DATABASE_URL"
    return _database_variable(settings)


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for an in-memory database or another backend)."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def _open_sqlite(file: Path) -> None:
    """Read an existing SQLite file's schema, without creating anything."""
    connection = sqlite3.connect(f"file:{file}?mode=rw", uri=True, timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        connection.execute("PRAGMA schema_version").fetchone()
    finally:
        connection.close()


def _check_reachable(name: str, url: str, variable: str, inspect: Callable[[Engine], str]) -> Check:
    """A database answers, takes the credentials, and `inspect` finds it fit (a note) or raises a Problem."""
    try:
        file = _sqlite_file(url)
        if file is not None and not file.exists():
            return Check(name, note=f"{_shown(url)} (created at start)")
        if file is not None:
            _open_sqlite(file)
        with _engine(_sqlalchemy_url(url)) as engine:
            note = inspect(engine)
    except Problem as problem:
        return Check(name, problem)
    except (sa.exc.SQLAlchemyError, sqlite3.Error, OSError) as error:
        return Check(name, database_problem(error, url, variable))
    return Check(name, note=f"{_shown(url)}: {note}")


def check_database(settings: Settings) -> Check:
    """Runwire's database answers, takes the credentials, and has no migration newer than this release's."""
    url = settings.resolved_database_url
    return _check_reachable("database", url, _database_variable(settings), migration_state)


def migration_state(engine: Engine) -> str:
    """Where the database's schema is against this release's migrations; a Problem when it is newer."""
    scripts = ScriptDirectory.from_config(migrate.alembic_config(engine))
    known = {script.revision for script in scripts.walk_revisions()}
    newest = scripts.get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    unknown = [revision for revision in current if revision not in known]
    if unknown:
        raise Problem(
            f"The database's schema is at migration {unknown[0]}, newer than this release knows (its newest is "
            f"{newest}): a newer Runwire has migrated it.",
            "Run a release at least as new as that one (migrations are never undone at start), or restore the "
            "database from before the upgrade.",
        )
    if not current:
        return "empty (start-up creates the schema)"
    if newest in current:
        return f"schema at migration {newest}, this release's newest"
    pending = sum(1 for _ in scripts.iterate_revisions(newest, current[0])) - 1
    return f"schema at migration {current[0]}; {pending} migration(s) to apply at start"


def check_dbos_database(settings: Settings) -> Check:
    """DBOS's system database answers, takes the credentials, and is not newer than this DBOS."""
    url = settings.resolved_dbos_url
    return _check_reachable("DBOS system database", url, _dbos_variable(settings), dbos_state)


def dbos_state(engine: Engine) -> str:
    """Where DBOS's system database is against this DBOS's migrations; a Problem when it is newer."""
    recorded, newest = dbos_adapter.system_database_versions(engine)
    if recorded > newest:
        raise Problem(
            f"DBOS's system database is at DBOS migration {recorded}, newer than this release's DBOS knows ({newest}).",
            "Run a release at least as new as the one that migrated it, or point "
            "RUNWIRE_DBOS_SYSTEM_DATABASE_URL at another database.",
        )
    return "empty (start-up creates its tables)" if recorded == 0 else f"DBOS migration {recorded} of {newest}"


# The tools config


def check_tools_config(settings: Settings) -> Check | None:
    """The MCP servers' config file parses (when one is set), else None."""
    if settings.tools_config is None:
        return None
    try:
        tools_config.load(settings.tools_config, process_environment())
    except tools_config.ToolsConfigError as error:
        return Check("tools config", Problem(f"RUNWIRE_TOOLS_CONFIG {error}", "Fix the file, or unset the variable."))
    return Check("tools config", note=str(settings.tools_config))


# All of them


def run_checks(settings: Settings, *, port: bool, create_data_dir: bool) -> list[Check]:
    """Every check, in order; one that depends on an earlier failed one is left out. A start (`create_data_dir`)
    that the tools config already dooms creates nothing: that check changes nothing, so it comes first then."""
    tools = check_tools_config(settings)
    if create_data_dir and tools is not None and not tools.ok:
        return [tools]
    checks = [check_data_dir(settings, create=create_data_dir)]
    if port:
        checks.append(check_port(settings.host, settings.port))
    database = check_database(settings) if checks[0].ok or not settings.is_sqlite else None
    if database is not None:
        checks.append(database)
    # The same failure is told once: DBOS's system database is often Runwire's own.
    same = _sqlalchemy_url(settings.resolved_dbos_url) == settings.resolved_database_url
    told = database is not None and not database.ok and same
    if (checks[0].ok or not settings.resolved_dbos_url.startswith("sqlite")) and not told:
        checks.append(check_dbos_database(settings))
    if tools is not None:
        checks.append(tools)
    return checks


def explain(error: BaseException, settings: Settings | None = None) -> list[Problem]:
    """Any failure at start as problems to print; the traceback is for RUNWIRE_LOG_LEVEL=DEBUG."""
    if isinstance(error, Problems):
        return error.problems
    if isinstance(error, Problem):
        return [error]
    if isinstance(error, ValidationError):
        return setting_problems(error)
    if settings is not None and isinstance(error, sa.exc.SQLAlchemyError | sqlite3.Error):
        return [database_problem(error, settings.resolved_database_url, _database_variable(settings))]
    if isinstance(error, OSError) and error.filename is not None:
        return [
            Problem(
                f"{error.filename}: {error.strerror}.",
                "Point RUNWIRE_DATA_DIR (or --data-dir) at a folder this user can write.",
            )
        ]
    message = " ".join(redact(str(error)).split())[:300]
    return [
        Problem(
            f"Start-up failed: {type(error).__name__}: {message}",
            "Run `runwire check`; RUNWIRE_LOG_LEVEL=DEBUG prints the traceback.",
        )
    ]
