"""Capture web pages as court-grade evidence packages (manifest kind ``web-capture``).

Public API::

    async capture_many(urls, *, packages_dir, operator, requester, options, browser=None) -> [CaptureResult]
    capture_urls(urls, ...)            the same, synchronous (runs its own event loop)
    read_url_file(path) -> [url]       batch mode: one URL a line, ``#`` comments and blank lines skipped
    capture_file(path, ...)            capture_urls over read_url_file(path)
    async capture_one(url, ...)        one package, or CaptureError with a one-line reason
    WarmCapturer()                     for synchronous services: a warm browser on its own event-loop
                                       thread; ``.capture_urls(...)`` from any thread, ``.close()``

One warm Chromium (``WarmBrowser``) serves every capture of a call, or of a whole service when the
caller keeps one; each capture gets a fresh incognito context behind its own recorder, and up to
``options.concurrency`` captures run at once. Each successful capture becomes one signed package in
``packages_dir``; queueing it for sealing is the caller's job. A failed capture leaves nothing behind
but its error.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from evidence.browser import WarmBrowser
from evidence.capture_errors import BlockedAddress, CaptureError
from evidence.capture_options import CaptureOptions
from evidence.capture_package import build_capture_package
from evidence.capture_run import CaptureRun
from evidence.clock_probe import ClockReferences
from evidence.manifest import new_evidence_id
from evidence.operator_key import OperatorKey
from evidence.ssrf import split_url
from evidence.upload import BuiltPackage
from verifier.package import Requester

__all__ = ["BlockedAddress", "CaptureError", "CaptureOptions", "CaptureResult", "ClockReferences", "WarmBrowser",
           "WarmCapturer", "capture_file", "capture_many", "capture_one", "capture_urls", "read_url_file"]

MAX_BATCH_URLS = 1000
MAX_URL_FILE_BYTES = 4 << 20
#: Beyond the per-step timeouts, no capture may take longer than this many times ``options.timeout``.
TOTAL_TIMEOUT_FACTOR = 4


@dataclass(frozen=True)
class CaptureResult:
    """The outcome for one URL: a package, or the one-line reason there is none."""

    url: str
    package: BuiltPackage | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.package is not None

    def record(self) -> dict[str, str | None]:
        """``{"evidence_id", "fingerprint", "package", "status"}`` as ``--json`` prints it (DESIGN.md §6)."""
        if self.package is None:
            return {"url": self.url, "evidence_id": None, "fingerprint": None, "package": None,
                    "status": "failed", "error": self.error}
        return {"url": self.url, "evidence_id": self.package.evidence_id,
                "fingerprint": self.package.fingerprint.hex(), "package": str(self.package.path),
                "status": "captured"}


async def capture_one(url: str, *, browser: WarmBrowser, packages_dir: Path, operator: OperatorKey,
                      requester: Requester, options: CaptureOptions | None = None,
                      clock_references: ClockReferences | None = None) -> BuiltPackage:
    """Capture ``url`` into one signed package. Raises CaptureError (and BlockedAddress) only.

    ``clock_references`` names the TSA and NTP server the pre-capture clean check measures the
    clock against; without them the record says "not configured" and the verifier's S4 warns.
    """
    options = (options or CaptureOptions()).validated()
    url = url.strip()
    split_url(url)
    started = datetime.now(UTC)
    evidence_id = new_evidence_id(started)
    with tempfile.TemporaryDirectory(prefix="tiezheng-capture-") as workdir:
        run = CaptureRun(url, browser=browser, options=options, operator=operator, requester=requester,
                         work=Path(workdir), evidence_id=evidence_id, started=started,
                         clock_references=clock_references)
        try:
            try:
                async with asyncio.timeout(options.timeout * TOTAL_TIMEOUT_FACTOR):
                    outcome = await run.run()
            except TimeoutError as exc:
                limit = options.timeout * TOTAL_TIMEOUT_FACTOR
                raise CaptureError(f"the capture did not finish within {limit:g} s") from exc
            # Packaging hashes and zips every file once more: off the event loop, so other captures go on.
            return await asyncio.to_thread(build_capture_package, outcome, browser=browser, options=options,
                                           operator=operator, requester=requester, packages_dir=packages_dir)
        finally:
            run.log.close()


async def capture_many(urls: Sequence[str], *, packages_dir: Path, operator: OperatorKey, requester: Requester,
                       options: CaptureOptions | None = None, browser: WarmBrowser | None = None,
                       on_result: Callable[[CaptureResult], None] | None = None,
                       clock_references: ClockReferences | None = None) -> list[CaptureResult]:
    """Capture each URL (``options.concurrency`` at a time) with one warm browser; results in input order.

    A browser passed in stays open; otherwise one is launched for this call and closed after it.
    ``on_result`` is called as each capture finishes (progress displays). Raises CaptureError only
    when no browser can be started or the options are invalid.
    """
    options = (options or CaptureOptions()).validated()
    if len(urls) > MAX_BATCH_URLS:
        raise CaptureError(f"{len(urls)} URLs in one batch; the limit is {MAX_BATCH_URLS}")
    own = browser is None
    warm = browser if browser is not None else await WarmBrowser.launch()
    gate = asyncio.Semaphore(options.concurrency)

    async def one(url: str) -> CaptureResult:
        async with gate:
            try:
                package = await capture_one(url, browser=warm, packages_dir=packages_dir, operator=operator,
                                            requester=requester, options=options,
                                            clock_references=clock_references)
                result = CaptureResult(url=url, package=package)
            except CaptureError as exc:
                result = CaptureResult(url=url, error=str(exc))
            if on_result is not None:
                on_result(result)
            return result

    try:
        return list(await asyncio.gather(*(one(url) for url in urls)))
    finally:
        if own:
            await warm.close()


def capture_urls(urls: Sequence[str], *, packages_dir: Path, operator: OperatorKey, requester: Requester,
                 options: CaptureOptions | None = None,
                 on_result: Callable[[CaptureResult], None] | None = None,
                 clock_references: ClockReferences | None = None) -> list[CaptureResult]:
    """Synchronous ``capture_many`` with a browser of its own. Do not call from a running event loop."""
    return asyncio.run(capture_many(urls, packages_dir=packages_dir, operator=operator, requester=requester,
                                    options=options, on_result=on_result, clock_references=clock_references))


def read_url_file(path: Path) -> list[str]:
    """The URLs of a batch file: one a line; blank lines and ``#`` comments skipped. Raises CaptureError."""
    try:
        size = path.stat().st_size
        if size > MAX_URL_FILE_BYTES:
            raise CaptureError(f"{path} is over {MAX_URL_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaptureError(f"cannot read the URL file {path}: {exc}") from exc
    urls = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not urls:
        raise CaptureError(f"{path} lists no URLs")
    if len(urls) > MAX_BATCH_URLS:
        raise CaptureError(f"{path} lists {len(urls)} URLs; the limit is {MAX_BATCH_URLS}")
    return urls


def capture_file(path: Path, *, packages_dir: Path, operator: OperatorKey, requester: Requester,
                 options: CaptureOptions | None = None,
                 clock_references: ClockReferences | None = None) -> list[CaptureResult]:
    """Batch mode: capture every URL listed in ``path``."""
    return capture_urls(read_url_file(path), packages_dir=packages_dir, operator=operator, requester=requester,
                        options=options, clock_references=clock_references)


class WarmCapturer:
    """One warm browser on a private event-loop thread, for synchronous callers that capture often.

    ``capture_urls`` may be called from several threads at once; their captures share the browser
    and run concurrently (each call up to ``options.concurrency``). Raises CaptureError at start when
    no browser can be launched.
    """

    #: Beyond each capture's own timeouts: how long a caller waits for a whole batch.
    BATCH_TIMEOUT_SECONDS = 3600.0

    def __init__(self, executable: Path | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tiezheng-capture", daemon=True)
        self._thread.start()
        try:
            self._browser = asyncio.run_coroutine_threadsafe(WarmBrowser.launch(executable), self._loop).result()
        except BaseException:
            self._stop_loop()
            raise

    def capture_urls(self, urls: Sequence[str], *, packages_dir: Path, operator: OperatorKey, requester: Requester,
                     options: CaptureOptions | None = None,
                     clock_references: ClockReferences | None = None) -> list[CaptureResult]:
        """``capture_many`` on the warm browser; blocks until every URL has a result."""
        work = capture_many(urls, packages_dir=packages_dir, operator=operator, requester=requester,
                            options=options, browser=self._browser, clock_references=clock_references)
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(self.BATCH_TIMEOUT_SECONDS)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def close(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._browser.close(), self._loop).result(60)
        finally:
            self._stop_loop()

    def __enter__(self) -> WarmCapturer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
