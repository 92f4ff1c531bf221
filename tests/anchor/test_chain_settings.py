"""Chain configuration: TIEZHENG_CHAINS and TIEZHENG_MIN_CHAINS, the one-chain form, `chain up --second`."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from anchor.devnet import DEV_OPERATOR_KEY, DEVNET_CHAIN_ID, SECOND_DEVNET_CHAIN_ID, Devnet
from api.service.readiness import run_checks
from api.service.runtime import local_trust, trust_toml
from api.service.settings import Settings
from tests.api.test_cli import tiezheng
from verifier.chain_source import ChainSources
from verifier.errors import InvalidInput, TrustError
from verifier.trust import parse_trust

TWO_CHAINS = json.dumps([
    {"rpc_url": "https://sepolia.example/v3/PROJECT", "chain_id": 11155111, "key": DEV_OPERATOR_KEY,
     "confirmations": 6, "name": "Sepolia"},
    {"rpc_url": "https://holesky.example/", "chain_id": 17000, "key": DEV_OPERATOR_KEY}])


def test_chains_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIEZHENG_CHAINS", TWO_CHAINS)
    monkeypatch.setenv("TIEZHENG_MIN_CHAINS", "2")
    settings = Settings(data_dir=tmp_path)
    assert not settings.uses_devnet and settings.min_chains == 2
    assert [(c.chain_id, c.confirmations, c.name) for c in settings.anchor_chains()] == [
        (11155111, 6, "Sepolia"), (17000, None, None)]
    assert DEV_OPERATOR_KEY.removeprefix("0x") not in settings.redacted()  # keys never reach a log
    trust = local_trust(settings)
    assert trust.policy.min_chains == 2
    assert {c.chain_id for c in trust.chains} >= {DEVNET_CHAIN_ID, 11155111, 17000}
    exported = parse_trust(trust_toml(trust))
    assert exported.policy.min_chains == 2 and exported.chain(11155111) is not None


def test_single_chain_settings_are_a_one_element_list(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIEZHENG_RPC_URL", "https://sepolia.example/")
    monkeypatch.setenv("TIEZHENG_CHAIN_ID", "11155111")
    monkeypatch.setenv("TIEZHENG_CHAIN_KEY", DEV_OPERATOR_KEY)
    [chain] = Settings(data_dir=tmp_path).anchor_chains()
    assert (chain.rpc_url, chain.chain_id, chain.key.get_secret_value()) == (
        "https://sepolia.example/", 11155111, DEV_OPERATOR_KEY)
    monkeypatch.delenv("TIEZHENG_CHAIN_KEY")
    with pytest.raises(ValueError, match="TIEZHENG_CHAIN_KEY"):
        Settings(data_dir=tmp_path).anchor_chains()


@pytest.mark.parametrize("value", ["0", "-1", '"two"', "true", "1.5"])
def test_policy_min_chains_must_be_a_positive_integer(value: str) -> None:
    with pytest.raises(TrustError, match="min_chains"):
        parse_trust(f"[[chains]]\nchain_id = 1\n[policy]\nmin_chains = {value}\n")


def test_rpc_arguments() -> None:
    sources = ChainSources.parse(["31337=http://127.0.0.1:1", "11155111=https://rpc.example/", "http://127.0.0.1:2"])
    assert set(sources.by_chain) == {31337, 11155111} and sources.default is not None
    for clash in (["1=http://a", "1=http://b"], ["http://a", "http://b"], ["1=ftp://a"], ["file:///etc/passwd"]):
        with pytest.raises(InvalidInput):
            ChainSources.parse(clash)


@pytest.fixture()
def data_dir(tmp_path: Path, anvil: Path) -> Iterator[Path]:
    folder = tmp_path / "data"
    yield folder
    tiezheng(folder, "chain", "down", check=False)
    tiezheng(folder, "chain", "down", "--second", check=False)


def test_chain_up_second_anchors_on_both_devnets(data_dir: Path, tmp_path: Path) -> None:
    tiezheng(data_dir, "chain", "up")  # both kept running after `seal`, to check the anchors online
    up = tiezheng(data_dir, "chain", "up", "--second")
    assert f"chain {SECOND_DEVNET_CHAIN_ID}" in up.stdout
    second = json.loads(tiezheng(data_dir, "chain", "status", "--second", "--json").stdout)
    assert second["chain_id"] == SECOND_DEVNET_CHAIN_ID
    exhibit = tmp_path / "exhibit.txt"
    exhibit.write_text("two witnesses\n")
    uploaded = json.loads(tiezheng(data_dir, "upload", exhibit, "--json").stdout)
    tiezheng(data_dir, "seal", "--json")
    package = Path(uploaded["package"])
    with zipfile.ZipFile(package) as archive:
        assert {n for n in archive.namelist() if n.startswith("proof/anchor")} == {
            "proof/anchor.json", f"proof/anchor-{SECOND_DEVNET_CHAIN_ID}.json"}
    first = json.loads(tiezheng(data_dir, "chain", "status", "--json").stdout)
    online = tiezheng(data_dir, "verify", package, "--json", "--rpc", f"{DEVNET_CHAIN_ID}={first['rpc_url']}",
                      "--rpc", f"{SECOND_DEVNET_CHAIN_ID}={second['rpc_url']}")
    report = json.loads(online.stdout)
    assert report["verdict"] == "verified"
    assert [a["status"] for a in report["facts"]["anchors"]] == ["pass", "pass"]


def test_doctor_checks_each_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, devnet: Devnet) -> None:
    monkeypatch.setenv("TIEZHENG_CHAINS", json.dumps([
        {"rpc_url": devnet.rpc_url, "chain_id": DEVNET_CHAIN_ID, "key": DEV_OPERATOR_KEY, "name": "devnet"},
        {"rpc_url": "http://127.0.0.1:9/", "chain_id": 17000, "key": DEV_OPERATOR_KEY, "name": "Holesky"}]))
    checks = {c.name: c for c in run_checks(Settings(data_dir=tmp_path))}
    assert checks["chain devnet"].status == "ok" and checks["chain_key devnet"].status == "ok"
    assert checks["chain Holesky"].status == "fail" and "does not answer" in checks["chain Holesky"].reason
    assert DEV_OPERATOR_KEY.removeprefix("0x") not in json.dumps([c.reason + c.hint for c in checks.values()])
