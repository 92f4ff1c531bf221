"""S3, S4, P1 and P2 on a real HTTPS capture: the untouched package passes, and each tampering fails
its own check, also when the attacker rewrites the manifest to match (the signature then fails too)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from evidence.upload import BuiltPackage
from tests.capture_site import BrowserRunner, Site, machine_s4_status, make_tls, member, png, serve, statuses
from tests.factory import Workspace, make_workspace, seal_batch
from tests.tamper import flip_byte, rewrite
from verifier import canonical
from verifier.call_log import GENESIS, encode_line, line_sha256
from verifier.trust import load_trust
from verifier.verdict import Report, Status, Verdict
from verifier.verify import verify_package

MANIFEST = "evidence/manifest.json"
SIGNATURE = "evidence/manifest.sig"
LOG = "evidence/capture-log.jsonl"
ENVIRONMENT = "evidence/environment-check.json"
QUALIFIED = {"icp_filing": "京ICP备12345678号-1", "cac_blockchain_filing": "京网信备11010512345678号",
             "security_certification": "网络安全等级保护三级 11010513001-00001", "data_centre": "北京 亦庄"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return make_workspace(tmp_path_factory.mktemp("workspace"))


@pytest.fixture(scope="module")
def trust(workspace: Workspace) -> Path:
    return workspace.trust_file()


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory, workspace: Workspace) -> Iterator[BuiltPackage]:
    """One HTTPS capture (trusted test CA, so S3 can pass), made once for the module."""
    tls = make_tls(tmp_path_factory.mktemp("tls"))
    site: Site = serve(tls.trusted)
    runner = BrowserRunner()
    try:
        yield runner.capture(site.url("/r1"), workspace.packages, workspace.operator.with_qualifications(QUALIFIED),
                             extra_ca_pem=tls.ca_pem)
    finally:
        runner.close()
        site.close()


def _report(path: Path, trust: Path) -> Report:
    return verify_package(path, load_trust(trust))


def _with_manifest_matching(source: Path, target: Path, changes: dict[str, bytes],
                            edit: Callable[[dict], None] | None = None) -> Path:  # type: ignore[type-arg]
    """Replace entries and rewrite the manifest's hashes to match them, as an attacker without the
    operator's key would; the old signature stays."""
    manifest = json.loads(member(source, MANIFEST))
    for artifact in manifest["artifacts"]:
        if artifact["path"] in changes:
            artifact["sha256"] = canonical.sha256_hex(changes[artifact["path"]])
            artifact["size"] = len(changes[artifact["path"]])
    if edit is not None:
        edit(manifest)
    body = canonical.canonical_json(manifest)
    return rewrite(source, target, lambda n, d: body if n == MANIFEST else changes.get(n, d))


def _replace(source: Path, target: Path, changes: dict[str, bytes]) -> Path:
    return rewrite(source, target, lambda n, d: changes.get(n, d))


def _relinked(lines: list[dict]) -> bytes:  # type: ignore[type-arg]
    """Re-chain edited log lines from GENESIS: what an attacker who edits the log must also do."""
    out, prev = [], GENESIS
    for entry in lines:
        entry["prev_sha256"] = prev
        raw = encode_line(entry)
        out.append(raw)
        prev = line_sha256(raw)
    return b"\n".join(out) + b"\n"


def test_untouched_capture_passes_its_checks(capture: BuiltPackage, trust: Path) -> None:
    report = _report(capture.path, trust)
    found = statuses(report)
    assert {i: found[i] for i in ("S1", "S2", "S3", "P1", "P2", "P3", "H1")} == dict.fromkeys(
        ("S1", "S2", "S3", "P1", "P2", "P3", "H1"), "pass"), report.checks
    assert found["S4"] == machine_s4_status(), report.result("S4")
    assert "verified the chain" in report.result("S3").reason
    s2 = report.result("S2").reason
    assert "ICP filing 京ICP备12345678号-1" in s2 and "CAC blockchain-service filing 京网信备11010512345678号" in s2
    assert "software cannot verify them" in s2 and "the trust file declares none for this key" in s2
    manifest = json.loads(member(capture.path, MANIFEST))
    assert manifest["operator"]["qualifications"] == QUALIFIED
    assert manifest["artifacts"][0]["path"] == ENVIRONMENT and manifest["artifacts"][0]["role"] == "environment-check"
    first = json.loads(member(capture.path, LOG).splitlines()[0])
    assert first["seq"] == 0 and first["step"] == "environment-check" and first["outputs"][0]["path"] == ENVIRONMENT
    assert "the raw fetch's response" in report.result("P2").reason
    assert report.facts["network"]["final_url"].endswith("/dynamic")


def test_sealed_capture_is_verified(capture: BuiltPackage, workspace: Workspace, trust: Path, rpc_url: str,
                                    tmp_path: Path) -> None:
    copy = tmp_path / capture.path.name
    copy.write_bytes(capture.path.read_bytes())
    seal_batch(workspace, [BuiltPackage(capture.evidence_id, capture.fingerprint, copy)], rpc_url)
    report = _report(copy, trust)
    assert report.failed_ids == [], report.checks
    assert report.verdict in (Verdict.VERIFIED, Verdict.VERIFIED_OFFLINE)
    found = statuses(report)
    assert all(found[i] == "pass" for i in ("S1", "S3", "P1", "P2", "P3", "H1", "H2", "H3", "H4"))
    assert found["S4"] == machine_s4_status(), report.result("S4")


def test_swapped_screenshot_fails_p2(capture: BuiltPackage, trust: Path, tmp_path: Path) -> None:
    other = png(64, 64, (0, 0, 255))
    plain = _replace(capture.path, tmp_path / "plain.wacz", {"evidence/screenshot.png": other})
    report = _report(plain, trust)
    assert report.result("P2").status is Status.FAIL and report.result("H1").status is Status.FAIL
    assert "evidence/screenshot.png has sha256" in report.result("P2").reason
    assert "step 'screenshot' logged" in report.result("P2").reason
    # The attacker also rewrites the manifest: H1 now passes, but the logged hash still differs.
    matched = _with_manifest_matching(capture.path, tmp_path / "matched.wacz", {"evidence/screenshot.png": other})
    report = _report(matched, trust)
    assert report.result("H1").status is Status.PASS
    assert report.result("P2").status is Status.FAIL and "screenshot.png" in report.result("P2").reason
    assert report.result("S1").status is Status.FAIL


def test_changed_source_fails_p2_against_the_warc(capture: BuiltPackage, trust: Path, tmp_path: Path) -> None:
    source = member(capture.path, "evidence/source.html")
    changed = source.replace(b"Listing", b"Lasting")
    assert changed != source
    plain = _replace(capture.path, tmp_path / "plain.wacz", {"evidence/source.html": changed})
    report = _report(plain, trust)
    assert report.result("P2").status is Status.FAIL and "differs from all" in report.result("P2").reason
    assert report.result("H1").status is Status.FAIL
    # Even with the manifest rewritten and the log re-chained to the new hash, the WARC still disagrees.
    lines = [json.loads(x) for x in member(capture.path, LOG).splitlines()]
    for line in lines:
        for output in line["outputs"]:
            if output["path"] == "evidence/source.html":
                output["sha256"], output["size"] = canonical.sha256_hex(changed), len(changed)
    log = _relinked(lines)

    def new_head(manifest: dict) -> None:  # type: ignore[type-arg]
        manifest["capture"]["log_head"] = line_sha256(log.splitlines()[-1])

    forged = _with_manifest_matching(capture.path, tmp_path / "forged.wacz",
                                     {"evidence/source.html": changed, LOG: log}, new_head)
    report = _report(forged, trust)
    assert report.result("P1").status is Status.PASS and report.result("H1").status is Status.PASS
    assert report.result("P2").status is Status.FAIL and "differs from all" in report.result("P2").reason
    assert report.result("S1").status is Status.FAIL


@pytest.mark.parametrize("line_index", [2, -1])
def test_edited_log_line_fails_p1(capture: BuiltPackage, trust: Path, tmp_path: Path, line_index: int) -> None:
    raw = member(capture.path, LOG).splitlines()
    entry = json.loads(raw[line_index])
    entry["outcome"]["edited"] = True
    raw[line_index] = encode_line(entry)
    edited = b"\n".join(raw) + b"\n"
    plain = _replace(capture.path, tmp_path / "plain.wacz", {LOG: edited})
    report = _report(plain, trust)
    assert report.result("P1").status is Status.FAIL and report.result("H1").status is Status.FAIL
    expected = "prev_sha256" if line_index == 2 else "log_head"
    assert expected in report.result("P1").reason
    matched = _with_manifest_matching(capture.path, tmp_path / "matched.wacz", {LOG: edited})
    report = _report(matched, trust)
    assert report.result("H1").status is Status.PASS and report.result("P1").status is Status.FAIL


def test_dns_answer_without_the_server_ip_fails_s3(capture: BuiltPackage, trust: Path, tmp_path: Path) -> None:
    network = json.loads(member(capture.path, "evidence/network.json"))
    for record in network["dns"]:
        record["answers"] = {"A": ["192.0.2.10"]}
    changed = json.dumps(network, indent=1).encode()
    plain = _replace(capture.path, tmp_path / "plain.wacz", {"evidence/network.json": changed})
    report = _report(plain, trust)
    assert report.result("S3").status is Status.FAIL
    assert "is not among its DNS answers ['192.0.2.10']" in report.result("S3").reason
    matched = _with_manifest_matching(capture.path, tmp_path / "matched.wacz", {"evidence/network.json": changed})
    report = _report(matched, trust)
    assert report.result("H1").status is Status.PASS and report.result("S3").status is Status.FAIL
    assert report.result("P2").status is Status.FAIL  # network.json's logged hash no longer matches


def test_tampered_warc_address_fails_s3(capture: BuiltPackage, trust: Path, tmp_path: Path) -> None:
    warc = gzip.decompress(member(capture.path, "archive/data.warc.gz"))
    changed = gzip.compress(warc.replace(b"WARC-IP-Address: 127.0.0.1", b"WARC-IP-Address: 127.0.0.9", 1))
    report = _report(_replace(capture.path, tmp_path / "warc.wacz", {"archive/data.warc.gz": changed}), trust)
    assert report.result("S3").status is Status.FAIL and "WARC: server 127.0.0.9" in report.result("S3").reason


def test_corrupt_log_fails_p1_and_p2_not_the_run(capture: BuiltPackage, trust: Path, tmp_path: Path) -> None:
    bad = _replace(capture.path, tmp_path / "bad.wacz", {LOG: flip_byte(member(capture.path, LOG), 5)})
    report = _report(bad, trust)
    assert report.result("P1").status is Status.FAIL and report.result("P2").status is Status.FAIL
    assert report.result("S3").status is Status.PASS


def test_upload_skips_capture_checks_and_warns_s4(workspace: Workspace, trust: Path) -> None:
    report = _report(workspace.upload().path, trust)
    for check in ("S3", "P1", "P2"):
        assert report.result(check).status is Status.SKIP and report.result(check).reason.startswith("upload:")
    assert report.result("S4").status is Status.WARN
    assert "not captured by the platform" in report.result("S4").reason
    assert report.result("P3").status is Status.PASS


def _resigned(source: Path, target: Path, workspace: Workspace, edit_record: Callable[[dict], None] | None,
              ) -> Path:  # type: ignore[type-arg]
    """The package as a careless or dishonest operator might sign it: the environment record edited
    (or dropped, with ``edit_record`` None), the manifest's hashes updated, and the manifest signed again."""
    manifest = json.loads(member(source, MANIFEST))
    record: bytes | None = None
    if edit_record is not None:
        edited = json.loads(member(source, ENVIRONMENT))
        edit_record(edited)
        record = json.dumps(edited).encode()
    artifacts = []
    for artifact in manifest["artifacts"]:
        if artifact["path"] == ENVIRONMENT:
            if record is None:
                continue
            artifact.update(sha256=canonical.sha256_hex(record), size=len(record))
        artifacts.append(artifact)
    manifest["artifacts"] = artifacts
    body = canonical.canonical_json(manifest)
    signature = workspace.operator.sign_manifest(body)
    changes = {MANIFEST: body, SIGNATURE: signature}
    return rewrite(source, target, lambda n, d: record if n == ENVIRONMENT else changes.get(n, d))


def _unclean(record: dict) -> None:  # type: ignore[type-arg]
    record["proxy"]["environment"] = [{"name": "HTTPS_PROXY", "value": "http://10.9.8.7:3128"}]
    record["clock"]["tsa"].update(offset_seconds=31.5, uncertainty_seconds=0.02)
    record["clock"]["ntp"] = {"server": "ntp.example.net", "status": "unreachable", "reason": "TimeoutError: timed out"}
    record["egress"] = {"status": "unknown", "seen_by_target": None, "reason": "a NAT decides what the target sees"}
    record["browser"]["extension_targets"] = ["chrome-extension://abcdefghijklmnop/background.html"]
    record["browser"]["sha256"] = "0" * 64


def test_unclean_items_each_make_s4_warn_and_are_named(capture: BuiltPackage, workspace: Workspace, trust: Path,
                                                       tmp_path: Path) -> None:
    report = _report(_resigned(capture.path, tmp_path / "unclean.wacz", workspace, _unclean), trust)
    s4 = report.result("S4")
    assert s4.status is Status.WARN and s4.reason.startswith("capture environment not shown clean: ")
    named = report.facts["environment"]["clean_check"]["unclean_or_unknown"]
    for part in ("proxy variables set in the capture's environment: HTTPS_PROXY=http://10.9.8.7:3128",
                 "clock off by +31.500 s against the TSA", "clock against the NTP server ntp.example.net unreachable",
                 "egress address unknown (a NAT decides what the target sees)",
                 "browser extensions present: chrome-extension://abcdefghijklmnop/background.html",
                 "is not the one the manifest names"):
        assert any(part in finding for finding in named), (part, named)
    assert report.result("S1").status is Status.PASS  # signed as such: the record is the operator's own word


def test_capture_without_record_warns_s4(capture: BuiltPackage, workspace: Workspace, trust: Path,
                                         tmp_path: Path) -> None:
    report = _report(_resigned(capture.path, tmp_path / "old.wacz", workspace, None), trust)
    s4 = report.result("S4")
    assert s4.status is Status.WARN and "no environment record (evidence/environment-check.json)" in s4.reason


def test_malformed_record_fails_s4(capture: BuiltPackage, workspace: Workspace, trust: Path, tmp_path: Path) -> None:
    def other_format(record: dict) -> None:  # type: ignore[type-arg]
        record["format"] = "something-else/9"

    def other_capture(record: dict) -> None:  # type: ignore[type-arg]
        record["evidence_id"] = "tz-20200101T000000-000000000000"

    bad_format = _report(_resigned(capture.path, tmp_path / "f.wacz", workspace, other_format), trust)
    assert bad_format.result("S4").status is Status.FAIL
    assert "not in the tiezheng-environment-check/1 format" in bad_format.result("S4").reason
    elsewhere = _report(_resigned(capture.path, tmp_path / "e.wacz", workspace, other_capture), trust)
    assert elsewhere.result("S4").status is Status.FAIL
    assert "made for another evidence id" in elsewhere.result("S4").reason


def test_record_not_logged_first_warns_s4(capture: BuiltPackage, workspace: Workspace, trust: Path,
                                          tmp_path: Path) -> None:
    """A record made after the capture had begun is not a check *before* capture, even when signed."""
    lines = [json.loads(line) for line in member(capture.path, LOG).splitlines()]
    lines[0], lines[1] = lines[1], lines[0]
    for seq, line in enumerate(lines):
        line["seq"] = seq
    log = _relinked(lines)
    head = line_sha256(log.splitlines()[-1])
    manifest = json.loads(member(capture.path, MANIFEST))
    manifest["capture"]["log_head"] = head
    for artifact in manifest["artifacts"]:
        if artifact["path"] == LOG:
            artifact.update(sha256=canonical.sha256_hex(log), size=len(log))
    body = canonical.canonical_json(manifest)
    changes = {LOG: log, MANIFEST: body, SIGNATURE: workspace.operator.sign_manifest(body)}
    report = _report(rewrite(capture.path, tmp_path / "late.wacz", lambda n, d: changes.get(n, d)), trust)
    assert report.result("S4").status is Status.WARN
    assert "the environment record is not the first step of the call log" in report.result("S4").reason


def test_hosts_list_is_recomputed_from_the_file_text(capture: BuiltPackage, workspace: Workspace, trust: Path,
                                                     tmp_path: Path) -> None:
    """A record whose list hides an entry its own copy of the hosts file holds: S4 names the entry."""
    def hidden(record: dict) -> None:  # type: ignore[type-arg]
        hosts = record["hosts_file"]
        hosts["text"] = "127.0.0.1 localhost\n198.51.100.9 shop.example.com\n"
        hosts["sha256"] = canonical.sha256_hex(hosts["text"].encode())
        hosts.update(non_default=[], non_default_count=0)

    report = _report(_resigned(capture.path, tmp_path / "hidden.wacz", workspace, hidden), trust)
    named = report.facts["environment"]["clean_check"]["unclean_or_unknown"]
    assert report.result("S4").status is Status.WARN
    assert "hosts file: the record's list of non-default entries does not match the file" in named
    assert "hosts file has 1 non-default entry: 198.51.100.9 shop.example.com" in named
