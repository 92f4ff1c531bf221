"""The FastAPI application: /v1 API, health, and the /verify and /app pages.

``create_app(settings)`` builds it; the lifespan migrates the database and starts the worker pool
(captures, and the sealing loop with its embedded TSA and devnet unless ``seal=False``).
``tiezheng serve`` runs it with uvicorn, in one process: the rate limiter and the worker pool live
in that process (the embedded default; see api/service/ratelimit.py and api/service/workers.py for scale).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from api.service.security import RefuseKeysInQuery
from api.service.settings import Settings, load_settings
from api.service.state import ServiceState
from api.web import docs, errors
from api.web.audit import AuditMiddleware
from api.web.routes import (
    batches,
    captures,
    evidence,
    health,
    logs,
    matters,
    notices,
    pages,
    sessions,
    uploads,
    verification,
    watches,
    well_known,
)
from verifier import __version__

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"

DESCRIPTION = """Tiezheng (铁证) preserves web evidence so that a court can check it on its own.

Rights owners call the `/v1` API with an API key (`Authorization: Bearer tzk_…`, from
`tiezheng tenants create NAME`). Anyone may `POST /v1/verify` a package. Errors are JSON:
`{"error": {"code": "…", "message": "…"}}`; clients branch on the code.
"""


def create_app(settings: Settings | None = None, *, seal: bool = True) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Starting anvil and the TSA blocks; keep the event loop free while it happens.
        state = await run_in_threadpool(ServiceState.open, settings, seal=seal)
        app.state.service = state
        log.info("Tiezheng service ready (data dir %s, sealing %s)", settings.root, "on" if seal else "off")
        try:
            yield
        finally:
            await run_in_threadpool(state.close)

    app = FastAPI(title="Tiezheng", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    errors.install(app)
    docs.install(app)
    app.add_middleware(AuditMiddleware)
    app.add_middleware(RefuseKeysInQuery)  # outermost: a key in the URL is refused before anything runs
    v1 = APIRouter(prefix="/v1")
    for module in (captures, uploads, evidence, batches, verification, matters, watches, notices, logs, sessions):
        v1.include_router(module.router)
    v1.include_router(matters.subjects)
    app.include_router(v1)
    app.include_router(health.router)
    app.include_router(pages.router)
    app.include_router(well_known.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
