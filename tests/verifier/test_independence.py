"""Opposing counsel installs only verifier/: it must not pull in the service or chain stacks."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("api", "evidence", "anchor", "fastapi", "sqlmodel", "sqlalchemy", "web3", "playwright", "uvicorn",
             "reportlab", "qrcode")


def test_verifier_cli_imports_nothing_of_the_service() -> None:
    # Every check module too: they load on first use, so the probe loads each one.
    code = ("import json, sys; import verifier.cli, verifier.verify, verifier.wacz; "
            "from verifier.checks import REGISTRY, check_function; [check_function(i) for i in REGISTRY]; "
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = json.loads(out)
    offending = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert offending == []
    assert {"verifier.checks.hash", "verifier.checks.notice", "verifier.checks.stream"} <= set(loaded)


def test_offline_anchor_proof_needs_no_ethereum_stack() -> None:
    # The RLP and trie reader is our own: the rlp/trie/eth-utils stack costs ~0.3 s of imports per run.
    code = ("import json, sys; import verifier.anchor_proof, verifier.verify; "
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    heavy = {"rlp", "trie", "eth_utils", "eth_hash", "pydantic", "web3"}
    assert [m for m in json.loads(out) if m.split(".")[0] in heavy] == []
