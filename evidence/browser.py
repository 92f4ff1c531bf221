"""One warm headless Chromium, launched once through Playwright and shared by captures.

The browser binary is found in this order (DESIGN.md §3): ``TIEZHENG_CHROMIUM``, a Playwright-managed
browser if one is installed, then ``/usr/bin/chromium``. ``playwright install`` is never run. A
distribution launcher script (Debian's ``/usr/bin/chromium`` adds its own flags and extensions) is
unwrapped to the binary it starts, so the browser runs with our flags only.

The facts the manifest states are read from the running browser, not assumed: its command line and
executable come from ``/proc/<pid>``, its version from the DevTools protocol, and the binary is
hashed from the file the process runs. Every context gets its own proxy (the capture's recorder);
the browser-wide proxy is a local sink that refuses and counts anything else (background requests),
so nothing leaves the browser except through a recorder. Proxy variables are removed from the
browser's environment and their names recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright

from evidence.capture_errors import CaptureError
from evidence.interception import InterceptionKey

CHROMIUM_ENV = "TIEZHENG_CHROMIUM"
SYSTEM_CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_TIMEOUT_SECONDS = 60.0
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")
#: Fixed flags: no GPU, no QUIC (it would bypass an HTTP proxy), nothing phoning home, no first-run UI.
BASE_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
              "--disable-domain-reliability", "--disable-client-side-phishing-detection",
              "--disable-breakpad", "--metrics-recording-only", "--disable-dev-shm-usage")
HASH_CHUNK_BYTES = 1 << 20
SINK_READ_SECONDS = 2.0
MAX_SINK_NOTES = 1000


def find_chromium() -> tuple[Path, str]:
    """Return ``(path, how it was chosen)``. Raises CaptureError when no browser is found."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise CaptureError(f"{CHROMIUM_ENV}={configured} is not a file")
        return path, f"configured ({CHROMIUM_ENV})"
    managed = _playwright_managed()
    if managed is not None:
        return managed, "Playwright-managed browser"
    if SYSTEM_CHROMIUM.is_file():
        return SYSTEM_CHROMIUM, "system browser"
    raise CaptureError(f"no Chromium found: set {CHROMIUM_ENV}, or install the distribution's chromium package")


def _playwright_managed() -> Path | None:
    root = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or Path.home() / ".cache" / "ms-playwright")
    for pattern in ("chromium-*/chrome-linux*/chrome", "chromium_headless_shell-*/chrome-*/headless_shell"):
        found = sorted(root.glob(pattern))
        if found:
            return found[-1]
    return None


def unwrap_launcher(path: Path) -> Path:
    """The real binary behind a Debian-style launcher script (``LIBDIR=…``, ``APPNAME=…``), else ``path``."""
    try:
        with path.open("rb") as handle:
            head = handle.read(64 << 10)
    except OSError:
        return path
    if not head.startswith(b"#!"):
        return path
    text = head.decode("utf-8", "replace")
    appname = re.search(r"^APPNAME=(\S+)$", text, re.MULTILINE)
    libdir = re.search(r"^LIBDIR=(\S+)$", text, re.MULTILINE)
    if not appname or not libdir:
        return path
    binary = Path(libdir.group(1).replace("$APPNAME", appname.group(1))) / appname.group(1)
    return binary if binary.is_file() and os.access(binary, os.X_OK) else path


@lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int, inode: int) -> str:
    del size, mtime_ns, inode  # part of the cache key only: a replaced binary is hashed again
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            hasher.update(chunk)
    return hasher.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, cached while the file stays the same (a browser binary is ~300 MB)."""
    info = path.stat()
    return _file_sha256(str(path), info.st_size, info.st_mtime_ns, info.st_ino)


def _find_process(marker: str) -> int | None:
    # The browser process is the one whose command line holds this launch's unique sink address
    # and no --type= (renderers, GPU and utility processes have one).
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in args and not any(a.startswith(b"--type=") for a in args):
            return int(entry.name)
    return None


@dataclass(frozen=True)
class BrowserFacts:
    executable: str
    chosen_as: str
    launcher: str | None
    version: str
    sha256: str
    flags: tuple[str, ...]
    command_line_source: str
    user_agent: str
    removed_env: tuple[str, ...]

    def record(self) -> dict[str, Any]:
        return {"name": "chromium", "executable": self.executable, "chosen_as": self.chosen_as,
                "launcher": self.launcher, "version": self.version, "sha256": self.sha256,
                "flags": list(self.flags), "command_line_source": self.command_line_source,
                "user_agent": self.user_agent, "headless": True}


class _Sink:
    """The browser-wide proxy: refuses every request and notes it (only context proxies may be used)."""

    def __init__(self) -> None:
        self.refused: list[tuple[datetime, str]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._refuse, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), SINK_READ_SECONDS)
        except (TimeoutError, OSError, ValueError):
            line = b""
        parts = line.decode("latin-1").split()
        # Method and host only: a request line may carry keys or tokens in its query.
        target = urlsplit(parts[1] if "://" in parts[1] else f"//{parts[1]}").netloc if len(parts) > 1 else "?"
        if len(self.refused) < MAX_SINK_NOTES:
            self.refused.append((datetime.now(UTC), f"{parts[0] if parts else '?'} {target}"))
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        writer.close()

    def since(self, moment: datetime) -> list[str]:
        return [what for when, what in self.refused if when >= moment]

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


class WarmBrowser:
    """A launched Chromium with its interception key. Use ``async with WarmBrowser.launch() as b``."""

    def __init__(self, playwright: Playwright, browser: Browser, interception: InterceptionKey, sink: _Sink,
                 facts: BrowserFacts) -> None:
        self.playwright = playwright
        self.browser = browser
        self.interception = interception
        self.facts = facts
        self._sink = sink

    @classmethod
    async def launch(cls, executable: Path | None = None) -> WarmBrowser:
        """Start Playwright and Chromium. Raises CaptureError when the browser cannot start."""
        path, chosen_as = (executable, "given by the caller") if executable else find_chromium()
        binary = unwrap_launcher(path)
        interception = InterceptionKey()
        sink = _Sink()
        await sink.start()
        env: dict[str, str | float | bool] = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
        removed = tuple(sorted(k for k in os.environ if k.lower() in PROXY_VARIABLES))
        flags = [*BASE_FLAGS, f"--ignore-certificate-errors-spki-list={interception.spki_pin}"]
        playwright = await async_playwright().start()
        try:
            browser = await asyncio.wait_for(playwright.chromium.launch(
                executable_path=binary, headless=True, args=flags, env=env, timeout=LAUNCH_TIMEOUT_SECONDS * 1000,
                proxy={"server": f"http://127.0.0.1:{sink.port}"}), LAUNCH_TIMEOUT_SECONDS)
            facts = await cls._facts(browser, binary, path, chosen_as, sink.port, flags, removed)
        except Exception as exc:
            await playwright.stop()
            interception.close()
            sink.close()
            if isinstance(exc, CaptureError):
                raise
            raise CaptureError(f"cannot start Chromium at {binary}: {str(exc).splitlines()[0]}") from exc
        return cls(playwright, browser, interception, sink, facts)

    @staticmethod
    async def _facts(browser: Browser, binary: Path, path: Path, chosen_as: str, sink_port: int,
                     flags: list[str], removed: tuple[str, ...]) -> BrowserFacts:
        pid = _find_process(f"--proxy-server=http://127.0.0.1:{sink_port}")
        executable, command_line, source = binary, tuple(flags), "launch arguments (no /proc on this host)"
        if pid is not None:
            executable = Path(os.readlink(f"/proc/{pid}/exe"))
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            command_line = tuple(a.decode("utf-8", "replace") for a in args[1:] if a)
            source = "/proc/<pid>/cmdline of the running browser"
        context = await browser.new_context()
        try:
            page = await context.new_page()
            user_agent = str(await page.evaluate("navigator.userAgent"))
        finally:
            await context.close()
        return BrowserFacts(executable=str(executable), chosen_as=chosen_as,
                            launcher=str(path) if path != binary else None, version=browser.version,
                            sha256=await asyncio.to_thread(file_sha256, executable), flags=command_line,
                            command_line_source=source, user_agent=user_agent, removed_env=removed)

    def refused_background_requests(self, since: datetime) -> list[str]:
        """Requests the browser tried outside any capture's recorder since ``since`` (method and host)."""
        return self._sink.since(since)

    async def new_context(self, proxy_url: str, *, viewport: tuple[int, int],
                          storage_state: dict[str, Any] | None = None) -> BrowserContext:
        """A fresh incognito context whose every request goes through ``proxy_url``; it starts with
        ``storage_state`` (a logged-in capture's cookies and local storage) and nothing else."""
        return await self.browser.new_context(
            proxy={"server": proxy_url, "bypass": ""}, viewport={"width": viewport[0], "height": viewport[1]},
            service_workers="block", accept_downloads=False, ignore_https_errors=False,
            storage_state=storage_state)  # type: ignore[arg-type]

    async def close(self) -> None:
        try:
            await self.browser.close()
        finally:
            await self.playwright.stop()
            self.interception.close()
            self._sink.close()

    async def __aenter__(self) -> WarmBrowser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

