"""Alembic environment for the service's tables (api.service.models.api_metadata) only.

Run programmatically at start-up by ``api.service.db.migrate``, which hands over a live connection in
``config.attributes["connection"]``. The sealing store's tables (seal_item, seal_batch, lease) are
not in this metadata: anchor/ owns them and ``anchor.store.make_engine`` creates them, the same way
for the CLI, the sealer and the service. Keeping one owner per table means neither tool ever tries to
drop or alter the other's tables; ``include_object`` enforces that for autogenerate as well.
"""

from __future__ import annotations

from typing import Any

from alembic import context

import api.service.event_log  # noqa: F401 - registers the event-log tables in api_metadata
from api.service import (
    notice_models,  # noqa: F401 - registers the notice tables in api_metadata
    session_models,  # noqa: F401 - registers the browser-session tables in api_metadata
)
from api.service.models import api_metadata

#: Our own version table, so another Alembic user of the same database is never confused with us.
VERSION_TABLE = "api_alembic_version"


def _ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table":
        return name in api_metadata.tables
    return True


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("api migrations run through api.service.db.migrate(engine), which passes a connection")
    context.configure(connection=connection, target_metadata=api_metadata, include_object=_ours,
                      version_table=VERSION_TABLE, render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run the service to migrate")
run_migrations_online()
