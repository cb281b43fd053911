"""The migrations, on a fresh SQLite file and a fresh PostgreSQL database: they go down to nothing and up again, and
the schema they build is the one the models declare."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

import runwire.models  # noqa: F401  (registers every table on Base.metadata)
from runwire.db import Base, create_db_engine
from runwire.migrate import alembic_config


@pytest.fixture
def engine(tmp_path: Path, database_url: str | None) -> Iterator[Engine]:
    """An engine on an empty database of this test's own."""
    created = create_db_engine(database_url or f"sqlite:///{tmp_path / 'runwire.db'}")
    yield created
    created.dispose()


def tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        found: list[object] = compare_metadata(context, Base.metadata)
        return found


def test_upgrade_downgrade_upgrade(engine: Engine) -> None:
    config = alembic_config(engine)
    command.upgrade(config, "head")
    assert tables(engine) == set(Base.metadata.tables)
    command.downgrade(config, "base")
    assert tables(engine) == set()
    command.upgrade(config, "head")
    assert tables(engine) == set(Base.metadata.tables)
    assert differences(engine) == []


def test_the_models_match_the_migrations(engine: Engine) -> None:
    command.upgrade(alembic_config(engine), "head")
    assert differences(engine) == []
