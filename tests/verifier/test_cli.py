"""tiezheng-verify as a user runs it: a real process, exit codes 0 / 1 / 2, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factory import Workspace, seal_batch
from tests.tamper import flip_byte, replace_entry
from verifier import merkle

CLI = str(Path(sys.executable).parent / "tiezheng-verify")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=60,
                            env={"PATH": str(Path(CLI).parent), "COLUMNS": "200"})
    assert "Traceback" not in result.stdout + result.stderr
    return result


@pytest.fixture()
def sealed(workspace: Workspace, rpc_url: str) -> tuple[Path, Path]:
    built = workspace.upload()
    seal_batch(workspace, [built], rpc_url)
    return built.path, workspace.trust_file()


def test_verified_package_exits_0_with_json_contract(sealed: tuple[Path, Path]) -> None:
    package, trust = sealed
    result = run(package, "--json", "--trust", trust)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["verified"] is True
    assert body["verdict"] == "verified (offline)"
    assert [c["id"] for c in body["checks"]] == ["S1", "S2", "S3", "S4", "P1", "P2", "P3",
                                                 "H1", "H2", "H3", "H4", "H5", "T1", "T2"]


def test_table_output_names_the_verdict(sealed: tuple[Path, Path]) -> None:
    package, trust = sealed
    result = run(package, "--trust", trust)
    assert result.returncode == 0
    assert "VERIFIED (OFFLINE)" in result.stdout and "H4 pass trusted timestamp" in result.stdout


def test_tampered_package_exits_1(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    package, trust = sealed
    bad = replace_entry(package, tmp_path / "bad.wacz", "evidence/exhibit.txt", flip_byte)
    result = run(bad, "--json", "--trust", trust)
    assert result.returncode == 1
    assert "H1" in [c["id"] for c in json.loads(result.stdout)["checks"] if c["status"] == "fail"]


def test_without_trust_the_verifier_cannot_judge(sealed: tuple[Path, Path]) -> None:
    """No trust file: the default trust lacks the operator key, the development TSA and the devnet."""
    result = run(sealed[0], "--json")
    assert result.returncode == 3, result.stderr
    body = json.loads(result.stdout)
    assert body["verdict"] == "cannot judge" and body["verified"] is False and body["proves"] == []
    assert {m["check"] for m in body["missing_trust"]} == {"S1", "H4", "H5"}
    assert not [c["id"] for c in body["checks"] if c["status"] == "fail"]
    assert any("--trust" in line and "/.well-known/tiezheng/trust.toml" in line for line in body["findings"])
    table = run(sealed[0])
    assert table.returncode == 3 and "CANNOT JUDGE" in table.stdout and "What this proves" not in table.stdout


@pytest.mark.parametrize("content", [b"not a zip", b""])
def test_unusable_input_exits_2(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.wacz"
    path.write_bytes(content)
    result = run(path, "--json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["verdict"] == "unusable"


def test_bad_trust_file_exits_2(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("# nothing trusted\n")
    result = run(sealed[0], "--trust", empty)
    assert result.returncode == 2
    assert "trusts nothing" in result.stderr
    assert run(sealed[0], "--trust", tmp_path / "absent.toml").returncode == 2


def test_bad_arguments_exit_2() -> None:
    assert run().returncode == 2
    assert run("inclusion", "--leaf", "zz", "--index", "0", "--size", "1", "--root", "00").returncode == 2


def test_inclusion_subcommand() -> None:
    fingerprints = [bytes([i]) * 32 for i in range(5)]
    leaves = merkle.leaf_hashes(fingerprints)
    head = merkle.root(leaves)
    proof = ",".join(h.hex() for h in merkle.inclusion_proof(leaves, 3))
    ok = run("inclusion", "--leaf", fingerprints[3].hex(), "--index", "3", "--size", "5", "--root", head.hex(),
             "--proof", proof)
    assert ok.returncode == 0 and "VALID" in ok.stdout
    bad = run("inclusion", "--leaf", fingerprints[2].hex(), "--index", "3", "--size", "5", "--root", head.hex(),
              "--proof", proof, "--json")
    assert bad.returncode == 1
    assert "Merkle root mismatch" in json.loads(bad.stdout)["error"]


def test_timestamp_subcommand(workspace: Workspace, tmp_path: Path, rpc_url: str) -> None:
    built = workspace.upload()
    head = seal_batch(workspace, [built], rpc_url)
    import zipfile

    with zipfile.ZipFile(built.path) as archive:
        (tmp_path / "t.tsr").write_bytes(archive.read("proof/timestamp-0.tsr"))
        (tmp_path / "certs.pem").write_bytes(archive.read("proof/tsa-0.pem"))
    (tmp_path / "ca.pem").write_bytes(workspace.tsa.ca_certificate_pem())
    ok = run("timestamp", tmp_path / "t.tsr", "--digest", head.hex(), "--roots", tmp_path / "ca.pem",
             "--certs", tmp_path / "certs.pem", "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["valid"] is True
    wrong = run("timestamp", tmp_path / "t.tsr", "--digest", "00" * 32, "--roots", tmp_path / "ca.pem",
                "--certs", tmp_path / "certs.pem")
    assert wrong.returncode == 1
    missing = run("timestamp", tmp_path / "absent.tsr", "--digest", head.hex(), "--roots", tmp_path / "ca.pem")
    assert missing.returncode == 2
