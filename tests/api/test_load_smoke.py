"""A short run of benchmarks/api_load.py: concurrent uploads, SIGKILL midway, every accepted upload sealed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_nothing_accepted_is_lost(anvil: Path) -> None:
    script = str(REPO / "benchmarks" / "api_load.py")
    result = subprocess.run([sys.executable, script, "--duration", "8", "--clients", "8",
                             "--kill-at", "0.4", "--json"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout)
    assert figures["accepted_before_kill"] > 0
    assert figures["present_after_restart"] == figures["accepted_before_kill"]
    assert figures["accepted"] > figures["accepted_before_kill"]  # the restarted server took uploads too
    assert figures["lost"] == 0 and figures["unsealed"] == 0 and figures["sealed"] == figures["accepted"]
