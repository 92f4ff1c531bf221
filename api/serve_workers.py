"""``tiezheng serve --workers N``: N web processes on one port, and one sealing loop beside them.

The supervising process (the one ``tiezheng serve`` started) opens the database first, so the
schema is migrated once, before any web process starts. It then runs the worker pool: the sealing
loop with the embedded TSA and devnet (unless ``--no-seal``), the outbox relay and capture threads.
uvicorn spawns the web processes; each builds the app with sealing off, so exactly one process per
``serve`` seals (and several ``serve`` commands on one database are kept apart by the sealer's
lease). Each web process runs its own outbox relay and capture threads: the relay claims rows
with a conditional UPDATE and a capture runs under its lease (api/outbox.py, api/leases.py), so
several of them never publish or run one capture twice.

What stays per process: the rate limiter (api/ratelimit.py), so a key may reach N times its rate.

A web process whose supervisor died (SIGKILL, OOM) kills itself at once: it would otherwise keep
the port and answer with no sealer behind it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from fastapi import FastAPI

from api.settings import Settings, load_settings

log = logging.getLogger(__name__)

#: Set by the supervisor for its web processes: its pid, and the URLs of the TSA(s) it runs.
SUPERVISOR_ENV = "TIEZHENG_SERVE_SUPERVISOR"
SEALER_TSA_ENV = "TIEZHENG_SERVE_SEALER_TSAS"
#: How often a web process checks that its supervisor still lives.
PARENT_POLL_SECONDS = 0.25


def default_workers() -> int:
    """Two web processes where there are two cores: one per core, and no more than the rest can feed."""
    return max(1, min(2, os.cpu_count() or 1))


def run(settings: Settings, *, host: str, port: int, workers: int, seal: bool) -> None:
    """Supervise ``workers`` web processes on ``host:port``; the worker pool runs here. Blocks."""
    import uvicorn

    from api import jobs
    from api.workers import WorkerPool

    pool = WorkerPool(settings, jobs.database(settings), seal=seal)
    pool.start()
    log.info("supervising %d web processes on %s:%d; sealing %s in this process (pid %d)", workers, host, port,
             "on" if seal else "off", os.getpid())
    try:
        os.environ["TIEZHENG_DATA_DIR"] = str(settings.data_dir)
        os.environ[SUPERVISOR_ENV] = str(os.getpid())
        if pool.running is not None:
            os.environ[SEALER_TSA_ENV] = " ".join(t.url for t in pool.running.tsas)
        uvicorn.run("api.serve_workers:web_app", factory=True, host=host, port=port, workers=workers,
                    log_level="info", timeout_graceful_shutdown=10)
    finally:
        pool.stop()


def web_app() -> FastAPI:
    """The app of one web process under ``serve --workers`` (uvicorn calls this in each)."""
    from api.main import create_app

    supervisor = int(os.environ.get(SUPERVISOR_ENV, "0"))
    if supervisor:
        threading.Thread(target=_follow_supervisor, args=(supervisor,), name="tiezheng-supervisor-watch",
                         daemon=True).start()
    # uvicorn configured its own loggers in this process, not the root logger that `serve` set up.
    logging.getLogger("uvicorn.error").info("web process %d: no sealing here, the supervisor (pid %d) seals",
                                            os.getpid(), supervisor)
    return create_app(load_settings(), seal=False)


def sealer_tsa_urls() -> list[str]:
    """In a web process: the TSA URLs its supervisor's sealer uses (for /readyz); else none."""
    return os.environ.get(SEALER_TSA_ENV, "").split()


def _follow_supervisor(supervisor: int) -> None:
    while os.getppid() == supervisor:
        time.sleep(PARENT_POLL_SECONDS)
    log.error("the serving supervisor (pid %d) is gone; this web process stops", supervisor)
    os.kill(os.getpid(), signal.SIGKILL)
