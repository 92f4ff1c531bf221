"""``tiezheng serve --workers N``: N web processes on one port, and one sealing loop among them.

The process ``tiezheng serve`` started is itself the first web process, and the only one with the
worker pool: the sealing loop with the embedded TSA and devnet (unless ``--no-seal``), the outbox
relay and capture threads. It opens (and migrates) the database before anything else, starts
serving, and only then spawns the other N-1 web processes on the same listening socket; so the
service answers as soon as one process could, and a restart is no slower than with one process.
The others build the app with sealing off, so exactly one process per ``serve`` seals (and several
``serve`` commands on one database are kept apart by the sealer's lease). Each of them runs an
outbox relay and capture threads too: the relay claims rows with a conditional UPDATE and a
capture runs under its lease (api/service/outbox.py, api/service/leases.py), so several never publish or run one
capture twice. A web process that dies is replaced.

What stays per process: the rate limiter (api/service/ratelimit.py), so a key may reach N times its rate.

A web process whose supervisor died (SIGKILL, OOM) kills itself at once: it would otherwise keep
the port and answer with no sealer behind it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

from fastapi import FastAPI

from api.service.readiness import SEALER_TSA_ENV
from api.service.security import uvicorn_log_config
from api.service.settings import Settings, load_settings

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)

#: Set by the supervisor for its web processes: its pid (and, SEALER_TSA_ENV, the TSA(s) it runs).
SUPERVISOR_ENV = "TIEZHENG_SERVE_SUPERVISOR"
#: How often a web process checks that its supervisor still lives (and the supervisor, its web processes).
PARENT_POLL_SECONDS = 0.25
#: How long stopping waits for a web process to finish its requests.
STOP_SECONDS = 15.0


def default_workers() -> int:
    """Two web processes where there are two cores: one per core, and no more than the rest can feed."""
    return max(1, min(2, os.cpu_count() or 1))


def run(settings: Settings, *, host: str, port: int, workers: int, seal: bool) -> None:
    """Serve here, with the worker pool, and keep ``workers - 1`` more web processes running. Blocks."""
    import uvicorn

    from api.service import jobs
    from api.web.main import create_app

    jobs.database(settings)  # migrate once, before any other process opens the database
    os.environ["TIEZHENG_DATA_DIR"] = str(settings.data_dir)
    os.environ[SUPERVISOR_ENV] = str(os.getpid())
    app = create_app(settings, seal=seal)
    config = uvicorn.Config(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=10,
                            log_config=uvicorn_log_config())
    server = uvicorn.Server(config)
    listener = config.bind_socket()
    others = _WebProcesses(server, app, listener, workers - 1)
    others.start()
    log.info("supervising %d web processes on %s:%d; sealing %s in this process (pid %d)", workers, host, port,
             "on" if seal else "off", os.getpid())
    try:
        server.run(sockets=[listener])
    finally:
        others.stop()


class _WebProcesses:
    """The web processes beside the supervising one: spawned once it serves, replaced when they die."""

    def __init__(self, server: uvicorn.Server, app: FastAPI, listener: socket.socket, count: int) -> None:
        self.server, self.app, self.listener, self.count = server, app, listener, count
        self.processes: list[BaseProcess] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="tiezheng-web-processes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _keep(self) -> None:
        while not self.server.started:  # the supervisor's own app is up: its TSA's address is known
            if self._stop.wait(PARENT_POLL_SECONDS):
                return
        running = self.app.state.service.pool.running
        if running is not None:
            os.environ[SEALER_TSA_ENV] = " ".join(t.url for t in running.tsas)
        context = multiprocessing.get_context("spawn")
        while not self._stop.is_set():
            self.processes = [p for p in self.processes if p.is_alive()]
            while len(self.processes) < self.count and not self._stop.is_set():
                process = context.Process(target=_serve_web, args=(self.listener,), name="tiezheng-web")
                process.start()
                self.processes.append(process)
            self._stop.wait(PARENT_POLL_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(STOP_SECONDS)
        for process in self.processes:
            process.terminate()  # uvicorn in the child shuts down gracefully on SIGTERM
        for process in self.processes:
            process.join(STOP_SECONDS)
            if process.is_alive():
                process.kill()


def _serve_web(listener: socket.socket) -> None:
    """A spawned web process: the app with sealing off, on the supervisor's listening socket."""
    import uvicorn

    config = uvicorn.Config("api.web.serve_workers:web_app", factory=True, log_level="info",
                            timeout_graceful_shutdown=10, log_config=uvicorn_log_config())
    uvicorn.Server(config).run(sockets=[listener])


def web_app() -> FastAPI:
    """The app of one web process under ``serve --workers`` (uvicorn calls this in each)."""
    from api.web.main import create_app

    supervisor = int(os.environ.get(SUPERVISOR_ENV, "0"))
    if supervisor:
        threading.Thread(target=_follow_supervisor, args=(supervisor,), name="tiezheng-supervisor-watch",
                         daemon=True).start()
    # uvicorn configured its own loggers in this process, not the root logger that `serve` set up.
    logging.getLogger("uvicorn.error").info("web process %d: no sealing here, the supervisor (pid %d) seals",
                                            os.getpid(), supervisor)
    return create_app(load_settings(), seal=False)


def _follow_supervisor(supervisor: int) -> None:
    while os.getppid() == supervisor:
        time.sleep(PARENT_POLL_SECONDS)
    log.error("the serving supervisor (pid %d) is gone; this web process stops", supervisor)
    os.kill(os.getpid(), signal.SIGKILL)
