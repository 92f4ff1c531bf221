"""verify_package on real sealed packages: untouched ones verify, each tampering fails its check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.factory import Workspace, seal_batch
from tests.tamper import flip_byte, replace_entry, rewrite
from verifier.trust import load_trust
from verifier.verdict import Status, Verdict
from verifier.verify import verify_package


@pytest.fixture()
def sealed(workspace: Workspace, rpc_url: str) -> Path:
    packages = [workspace.upload([("exhibit.txt", f"copy {i}\n".encode()), ("photo.png", bytes(range(256)))])
                for i in range(3)]
    seal_batch(workspace, packages, rpc_url)
    return packages[1].path


def _statuses(path: Path, trust: Path) -> dict[str, Status]:
    report = verify_package(path, load_trust(trust))
    return {r.id: r.status for r in report.checks}


def test_untouched_package_verifies(workspace: Workspace, sealed: Path) -> None:
    report = verify_package(sealed, load_trust(workspace.trust_file()))
    statuses = {r.id: r.status for r in report.checks}
    assert report.verdict is Verdict.VERIFIED_OFFLINE
    assert all(statuses[i] is Status.PASS for i in ("S1", "S2", "P3", "H1", "H2", "H3", "H4"))
    assert report.failed_ids == []
    body = report.to_json()
    assert body["verified"] is True
    assert body["fingerprint"] == report.fingerprint and len(body["fingerprint"]) == 64
    assert {c["id"] for c in body["checks"]} == set(statuses)
    assert all(set(c) >= {"id", "status", "reason", "basis"} for c in body["checks"])
    assert any("development" in item for item in body["development_trust"])


def test_rezipped_package_still_verifies(workspace: Workspace, sealed: Path, tmp_path: Path) -> None:
    copy = rewrite(sealed, tmp_path / "rezipped.wacz", lambda _n, d: d)
    assert verify_package(copy, load_trust(workspace.trust_file())).verified


@pytest.mark.parametrize(("name", "expected"), [
    ("evidence/exhibit.txt", "H1"),
    ("evidence/photo.png", "H1"),
    ("archive/data.warc.gz", "H1"),
    ("evidence/manifest.json", "H2"),
    ("proof/proof.json", "H3"),
    ("proof/timestamp-0.tsr", "H4"),
    ("datapackage.json", "P3"),
    ("datapackage-digest.json", "P3"),
])
def test_flipped_byte_fails_its_check(workspace: Workspace, sealed: Path, tmp_path: Path, name: str,
                                      expected: str) -> None:
    bad = replace_entry(sealed, tmp_path / "bad.wacz", name, lambda d: flip_byte(d, len(d) // 2))
    report = verify_package(bad, load_trust(workspace.trust_file()))
    assert report.verdict in (Verdict.FAILED, Verdict.UNUSABLE)
    if report.verdict is Verdict.FAILED:
        failed = report.failed_ids
        assert expected in failed or (name == "proof/proof.json" and "H2" in failed)


def test_edited_manifest_field_fails_signature_and_fingerprint(workspace: Workspace, sealed: Path,
                                                               tmp_path: Path) -> None:
    def edit(data: bytes) -> bytes:
        manifest = json.loads(data)
        manifest["requester"]["tenant"] = "someone-else"
        return json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()

    bad = replace_entry(sealed, tmp_path / "bad.wacz", "evidence/manifest.json", edit)
    failed = verify_package(bad, load_trust(workspace.trust_file())).failed_ids
    assert "S1" in failed and "H2" in failed


def test_wrong_inclusion_path_fails_h3(workspace: Workspace, sealed: Path, tmp_path: Path) -> None:
    def edit(data: bytes) -> bytes:
        proof = json.loads(data)
        proof["inclusion_path"][0] = "00" * 32
        return json.dumps(proof).encode()

    bad = replace_entry(sealed, tmp_path / "bad.wacz", "proof/proof.json", edit)
    # datapackage.json still lists the old proof.json, so P3 notices the edit too.
    assert verify_package(bad, load_trust(workspace.trust_file())).failed_ids == ["P3", "H3"]


def test_extra_and_missing_files_fail_p3(workspace: Workspace, sealed: Path, tmp_path: Path) -> None:
    extra = rewrite(sealed, tmp_path / "extra.wacz", lambda _n, d: d, add={"evidence/planted.txt": b"x"})
    assert "P3" in verify_package(extra, load_trust(workspace.trust_file())).failed_ids
    missing = rewrite(sealed, tmp_path / "missing.wacz", lambda n, d: None if n == "evidence/photo.png" else d)
    failed = verify_package(missing, load_trust(workspace.trust_file())).failed_ids
    assert "P3" in failed and "H1" in failed


def test_untrusted_operator_or_tsa_cannot_judge(workspace: Workspace, sealed: Path) -> None:
    """A genuine package judged without the trust it needs: not failed, not verified, but cannot judge."""
    report = verify_package(sealed, load_trust(workspace.trust_file(operator=False)))
    assert report.verdict is Verdict.CANNOT_JUDGE and report.exit_code == 3
    assert report.result("S1").status is Status.SKIP and report.result("H4").status is Status.PASS
    assert [check for check, _ in report.missing_trust] == ["S1"]
    assert "operator key" in report.missing_trust[0][1]
    assert report.proves == () and report.to_json()["proves"] == []
    assert any("/.well-known/tiezheng/trust.toml" in line for line in report.findings)

    report = verify_package(sealed, load_trust(workspace.trust_file(tsa=False)))
    assert report.verdict is Verdict.CANNOT_JUDGE
    assert report.result("S1").status is Status.PASS and report.result("H4").status is Status.SKIP
    assert [check for check, _ in report.missing_trust] == ["H4"]
    assert "Tiezheng Development TSA" in report.missing_trust[0][1] or "TSA" in report.missing_trust[0][1]


def test_broken_token_under_untrusted_root_still_fails(workspace: Workspace, sealed: Path, tmp_path: Path) -> None:
    """Missing trust never excuses a token that is broken whatever the root: that stays a failure."""
    bad = replace_entry(sealed, tmp_path / "bad.wacz", "proof/timestamp-0.tsr", lambda d: flip_byte(d, len(d) - 3))
    report = verify_package(bad, load_trust(workspace.trust_file(tsa=False)))
    assert report.result("H4").status is Status.FAIL and report.verdict is Verdict.FAILED


def test_unsealed_package_is_not_verified(workspace: Workspace) -> None:
    built = workspace.upload()
    report = verify_package(built.path, load_trust(workspace.trust_file()))
    assert report.verdict is Verdict.FAILED
    assert report.result("H2").status is Status.SKIP
    assert report.result("H1").status is Status.PASS
    # More trust could not make an unsealed package verify: failed, not "cannot judge".
    untrusted = verify_package(built.path, load_trust(workspace.trust_file(operator=False)))
    assert untrusted.missing_trust and untrusted.verdict is Verdict.FAILED
    assert any(line.startswith("H2 evidence fingerprint did not pass") for line in untrusted.findings)
