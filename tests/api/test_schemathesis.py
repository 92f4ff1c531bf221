"""schemathesis against the running service's OpenAPI: no generated request may get a 5xx.

Web capture is off on this server (TIEZHENG_CAPTURE_ENABLED=false): generated capture requests are
still accepted and fail as items, but no generated URL is ever fetched.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import start_server
from tests.api.server import BIN, Server

#: Seconds of generated requests; the whole schema is covered well within it.
FUZZ_SECONDS = 20


@pytest.fixture(scope="module")
def fuzz_server(anvil: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp("service-fuzz"), "sqlite", TIEZHENG_CAPTURE_ENABLED="false",
                            TIEZHENG_RATE_PER_SECOND="100000", TIEZHENG_RATE_BURST="100000")


def test_no_server_errors(fuzz_server: Server, tmp_path: Path) -> None:
    key = fuzz_server.new_tenant("fuzzer")["api_key"]
    result = subprocess.run(
        [str(BIN / "schemathesis"), "run", f"{fuzz_server.url}/openapi.json", "--checks", "not_a_server_error",
         "--header", f"Authorization: Bearer {key}", "--max-time", str(FUZZ_SECONDS), "--max-examples", "25",
         "--seed", "20261123", "--request-timeout", "30", "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=FUZZ_SECONDS + 120, cwd=tmp_path)
    summary = result.stdout[-3000:]
    assert result.returncode == 0, summary + result.stderr[-2000:]
    assert "Server error" not in result.stdout, summary
    assert "Traceback" not in fuzz_server.log()
