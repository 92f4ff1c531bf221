"""ReplayWeb.page served on loopback, the way an archivist opens a package: a static site with the
viewer's ``ui.js`` and service worker, one package, and HTTP range requests (the viewer reads the
zip's central directory and then single entries, never the whole file).

``make setup`` unpacks the viewer (npm ``replaywebpage``, version pinned in package.json) into
node_modules/replaywebpage. The server is a threaded ``http.server`` on 127.0.0.1, which browsers
treat as a secure context, so the service worker may register.
"""

from __future__ import annotations

import html
import http.server
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VIEWER_DIR = Path(__file__).resolve().parent.parent / "node_modules" / "replaywebpage"
PACKAGE_NAME = "evidence.wacz"
RANGE = re.compile(r"bytes=(\d*)-(\d*)")
CONTENT_TYPES = {".js": "application/javascript", ".html": "text/html; charset=utf-8",
                 ".wacz": "application/wacz+zip"}


def viewer_available() -> bool:
    return (VIEWER_DIR / "ui.js").is_file() and (VIEWER_DIR / "sw.js").is_file()


def index_html(url: str) -> bytes:
    """The embedding page: one ``<replay-web-page>`` for the package, opened at ``url``."""
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>replay</title>'
            f'<script src="/ui.js"></script></head><body style="margin:0">'
            f'<replay-web-page style="display:block;width:100vw;height:100vh" source="/{PACKAGE_NAME}" '
            f'url="{html.escape(url, quote=True)}" replayBase="/replay/"></replay-web-page>'
            f'</body></html>').encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ViewerServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        path = self.path.split("?", 1)[0]
        files = self.server.files
        if path == "/":
            path = "/index.html"
        if path not in files:
            self._answer(404, b"not found", "text/plain", body=body)
            return
        data = files[path]
        content_type = CONTENT_TYPES.get(Path(path).suffix, "application/octet-stream")
        wanted = RANGE.fullmatch(self.headers.get("Range", "").strip())
        if wanted is None:
            self._answer(200, data, content_type, body=body)
            return
        first, last = wanted.groups()
        if first:
            start, end = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
        else:
            start, end = max(len(data) - int(last or 0), 0), len(data) - 1
        if start > end or start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.partial_reads.append((path, start, end))
        self._answer(206, data[start:end + 1], content_type, body=body,
                     extra={"Content-Range": f"bytes {start}-{end}/{len(data)}"})

    def _answer(self, status: int, data: bytes, content_type: str, *, body: bool,
                extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(data)


class _ViewerServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    files: dict[str, bytes]
    #: ``(path, first byte, last byte)`` of every 206 answer, to show the viewer read in ranges.
    partial_reads: list[tuple[str, int, int]]


@dataclass
class ReplayViewer:
    server: _ViewerServer
    thread: threading.Thread

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def package_reads(self) -> list[tuple[int, int]]:
        return [(start, end) for path, start, end in self.server.partial_reads if path == f"/{PACKAGE_NAME}"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def serve_replay(package: Path, url: str) -> ReplayViewer:
    """Serve the viewer, an embedding page opened at ``url``, and ``package`` on a free loopback port."""
    server = _ViewerServer(("127.0.0.1", 0), _Handler)
    sw = (VIEWER_DIR / "sw.js").read_bytes()
    server.files = {"/index.html": index_html(url), "/ui.js": (VIEWER_DIR / "ui.js").read_bytes(),
                    "/replay/sw.js": sw, f"/{PACKAGE_NAME}": package.read_bytes()}
    server.partial_reads = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return ReplayViewer(server, thread)
