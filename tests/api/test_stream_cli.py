"""`tiezheng capture-stream` through the installed console script: help, one-line errors, --json."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.api.test_cli_ergonomics import one_line_error, run
from tests.stream_source import serve_folder


def test_help_names_the_options_with_their_types() -> None:
    result = run("capture-stream", "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert not re.search(r"<(bool|str|int|float|path)>", text), text
    for option in ("--duration", "--at", "--matter", "--allow-private", "--resume", "--data-dir"):
        assert option in text
    assert "[default: 30m]" in text and "--no-allow-private" not in text


def test_mistakes_are_one_line_with_a_hint(tmp_path: Path) -> None:
    # Each case starts the console script (seconds on a loaded machine): one per way of failing. The
    # parsing behind the other messages is tested in-process below.
    data = tmp_path / "data"
    cases = [
        (["--resume", "https://example.com/live.m3u8"], ["give a stream URL, or --resume without one"]),
        (["http://127.0.0.1:9/live.m3u8"], ["loopback", "--allow-private"]),
    ]
    for argv, expected in cases:
        one_line_error(run("capture-stream", *argv, "--data-dir", data), *expected)


def test_durations_and_start_times_are_read_as_people_write_them() -> None:
    from datetime import datetime, timedelta, timezone

    from api.service.errors import ServiceError
    from api.service.streams import parse_duration, parse_start

    assert parse_duration("30m") == 1800 and parse_duration("1h30m") == 5400
    assert parse_duration("90") == parse_duration("90s") == 90
    for bad, message in (("soon", "not like 30m"), ("48h", "at most 24 hours"), ("0m", "more than 0")):
        with pytest.raises(ServiceError, match=message):
            parse_duration(bad)
    now = datetime(2026, 12, 1, 21, 0, tzinfo=timezone(timedelta(hours=8)))
    assert parse_start("23:00", now) == now.replace(hour=23)
    assert parse_start("20:30", now) == now.replace(hour=20, minute=30) + timedelta(days=1)
    with pytest.raises(ServiceError, match="not a time like 23:00"):
        parse_start("25:00", now)


@pytest.mark.skipif(subprocess.run(["which", "ffmpeg"], capture_output=True).returncode != 0,
                    reason="ffmpeg (Debian package) is not installed; make setup installs it")
def test_json_prints_one_object_per_part(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=10:duration=1", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", str(site / "clip.mp4")], check=True, timeout=60)
    with serve_folder(site) as source:
        result = run("capture-stream", source.url("clip.mp4"), "--duration", "1m", "--allow-private",
                     "--data-dir", tmp_path / "data", "--json")
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.strip().splitlines()
    record = json.loads(line)
    assert set(record) == {"evidence_id", "fingerprint", "package", "status"} and record["status"] == "pending"
    assert Path(record["package"]).is_file()
