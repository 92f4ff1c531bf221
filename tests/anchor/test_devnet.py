"""The embedded devnet: a real anvil, started, stopped and restarted with its state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anchor.devnet import (
    ANVIL_ENV,
    DEV_OPERATOR_ADDRESS,
    DEVNET_CHAIN_ID,
    AnvilNotFound,
    Devnet,
    DevnetError,
    find_anvil,
)
from tests.anchor.conftest import rpc


def test_find_anvil_honours_the_environment(anvil: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ANVIL_ENV, str(anvil))
    assert find_anvil() == anvil
    not_executable = tmp_path / "anvil"
    not_executable.write_text("")
    monkeypatch.setenv(ANVIL_ENV, str(not_executable))
    with pytest.raises(AnvilNotFound, match=ANVIL_ENV):
        find_anvil()


def test_missing_anvil_names_make_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import anchor.devnet as devnet_module

    monkeypatch.delenv(ANVIL_ENV, raising=False)
    monkeypatch.setattr(devnet_module, "_REPO_ROOT", tmp_path)  # no node_modules there
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AnvilNotFound, match="make setup"):
        find_anvil()


def test_session_devnet_answers(devnet: Devnet) -> None:
    assert int(rpc(devnet.rpc_url, "eth_chainId"), 16) == DEVNET_CHAIN_ID
    assert devnet.rpc_url.startswith("http://127.0.0.1:")
    # The operator is anvil's first dev account, funded on every devnet.
    assert int(rpc(devnet.rpc_url, "eth_getBalance", DEV_OPERATOR_ADDRESS, "latest"), 16) > 0


def test_start_stop_restart_keeps_the_chain(anvil: Path, tmp_path: Path) -> None:
    node = Devnet(tmp_path, anvil=anvil)
    assert not node.status().running
    url = node.start()
    assert node.start() == url  # already running: no second anvil
    info = json.loads((tmp_path / "chain" / "devnet.json").read_text())
    assert info["rpc_url"] == url and info["chain_id"] == DEVNET_CHAIN_ID
    for _ in range(3):
        rpc(url, "evm_mine")
    block3 = rpc(url, "eth_getBlockByNumber", "0x3", False)
    status = node.status()
    assert (status.running, status.block, status.chain_id, status.rpc_url) == (True, 3, DEVNET_CHAIN_ID, url)

    assert node.stop() is True
    assert not node.status().running
    assert not (tmp_path / "chain" / "devnet.json").exists()
    assert (tmp_path / "chain" / "state.json").stat().st_size > 0
    assert node.stop() is False  # nothing left to stop
    with pytest.raises(DevnetError, match="not running"):
        _ = node.rpc_url

    url = node.start()
    try:
        assert int(rpc(url, "eth_blockNumber"), 16) == 3
        assert rpc(url, "eth_getBlockByNumber", "0x3", False)["hash"] == block3["hash"]
    finally:
        node.stop()


def test_another_instance_finds_and_stops_it(anvil: Path, tmp_path: Path) -> None:
    """What `tiezheng chain stop` in a second process does: it only has the data dir."""
    starter = Devnet(tmp_path, anvil=anvil)
    starter.start()
    pid = starter.status().pid
    assert pid is not None
    other = Devnet(tmp_path, anvil=anvil)
    assert other.status().pid == pid
    assert other.stop() is True
    assert not starter.status().running
    assert starter._process is not None
    starter._process.wait(5)  # the starter is anvil's parent and reaps it
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_stale_devnet_file_is_ignored(anvil: Path, tmp_path: Path) -> None:
    chain = tmp_path / "chain"
    chain.mkdir()
    # A pid that is certainly alive but is not our anvil: this test process.
    (chain / "devnet.json").write_text(
        json.dumps({"pid": os.getpid(), "port": 1, "rpc_url": "http://127.0.0.1:1", "chain_id": DEVNET_CHAIN_ID})
    )
    node = Devnet(tmp_path, anvil=anvil)
    assert not node.status().running
    assert node.stop() is False  # and it must not have signalled us


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_die_with_parent_leaves_no_node_behind(anvil: Path, tmp_path: Path) -> None:
    """A test run killed mid-way must not leak anvils: the starter is killed for real here."""
    script = (
        "import os, sys; from pathlib import Path; from anchor.devnet import Devnet; "
        "d = Devnet(Path(sys.argv[1]), anvil=Path(sys.argv[2]), die_with_parent=True); d.start(); "
        "print(d.status().pid, flush=True); os.kill(os.getpid(), 9)"
    )
    starter = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), str(anvil)],
        capture_output=True, text=True, timeout=30, check=False, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    pid = int(starter.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        if "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]:
            break  # exited; waiting to be reaped by init
        time.sleep(0.05)
    assert not Devnet(tmp_path, anvil=anvil).status().running
