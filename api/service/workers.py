"""The in-process worker pool of the embedded default: capture threads and the sealing loop.

``WorkerPool.start()`` starts what the settings leave embedded (dev TSA, anvil devnet) through
``api.service.runtime.sealing_services``, a ``Sealer`` looping in its own thread, the watch
``Scheduler`` (api/service/scheduler.py) in another, and a thread pool for jobs. It resumes what a
crash interrupted: captures accepted but not run, and sealed packages whose hash is not recorded
yet (the sealer itself resumes its batches from the store). At scale the same job functions
(api/service/jobs.py) go to a real queue and one sealer runs elsewhere; then start the service
with sealing off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import Engine

from anchor.sealer import Sealer
from api.service import jobs, outbox
from api.service.runtime import Running, make_sealer, sealing_services
from api.service.scheduler import Scheduler
from api.service.settings import Settings

log = logging.getLogger(__name__)

#: How often the sealing loop looks for due batches.
SEAL_POLL_SECONDS = 0.5
FAILPOINT_ENV = jobs.FAILPOINT_ENV
#: How long stop() waits for the sealing thread to finish its current step.
STOP_TIMEOUT_SECONDS = 30.0


class WorkerPool:
    def __init__(self, settings: Settings, engine: Engine, *, seal: bool = True) -> None:
        self.settings = settings
        self.engine = engine
        self.seal = seal
        self.running: Running | None = None
        self.sealer: Sealer | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log_thread: threading.Thread | None = None
        self._stack = contextlib.ExitStack()
        self.relay: outbox.Relay | None = None
        self.scheduler: Scheduler | None = None

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=max(1, self.settings.workers),
                                            thread_name_prefix="tiezheng-job")
        if self.seal:
            # A devnet started here stops with the service (`tiezheng chain up` starts one that stays).
            self.running = self._stack.enter_context(sealing_services(self.settings, keep_devnet=False))
            self.sealer = make_sealer(self.settings, self.engine, self.running)
            # Called in the sealer's thread after each committed transition: record the sealed bytes' hash.
            self.sealer.on_transition = self._on_transition
            self._thread = threading.Thread(target=self._seal_loop, name="tiezheng-sealer", daemon=True)
            self._thread.start()
            self._log_thread = threading.Thread(target=self._log_loop, name="tiezheng-log-sequencer", daemon=True)
            self._log_thread.start()
        if not self.settings.redis_url:
            # The in-process queue died with the last process: queue again every capture nobody runs.
            # (With Redis, messages outlive this process; the relay's periodic sweep covers the rest.)
            outbox.sweep(self.engine, everything=True)
        self.relay = outbox.Relay(self.engine, self._publish, sweep_seconds=self.settings.sweep_seconds)
        self.relay.start()
        if self.settings.scheduler_enabled:
            # Watch runs: the scheduler commits their capture rows with outbox messages, the relay sends them.
            self.scheduler = Scheduler(self.engine, on_queued=lambda _: self.captures_committed())
            self.scheduler.start()
        self.submit(jobs.record_sealed_job, self.settings)

    def _seal_loop(self) -> None:
        assert self.sealer is not None
        self.sealer.run(self._stop, poll_seconds=SEAL_POLL_SECONDS)

    def _log_loop(self) -> None:
        from api.service.log_pipeline import sequencer_loop

        sequencer_loop(self.settings, self.engine, self._stop)

    def _on_transition(self, batch_id: str, state: str) -> None:
        if state == "attached":
            self.submit(jobs.record_sealed_job, self.settings, batch_id)
        elif state.startswith("attached:"):  # a late anchor added a file to the batch's packages
            self.submit(jobs.record_sealed_again, self.settings, batch_id)

    def captures_committed(self) -> None:
        """Capture rows and their outbox messages were just committed: have the relay publish them now."""
        if self.relay is not None:
            self.relay.kick()

    def _publish(self, topic: str, target: str) -> None:
        """The relay's sender: the Redis queue when one is configured, else this process's threads."""
        if topic != outbox.TOPIC_CAPTURE:
            raise ValueError(f"unknown outbox topic {topic!r}")
        if self.settings.redis_url:
            from api.service import taskqueue

            taskqueue.enqueue_capture(target)
        elif self.submit(jobs.capture_job, target, self.settings) is None:
            raise RuntimeError("the worker pool is stopping")

    def submit(self, job: Callable[..., Any], *args: Any) -> Future[Any] | None:
        """Queue a job; its failure is logged, never raised into the caller."""
        if self._executor is None or self._stop.is_set():
            return None
        future = self._executor.submit(job, *args)
        future.add_done_callback(_log_failure)
        return future

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.relay is not None:
            self.relay.stop()
        self._stop.set()
        for thread in (self._thread, self._log_thread):
            if thread is not None:
                thread.join(STOP_TIMEOUT_SECONDS)
        if self._executor is not None:
            # Queued captures stay recorded as unfinished and run again on the next start.
            self._executor.shutdown(wait=True, cancel_futures=True)
        self._stack.close()


def _log_failure(future: Future[Any]) -> None:
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.error("background job failed: %s: %s", type(exc).__name__, exc)


def run_sealer(settings: Settings, stop: threading.Event) -> None:
    """`tiezheng worker seal`: the sealing loop and nothing else, until ``stop`` is set.

    Several may run; the sealer lease lets one work at a time. ``TIEZHENG_FAILPOINT=seal:<state>``
    makes this process SIGKILL itself right after it commits that state: a fault-injection point
    for crash tests, so a kill lands between two named steps instead of wherever a timer hits.
    """
    engine = jobs.database(settings)
    failpoint = os.environ.get(FAILPOINT_ENV, "").removeprefix("seal:")
    with sealing_services(settings, keep_devnet=False) as running:
        sealer = make_sealer(settings, engine, running)

        def on_transition(batch_id: str, state: str) -> None:
            if state == failpoint:
                os.kill(os.getpid(), signal.SIGKILL)
            if state == "attached":
                jobs.record_sealed_job(settings, batch_id)
            elif state.startswith("attached:"):  # a late anchor added a file to the batch's packages
                jobs.record_sealed_again(settings, batch_id)

        sealer.on_transition = on_transition
        jobs.record_sealed_job(settings)  # what a crash left unrecorded
        # The event logs' sequencer runs beside the one sealer (one per log at a time, under a lease).
        from api.service.log_pipeline import sequencer_loop

        logs = threading.Thread(target=sequencer_loop, args=(settings, engine, stop), name="tiezheng-log-sequencer",
                                daemon=True)
        logs.start()
        sealer.run(stop, poll_seconds=SEAL_POLL_SECONDS)
        logs.join(STOP_TIMEOUT_SECONDS)


def run_log_sequencer(settings: Settings, stop: threading.Event) -> None:
    """`tiezheng worker log`: the event logs' sequencer alone, until ``stop`` is set.

    ``TIEZHENG_FAILPOINT=log:<step>[@<n>]`` makes this process SIGKILL itself the n-th time (default
    the first) an integration reaches ``step`` ("tiles": tiles stored, "signed": checkpoint signed),
    before that integration commits: a crash test's kill lands mid-integration, not wherever a timer hits.
    """
    from api.service.log_pipeline import sequencer_loop

    point, _, nth = os.environ.get(FAILPOINT_ENV, "").removeprefix("log:").partition("@")
    remaining = [int(nth or 1)]

    def on_step(name: str) -> None:
        if name == point:
            remaining[0] -= 1
            if remaining[0] == 0:
                os.kill(os.getpid(), signal.SIGKILL)

    sequencer_loop(settings, jobs.database(settings), stop, on_step=on_step)


def run_schedule_worker(settings: Settings, stop: threading.Event) -> None:
    """`tiezheng worker schedule`: the watch scheduler alone, until ``stop`` is set.

    With Redis it also relays the outbox to the capture queue, so the runs it commits reach the
    capture workers even when no API process is up (several relays are safe: each claims its rows).
    Without Redis the runs wait in the outbox for `tiezheng serve` or `tiezheng watch run-due`.
    """
    engine = jobs.database(settings)
    relay: outbox.Relay | None = None
    if settings.redis_url:
        from api.service import taskqueue

        relay = outbox.Relay(engine, lambda _topic, target: taskqueue.enqueue_capture(target),
                             sweep_seconds=settings.sweep_seconds)
        relay.start()
    scheduler = Scheduler(engine, on_queued=lambda _: relay.kick() if relay is not None else None)
    try:
        scheduler.run(stop)
    finally:
        if relay is not None:
            relay.stop()
