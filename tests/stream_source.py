"""A live stream on loopback for tests: ffmpeg makes it, a small HTTP server serves it.

ffmpeg encodes a test pattern (``-f lavfi -i testsrc``) into a sliding HLS playlist (or a live
DASH MPD) with short segments, faster than real time (``-readrate``), so minutes of stream take
seconds. The server can black out the playlist for a while (HTTP 503), which makes the recorder
miss segments that slide out of the playlist meanwhile: a real gap.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class StreamSource:
    folder: Path
    port: int
    blackout: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen[bytes] | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


class _Handler(SimpleHTTPRequestHandler):
    source: StreamSource

    def do_GET(self) -> None:
        if self.source.blackout.is_set() and self.path.endswith((".m3u8", ".mpd")):
            self.send_error(503, "blacked out")
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def ffmpeg_live(folder: Path, kind: str, *, segment: float = 0.5, rate: float = 4.0, window: int = 4,
                size: str = "320x240", bitrate: str | None = None) -> list[str]:
    """The ffmpeg command; ``bitrate`` (say ``2M``) pads the video to a constant bitrate, like a real stream."""
    source = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-readrate", str(rate), "-f", "lavfi", "-i",
              f"testsrc=size={size}:rate=20", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
              "-g", str(int(20 * segment)), "-keyint_min", str(int(20 * segment)), "-sc_threshold", "0",
              "-pix_fmt", "yuv420p"]
    if bitrate is not None:
        source += ["-b:v", bitrate, "-minrate", bitrate, "-maxrate", bitrate, "-bufsize", bitrate,
                   "-x264-params", "nal-hrd=cbr"]
    if kind == "hls":
        return [*source, "-f", "hls", "-hls_time", str(segment), "-hls_list_size", str(window),
                "-hls_flags", "delete_segments+temp_file", str(folder / "live.m3u8")]
    return [*source, "-f", "dash", "-seg_duration", str(segment), "-window_size", str(window),
            "-extra_window_size", "2", "-use_template", "1", "-use_timeline", "1", "-remove_at_exit", "0",
            str(folder / "live.mpd")]


@contextmanager
def serve_folder(folder: Path) -> Iterator[StreamSource]:
    source = StreamSource(folder=folder, port=0)
    handler = type("Handler", (_Handler,), {"source": source})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    source.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield source
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def live_stream(folder: Path, kind: str = "hls", **options: Any) -> Iterator[StreamSource]:
    """Serve a live stream from ``folder`` until the block ends; its URL is ``source.url('live.m3u8')``."""
    folder.mkdir(parents=True, exist_ok=True)
    with serve_folder(folder) as source:
        source.process = subprocess.Popen(ffmpeg_live(folder, kind, **options), stdin=subprocess.DEVNULL)
        playlist = folder / ("live.m3u8" if kind == "hls" else "live.mpd")
        deadline = time.monotonic() + 20
        while not playlist.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            yield source
        finally:
            source.process.kill()
            source.process.wait()
