"""Two verifiers, one verdict, for live-stream recordings (issue 18 for the `stream` kind of issue 17).

Real HLS streams, encoded by ffmpeg and served on loopback, are recorded by the project's own
recorder, sealed on the devnet with the development TSA, and verified by the Python verifier and by
the exported page in headless Chromium. An honest recording (V1 passes), one with a blackout the
recorder logged as a gap (V1 warns, naming it), and tampered copies (a changed segment, a dropped
segment line, an edited log line, durations that do not add up, a hash logged late) must reach the
same verdict and the same status for every check in both; V1's finding must read word for word the
same, in English and in Chinese.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from anchor.tsa_server import DevTSA
from api.service import streams
from api.service.runtime import operator_for
from evidence.upload import BuiltPackage
from tests.evidence.test_stream import _forge, _settings, _warc_with_changed_segment
from tests.factory import Workspace, seal_batch
from tests.stream_source import live_stream
from tests.tamper import replace_sealed_entry
from tests.verifier.browser_page import built_page, open_page
from tests.verifier.test_browser_parity_kinds import cli_report, mismatches
from tests.verifier.test_browser_wording import node_json
from verifier.call_log import encode_line
from verifier.capture_format import CAPTURE_LOG_PATH, WARC_PATH
from verifier.legal_basis import legal_basis, sources

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                reason="ffmpeg (Debian package) is not installed; make setup installs it")


def _record(settings: Any, source_root: Path, seconds: float, *, blackout: tuple[float, float] | None) -> BuiltPackage:
    """Record a loopback HLS stream (0.5 s segments at 2x); `blackout` (from, to) seconds makes a gap."""
    with live_stream(source_root, "hls", segment=0.5, rate=2.0, window=6) as source:
        time.sleep(0.5)
        timers = []
        if blackout is not None:
            timers = [threading.Timer(blackout[0], source.blackout.set),
                      threading.Timer(blackout[1], source.blackout.clear)]
            for timer in timers:
                timer.start()
        built = streams.record_local(settings, source.url("live.m3u8"), seconds, allow_private=True)
        for timer in timers:
            timer.join()
    assert len(built) == 1
    return built[0]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory, rpc_url: str) -> tuple[dict[str, Path], Path]:
    root = tmp_path_factory.mktemp("streams")
    settings = _settings(root / "data")
    steady = _record(settings, root / "steady", 2.5, blackout=None)
    gapped = _record(settings, root / "gapped", 5.0, blackout=(1.5, 3.5))
    # The recorder's own operator key signed both; the workspace seals them and vouches for that key.
    workspace = Workspace(root=root, operator=operator_for(settings), tsa=DevTSA(root / "tsa"))
    seal_batch(workspace, [steady, gapped], rpc_url)
    return {"steady": Path(steady.path), "gapped": Path(gapped.path)}, workspace.trust_file()


@pytest.fixture(scope="module")
def page(chromium: Any) -> Any:
    return open_page(chromium, built_page().as_uri())


def _renumbered(log: bytes) -> bytes:
    """A segment line renumbered to hide a gap, written over the signed chain (which it breaks)."""
    lines = log.split(b"\n")
    number = next(i for i, line in enumerate(lines) if b'"step":"segment"' in line)
    entry = json.loads(lines[number])
    entry["inputs"]["sequence"] += 1
    lines[number] = encode_line(entry)
    return b"\n".join(lines)


def _drop_segment(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    segments = [i for i, e in enumerate(entries) if e["step"] == "segment"]
    return [e for i, e in enumerate(entries) if i != segments[2]]


def _late(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from datetime import timedelta

    from verifier.call_log import parse_time
    from verifier.manifest_writer import utc_iso

    segment = next(e for e in entries if e["step"] == "segment")
    segment["inputs"]["arrived_at"] = utc_iso(parse_time(segment["time"]) - timedelta(seconds=2.5))
    return entries


def test_stream_recordings_agree(recordings: tuple[dict[str, Path], Path], page: Any, tmp_path: Path) -> None:
    honest, trust = recordings
    steady, gapped = honest["steady"], honest["gapped"]
    claimed = json.loads(zipfile.ZipFile(steady).read("evidence/manifest.json"))["capture"]["stream"]["media_seconds"]
    cases = {
        "steady recording": steady,
        "recording with a logged gap": gapped,
        "segment changed in the WARC": replace_sealed_entry(steady, tmp_path / "segment.wacz", WARC_PATH,
                                                            _warc_with_changed_segment),
        "log line edited": replace_sealed_entry(steady, tmp_path / "edited.wacz", CAPTURE_LOG_PATH, _renumbered),
        "segment line dropped, log re-chained": _forge(steady, tmp_path / "dropped.wacz", lines=_drop_segment),
        "durations do not add up": _forge(steady, tmp_path / "durations.wacz", stream={"media_seconds": claimed + 30}),
        "hash logged late": _forge(steady, tmp_path / "late.wacz", lines=_late),
    }
    problems: list[str] = []
    status: dict[str, dict[str, str]] = {}
    reasons: dict[str, str] = {}
    for name, path in cases.items():
        cli = cli_report(path, trust)
        status[name] = {c["id"]: c["status"] for c in cli["checks"]} | {"verdict": cli["verdict"]}
        reasons[name] = next(c["reason"] for c in cli["checks"] if c["id"] == "V1")
        problems += mismatches(name, cli, page.verify(path, trust), kind_checks=("V1",))
    assert problems == [], "\n".join(problems)
    # The cases are what they claim, in both verifiers.
    assert status["steady recording"]["verdict"] == "verified (offline)", status["steady recording"]
    assert status["steady recording"]["V1"] == "pass"
    assert status["recording with a logged gap"]["V1"] == "warn"
    assert "gap: segments" in reasons["recording with a logged gap"]
    assert status["hash logged late"]["V1"] == "warn" and "s after arrival (over 1 s)" in reasons["hash logged late"]
    for name in ("segment changed in the WARC", "log line edited", "segment line dropped, log re-chained",
                 "durations do not add up"):
        assert status[name]["V1"] == "fail" and status[name]["verdict"] == "failed", (name, status[name])
    assert "the WARC holds" in reasons["segment changed in the WARC"]
    assert "a line was edited, removed or inserted" in reasons["log line edited"]
    assert "the recorder logged no gap for them" in reasons["segment line dropped, log re-chained"]


def test_page_cites_v1_as_python_does() -> None:
    """V1's legal basis on the page (legalbasis.js KIND_BASES) is verifier/legal_basis.py's."""
    page = node_json("""
        import { legalBasis, sources } from "./legalbasis.js";
        console.log(JSON.stringify({ zh: legalBasis("V1", "zh"), en: legalBasis("V1", "en"), sources: sources("V1") }));
    """)
    assert page == {"zh": legal_basis("V1", "zh"), "en": legal_basis("V1", "en"), "sources": list(sources("V1"))}
