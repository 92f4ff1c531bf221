"""Opposing counsel installs only verifier/: it must not pull in the service or chain stacks."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("api", "evidence", "anchor", "fastapi", "sqlmodel", "sqlalchemy", "web3", "playwright", "uvicorn")


def test_verifier_cli_imports_nothing_of_the_service() -> None:
    code = ("import json, sys; import verifier.cli, verifier.verify, verifier.wacz; "
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = json.loads(out)
    offending = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert offending == []
    assert "verifier.checks.hash" in loaded  # the probe did import the checks
