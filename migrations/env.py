"""Alembic environment: runs Runwire's migrations against the URL the caller configured."""

from alembic import context

import runwire.models  # noqa: F401  (registers every table on Base.metadata)
from runwire.db import Base, create_db_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or create_db_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Runwire's migrations run online only: `runwire db upgrade`.")
run_migrations_online()
