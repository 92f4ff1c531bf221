"""Run public verifications in worker processes, under a budget.

``POST /v1/verify`` needs no key, so anyone can make this server work. The verifier already refuses
oversized and bomb-shaped packages from their central directory; this adds what a server needs on
top: a small number of verifications at a time (a full house answers 503 at once, with
Retry-After), and a wall-time cap on each. A verification runs in a separate process so that a
stuck or slow one can be cut off for real (a thread cannot be stopped): the process is killed and
replaced. Workers are started lazily and reused, so a normal request pays no process start.

The trust travels as the published TOML text (``/.well-known/tiezheng/trust.toml``), merged in the
worker with the verifier's default trust as the service does, so a worker verifies with exactly the
trust this service publishes to counsel, and reports name that file's SHA-256.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from api.service.state import TRUST_PATH
from verifier.errors import TiezhengError
from verifier.trust import Trust, default_trust, parse_trust
from verifier.verdict import Report, unusable
from verifier.verify import verify_package

log = logging.getLogger(__name__)

#: How long a killed worker is given to go before it is left to the OS.
JOIN_SECONDS = 2.0


class VerifyPoolError(TiezhengError):
    """A verification the pool could not run to its report."""


class VerifyBusy(VerifyPoolError):
    """Every one of the ``slots`` verification slots is taken."""

    def __init__(self, slots: int) -> None:
        super().__init__(f"all {slots} verification slots are taken")
        self.slots = slots


class VerifyTimeout(VerifyPoolError):
    """A verification ran past its wall-time budget of ``seconds`` and its worker was killed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the verification ran past its budget of {seconds:.0f} s")
        self.seconds = seconds


class VerifyCrashed(VerifyPoolError):
    """A worker died while verifying (killed by the OS, out of memory, ...)."""

    def __init__(self, why: str = "the worker died while verifying") -> None:
        super().__init__(why)


def _serve(conn: Connection) -> None:
    """A worker's loop: ``(package path, trust TOML)`` in, a Report out, until the pipe closes."""
    parsed: tuple[str, Trust] | None = None
    while True:
        try:
            path, trust_text = conn.recv()
        except (EOFError, OSError):
            return
        if parsed is None or parsed[0] != trust_text:
            parsed = (trust_text, default_trust().merged(parse_trust(trust_text, source=TRUST_PATH)))
        try:
            report = verify_package(Path(path), parsed[1])
        except Exception as exc:  # a report must come back whatever the verifier did
            report = unusable(f"the verifier stopped on an unexpected error ({type(exc).__name__})")
        conn.send(report)


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection

    def stop(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(JOIN_SECONDS)


class VerifyPool:
    """At most ``size`` verifications at once, each cut off after ``timeout`` seconds."""

    def __init__(self, *, size: int, timeout: float) -> None:
        self.size = max(1, size)
        self.timeout = timeout
        self._running = 0
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("spawn")

    @property
    def full(self) -> bool:
        """True while every slot is taken: a caller may refuse before receiving a package at all."""
        with self._lock:
            return self._running >= self.size

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the ``size`` slots. Raises VerifyBusy at once when none is free."""
        with self._lock:
            if self._running >= self.size:
                raise VerifyBusy(self.size)
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1

    def _start(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child,), name="tiezheng-verify-worker", daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.process.is_alive():
                    return worker
                worker.stop()
        return self._start()

    def verify(self, path: Path, trust_text: str) -> Report:
        """Verify ``path`` in a worker, holding a slot. Raises VerifyBusy when none is free, VerifyTimeout
        past the budget, VerifyCrashed if the worker died."""
        with self.slot():
            return self._verify(path, trust_text)

    def _verify(self, path: Path, trust_text: str) -> Report:
        worker = self._take()
        try:
            worker.conn.send((str(path), trust_text))
            if not worker.conn.poll(self.timeout):
                raise VerifyTimeout(self.timeout)
            report = worker.conn.recv()
        except VerifyTimeout:
            log.warning("a verification ran past %.0f s; its worker was stopped", self.timeout)
            worker.stop()
            raise
        except (EOFError, OSError) as exc:
            worker.stop()
            raise VerifyCrashed from exc
        if not isinstance(report, Report):
            worker.stop()
            raise VerifyCrashed(f"the worker answered {type(report).__name__}, not a report")
        with self._lock:
            self._idle.append(worker)
        return report

    def close(self) -> None:
        with self._lock:
            workers, self._idle = self._idle, []
        for worker in workers:
            worker.stop()
