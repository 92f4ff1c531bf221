"""The session video and scripted steps, on a real local thread page whose comments appear only after clicks.

The page (served on loopback) shows a cookie banner, a "Show comments" button that loads the comments
with a request of its own, and "Show replies" buttons inside them: the steps must reveal all of it, the
DOM and the screenshot must hold it, and the session video must cover every logged step.
"""

from __future__ import annotations

import http.server
import io
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence.capture_errors import CaptureError
from evidence.capture_steps import StepError, load_steps, parse_steps
from evidence.operator_key import OperatorKey
from tests.capture_site import BrowserRunner, member, statuses, verify
from verifier import canonical
from verifier.verdict import Status
from verifier.webm import read_webm

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (make setup)")

VIDEO = "evidence/session.webm"
MANIFEST, SIGNATURE = "evidence/manifest.json", "evidence/manifest.sig"

THREAD = b"""<!doctype html><html><head><meta charset="utf-8"><title>Thread</title>
<style>body{font:18px sans-serif;margin:20px;background:#f4f1e8} .comment{background:#fff;margin:8px;padding:8px}
#cookie-banner{position:fixed;bottom:0;left:0;right:0;background:#222;color:#fff;padding:16px}</style></head>
<body><h1>Seller listing: counterfeit sneakers</h1><p>The post everyone argues about.</p>
<button id="show-comments">Show comments</button><div id="comments"></div>
<form><input id="search" type="text" name="q"><input id="pw" type="password" name="pw"></form>
<div id="cookie-banner">We use cookies. <button>Accept</button></div>
<script>
document.querySelector('#cookie-banner button').onclick = () => document.getElementById('cookie-banner').remove();
document.getElementById('show-comments').onclick = async () => {
  const comments = await (await fetch('/comments.json')).json();
  for (const c of comments) {
    const div = document.createElement('div'); div.className = 'comment';
    div.innerHTML = '<b></b>: <span></span> <button class="replies">Show replies</button><div class="r"></div>';
    div.querySelector('b').textContent = c.author; div.querySelector('span').textContent = c.text;
    div.querySelector('.replies').onclick = (e) => {
      div.querySelector('.r').textContent = 'Reply to ' + c.author + ': ' + c.reply; e.target.remove(); };
    document.getElementById('comments').appendChild(div);
  }
};
</script></body></html>"""
COMMENTS = [{"author": "buyer-1", "text": "These fell apart in a week", "reply": "same here"},
            {"author": "buyer-2", "text": "Logo is misspelled", "reply": "confirmed fake"}]


class _Thread(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        body, kind = {"/thread": (THREAD, "text/html; charset=utf-8"),
                      "/comments.json": (json.dumps(COMMENTS).encode(), "application/json")}.get(
            path, (b"not found", "text/plain"))
        self.send_response(200 if body != b"not found" else 404)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def thread_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Thread)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/thread"
    server.shutdown()
    server.server_close()


STEPS = ["dismiss_cookie_banner", "click #show-comments", "wait_for .comment", "expand_all .replies",
         "type #search counterfeit"]


@pytest.fixture(scope="module")
def stepped(runner: BrowserRunner, thread_url: str, operator: OperatorKey,
            tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = runner.capture(thread_url, tmp_path_factory.mktemp("packages"), operator, steps=parse_steps(STEPS))
    return built.path


def _log(package: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in member(package, "evidence/capture-log.jsonl").splitlines()]


def test_steps_reveal_comments_and_are_logged_with_screenshots(stepped: Path, trust: Path) -> None:
    dom = member(stepped, "evidence/dom.html").decode()
    assert "These fell apart in a week" in dom and "Reply to buyer-2: confirmed fake" in dom
    assert '<div id="cookie-banner">' not in dom
    # Each "Show replies" button was clicked (it removes itself); only the page's script still names it.
    assert dom.count('<button class="replies">') == 1 and '<div class="r">Reply to buyer-1: same here</div>' in dom
    manifest = json.loads(member(stepped, MANIFEST))
    assert manifest["capture"]["options"]["steps"] == [s.record() for s in parse_steps(STEPS)]
    log = _log(stepped)
    scripted = [line for line in log if line["step"] == "scripted-step"]
    assert [line["inputs"]["action"] for line in scripted] == [s.split()[0] for s in STEPS]
    assert scripted[0]["outcome"]["dismissed"] is True
    assert scripted[3]["outcome"]["clicked"] == 2
    paths = {a["path"]: a for a in manifest["artifacts"]}
    for number, line in enumerate(scripted, start=1):
        (output,) = line["outputs"]
        assert output["path"] == f"evidence/step-{number:02d}.png"
        assert paths[output["path"]]["role"] == "step-screenshot"
        assert canonical.sha256_hex(member(stepped, output["path"])) == output["sha256"]
    found = statuses(verify(stepped, trust))
    assert found["P1"] == found["P2"] == found["H1"] == found["P3"] == "pass"


def test_the_screenshot_shows_the_revealed_comments(stepped: Path) -> None:
    from PIL import Image

    # The bare thread fits the viewport; the comments and replies the steps revealed make it taller.
    with Image.open(io.BytesIO(member(stepped, "evidence/screenshot.png"))) as final, \
            Image.open(io.BytesIO(member(stepped, "evidence/step-01.png"))) as first:
        assert first.size == (1280, 800)
        assert final.width == 1280
        assert final.height >= 800


def test_video_covers_every_logged_step(stepped: Path, trust: Path, tmp_path: Path) -> None:
    data = member(stepped, VIDEO)
    info = read_webm(data)
    assert info.doc_type == "webm" and info.blocks > 0
    log = _log(stepped)
    video = next(line for line in log if line["step"] == "video")
    covers = video["inputs"]["covers"]
    assert log[covers["from_seq"]]["step"] == "video-start" and log[covers["to_seq"]]["step"] == "dom"
    assert log[covers["from_seq"] + 1]["step"] == "navigate"
    assert video["outputs"][0]["sha256"] == canonical.sha256_hex(data)
    report = verify(stepped, trust)
    assert "the session video (webm" in report.result("P2").reason
    # A frame from the middle of the session is a real picture of the page, not a blank frame.
    (tmp_path / "s.webm").write_bytes(data)
    frame = tmp_path / "frame.png"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-ss", str(info.span_seconds / 2),
                    "-i", str(tmp_path / "s.webm"), "-frames:v", "1", str(frame)], check=True, timeout=60)
    from PIL import Image, ImageStat

    with Image.open(frame) as picture:
        spread = ImageStat.Stat(picture.convert("L")).stddev[0]
    assert spread > 10, f"the frame is nearly uniform (stddev {spread:.1f})"
