"""The session video and scripted steps, on a real local thread page whose comments appear only after clicks.

The page (served on loopback) shows a cookie banner, a "Show comments" button that loads the comments
with a request of its own, and "Show replies" buttons inside them: the steps must reveal all of it, the
DOM and the screenshot must hold it, and the session video must cover every logged step.
"""

from __future__ import annotations

import http.server
import io
import json
import re
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence import capture_steps
from evidence.capture_errors import CaptureError
from evidence.capture_steps import StepError, load_steps, parse_steps
from evidence.operator_key import OperatorKey
from tests.capture_site import BrowserRunner, member, statuses, verify
from tests.tamper import flip_byte, replace_entry, rewrite
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
    tools = {t["name"]: t for t in json.loads(member(stepped, MANIFEST))["capture"]["tools"]}
    assert tools["ffmpeg"]["version"].startswith("ffmpeg version") and len(tools["ffmpeg"]["sha256"]) == 64
    report = verify(stepped, trust)
    assert "the session video (webm" in report.result("P2").reason
    assert report.result("S4").status is not Status.FAIL
    # A frame from the middle of the session is a real picture of the page, not a blank frame.
    (tmp_path / "s.webm").write_bytes(data)
    frame = tmp_path / "frame.png"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-ss", str(info.span_seconds / 2),
                    "-i", str(tmp_path / "s.webm"), "-frames:v", "1", str(frame)], check=True, timeout=60)
    from PIL import Image, ImageStat

    with Image.open(frame) as picture:
        spread = ImageStat.Stat(picture.convert("L")).stddev[0]
    assert spread > 10, f"the frame is nearly uniform (stddev {spread:.1f})"


def _resigned(source: Path, target: Path, operator: OperatorKey, name: str, data: bytes) -> Path:
    """``name`` replaced by ``data``, the manifest's hash of it updated and the manifest signed again: what
    a dishonest operator could do. H1 then holds; only the log's hash (and the file itself) can tell."""
    manifest = json.loads(member(source, MANIFEST))
    for artifact in manifest["artifacts"]:
        if artifact["path"] == name:
            artifact.update(sha256=canonical.sha256_hex(data), size=len(data))
    body = canonical.canonical_json(manifest)
    return rewrite(source, target, lambda n, d: {name: data, MANIFEST: body,
                                                 SIGNATURE: operator.sign_manifest(body)}.get(n, d))


def _short_webm(tmp_path: Path) -> bytes:
    out = tmp_path / "short.webm"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=320x200:rate=5:duration=1", "-c:v", "libvpx", "-deadline", "realtime",
                    str(out)], check=True, timeout=60)
    return out.read_bytes()


def test_a_tampered_video_fails_p2(stepped: Path, operator: OperatorKey, trust: Path, tmp_path: Path) -> None:
    flipped = replace_entry(stepped, tmp_path / "flipped.wacz", VIDEO, lambda d: flip_byte(d, len(d) // 2))
    report = verify(flipped, trust)
    assert report.result("H1").status is Status.FAIL and report.result("P2").status is Status.FAIL
    assert f"{VIDEO} has sha256" in report.result("P2").reason
    # Swapped for a one-second clip and signed again: the manifest agrees, the log and the duration do not.
    swapped = verify(_resigned(stepped, tmp_path / "short.wacz", operator, VIDEO, _short_webm(tmp_path)), trust)
    assert swapped.result("H1").status is Status.PASS and swapped.result("P2").status is Status.FAIL
    reason = swapped.result("P2").reason
    assert f"{VIDEO} has sha256" in reason and "less than the" in reason and "'video-start' to 'dom'" in reason
    # Cut short (truncated) and signed again: not a readable WebM.
    data = member(stepped, VIDEO)
    cut = verify(_resigned(stepped, tmp_path / "cut.wacz", operator, VIDEO, data[:len(data) // 2]), trust)
    assert cut.result("P2").status is Status.FAIL
    assert f"{VIDEO} is not a readable WebM video" in cut.result("P2").reason


def test_a_video_the_log_recorded_must_be_there(stepped: Path, operator: OperatorKey, trust: Path,
                                                tmp_path: Path) -> None:
    manifest = json.loads(member(stepped, MANIFEST))
    manifest["artifacts"] = [a for a in manifest["artifacts"] if a["path"] != VIDEO]
    body = canonical.canonical_json(manifest)
    dropped = rewrite(stepped, tmp_path / "dropped.wacz", lambda n, d: None if n == VIDEO else
                      {MANIFEST: body, SIGNATURE: operator.sign_manifest(body)}.get(n, d))
    report = verify(dropped, trust)
    assert report.result("P2").status is Status.FAIL
    assert f"the capture log says a session video was recorded, but {VIDEO} is missing" in report.result("P2").reason


def test_no_video_and_a_preset(runner: BrowserRunner, thread_url: str, operator: OperatorKey, trust: Path,
                               packages: Path) -> None:
    built = runner.capture(thread_url, packages, operator, video=False, steps=load_steps("preset:expand-comments"))
    with zipfile.ZipFile(built.path) as archive:
        assert VIDEO not in archive.namelist()
    log = _log(built.path)
    assert not {"video-start", "video"} & {line["step"] for line in log}
    # The preset's expand_all finds "Show comments" and then each "Show replies" that appears.
    expand = next(line for line in log if line["inputs"].get("action") == "expand_all")
    assert expand["outcome"]["clicked"] == 3 and expand["outcome"]["rounds"] >= 2
    assert "Reply to buyer-1: same here" in member(built.path, "evidence/dom.html").decode()
    manifest = json.loads(member(built.path, MANIFEST))
    assert manifest["capture"]["options"]["video"] is False
    found = statuses(verify(built.path, trust))
    assert found["P1"] == found["P2"] == "pass"


def test_typing_into_a_password_field_is_refused(runner: BrowserRunner, thread_url: str, operator: OperatorKey,
                                                 packages: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture_steps, "STEP_ELEMENT_TIMEOUT_MS", 1000)  # the missing element: fail fast
    with pytest.raises(CaptureError, match=r"step 1 \(type #pw 'hunter2'\): refused to type into a password "
                                           r"field; secrets never enter a capture"):
        runner.capture(thread_url, packages, operator, video=False, steps=parse_steps(["type #pw hunter2"]))
    with pytest.raises(CaptureError, match=r"step 1 \(click #absent\): nothing matched within 1 s"):
        runner.capture(thread_url, packages, operator, video=False, steps=parse_steps(["click #absent"]))
    assert not list(packages.glob("*.wacz"))


@pytest.mark.parametrize(("raw", "message"), [
    ([], "give 1 to 20 steps, not 0"),
    (["scroll"] * 21, "give 1 to 20 steps, not 21"),
    ("scroll", "the steps must be a list"),
    (["fly away"], "step 1: unknown action 'fly'"),
    (["scroll now"], "step 1: scroll takes nothing after it"),
    (["click"], "step 1 (click) needs a selector"),
    (["wait_for 999999"], "step 1: wait_for takes a selector or ms from 1 to 30000"),
    ([{"action": "type", "selector": "#q"}], "step 1: type needs a text of 1 to 1000 characters"),
    ([{"action": "click", "selector": "#q", "x": 1}], "step 1: unknown field 'x'"),
    ([{"action": "click", "selector": "a" * 501}], "at most 500 characters"),
    ([7], "step 1 is neither a line of text nor an object"),
])
def test_bad_step_lists_are_refused_in_one_line(raw: object, message: str) -> None:
    with pytest.raises(StepError, match=re.escape(message)):
        parse_steps(raw)


def test_step_lists_in_json_yaml_and_presets(tmp_path: Path) -> None:
    # In YAML a line holding " #" must be quoted (else the rest is a comment).
    (tmp_path / "steps.yaml").write_text('steps:\n  - "click #more"\n  - {action: wait_for, ms: 250}\n'
                                         '  - "type #q red shoes"\n')
    steps = load_steps(str(tmp_path / "steps.yaml"))
    assert [s.record() for s in steps] == [{"action": "click", "selector": "#more"},
                                           {"action": "wait_for", "ms": 250},
                                           {"action": "type", "selector": "#q", "text": "red shoes"}]
    (tmp_path / "steps.json").write_text('["scroll", "expand_all .more"]')
    assert [s.action for s in load_steps(str(tmp_path / "steps.json"))] == ["scroll", "expand_all"]
    for preset in ("expand-comments", "load-more", "close-modal"):
        assert load_steps(f"preset:{preset}")
    with pytest.raises(StepError, match="no step preset 'nope'"):
        load_steps("preset:nope")


def test_reports_show_the_steps_run_and_escape_them(runner: BrowserRunner, thread_url: str, operator: OperatorKey,
                                                    trust: Path, packages: Path, tmp_path: Path) -> None:
    from rich.console import Console

    from verifier.report.html_page import render_html
    from verifier.report.pdf_certificate import write_pdf
    from verifier.report.terminal import render_report

    # A selector is text from the package: markup in it must reach no report as markup.
    hostile = "#show-comments, [data-x='<script>alert(1)</script>']"
    built = runner.capture(thread_url, packages, operator, video=False,
                           steps=parse_steps([{"action": "click", "selector": hostile}, "wait_for 100"]))
    report = verify(built.path, trust)
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(render_report(report, source=built.path.name))
    text = console.export_text()
    assert "Scripted steps run before the screenshot" in text and "2. wait_for 100 ms" in text
    assert "1. click #show-comments" in text and "evidence/step-01.png" in text
    page = render_html(report, source=built.path.name, package=built.path)
    assert "截图前执行的预设步骤" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    if shutil.which("pdftotext") is not None:
        pdf = tmp_path / "certificate.pdf"
        write_pdf(report, pdf, source=built.path.name, package=built.path)
        words = subprocess.run(["pdftotext", "-raw", str(pdf), "-"], capture_output=True, text=True,
                               check=True).stdout
        assert "Scripted steps run before the screenshot" in words and "<script>alert(1)</script>" in words
