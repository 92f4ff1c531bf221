"""The operator's qualifications, end to end: settings → every manifest → the exported trust file → S2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

BIN = Path(sys.executable).parent
QUALIFICATIONS = {"icp_filing": "沪ICP备20240001号-2", "cac_blockchain_filing": "沪网信备31010420240001号",
                  "security_certification": "等保三级 31010413002-00002", "data_centre": "上海 临港 A 区"}


def _run(command: str, *args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / command), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=180, check=False)


def test_declared_qualifications_reach_manifest_trust_file_and_s2(tmp_path: Path) -> None:
    env = {**os.environ, "TIEZHENG_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200",
           "TIEZHENG_QUALIFICATIONS": json.dumps(QUALIFICATIONS, ensure_ascii=False)}
    exhibit = tmp_path / "listing.txt"
    exhibit.write_text("infringing listing\n")
    uploaded = _run("tiezheng", "upload", exhibit, "--json", env=env)
    assert uploaded.returncode == 0, uploaded.stderr
    package = Path(json.loads(uploaded.stdout)["package"])

    trust = tmp_path / "trust.toml"
    exported = _run("tiezheng", "trust", "export", trust, env=env)
    assert exported.returncode == 0, exported.stderr
    operators = tomllib.loads(trust.read_text(encoding="utf-8"))["operators"]
    assert operators[0]["qualifications"] == QUALIFICATIONS

    verified = _run("tiezheng-verify", package, "--json", "--offline", "--trust", trust, env=env)
    s2 = next(c for c in json.loads(verified.stdout)["checks"] if c["id"] == "S2")
    assert s2["status"] == "pass"
    for label, key in (("ICP filing", "icp_filing"), ("CAC blockchain-service filing", "cac_blockchain_filing"),
                       ("security certification", "security_certification"), ("data centre", "data_centre")):
        assert f"{label} {QUALIFICATIONS[key]}" in s2["reason"]
    assert "software cannot verify them" in s2["reason"] and "the same as its trust file" in s2["reason"]

    # What the operator declares later is not what it declared then: S2 shows both.
    later = {**env, "TIEZHENG_QUALIFICATIONS": json.dumps({"icp_filing": "沪ICP备20249999号"}, ensure_ascii=False)}
    assert _run("tiezheng", "trust", "export", trust, env=later).returncode == 0
    verified = _run("tiezheng-verify", package, "--json", "--offline", "--trust", trust, env=env)
    s2 = next(c for c in json.loads(verified.stdout)["checks"] if c["id"] == "S2")
    assert "its trust file now declares ICP filing 沪ICP备20249999号" in s2["reason"]


def test_a_misspelt_qualification_is_refused_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "TIEZHENG_DATA_DIR": str(tmp_path / "data"),
           "TIEZHENG_QUALIFICATIONS": json.dumps({"icp_filling": "x"})}
    exhibit = tmp_path / "listing.txt"
    exhibit.write_text("listing\n")
    refused = _run("tiezheng", "upload", exhibit, env=env)
    assert refused.returncode != 0 and "Traceback" not in refused.stdout + refused.stderr
    assert "icp_filling" in refused.stderr
