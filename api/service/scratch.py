"""Temp files that no live process owns are removed: on start, and then periodically.

Each process that writes (``tiezheng serve``, ``upload``, ``capture``, ``seal``, the demo) claims a
folder of its own under the data dir's ``tmp/`` and holds an ``fcntl`` lock on its lock file while
it lives. Python's temp dir is pointed at that folder, so upload copies, capture work dirs and
request bodies land there instead of the system temp dir. The kernel drops the lock when the
process dies, however it dies (SIGKILL included), so a folder whose lock can be taken belongs to
nobody and is removed whole.

Temp files that cannot carry a lock (a package being written next to its final name in
``packages/``, a blob, a report) are removed once nobody has written to them for
``STALE_SECONDS``: a live writer keeps touching its file. The same goes for work dirs that older
versions (or library use of evidence/) left in the system temp dir under our own prefixes.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from api.service.settings import Settings

log = logging.getLogger(__name__)

PROCESS_PREFIX = "proc-"
LOCK_SUFFIX = ".lock"
#: A temp file or dir not written for this long has no live writer.
STALE_SECONDS = 30 * 60
#: A process folder whose lock file is gone is an orphan once this old (its lock comes first).
ORPHAN_SECONDS = 60
#: Where Python's temp dir pointed before any claim: work dirs of older runs may sit there.
SYSTEM_TEMP = Path(tempfile.gettempdir())
#: Prefixes of the work dirs evidence/ and verifier/ make with tempfile for one operation each. Not
#: ``tiezheng-recorder-``: a warm browser's key folder is written once and then lives, idle, as long
#: as the browser (hours, in a capture worker that keeps its temp files in the system temp dir).
SYSTEM_PREFIXES = ("tiezheng-upload-", "tiezheng-capture-", "tiezheng-cdx-", "tiezheng-rewrite-")
#: Temp names written beside their final file: packages, blobs, PDF certificates, devnet state.
SIBLING_PATTERNS = (".*.tmp", ".blob.*", ".cert.*", ".package.*")

_claims: dict[Path, tuple[int, Path]] = {}
_claims_lock = threading.Lock()


def claim(settings: Settings) -> Path:
    """This process's own temp folder under the data dir, locked while it lives; Python's temp dir.

    Only Python's temp dir moves (``tempfile.tempdir``), not ``TMPDIR`` of child processes: the
    browser puts UNIX sockets in its temp dir, whose paths must stay short.
    """
    root = settings.tmp_dir
    with _claims_lock:
        if root in _claims:
            return _claims[root][1]
        root.mkdir(parents=True, exist_ok=True)
        name = f"{PROCESS_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        # Locked under a name the sweeper ignores, then renamed: no sweeper can see it unlocked.
        pending = root / f".{name}{LOCK_SUFFIX}"
        fd = os.open(pending, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(pending, root / f"{name}{LOCK_SUFFIX}")
        folder = root / name
        folder.mkdir(mode=0o700)
        _claims[root] = (fd, folder)
        tempfile.tempdir = str(folder)
    atexit.register(release, settings)  # a clean exit tidies up at once; a crash leaves it to the sweeper
    return folder


def release(settings: Settings) -> None:
    """Remove this process's folder and lock (on a clean exit; a crash leaves them to the sweeper)."""
    with _claims_lock:
        claimed = _claims.pop(settings.tmp_dir, None)
        if claimed is None:
            return
        fd, folder = claimed
        if tempfile.tempdir == str(folder):
            tempfile.tempdir = None
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.with_name(folder.name + LOCK_SUFFIX).unlink()
        os.close(fd)


def sweep(settings: Settings, *, now: float | None = None) -> list[Path]:
    """Remove what no live process owns; returns what was removed. Never raises for a file."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    root = settings.tmp_dir
    if root.is_dir():
        removed += _sweep_process_folders(root, now)
        # Process folders go by their lock; anything else here (a download's copy, a lock file whose
        # process died before it was named) goes when stale.
        removed += [p for p in root.iterdir() if not p.name.startswith(PROCESS_PREFIX)
                    and _stale(p, now) and _remove(p)]
    for folder in (settings.packages_dir, settings.blobs_dir, settings.reports_dir, settings.root):
        if folder.is_dir():
            removed += [p for pattern in SIBLING_PATTERNS for p in _siblings(folder, pattern)
                        if _stale(p, now) and _remove(p)]
    if SYSTEM_TEMP.is_dir():
        removed += [p for p in _own_entries(SYSTEM_TEMP) if p.name.startswith(SYSTEM_PREFIXES)
                    and _stale(p, now) and _remove(p)]
    if removed:
        log.info("removed %d leftover temp file(s) of processes that are gone", len(removed))
    return removed


def _sweep_process_folders(root: Path, now: float) -> list[Path]:
    removed: list[Path] = []
    with _claims_lock:
        own = {folder for _, folder in _claims.values()}
    for lock in root.glob(f"{PROCESS_PREFIX}*{LOCK_SUFFIX}"):
        folder = lock.with_name(lock.name.removesuffix(LOCK_SUFFIX))
        if folder in own or not _owner_gone(lock):
            continue
        if folder.exists() and _remove(folder):
            removed.append(folder)
        with contextlib.suppress(OSError):
            lock.unlink()
    for folder in root.glob(f"{PROCESS_PREFIX}*"):
        if (folder.is_dir() and not folder.with_name(folder.name + LOCK_SUFFIX).exists()
                and now - _mtime(folder) > ORPHAN_SECONDS and _remove(folder)):
            removed.append(folder)
    return removed


def _owner_gone(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops the lock taken just now, if any
    return True


def _siblings(folder: Path, pattern: str) -> Iterator[Path]:
    # packages/ and the data dir are flat; blobs and reports keep temp files one or two levels down.
    yield from folder.glob(pattern)
    if folder.name in ("blobs", "reports"):
        yield from folder.glob(f"*/{pattern}")
        yield from folder.glob(f"*/*/{pattern}")


def _own_entries(folder: Path) -> Iterator[Path]:
    uid = os.getuid()
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            with contextlib.suppress(OSError):
                if entry.lstat().st_uid == uid:
                    yield entry


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return float("inf")


def _stale(path: Path, now: float) -> bool:
    """Nothing in ``path`` (file or tree) was written for STALE_SECONDS."""
    newest = _mtime(path)
    if path.is_dir() and not path.is_symlink():
        for parent, dirs, files in os.walk(path):
            for name in dirs + files:
                newest = max(newest, _mtime(Path(parent) / name))
                if now - newest <= STALE_SECONDS:
                    return False
    return now - newest > STALE_SECONDS


def _remove(path: Path) -> bool:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("could not remove leftover %s: %s", path.name, exc.strerror)
        return False
    return True


class Sweeper:
    """Sweeps at start and then every ``sweep_interval_seconds`` in a daemon thread, until stopped."""

    def __init__(self, settings: Settings) -> None:
        self.settings, self.interval = settings, settings.sweep_interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tiezheng-sweeper", daemon=True)

    def start(self) -> Sweeper:
        claim(self.settings)
        sweep(self.settings)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                sweep(self.settings)
            except Exception as exc:  # a failed sweep must not end the service; the next one retries
                log.warning("temp sweep failed: %s: %s", type(exc).__name__, exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        release(self.settings)
