"""Fixtures for anchor/: one real anvil for the session, the real development TSA, plain JSON-RPC."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anchor.devnet import Devnet
from anchor.tsa_server import DevTSA, TSAServer


@pytest.fixture()
def private_devnet(anvil: Path, tmp_path: Path) -> Iterator[Devnet]:
    """A devnet of its own, for tests that switch mining off or reorganise the chain."""
    node = Devnet(tmp_path / "data", anvil=anvil, die_with_parent=True)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def dev_tsa(tmp_path_factory: pytest.TempPathFactory) -> DevTSA:
    return DevTSA(tmp_path_factory.mktemp("tsa-data"))


@pytest.fixture(scope="session")
def tsa_server(dev_tsa: DevTSA) -> Iterator[TSAServer]:
    with dev_tsa.serve() as server:
        yield server


def rpc(url: str, method: str, *params: Any) -> Any:
    """One plain JSON-RPC call with the standard library: reads the chain without the code under test."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        answer = json.loads(reply.read())
    assert "error" not in answer, answer
    return answer["result"]
