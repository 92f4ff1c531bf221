"""`tiezheng tenants` and `tiezheng keys`: the key is printed once and stored only as an HMAC."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.api.server import BIN


def tiezheng(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TIEZHENG_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    result = subprocess.run([str(BIN / "tiezheng"), *args], capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_tenants_and_keys(tmp_path: Path) -> None:
    data = tmp_path / "data"
    human = tiezheng(data, "tenants", "create", "Acme Rights 权利人")
    token = human.stdout.strip().splitlines()[-1]
    assert token.startswith("tzk_") and "shown only now" in human.stderr
    created = json.loads(tiezheng(data, "tenants", "create", "Other", "--json").stdout)
    assert created["tenant"] == "Other" and created["api_key"].startswith(f"tzk_{created['key_prefix']}_")
    # Neither key is anywhere in the data dir: only prefixes and HMACs are stored.
    stored = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    for key in (token, created["api_key"]):
        assert key.split("_", 2)[2].encode() not in stored  # the secret may itself hold "_"
    duplicate = tiezheng(data, "tenants", "create", "Other", check=False)
    assert duplicate.returncode == 2 and "exists already" in duplicate.stderr
    second = json.loads(tiezheng(data, "keys", "create", "Other", "--json", "--label", "ci").stdout)
    listing = tiezheng(data, "keys", "list", "Other").stdout
    assert created["key_prefix"] in listing and second["key_prefix"] in listing and "ci" in listing
    tiezheng(data, "keys", "revoke", second["key_prefix"])
    assert "revoked" in tiezheng(data, "keys", "list", "Other").stdout
    assert "Acme Rights 权利人" in tiezheng(data, "tenants", "list").stdout
    unknown = tiezheng(data, "keys", "revoke", "nope", check=False)
    assert unknown.returncode == 2 and "no API key" in unknown.stderr
