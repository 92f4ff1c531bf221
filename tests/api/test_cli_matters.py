"""`tiezheng matter …` and `tiezheng watch …` as an operator runs them, with `watch run-due` capturing for real."""

from __future__ import annotations

import json
import os
import subprocess
import time
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import capture_available
from tests.api.test_cli import BIN


def tiezheng(data_dir: Path, *args: str | Path, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "TIEZHENG_DATA_DIR": str(data_dir), "COLUMNS": "200", **env}
    result = subprocess.run([str(BIN / "tiezheng"), *map(str, args)], capture_output=True, text=True,
                            env=environment, timeout=180)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


def test_matters_file_uploads_and_keep_a_checked_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    matter = _json(tiezheng(data, "matter", "create", "Seller X", "--reference", "(2026) 0491", "--json"))
    exhibit = tmp_path / "listing.txt"
    exhibit.write_text("copy\n")
    uploaded = _json(tiezheng(data, "upload", exhibit, "--matter", matter["id"], "--json"))
    shown = _json(tiezheng(data, "matter", "show", matter["id"], "--json"))
    assert shown["evidence"] == [uploaded["evidence_id"]] and shown["log_intact"] is True
    assert [line["action"] for line in shown["log"]] == ["created", "filed"]
    assert [m["id"] for m in _json(tiezheng(data, "matter", "list", "--json"))] == [matter["id"]]
    # Mistakes are one line with a hint, exit code 2, and nothing is made.
    for args in (("upload", exhibit, "--matter", "mt-nope"), ("matter", "show", "mt-nope"),
                 ("capture", "http://127.0.0.1:9/", "--matter", "mt-nope"),
                 ("watch", "add", "http://127.0.0.1:9/", "--every", "often"),
                 ("watch", "add", "http://127.0.0.1:9/", "--every", "5s"),  # under the 600 s default minimum
                 ("watch", "add", "127.0.0.1/x", "--every", "1d"),
                 ("watch", "add", "http://127.0.0.1:9/", "--every", "1d", "--field", "price"),
                 ("watch", "pause", "wt-nope")):
        failed = tiezheng(data, *args, check=False)
        assert failed.returncode == 2 and failed.stderr.strip().startswith("error:"), (args, failed.stderr)
        assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert _json(tiezheng(data, "status", "--json"))["items"] == {"pending": 1}


@pytest.mark.skipif(capture_available() is not None, reason=f"web capture: {capture_available()}")
def test_watch_run_due_captures_and_chains(tmp_path: Path, sample_site: str) -> None:
    data = tmp_path / "data"
    env = {"TIEZHENG_WATCH_MIN_SECONDS": "1", "TIEZHENG_CAPTURE_ALLOW_PRIVATE": "true"}
    matter = _json(tiezheng(data, "matter", "create", "Shop 7", "--json"))["id"]
    watch = _json(tiezheng(data, "watch", "add", f"{sample_site}/index.html", "--every", "6s", "--matter", matter,
                           "--subject", "Shop 7", "--field", "price=#price", "--json", **env))
    assert watch["fields"] == {"price": "#price"} and watch["subject"] == "Shop 7"
    runs = []
    while len(runs) < 2:
        wait = (datetime.fromisoformat(_json(tiezheng(data, "watch", "list", "--json"))[0]["next_slot"])
                - datetime.now(datetime.fromisoformat(watch["created_at"]).tzinfo)).total_seconds()
        time.sleep(max(0.0, wait))
        lines = tiezheng(data, "watch", "run-due", "--json", **env).stdout.splitlines()
        runs += [json.loads(line) for line in lines]
    assert all(r["evidence_id"] and r["status"] == "pending" for r in runs), runs
    manifests = []
    for run in runs[:2]:
        with zipfile.ZipFile(data / "packages" / f"{run['evidence_id']}.wacz") as package:
            manifests.append(json.loads(package.read("evidence/manifest.json")))
    assert "previous" not in manifests[0] and manifests[1]["previous"] == runs[0]["fingerprint"]
    assert manifests[1]["watch"] == watch["id"]
    with zipfile.ZipFile(data / "packages" / f"{runs[1]['evidence_id']}.wacz") as package:
        change = json.loads(package.read("evidence/change.json"))
    assert change["classification"] == "unchanged" and change["previous"]["fingerprint"] == runs[0]["fingerprint"]
    assert change["key_fields"][0]["name"] == "price" and not change["key_fields"][0]["changed"]
    assert all(m["matter"] == matter and m["subject"] == "Shop 7" for m in manifests)
    listed = _json(tiezheng(data, "watch", "list", "--json"))[0]
    # `watch list` shows the latest five slots: 6 s apart, a loaded machine misses at most one between runs.
    assert [s["state"] for s in listed["slots"]].count("done") == 2
    tiezheng(data, "watch", "pause", watch["id"])
    assert _json(tiezheng(data, "watch", "list", "--json"))[0]["state"] == "paused"
    shown = _json(tiezheng(data, "matter", "show", matter, "--json"))
    assert shown["log_intact"] and {r["row_id"] for r in runs} <= set(shown["evidence"])
    tiezheng(data, "watch", "remove", watch["id"])
    assert _json(tiezheng(data, "watch", "list", "--json")) == []

    # The matter as a timeline: the watch's runs as one chain, an upload filed beside them alone.
    exhibit = tmp_path / "registration.txt"
    exhibit.write_text("trademark registration\n")
    tiezheng(data, "upload", exhibit, "--matter", matter)
    tiezheng(data, "seal", **env)
    html, pdf = tmp_path / "timeline.html", tmp_path / "timeline.pdf"
    timeline = tiezheng(data, "timeline", matter, "--json", "--html", html, "--pdf", pdf, check=False, **env)
    report = json.loads(timeline.stdout)
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["TL1"]["status"] == "pass" and "1 stand-alone item" in checks["TL1"]["reason"], checks
    assert checks["TL2"]["status"] in ("pass", "warn"), checks  # runs sealed in one batch share a TSA time
    assert len(report["packages"]) == len(runs) + 1 and all(p["verified"] for p in report["packages"])
    assert timeline.returncode == 0 and report["without_package"] == []
    assert "Shop 7" in html.read_text(encoding="utf-8") and pdf.read_bytes().startswith(b"%PDF")
    assert tiezheng(data, "timeline", "mt-nope", check=False).returncode == 2
    # The subject's timeline: the same runs (the upload names no subject), whatever matter they are in.
    about = json.loads(tiezheng(data, "timeline", "--subject", "Shop 7", "--json", check=False, **env).stdout)
    assert sorted(p["evidence_id"] for p in about["packages"]) == sorted(r["evidence_id"] for r in runs)
    assert {c["id"]: c["status"] for c in about["checks"]}["TL1"] == "pass"
