"""A stream watch: each run records the live stream for the watch's time, filed and chained like a capture."""

from __future__ import annotations

import json
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from api.service import local_cases
from api.service.errors import ServiceError
from api.service.settings import load_settings
from tests.stream_source import live_stream
from verifier.trust import default_trust
from verifier.verify import verify_package

pytestmark = pytest.mark.skipif(subprocess.run(["which", "ffmpeg"], capture_output=True).returncode != 0,
                                reason="ffmpeg (Debian package) is not installed; make setup installs it")


def test_a_stream_watch_run_records_the_stream_under_its_matter(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIEZHENG_CAPTURE_ALLOW_PRIVATE", "true")
    settings = load_settings(tmp_path / "data")
    settings.root.mkdir(parents=True)
    matter = local_cases.create_matter(settings, title="Night stream")
    with live_stream(tmp_path / "source", "hls", segment=0.5, rate=2.0, window=6) as source:
        time.sleep(0.5)
        watch = local_cases.add_watch(settings, url=source.url("live.m3u8"), every="1d", matter=matter.id,
                                      stream="3s")
        assert watch.stream_seconds == 3
        due = local_cases.run_due(settings)
    [run] = due.runs
    assert run.status == "pending", run.error
    [package] = local_cases.write_packages(settings, [run.row_id], tmp_path / "out")
    manifest = json.loads(zipfile.ZipFile(package).read("evidence/manifest.json"))
    assert manifest["kind"] == "stream" and manifest["watch"] == watch.id and manifest["matter"] == matter.id
    assert "previous" not in manifest  # the watch's first run
    checks = {c.id: c.status.value for c in verify_package(package, default_trust()).checks}
    assert checks["V1"] == "pass" and checks["P1"] == "pass"
    [listed] = local_cases.list_watches(settings)
    assert listed.last_fingerprint == run.fingerprint


def test_a_stream_longer_than_the_interval_is_refused(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "data")
    settings.root.mkdir(parents=True)
    with pytest.raises(ServiceError, match="stream: between 1 s and the interval"):
        local_cases.add_watch(settings, url="https://example.com/live.m3u8", every="1h", stream="2h")
