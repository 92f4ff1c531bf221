"""Two verifiers, one P2, for a web capture's session video (issue 18 for the video of P2).

The page reads `evidence/session.webm` with its own bounded EBML reader (verifier/browser/src/webm.js)
and holds its duration to the logged steps it covers, as verifier/webm.py and
verifier/checks/session_video.py do. First the two readers measure the same ffmpeg-encoded files
(seekable and streamed) and refuse the same malformed ones with the same words; then a real capture
with steps and its session video, and copies whose video is swapped for a shorter clip or cut short
(signed again, as a dishonest operator could), go through the CLI and the page: every status must
agree, and P2's finding must read the same in English and in Chinese.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence.capture_steps import parse_steps
from evidence.operator_key import OperatorKey, load_or_create
from tests.capture_site import BrowserRunner, member, trust_file
from tests.evidence.test_session_video import STEPS, VIDEO, _resigned, _short_webm, thread_url
from tests.verifier.browser_page import built_page, open_page
from tests.verifier.test_browser_parity_kinds import cli_report, mismatches
from tests.verifier.test_browser_wording import node_json
from tests.verifier.test_webm import _encode
from verifier.webm import WebmError, read_webm

__all__ = ["thread_url"]  # the loopback thread page of tests/evidence/test_session_video.py, a fixture here

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (make setup)")

MALFORMED: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("not EBML", lambda d: b"RIFF" + d[4:]),
    ("cut in half", lambda d: d[:len(d) // 2]),
    ("four bytes", lambda d: d[:4]),
    ("another DocType", lambda d: d.replace(b"webm", b"avi\x00", 1)),
    ("bad variable-length integer", lambda d: d[:4] + b"\x00" + d[5:]),
    ("no frames after the header", lambda d: d[:d.find(b"\x1f\x43\xb6\x75")]),
]


def _python(data: bytes) -> dict[str, Any]:
    try:
        info = read_webm(data)
    except WebmError as exc:
        return {"error": str(exc)}
    return {"docType": info.doc_type, "durationSeconds": info.duration_seconds, "blocks": info.blocks,
            "lastBlockSeconds": info.last_block_seconds, "width": info.width, "height": info.height,
            "spanSeconds": info.span_seconds}


def test_page_reads_webm_as_python_does(tmp_path: Path) -> None:
    seekable, streamed = _encode(2, "file", tmp_path), _encode(2, "pipe", tmp_path)
    files = {"seekable": seekable, "streamed": streamed}
    files |= {name: mutate(seekable) for name, mutate in MALFORMED}
    for name, data in files.items():
        (tmp_path / f"{name}.webm").write_bytes(data)
    page = node_json(f"""
        import {{ readFileSync }} from "node:fs";
        import {{ readWebm }} from "./webm.js";
        const names = {json.dumps(list(files))}, folder = {json.dumps(str(tmp_path))};
        const out = {{}};
        for (const name of names) {{
          try {{ out[name] = readWebm(new Uint8Array(readFileSync(`${{folder}}/${{name}}.webm`))); }}
          catch (e) {{ out[name] = {{ error: e.message }}; }}
        }}
        console.log(JSON.stringify(out));
    """)
    for name, data in files.items():
        assert page[name] == _python(data), name
    assert "error" not in page["seekable"] and page["streamed"]["durationSeconds"] is None
    assert all("error" in page[name] for name, _ in MALFORMED)


@pytest.fixture(scope="module")
def captured(thread_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, OperatorKey, Path]:
    """A capture of the thread page with its steps and session video (the runner closed before the page opens)."""
    root = tmp_path_factory.mktemp("video")
    operator = load_or_create(root / "keys" / "operator.key")
    runner = BrowserRunner()
    try:
        built = runner.capture(thread_url, root / "packages", operator, steps=parse_steps(STEPS))
    finally:
        runner.close()
    return Path(built.path), operator, trust_file(root, operator)


@pytest.fixture(scope="module")
def page(captured: Any, chromium: Any) -> Any:
    return open_page(chromium, built_page().as_uri())


def test_session_video_p2_agrees(captured: tuple[Path, OperatorKey, Path], page: Any, tmp_path: Path) -> None:
    package, operator, trust = captured
    video = member(package, VIDEO)
    cases = {
        "capture with its session video": package,
        "video swapped for a shorter clip, signed again": _resigned(package, tmp_path / "short.wacz", operator, VIDEO,
                                                                    _short_webm(tmp_path)),
        "video cut short, signed again": _resigned(package, tmp_path / "cut.wacz", operator, VIDEO,
                                                   video[:len(video) // 2]),
    }
    problems: list[str] = []
    p2 = {}
    for name, path in cases.items():
        cli = cli_report(path, trust)
        p2[name] = next(c for c in cli["checks"] if c["id"] == "P2")
        problems += mismatches(name, cli, page.verify(path, trust), kind_checks=("P2",))
    assert problems == [], "\n".join(problems)
    assert p2["capture with its session video"]["status"] in ("pass", "warn")
    assert "the session video (webm" in p2["capture with its session video"]["reason"]
    assert p2["video swapped for a shorter clip, signed again"]["status"] == "fail"
    assert "less than the" in p2["video swapped for a shorter clip, signed again"]["reason"]
    assert "is not a readable WebM video" in p2["video cut short, signed again"]["reason"]
