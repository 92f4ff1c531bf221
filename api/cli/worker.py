"""`tiezheng worker capture|seal|log|schedule`: the scale-out processes.

Capture workers are Dramatiq worker processes consuming the Redis capture queue; each process keeps
one warm browser. The seal worker runs the sealing loop alone; run one (a second one waits on the
lease, which makes it a hot standby rather than a hazard). The log worker runs the event logs'
sequencer alone, for API processes started with ``--no-seal`` and no seal worker beside them.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Annotated

import typer
from rich.console import Console

from api.cli.support import DataDir
from api.service.settings import load_settings

worker_app = typer.Typer(no_args_is_help=True,
                         help="Scale-out workers: captures from Redis, the sealer, the log sequencer, the scheduler.")
errors = Console(stderr=True)



@worker_app.command("capture")
def capture_worker(
    processes: Annotated[int, typer.Option(help="Worker processes, each with its own warm browser.")] = 1,
    threads: Annotated[int, typer.Option(help="Captures at once per process.")] = 2,
    data_dir: DataDir = None,
) -> None:
    """Consume the capture queue (needs TIEZHENG_REDIS_URL)."""
    settings = load_settings(data_dir)
    if not settings.redis_url:
        errors.print("[red]error:[/] set TIEZHENG_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to use capture workers")
        raise typer.Exit(2)
    from api.service.runtime import operator_for

    operator_for(settings)  # a key that does not load is one line here, not a traceback in every worker
    # The dramatiq CLI runs and supervises the worker processes; the settings reach them by environment.
    os.environ["TIEZHENG_DATA_DIR"] = str(settings.root)
    from api.service.taskqueue import CAPTURE_QUEUE

    os.execv(sys.executable, [sys.executable, "-m", "dramatiq", "api.service.taskqueue", "--processes", str(processes),  # noqa: S606
                              "--threads", str(threads), "--queues", CAPTURE_QUEUE])


@worker_app.command("seal")
def seal_worker(data_dir: DataDir = None) -> None:
    """Run the sealing loop until SIGTERM or Ctrl-C: batches, timestamps, anchors, proofs."""
    from api.service.workers import run_sealer

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    settings = load_settings(data_dir)
    errors.print(f"sealer running on {settings.database.split('@')[-1]} (Ctrl-C to stop)")
    run_sealer(settings, stop)


@worker_app.command("log")
def log_worker(data_dir: DataDir = None) -> None:
    """Run the event logs' sequencer until SIGTERM or Ctrl-C: integrate committed events, publish checkpoints.

    `worker seal` runs one too. Several may run: a lease per log lets one integrate it at a time.
    """
    from api.service.workers import run_log_sequencer

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings(data_dir)
    errors.print(f"log sequencer running on {settings.database.split('@')[-1]} (Ctrl-C to stop)")
    run_log_sequencer(settings, stop)


@worker_app.command("schedule")
def schedule_worker(data_dir: DataDir = None) -> None:
    """Run the watch scheduler until SIGTERM or Ctrl-C; with TIEZHENG_REDIS_URL it publishes the runs there.

    Run one or two: the ``scheduler`` lease lets one lead, the other waits as a hot standby.
    """
    from api.service.workers import run_schedule_worker

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    settings = load_settings(data_dir)
    errors.print(f"scheduler running on {settings.database.split('@')[-1]} (Ctrl-C to stop)")
    run_schedule_worker(settings, stop)
