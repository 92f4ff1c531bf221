"""GET /healthz (the process answers) and GET /readyz (the database, the TSA(s) and the chain answer)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.service.readiness import service_readiness
from api.web.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz", name="health", summary="Liveness")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", name="ready",
            summary="Readiness: the database, the TSA and the chain answer",
            responses={503: {"description": "a dependency does not answer"}})
async def readyz(state: StateDep) -> JSONResponse:
    checks = await run_in_threadpool(service_readiness, state)
    ready = all(c["ok"] for c in checks)
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)
