"""The database: one engine for the sealing store and the service's tables, migrated at start-up.

SQLite in the data dir by default, PostgreSQL (or any SQLAlchemy URL) via ``TIEZHENG_DATABASE_URL``.
``anchor.store.make_engine`` creates the sealing tables (its own ``create_all``); Alembic then brings
the service's tables to the latest revision (api/migrations). Both run on every start and are no-ops
when the schema is current.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from anchor.store import make_engine
from api.service.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """Alembic's configuration, built in code: there is no alembic.ini to keep in sync."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate(engine: Engine) -> None:
    """Upgrade the service's tables to the latest revision, in one transaction."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_database(settings: Settings) -> Engine:
    """An engine with every table present and current (sealing store, then migrations)."""
    engine = make_engine(settings.database)
    migrate(engine)
    return engine


def ping(engine: Engine) -> None:
    """Raise unless the database answers a trivial query."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def sessions(engine: Engine) -> Iterator[Session]:
    """A session per request; closed (and rolled back if uncommitted) afterwards."""
    with Session(engine) as session:
        yield session
