"""GET /healthz (the process answers) and GET /readyz (the database, the TSA(s) and the chain answer)."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from anchor.devnet import Devnet, rpc_call
from api.db import ping
from api.deps import StateDep
from api.serve_workers import sealer_tsa_urls
from api.state import ServiceState

router = APIRouter(tags=["health"])

PROBE_TIMEOUT_SECONDS = 2.0


@router.get("/healthz", name="health", summary="Liveness")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _tcp(url: str) -> None:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname or "", port), timeout=PROBE_TIMEOUT_SECONDS):
        pass


def _probe(name: str, check: Any) -> dict[str, Any]:
    try:
        detail = check()
    except Exception as exc:  # any failure means "not ready", reported by kind, never raised
        return {"name": name, "ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {"name": name, "ok": True, **({"detail": detail} if detail else {})}


def readiness(state: ServiceState) -> list[dict[str, Any]]:
    settings = state.settings
    running = state.pool.running
    checks = [_probe("database", lambda: ping(state.engine))]
    # A web process under `serve --workers` has no sealer of its own: probe the TSA its supervisor's uses.
    tsa_urls = [t.url for t in running.tsas] if running else [t.url for t in settings.tsa] or sealer_tsa_urls()
    if not tsa_urls:
        checks.append({"name": "tsa", "ok": False, "error": "no TSA running or configured (sealing is off here)"})
    for url in tsa_urls:
        checks.append(_probe(f"tsa {urlsplit(url).netloc}", lambda u=url: _tcp(u)))
    if running:
        rpcs: list[str | None] = [c.rpc_url for c in running.chains]
    else:
        configured: list[str | None] = [c.rpc_url for c in settings.chains] or [settings.rpc_url]
        rpcs = [url or Devnet(settings.root).status().rpc_url for url in configured]

    def chain(rpc: str | None) -> str:
        if not rpc:
            raise ConnectionError("no chain RPC running or configured")
        return f"chain {int(rpc_call(rpc, 'eth_chainId', timeout=PROBE_TIMEOUT_SECONDS), 16)}, block " \
               f"{int(rpc_call(rpc, 'eth_blockNumber', timeout=PROBE_TIMEOUT_SECONDS), 16)}"

    # The first chain keeps the probe's old name; each further chain (several anchors per batch) adds one.
    for number, rpc in enumerate(rpcs):
        checks.append(_probe("chain" if number == 0 else f"chain {number + 1}", lambda u=rpc: chain(u)))
    return checks


@router.get("/readyz", name="ready",
            summary="Readiness: the database, the TSA and the chain answer",
            responses={503: {"description": "a dependency does not answer"}})
async def readyz(state: StateDep) -> JSONResponse:
    checks = await run_in_threadpool(readiness, state)
    ready = all(c["ok"] for c in checks)
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)
