"""A local site behind a login, with large pictures and a video, for logged-in, media and egress captures.

Real HTTP on 127.0.0.1 (``http.server``): ``/members`` answers its content only to a request carrying
the session cookie ``sid=<SESSION_ID>`` and otherwise redirects to ``/login``. ``/gallery`` shows two
large pictures (made here with Pillow: a JPEG and a PNG of noise, so they do not compress away) and a
WebM video made here with ffmpeg (Debian), served whole to the browser's range requests.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SESSION_ID = "s3cr3t-session-4f1c9a"
ACCOUNT = "buyer-test@shop.example"
MEMBERS_TEXT = "Members only: order 7731 for counterfeit trainers"
LOGIN_TEXT = "Please sign in to see this page"
LARGE_SIDE = (2400, 1600)


def large_jpeg() -> bytes:
    from PIL import Image

    image = Image.frombytes("RGB", LARGE_SIDE, os.urandom(LARGE_SIDE[0] * LARGE_SIDE[1] * 3))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def large_png() -> bytes:
    from PIL import Image

    side = (1200, 900)
    image = Image.frombytes("RGB", side, os.urandom(side[0] * side[1] * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def small_webm() -> bytes:
    """Two seconds of ffmpeg's test pattern as VP8 WebM."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed (Debian package ffmpeg)")
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "clip.webm"
        subprocess.run([ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=10",
                        "-c:v", "libvpx", "-b:v", "200k", str(target)], check=True, timeout=60)
        return target.read_bytes()


def storage_state(session_id: str = SESSION_ID, *, secure: bool = False) -> bytes:
    """A Playwright storage state as a logged-in browser would save it for this site."""
    return json.dumps({"cookies": [{"name": "sid", "value": session_id, "domain": "127.0.0.1", "path": "/",
                                    "expires": -1, "httpOnly": True, "secure": secure, "sameSite": "Lax"}],
                       "origins": [{"origin": "http://127.0.0.1", "localStorage": [
                           {"name": "token", "value": "local-storage-secret-77"}]}]}).encode()


GALLERY = b"""<!doctype html><html><head><meta charset="utf-8"><title>Gallery</title></head><body>
<h1>Gallery</h1><img src="/media/big.jpg" width="600" height="400"><img src="/media/big.png" width="300">
<video src="/media/clip.webm" preload="auto" muted width="320" height="240"></video></body></html>"""


@dataclass
class MemberSite:
    server: _Server

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class _Media:
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8",
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.server.cookies_seen.append(self.headers.get("Cookie") or "")
        if path == "/members":
            if f"sid={SESSION_ID}" in (self.headers.get("Cookie") or ""):
                self._send(200, f"<!doctype html><html><head><title>Members</title></head><body><p>{MEMBERS_TEXT}"
                                f"</p><img src='/media/big.png' width='100'></body></html>".encode())
            else:
                self._send(302, b"", extra={"Location": "/login"})
        elif path == "/login":
            self._send(200, f"<!doctype html><html><head><title>Sign in</title></head><body><p>{LOGIN_TEXT}</p>"
                            "<form><input name='user'><input name='password' type='password'></form>"
                            "</body></html>".encode())
        elif path == "/gallery":
            self._send(200, GALLERY)
        elif path in self.server.media.files:
            body, media_type = self.server.media.files[path]
            self._send(200, body, media_type, {"Accept-Ranges": "none", "Cache-Control": "no-store"})
        else:
            self._send(404, b"not found", "text/plain")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, media: _Media) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.media = media
        self.cookies_seen: list[str] = []


def serve_member_site() -> MemberSite:
    media = _Media({"/media/big.jpg": (large_jpeg(), "image/jpeg"), "/media/big.png": (large_png(), "image/png"),
                    "/media/clip.webm": (small_webm(), "video/webm")})
    server = _Server(media)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return MemberSite(server)
