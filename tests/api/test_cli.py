"""The `tiezheng` CLI as an operator runs it: real processes, a real devnet and the dev TSA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def tiezheng(data_dir: Path, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TIEZHENG_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    result = subprocess.run([str(BIN / "tiezheng"), *map(str, args)], capture_output=True, text=True, env=env,
                            timeout=180)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture()
def data_dir(tmp_path: Path, anvil: Path) -> Iterator[Path]:
    folder = tmp_path / "data"
    yield folder
    tiezheng(folder, "chain", "down", check=False)


def test_upload_seal_verify_export(data_dir: Path, tmp_path: Path) -> None:
    exhibit = tmp_path / "screenshot of listing.png"
    exhibit.write_bytes(b"\x89PNG fake but real bytes" * 50)
    uploaded = json.loads(tiezheng(data_dir, "upload", exhibit, "--note", "listing 42", "--json").stdout)
    assert uploaded["status"] == "pending" and len(uploaded["fingerprint"]) == 64
    package = Path(uploaded["package"])
    assert package.parent == data_dir / "packages" and package.name == f"{uploaded['evidence_id']}.wacz"

    status = json.loads(tiezheng(data_dir, "status", "--json").stdout)
    assert status["items"] == {"pending": 1}

    sealed = [json.loads(line) for line in tiezheng(data_dir, "seal", "--json").stdout.splitlines()]
    assert sealed == [{**uploaded, "status": "sealed"}]
    stopped = json.loads(tiezheng(data_dir, "chain", "status", "--json").stdout)
    assert stopped["rpc_url"] is None  # seal stopped the devnet it had started; its state is kept

    tiezheng(data_dir, "chain", "up")
    chain = json.loads(tiezheng(data_dir, "chain", "status", "--json").stdout)
    assert chain["chain_id"] == 31337 and chain["block"] >= 1 and chain["rpc_url"].startswith("http://127.0.0.1:")

    verified = json.loads(tiezheng(data_dir, "verify", package, "--json").stdout)
    assert verified["verdict"] == "verified (offline)"
    assert len(verified["development_trust"]) == 3

    online = tiezheng(data_dir, "verify", package, "--json", "--rpc", chain["rpc_url"])
    assert json.loads(online.stdout)["verdict"] == "verified"

    trust = tmp_path / "trust.toml"
    tiezheng(data_dir, "trust", "export", trust)
    counsel = subprocess.run([str(BIN / "tiezheng-verify"), str(package), "--trust", str(trust)],
                             capture_output=True, text=True)
    assert counsel.returncode == 0, counsel.stdout + counsel.stderr


def test_clear_errors(data_dir: Path, tmp_path: Path) -> None:
    missing = tiezheng(data_dir, "upload", tmp_path / "absent.pdf", check=False)
    assert missing.returncode != 0 and "absent.pdf" in missing.stderr
    junk = tmp_path / "junk.wacz"
    junk.write_bytes(b"junk")
    assert tiezheng(data_dir, "verify", junk, check=False).returncode == 2


def test_demo(data_dir: Path) -> None:
    result = tiezheng(data_dir, "demo")
    assert "VERIFIED (OFFLINE)" in result.stdout and "capture → seal → verify" in result.stdout
    report = next((data_dir / "reports").glob("*.json"))
    assert json.loads(report.read_text())["verified"] is True
    assert tiezheng(data_dir, "chain", "status", "--json").stdout.count('"rpc_url": null') == 1  # demo stopped it


def test_capture_seal_verify(data_dir: Path) -> None:
    from api.cli.sample_site import serve_site

    site_root = Path(__file__).resolve().parents[2] / "samples" / "site"
    with serve_site(site_root, data_dir / "site-tls") as site:
        lines = tiezheng(data_dir, "capture", site.http_url + "index.html", site.http_url + "missing.html",
                         "--allow-private", "--json", check=False)
    assert lines.returncode == 1  # one of the two failed (a 404 without --accept-error-status)
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    ok = [r for r in records if r["status"] == "pending"]
    failed = [r for r in records if r["status"] == "failed"]
    assert len(ok) == 1 and len(failed) == 1 and "404" in failed[0]["error"]
    assert "--accept-error-status" in failed[0]["error"] and "accept_error_status" not in failed[0]["error"]
    blocked = tiezheng(data_dir, "capture", "http://127.0.0.1:9/", check=False)
    said = blocked.stdout + blocked.stderr
    assert blocked.returncode == 1 and "private" in said.lower()
    assert "--allow-private" in said and "allow_private" not in said  # messages name flags, not settings

    tiezheng(data_dir, "seal")
    verified = json.loads(tiezheng(data_dir, "verify", ok[0]["package"], "--json").stdout)
    assert verified["verdict"] == "verified (offline)"
    assert {c["id"]: c["status"] for c in verified["checks"]}["P2"] == "pass"


def test_log_append_checkpoint_seal_export_verify(data_dir: Path, tmp_path: Path) -> None:
    events = tmp_path / "likes.ndjson"
    events.write_text("".join(json.dumps({
        "event_time": f"2026-12-01T10:00:{i:02d}Z", "type": "like", "actor": f"u{i}", "device_id": f"d{i % 2}",
        "ip": "203.0.113.9", "session": "s", "payload": {}}) + "\n" for i in range(30)))
    receipts = [json.loads(line) for line in tiezheng(data_dir, "log", "append", "likes", events, "--json")
                .stdout.splitlines()]
    assert [r["leaf_index"] for r in receipts] == list(range(30))
    checkpoint = json.loads(tiezheng(data_dir, "log", "checkpoint", "likes", "--json").stdout)
    assert checkpoint["size"] == 30 and checkpoint["note"].startswith("tiezheng/local/likes\n30\n")
    refused = tiezheng(data_dir, "log", "export", "likes", check=False)
    assert refused.returncode == 2 and "no anchored checkpoint yet" in refused.stderr
    tiezheng(data_dir, "seal")
    exported = json.loads(tiezheng(data_dir, "log", "export", "likes", "--filter", "device_id=d1",
                                   "--fields", "event_time,device_id,ip", "--aggregates", "--json").stdout)
    verified = json.loads(tiezheng(data_dir, "verify", exported["package"], "--json").stdout)
    assert verified["verdict"] == "verified (offline)"
    assert [c["status"] for c in verified["checks"] if c["id"].startswith("L")] == ["pass"] * 4
    bad = tiezheng(data_dir, "log", "export", "likes", "--filter", "type likes", check=False)
    assert bad.returncode == 2 and "cannot read 'type likes'" in bad.stderr


def test_capture_steps_are_checked_before_anything_runs(data_dir: Path, tmp_path: Path) -> None:
    """A bad --steps is one line naming the step, exit 2, before any browser starts."""
    bad = tmp_path / "steps.json"
    bad.write_text('["click #more", {"action": "type", "selector": "#pw"}]')
    refused = tiezheng(data_dir, "capture", "http://127.0.0.1:9/", "--steps", bad, check=False)
    assert refused.returncode == 2
    assert "--steps: step 2: type needs a text of 1 to 1000 characters" in refused.stderr
    unknown = tiezheng(data_dir, "capture", "http://127.0.0.1:9/", "--steps", "preset:nope", check=False)
    assert unknown.returncode == 2
    assert "no step preset 'nope' (presets: close-modal, expand-comments, load-more)" in unknown.stderr
