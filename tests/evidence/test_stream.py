"""Live-stream recording against a real stream: ffmpeg encodes it, a loopback HTTP server serves it.

Minutes of stream are compressed into seconds (half-second segments, ffmpeg reading faster than
real time). Every package is checked with the verifier as counsel would run it; V1 must name each
gap, and a tampered segment or log must fail it.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from api.service import streams
from api.service.errors import ServiceError
from api.service.settings import Settings, load_settings
from evidence.upload import BuiltPackage
from tests.stream_source import live_stream, serve_folder
from tests.tamper import replace_sealed_entry
from verifier.call_log import parse_call_log
from verifier.capture_format import CAPTURE_LOG_PATH, WARC_PATH
from verifier.package import open_package
from verifier.stream_format import MAX_LOG_DELAY_SECONDS, REMUX_PATH
from verifier.trust import default_trust
from verifier.verify import verify_package

pytestmark = pytest.mark.skipif(subprocess.run(["which", "ffmpeg"], capture_output=True).returncode != 0,
                                reason="ffmpeg (Debian package) is not installed; make setup installs it")


def _settings(root: Path) -> Settings:
    settings = load_settings(root)
    settings.root.mkdir(parents=True, exist_ok=True)
    return settings


def _checks(package: Path) -> dict[str, tuple[str, str]]:
    report = verify_package(package, default_trust())
    return {c.id: (c.status.value, c.reason) for c in report.checks}


def _log(package: Path) -> list[Any]:
    with zipfile.ZipFile(package) as archive:
        return list(parse_call_log(archive.read(CAPTURE_LOG_PATH)))


def _manifest(package: Path) -> dict[str, Any]:
    return json.loads(zipfile.ZipFile(package).read("evidence/manifest.json"))


@pytest.fixture(scope="module")
def hls_with_gap(tmp_path_factory: pytest.TempPathFactory) -> BuiltPackage:
    """Five seconds of a sliding HLS playlist (0.5 s segments at 2x), blacked out for 2 s in between."""
    root = tmp_path_factory.mktemp("hls")
    settings = _settings(root / "data")
    with live_stream(root / "source", "hls", segment=0.5, rate=2.0, window=6) as source:
        time.sleep(0.5)
        blackout = threading.Timer(1.5, source.blackout.set)
        restore = threading.Timer(3.5, source.blackout.clear)
        blackout.start()
        restore.start()
        built = streams.record_local(settings, source.url("live.m3u8"), 5.0, allow_private=True)
        restore.join()
    assert len(built) == 1
    return built[0]


def test_hls_stream_is_recorded_segment_by_segment_and_the_gap_is_named(hls_with_gap: BuiltPackage,
                                                                         tmp_path: Path) -> None:
    checks = _checks(hls_with_gap.path)
    for check in ("P1", "P2", "P3", "H1", "S4"):
        assert checks[check][0] == "pass", checks[check]
    status, reason = checks["V1"]
    assert status == "warn", reason
    assert "gap: segments" in reason and "missing (no longer listed in the playlist" in reason
    lines = _log(hls_with_gap.path)
    segments = [line for line in lines if line.step == "segment"]
    assert len(segments) >= 8
    gap = next(line for line in lines if line.step == "gap")
    assert f"segments {gap.inputs['first_missing']}–{gap.inputs['last_missing']} missing" in reason
    for line in segments:  # each hash was logged within a second of the segment's arrival
        arrived = line.inputs["arrived_at"]
        delay = (line.time - parse_call_log_time(arrived)).total_seconds()
        assert 0 <= delay <= MAX_LOG_DELAY_SECONDS
    remux = next(line for line in lines if line.step == "remux")
    assert remux.inputs["command"][:1] == ["ffmpeg"] and "copy" in remux.inputs["command"]
    assert remux.inputs["tool"]["name"] == "ffmpeg" and remux.inputs["tool"]["version"]
    manifest = _manifest(hls_with_gap.path)
    assert manifest["kind"] == "stream" and manifest["capture"]["stream"]["protocol"] == "hls"
    # A frame of the remuxed MP4, as a person would look at it.
    mp4 = tmp_path / "stream.mp4"
    mp4.write_bytes(zipfile.ZipFile(hls_with_gap.path).read(REMUX_PATH))
    frame = tmp_path / "frame.png"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-ss", "1", "-i", str(mp4), "-frames:v", "1",
                    str(frame)], check=True, timeout=30)
    png = frame.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (320, 240)
    if os.environ.get("TIEZHENG_KEEP_FRAME"):
        Path(os.environ["TIEZHENG_KEEP_FRAME"]).write_bytes(png)


def parse_call_log_time(text: str) -> Any:
    from verifier.call_log import parse_time

    return parse_time(text)


def _warc_with_changed_segment(warc: bytes, url_part: str = ".ts") -> bytes:
    """The WARC with one byte of one segment body changed (recompressed: one gzip stream)."""
    data = bytearray(gzip.decompress(warc))
    marker = data.find(b"WARC-Type: response")
    while marker >= 0:
        header_end = data.find(b"\r\n\r\n", marker)
        target = data[marker:header_end]
        if url_part.encode() in target:
            body = data.find(b"\r\n\r\n", header_end + 4) + 4  # past the HTTP head
            data[body + 100] ^= 0x01
            return gzip.compress(bytes(data))
        marker = data.find(b"WARC-Type: response", header_end)
    raise AssertionError("no segment response in the WARC")


def test_a_changed_segment_fails_v1(hls_with_gap: BuiltPackage, tmp_path: Path) -> None:
    forged = replace_sealed_entry(hls_with_gap.path, tmp_path / "forged.wacz", WARC_PATH, _warc_with_changed_segment)
    status, reason = _checks(forged)["V1"]
    assert status == "fail"
    assert "the WARC holds" in reason and "the log recorded" in reason


def test_an_edited_log_line_fails_v1(hls_with_gap: BuiltPackage, tmp_path: Path) -> None:
    def edit(log: bytes) -> bytes:
        lines = log.split(b"\n")
        number = next(i for i, line in enumerate(lines) if b'"step":"segment"' in line)
        entry = json.loads(lines[number])
        entry["inputs"]["sequence"] += 1  # a segment renumbered to hide a gap
        from verifier.call_log import encode_line

        lines[number] = encode_line(entry)
        return b"\n".join(lines)

    forged = replace_sealed_entry(hls_with_gap.path, tmp_path / "forged.wacz", CAPTURE_LOG_PATH, edit)
    status, reason = _checks(forged)["V1"]
    assert status == "fail" and "a line was edited, removed or inserted" in reason


def test_a_killed_recording_continues_as_a_linked_part(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = _settings(data)
    command = [str(Path(sys.executable).parent / "tiezheng"), "capture-stream", "--duration", "7s",
               "--allow-private", "--data-dir", str(data), "--json"]
    with live_stream(tmp_path / "source", "hls", segment=0.5, rate=2.0, window=6) as source:
        process = subprocess.Popen([*command, source.url("live.m3u8")], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        logs = data / "streams"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = list(logs.glob("*/part-1/capture-log.jsonl")) if logs.exists() else []
            if found and found[0].read_bytes().count(b'"step":"segment"') >= 5:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        time.sleep(2.0)  # down for 2 s = 8 segments at 2x: more than the playlist's window of 6
        built = streams.resume_local(settings)
    assert [b.path.exists() for b in built] == [True, True]
    first, second = built
    first_log, second_log = _log(first.path), _log(second.path)
    assert any(line.step == "interrupted" for line in first_log)
    assert _manifest(first.path)["capture"]["stream"]["ended_because"] == "the recording process was interrupted"
    assert _manifest(second.path)["previous"] == first.fingerprint.hex()
    last = [line.inputs["sequence"] for line in first_log if line.step == "segment"][-1]
    assert second_log[0].inputs["previous_last_sequence"] == last
    assert _checks(first.path)["V1"][0] == "pass"
    status, reason = _checks(second.path)["V1"]
    assert status == "warn", reason
    assert f"this part continues part 1 (which ended at segment {last})" in reason
    gap = next(line for line in second_log if line.step == "gap" and line.inputs["first_missing"] is not None)
    assert gap.inputs["first_missing"] == last + 1  # the span between the parts is named, not dropped
    for package in built:
        checks = _checks(package.path)
        assert checks["P1"][0] == checks["P2"][0] == checks["H1"][0] == "pass", checks
    assert streams.resume_local(settings) == []  # finished: nothing left to resume


def test_dash_live_stream(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")
    with live_stream(tmp_path / "source", "dash", segment=0.5, rate=2.0, window=8) as source:
        time.sleep(1.0)
        built = streams.record_local(settings, source.url("live.mpd"), 3.0, allow_private=True)
    package = built[0].path
    lines = _log(package)
    assert any(line.step == "init" for line in lines)
    assert sum(line.step == "segment" for line in lines) >= 4
    assert _manifest(package)["capture"]["stream"]["protocol"] == "dash"
    checks = _checks(package)
    assert checks["V1"][0] in ("pass", "warn") and checks["P2"][0] == "pass", checks
    assert REMUX_PATH in open_package(package).entries


def test_progressive_file(tmp_path: Path) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=10:duration=2", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", str(folder / "clip.mp4")], check=True, timeout=60)
    settings = _settings(tmp_path / "data")
    with serve_folder(folder) as source:
        built = streams.record_local(settings, source.url("clip.mp4"), 60.0, allow_private=True)
    manifest = _manifest(built[0].path)
    assert manifest["capture"]["stream"]["protocol"] == "progressive"
    assert abs(manifest["capture"]["stream"]["media_seconds"] - 2.0) < 0.2
    assert _checks(built[0].path)["V1"][0] == "pass"


def test_a_private_stream_is_refused_without_allow_private(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")
    with pytest.raises(ServiceError, match="loopback"):
        streams.record_local(settings, "http://127.0.0.1:9/live.m3u8", 5.0)
    assert not list((tmp_path / "data" / "streams").glob("*"))


def _forge(package: Path, target: Path, *, lines: Any = None, stream: dict[str, Any] | None = None) -> Path:
    """A copy whose log lines (re-chained, the manifest's log_head moved along) or claimed stream
    record are changed: what a forger with the files but not the key could make. V1 must see it."""
    from verifier.call_log import GENESIS, encode_line, line_sha256
    from verifier.package import DATAPACKAGE_DIGEST_PATH, DATAPACKAGE_PATH
    from verifier.wacz import Member, write_package

    with zipfile.ZipFile(package) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    manifest = json.loads(entries["evidence/manifest.json"])
    if lines is not None:
        entries_log = [json.loads(line) for line in entries[CAPTURE_LOG_PATH].splitlines()]
        head, out = GENESIS, []
        for seq, entry in enumerate(lines(entries_log)):
            entry.update(seq=seq, prev_sha256=head)
            encoded = encode_line(entry)
            head = line_sha256(encoded)
            out.append(encoded)
        entries[CAPTURE_LOG_PATH] = b"\n".join(out) + b"\n"
        manifest["capture"]["log_head"] = head
    if stream is not None:
        manifest["capture"]["stream"].update(stream)
    from verifier.canonical import canonical_json

    entries["evidence/manifest.json"] = canonical_json(manifest)
    metadata = json.loads(entries[DATAPACKAGE_PATH])
    write_package(target, [Member(n, data=d) for n, d in entries.items()
                           if n not in (DATAPACKAGE_PATH, DATAPACKAGE_DIGEST_PATH)],
                  {k: v for k, v in metadata.items() if isinstance(v, str)})
    return target


def test_a_segment_dropped_from_the_log_without_a_gap_line_fails_v1(hls_with_gap: BuiltPackage,
                                                                     tmp_path: Path) -> None:
    def drop_one(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        segments = [i for i, e in enumerate(entries) if e["step"] == "segment"]
        return [e for i, e in enumerate(entries) if i != segments[2]]

    status, reason = _checks(_forge(hls_with_gap.path, tmp_path / "forged.wacz", lines=drop_one))["V1"]
    assert status == "fail" and "missing and the recorder logged no gap for them" in reason


def test_durations_that_do_not_add_up_fail_v1(hls_with_gap: BuiltPackage, tmp_path: Path) -> None:
    claimed = _manifest(hls_with_gap.path)["capture"]["stream"]["media_seconds"]
    forged = _forge(hls_with_gap.path, tmp_path / "forged.wacz", stream={"media_seconds": claimed + 30})
    status, reason = _checks(forged)["V1"]
    assert status == "fail" and "the segment durations add up to" in reason


def test_a_hash_logged_late_is_named(hls_with_gap: BuiltPackage, tmp_path: Path) -> None:
    from datetime import timedelta

    from verifier.call_log import parse_time
    from verifier.manifest_writer import utc_iso

    def late(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        segment = next(e for e in entries if e["step"] == "segment")
        segment["inputs"]["arrived_at"] = utc_iso(parse_time(segment["time"]) - timedelta(seconds=2.5))
        return entries

    status, reason = _checks(_forge(hls_with_gap.path, tmp_path / "forged.wacz", lines=late))["V1"]
    assert status == "warn" and "s after arrival (over 1 s)" in reason


def test_a_part_killed_after_packaging_is_accepted_once(tmp_path: Path) -> None:
    """Killed between writing the package and marking the part done: the resume offers the same
    package again (no second package of the same part) and the sealing queue holds it once."""
    from sqlmodel import Session, select

    from anchor.store import SealItem
    from api.service.runtime import engine_for
    from evidence.stream.recording import DONE_NAME, load_plan, save_plan

    folder = tmp_path / "site"
    folder.mkdir()
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=10:duration=1", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", str(folder / "clip.mp4")], check=True, timeout=60)
    settings = _settings(tmp_path / "data")
    with serve_folder(folder) as source:
        [first] = streams.record_local(settings, source.url("clip.mp4"), 60.0, allow_private=True)
    [recording] = list((tmp_path / "data" / "streams").iterdir())
    (recording / "part-1" / DONE_NAME).unlink()
    plan = load_plan(recording)
    save_plan(recording, type(plan)(**{**plan.__dict__, "finished": False}))
    again = streams.resume_local(settings)
    assert [(b.evidence_id, b.fingerprint) for b in again] == [(first.evidence_id, first.fingerprint)]
    with Session(engine_for(settings)) as session:
        assert len(session.exec(select(SealItem).where(SealItem.evidence_id == first.evidence_id)).all()) == 1
    assert load_plan(recording).finished


def test_a_long_recording_goes_on_in_linked_parts_without_a_gap(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A part is closed before its log reaches the verifier's limits; the next starts at once, linked,
    and V1 finds no gap between them (a small limit here stands for the real one)."""
    from evidence.stream import recorder

    monkeypatch.setattr(recorder, "MAX_PART_LINES", 14)
    settings = _settings(tmp_path / "data")
    with live_stream(tmp_path / "source", "hls", segment=0.5, rate=2.0, window=6) as source:
        time.sleep(0.5)
        built = streams.record_local(settings, source.url("live.m3u8"), 4.0, allow_private=True)
    assert len(built) >= 2
    sequences: list[int] = []
    for before, after in itertools.pairwise(built):
        assert _manifest(after.path)["previous"] == before.fingerprint.hex()
        assert _manifest(before.path)["capture"]["stream"]["ended_because"].startswith("the part reached its size")
    for package in built:
        lines = _log(package.path)
        assert not any(line.step == "gap" for line in lines)
        sequences += [line.inputs["sequence"] for line in lines if line.step == "segment"]
        assert _checks(package.path)["V1"][0] == "pass", _checks(package.path)["V1"]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))  # nothing lost between parts
