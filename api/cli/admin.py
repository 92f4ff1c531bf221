"""``tiezheng tenants …``, ``tiezheng keys …`` and ``tiezheng serve``: the service's admin commands.

A new API key is printed once, when it is made, and never again: only its HMAC is stored.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from api.cli.support import DataDir, JsonFlag, existing_settings, writable_settings
from api.service.settings import Settings

if TYPE_CHECKING:  # the database stack loads only for the commands that use it
    from sqlmodel import Session

tenants_app = typer.Typer(no_args_is_help=True, help="Tenants (rights owners) of the service.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys of tenants.")

console = Console()
errors = Console(stderr=True)

Label = Annotated[str, typer.Option(help="What the key is for (shown in listings).")]


def _new_key(settings: Settings, session: Session, tenant_id: int, label: str) -> tuple[str, str]:
    from api.service import crud
    from api.service.security import new_key, server_secret

    key = new_key(server_secret(settings))
    row = crud.add_api_key(session, tenant_id=tenant_id, key=key, label=label)
    crud.record_audit(session, action="key.create", actor="cli", tenant_id=tenant_id, api_key_id=row.id,
                      target=key.prefix)
    return key.token, key.prefix


def _print_key(token: str, prefix: str, tenant: str, tenant_id: int, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"tenant": tenant, "tenant_id": tenant_id, "key_prefix": prefix, "api_key": token}))
        return
    console.print(f"tenant [bold]{tenant}[/] (id {tenant_id}), key prefix {prefix}")
    errors.print("[yellow]API key, shown only now; store it safely:[/]")
    print(token)


@tenants_app.command("create")
def tenants_create(name: str, label: Label = "first key", data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Create a tenant and print its first API key (once)."""
    from sqlmodel import Session

    from api.service import crud
    from api.service.db import open_database

    settings = writable_settings(data_dir)
    with Session(open_database(settings)) as session:
        if crud.tenant_by_name(session, name=name) is not None:
            raise ValueError(f"a tenant named {name!r} exists already; `tiezheng keys create {name}` adds a key")
        tenant = crud.create_tenant(session, name=name)
        assert tenant.id is not None
        crud.record_audit(session, action="tenant.create", actor="cli", tenant_id=tenant.id, target=name)
        token, prefix = _new_key(settings, session, tenant.id, label)
        session.commit()
        tenant_id = tenant.id
    _print_key(token, prefix, name, tenant_id, as_json)


@tenants_app.command("list")
def tenants_list(data_dir: DataDir = None) -> None:
    """List tenants."""
    from sqlmodel import Session, select

    from api.service.db import open_database
    from api.service.models import Tenant

    with Session(open_database(existing_settings(data_dir))) as session:
        for tenant in session.exec(select(Tenant).order_by(Tenant.id)).all():  # type: ignore[arg-type]
            console.print(f"{tenant.id}\t{tenant.name}\t{tenant.created_at:%Y-%m-%d %H:%M}")


@keys_app.command("create")
def keys_create(tenant: str, label: Label = "", data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Make another API key for TENANT and print it (once)."""
    from sqlmodel import Session

    from api.service import crud
    from api.service.db import open_database

    settings = existing_settings(data_dir)
    with Session(open_database(settings)) as session:
        row = crud.tenant_by_name(session, name=tenant)
        if row is None or row.id is None:
            raise ValueError(f"no tenant named {tenant!r}")
        token, prefix = _new_key(settings, session, row.id, label)
        session.commit()
        tenant_id = row.id
    _print_key(token, prefix, tenant, tenant_id, as_json)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="The key's prefix (from `keys list`) or the key itself.")],
                data_dir: DataDir = None) -> None:
    """Revoke an API key: it stops working at once."""
    from sqlmodel import Session

    from api.service import crud
    from api.service.db import open_database
    from api.service.security import key_prefix

    prefix = key_prefix(key) or key
    with Session(open_database(existing_settings(data_dir))) as session:
        row = crud.revoke_api_key(session, prefix=prefix)
        if row is None:
            raise ValueError(f"no API key with prefix {prefix!r}")
        crud.record_audit(session, action="key.revoke", actor="cli", tenant_id=row.tenant_id, api_key_id=row.id,
                          target=prefix)
        session.commit()
    console.print(f"key {prefix} revoked")


@keys_app.command("list")
def keys_list(tenant: str, data_dir: DataDir = None) -> None:
    """List a tenant's keys (prefixes only; keys themselves are never stored)."""
    from sqlmodel import Session

    from api.service import crud
    from api.service.db import open_database

    with Session(open_database(existing_settings(data_dir))) as session:
        row = crud.tenant_by_name(session, name=tenant)
        if row is None or row.id is None:
            raise ValueError(f"no tenant named {tenant!r}")
        for key in crud.keys_of(session, tenant_id=row.id):
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            console.print(f"{key.prefix}\t{state}\t{key.label}")


def serve(host: Annotated[str | None, typer.Option(
              show_default=False, help="Address to listen on (default: $TIEZHENG_HOST, else 127.0.0.1).")] = None,
          port: Annotated[int | None, typer.Option(
              show_default=False, help="Port to listen on (default: $TIEZHENG_PORT, else 8000).")] = None,
          seal: Annotated[bool, typer.Option("--seal/--no-seal",
                                             help="Run the sealing loop (and the embedded TSA and devnet).")] = True,
          workers: Annotated[int | None, typer.Option(
              "--workers", min=1, help="Web processes (default: TIEZHENG_WEB_WORKERS, else min(2, CPUs)). "
                                       "With more than one, this process serves too, runs the one sealing "
                                       "loop and keeps the others running.")] = None,
          data_dir: DataDir = None) -> None:
    """Run the HTTP API and pages, the worker pool and (by default) the sealer with embedded services."""
    import uvicorn

    from api.service.runtime import operator_for
    from api.service.security import SecretsFilter, uvicorn_log_config
    from api.web.main import create_app
    from api.web.serve_workers import default_workers, run

    settings = writable_settings(data_dir)
    operator_for(settings)  # a key that does not load is one line here, not a traceback from the app's startup
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(SecretsFilter())
    count = workers or settings.web_workers or default_workers()
    if count > 1:
        run(settings, host=host or settings.host, port=port or settings.port, workers=count, seal=seal)
        return
    # One process: the app, its rate limiter and its worker pool all live in it (see api/web/main.py).
    uvicorn.run(create_app(settings, seal=seal), host=host or settings.host, port=port or settings.port,
                log_level="info", timeout_graceful_shutdown=10, log_config=uvicorn_log_config())
