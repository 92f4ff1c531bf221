"""H4 on real sealed packages: bare tokens count, each token is parsed once however many TSAs are
trusted, and a package whose token is no token at all fails H4 with a short reason."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from asn1crypto import tsp

import verifier.checks.context as context_module
from tests.factory import Workspace, seal_batch
from tests.tamper import replace_entry
from verifier.timestamp import TimestampToken
from verifier.trust import load_trust
from verifier.verdict import Status
from verifier.verify import verify_package
from verifier.wacz import Member, rewrite_package

CLI = str(Path(sys.executable).parent / "tiezheng-verify")
TOKEN = "proof/timestamp-0.tsr"
PUBLIC = Path(__file__).parents[1] / "vectors" / "rfc3161-public"


@pytest.fixture()
def sealed(workspace: Workspace, rpc_url: str) -> Path:
    built = workspace.upload()
    seal_batch(workspace, [built], rpc_url)
    return built.path


def _bare(response: bytes) -> bytes:
    return bytes(tsp.TimeStampResp.load(response)["time_stamp_token"].dump())


def _statuses(package: Path, trust: Path) -> dict[str, tuple[Status, str]]:
    return {c.id: (c.status, c.reason) for c in verify_package(package, load_trust(trust)).checks}


def _trust_with_public_tsas(workspace: Workspace, tmp_path: Path) -> Path:
    """The workspace's trust with three public TSAs listed before the development one."""
    public = [f'[[tsa]]\nname = "{folder}"\nroots_file = "{PUBLIC / folder / "root.pem"}"\n'
              for folder in ("digicert", "identrust", "globalsign-aatl")]
    path = tmp_path / "trust-public.toml"
    path.write_text("\n".join(public) + "\n" + workspace.trust_file().read_text())
    return path


def test_bare_token_in_a_package_passes_h4(workspace: Workspace, sealed: Path, tmp_path: Path) -> None:
    """A package whose token is stored bare (as a CAdES or PDF signer would keep it), sealed the way the
    sealer writes packages, so datapackage.json lists the bare bytes."""
    bare = tmp_path / "bare.wacz"
    shutil.copyfile(sealed, bare)
    with zipfile.ZipFile(bare) as archive:
        token = _bare(archive.read(TOKEN))
    rewrite_package(bare, [Member(TOKEN, data=token)], drop=lambda name: name == TOKEN)
    trust = workspace.trust_file()
    assert _statuses(bare, trust)["H4"][0] is Status.PASS
    result = subprocess.run([CLI, str(bare), "--trust", str(trust)], capture_output=True, text=True, timeout=60,
                            env={"PATH": str(Path(CLI).parent), "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_token_parsed_once_whatever_the_number_of_tsas(workspace: Workspace, sealed: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[TimestampToken] = []
    real = context_module.parse_timestamp_token

    def counting(data: bytes) -> TimestampToken:
        parsed.append(real(data))
        return parsed[-1]

    monkeypatch.setattr(context_module, "parse_timestamp_token", counting)
    trust = _trust_with_public_tsas(workspace, tmp_path)
    assert len(load_trust(trust).tsas) == 4
    status, reason = _statuses(sealed, trust)["H4"]
    assert status is Status.PASS, reason
    assert len(parsed) == 1


def test_garbage_token_fails_h4_briefly(workspace: Workspace, sealed: Path, tmp_path: Path) -> None:
    huge_oid = b"\x06\x82\x01\x2c" + b"\x81" * 299 + b"\x01"
    for label, garbage, why in (("text", b"no token here\n" * 20, "not DER-encoded"),
                                ("huge OID", b"\x30\x82\x01\x30" + huge_oid, "time-stamp token or response")):
        package = replace_entry(sealed, tmp_path / f"{label}.wacz", TOKEN, lambda _d, g=garbage: g)
        status, reason = _statuses(package, workspace.trust_file())["H4"]
        assert status is Status.FAIL and why in reason, (label, reason)
        assert len(reason) < 300 and not re.search(r"\d{16,}", reason), reason
