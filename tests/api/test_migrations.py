"""Alembic brings the service's tables to the models exactly, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import api.service.event_log  # noqa: F401 - its tables are in api_metadata too
from anchor.store import make_engine
from api.service.db import migrate
from api.service.models import api_metadata
from tests.api.server import drop_postgres_database, postgres_database, postgres_where


def _ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return name in api_metadata.tables if type_ == "table" else True


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_match_models(backend: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}" if backend == "sqlite" else postgres_database()
    if url is None:
        pytest.skip(f"PostgreSQL is not reachable at {postgres_where()} (set TIEZHENG_TEST_POSTGRES)")
    engine = make_engine(url)
    try:
        migrate(engine)
        migrate(engine)  # idempotent: a restart migrates nothing
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"include_object": _ours, "compare_type": True})
            assert compare_metadata(context, api_metadata) == []
        tables = set(inspect(engine).get_table_names())
        assert {"tenant", "api_key", "evidence", "audit_event", "api_alembic_version", "seal_item",
                "seal_batch"} <= tables
    finally:
        engine.dispose()
        if backend == "postgresql":
            drop_postgres_database(url)
