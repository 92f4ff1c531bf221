"""Two verifiers, one verdict, for notices, replies and log exports (issue 18 for the kinds of issues 15 and 16).

Real packages made by the project's own code go through the Python verifier (its `--json` report) and through the
exported page in headless Chromium: a notice sent over loopback SMTP, replies DKIM-signed (RSA and
Ed25519, relaxed and simple) and imported against a loopback DNS server, and log exports of a log
sealed on the devnet with the embedded TSA. Tampered ones (a header byte of a reply, a dropped event,
a forked checkpoint, a changed aggregate...) must fail the same check in both. The verdict and every
check's status must agree; for the kind checks (N1, N2, L1-L4) the page must also show the CLI's
English finding word for word, and its Chinese one.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from api.service import log_pipeline
from api.service.runtime import local_trust, operator_for, trust_toml
from evidence.log_export import build_log_export
from evidence.notices.message import load_or_create_dkim_key
from evidence.notices.reply import Nameserver, import_reply
from evidence.notices.send import send_notice
from evidence.notices.smtp_send import SmtpConfig
from tests.api.test_event_log import FIRST, SHOWN, _plan, _sign_checkpoint, _tree_export, sealed_log
from tests.evidence.notices.conftest import complete_notice
from tests.evidence.notices.servers import dns_server, smtp_server
from tests.evidence.notices.test_reply_and_checks import _notice_package, _platform_key
from tests.factory import Workspace, seal_batch
from tests.tamper import replace_sealed_entry
from tests.verifier.browser_page import PageReport, built_page, open_page
from tests.verifier.test_browser_wording import node_json
from verifier import merkle
from verifier.event_log import aggregates_document, commit_event
from verifier.legal_basis import KIND_RULES, legal_basis, sources
from verifier.package import Requester
from verifier.tlog_checkpoint import Checkpoint
from verifier.trust import load_trust
from verifier.verify import verify_package

__all__ = ["sealed_log"]  # the module-scoped sealed log of tests/api/test_event_log.py, used here as a fixture

ROOT = Path(__file__).resolve().parents[2]
PLATFORM, SELECTOR = "platform.example", "s2026"
KIND_CHECKS = ("N1", "N2", "L1", "L2", "L3", "L4")
LACKING_TRUST_ZH = "无法判断：所给信任配置中缺少"


def cli_report(package: Path, trust: Path) -> dict[str, Any]:
    """What `tiezheng-verify --json` prints, computed in-process (the CLI's start-up, paid per case, is
    most of a run; tests/verifier/test_browser_parity.py covers the CLI process itself)."""
    return dict(verify_package(package, load_trust(trust)).to_json())


def _comparable(reason: str) -> str:
    """A reason without what a JSON parser says of a syntax error: each implementation has its own parser."""
    return re.sub(r"is not valid JSON: [^;]*", "is not valid JSON", reason)


def mismatches(case: str, cli: dict[str, Any], page: PageReport,
               kind_checks: tuple[str, ...] = KIND_CHECKS) -> list[str]:
    found = []
    if cli["verdict"] != page.verdict:
        found.append(f"{case}: verdict CLI {cli['verdict']!r}, page {page.verdict!r}")
    if sorted(page.statuses) != sorted(c["id"] for c in cli["checks"]):
        found.append(f"{case}: checks CLI {[c['id'] for c in cli['checks']]}, page {list(page.statuses)}")
    for check in cli["checks"]:
        shown = page.reasons.get(check["id"], "")
        if page.statuses.get(check["id"]) != check["status"]:
            found.append(f"{case}: {check['id']} CLI {check['status']} ({check['reason'][:160]}), "
                         f"page {page.statuses.get(check['id'])} (page says: {shown[:160]})")
        # Lacking trust, the CLI's Chinese quotes what is lacking in English; the page names it in Chinese.
        elif check["id"] in kind_checks and (_comparable(check["reason"]) not in _comparable(shown) or (
                check["reason_zh"] not in shown and not check["reason_zh"].startswith(LACKING_TRUST_ZH))):
            found.append(f"{case}: {check['id']} finding differs: CLI {check['reason']!r} / {check['reason_zh']!r}, "
                         f"page {shown!r}")
    return found


def _json_edit(change: Callable[[Any], Any]) -> Callable[[bytes], bytes]:
    return lambda data: json.dumps(change(json.loads(data))).encode()


#: Files of a sealed notice or reply, rewritten (datapackage.json rebuilt, so H1 alone names the change):
#: the kind check must reach the same status in both verifiers, however the file is malformed.
MALFORMED_NOTICE_FILES: list[tuple[str, str, Callable[[bytes], bytes]]] = [
    ("reply key record for another name", "evidence/dkim-dns.json",
     _json_edit(lambda r: {**r, "name": "other._domainkey.platform.example"})),
    ("reply key record not JSON", "evidence/dkim-dns.json", lambda data: b"{not json"),
    ("reply key record empty", "evidence/dkim-dns.json", _json_edit(lambda r: {**r, "value": ""})),
    ("reply DKIM-Signature malformed", "evidence/reply.eml", lambda data: data.replace(b"v=1;", b"v;", 1)),
    ("notice PDF changed", "evidence/notice.pdf", lambda data: data + b"%"),
    ("notice transcript not a list", "evidence/smtp-transcript.json", lambda data: b"{}"),
    ("notice transcript without 250", "evidence/smtp-transcript.json",
     _json_edit(lambda t: [e for e in t if e.get("code") != 250])),
]
#: The same for a log export's files.
MALFORMED_LOG_FILES: list[tuple[str, str, Callable[[bytes], bytes]]] = [
    ("events line not JSON", "evidence/log/events.jsonl", lambda data: data + b"not json\n"),
    ("events disclosed twice", "evidence/log/events.jsonl", lambda data: data + data.split(b"\n")[0] + b"\n"),
    ("events file empty", "evidence/log/events.jsonl", lambda data: b""),
    ("consistency not hex", "evidence/log/consistency.json",
     lambda data: b'{"format": "tiezheng-log-consistency/1", "consistency": ["zz"]}'),
    ("consistency of another format", "evidence/log/consistency.json", _json_edit(lambda d: {**d, "format": "x"})),
    ("checkpoint without signature", "evidence/log/checkpoint", lambda data: data.split(b"\n\n")[0] + b"\n\n"),
    ("checkpoint of another origin", "evidence/log/checkpoint", lambda data: b"other/" + data),
    ("aggregates of another format", "evidence/log/aggregates.json", lambda data: b'{"format": "x", "tables": []}'),
    ("aggregates bucket unknown", "evidence/log/aggregates.json",
     _json_edit(lambda d: {**d, "tables": [{**d["tables"][0], "per": "week"}]})),
]


@pytest.fixture(scope="module")
def page(chromium: Any) -> Any:
    return open_page(chromium, built_page().as_uri())


def _signed_reply(notice_id: str, *, key: bytes, algorithm: bytes = b"rsa-sha256",
                  canonicalize: tuple[bytes, bytes] = (b"relaxed", b"simple")) -> bytes:
    body = (f"From: IP Team <ip@{PLATFORM}>\r\nTo: notices@operator.example\r\n"
            f"Subject: Re: notice [{notice_id}]\r\nDate: {format_datetime(datetime.now(UTC))}\r\n"
            f"Message-ID: <reply-1@{PLATFORM}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "\r\n已删除相关商品链接。  We removed the listing\t on 2 Dec 2026.\r\n\r\n").encode()
    return bytes(dkim.sign(body, SELECTOR.encode(), PLATFORM.encode(), key, canonicalize=canonicalize,
                           signature_algorithm=algorithm)) + body


def _ed25519_key() -> tuple[bytes, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(seed), f"v=DKIM1; k=ed25519; p={base64.b64encode(public).decode()}"


def test_notices_and_replies_agree(page: Any, workspace: Workspace, tmp_path: Path, rpc_url: str) -> None:
    requester = Requester(tenant="owner-co", identity="counsel@owner.example")
    notice = complete_notice()
    operator_dkim = load_or_create_dkim_key(tmp_path / "dkim", domain="operator.example", selector="tz")
    with smtp_server(tmp_path, starttls=False) as mailbox:
        sent = send_notice(notice, to="ip@platform.example", sender="notices@operator.example",
                           smtp=SmtpConfig("127.0.0.1", mailbox.port), dkim_key=operator_dkim,
                           packages_dir=workspace.packages, operator=workspace.operator, requester=requester)
    incomplete = complete_notice(grounds="", guarantee_given=False)
    honest_incomplete = _notice_package(workspace, tmp_path, sent=incomplete, record=incomplete)
    forged_record = _notice_package(workspace, tmp_path, sent=incomplete, record=complete_notice())
    rsa_pem, rsa_record = _platform_key()
    ed_key, ed_record = _ed25519_key()
    replies = {
        "reply rsa relaxed/simple": (_signed_reply(notice.notice_id, key=rsa_pem), rsa_record),
        "reply rsa simple/simple": (_signed_reply(notice.notice_id, key=rsa_pem, canonicalize=(b"simple", b"simple")),
                                    rsa_record),
        "reply ed25519 relaxed/relaxed": (_signed_reply(notice.notice_id, key=ed_key, algorithm=b"ed25519-sha256",
                                                        canonicalize=(b"relaxed", b"relaxed")), ed_record),
        "reply one header byte changed before import": (
            _signed_reply(notice.notice_id, key=rsa_pem).replace(b"Subject: Re:", b"Subject: RE:", 1), rsa_record),
        "reply body changed before import": (
            _signed_reply(notice.notice_id, key=rsa_pem).replace(b"2 Dec", b"3 Dec", 1), rsa_record),
        "reply unsigned": (b"From: MAILER-DAEMON@mx.platform.example\r\nSubject: Delivery Status\r\n\r\ndelivered\r\n",
                           rsa_record),
        "reply signed by another key than the record's": (_signed_reply(notice.notice_id, key=_platform_key()[0]),
                                                          rsa_record),
    }
    packages = {"notice sent over SMTP": sent.built, "notice incomplete": honest_incomplete,
                "notice record not the one sent": forged_record}
    with dns_server() as zone:
        for name, (eml, record) in replies.items():
            zone.txt[f"{SELECTOR}._domainkey.{PLATFORM}"] = record
            packages[name], _ = import_reply(eml, notice_id=notice.notice_id, notice_fingerprint="0" * 64,
                                             nameserver=Nameserver("127.0.0.1", zone.port),
                                             packages_dir=workspace.packages, operator=workspace.operator,
                                             requester=requester)
    seal_batch(workspace, list(packages.values()), rpc_url)
    paths = {name: built.path for name, built in packages.items()}
    paths["reply header byte changed after sealing"] = replace_sealed_entry(
        packages["reply rsa relaxed/simple"].path, tmp_path / "after.wacz", "evidence/reply.eml",
        lambda data: data.replace(b"Subject: Re:", b"Subject: RE:", 1))
    paths["notice transcript not of the sealed message"] = replace_sealed_entry(
        sent.built.path, tmp_path / "transcript.wacz", "evidence/smtp-transcript.json",
        lambda data: data.replace(b'"sha256": "', b'"sha256": "0', 1)[:-1] + b"\n")
    reply = packages["reply rsa relaxed/simple"].path
    for number, (name, entry, mutate) in enumerate(MALFORMED_NOTICE_FILES):
        source = reply if entry in ("evidence/reply.eml", "evidence/dkim-dns.json") else sent.built.path
        paths[name] = replace_sealed_entry(source, tmp_path / f"malformed-{number}.wacz", entry, mutate)
    trust = workspace.trust_file()
    problems: list[str] = []
    reports = {}
    for name, path in paths.items():
        reports[name] = cli_report(path, trust)
        problems += mismatches(name, reports[name], page.verify(path, trust))
    assert problems == [], "\n".join(problems)
    status = {name: {c["id"]: c["status"] for c in r["checks"]} for name, r in reports.items()}
    # The cases are what they claim: each passes or fails where it should, in both verifiers.
    assert status["notice sent over SMTP"]["N2"] == "pass"
    assert reports["notice sent over SMTP"]["verdict"] == "verified (offline)"
    assert status["notice incomplete"]["N2"] == "warn" and status["notice record not the one sent"]["N2"] == "fail"
    assert status["notice transcript not of the sealed message"]["N2"] == "fail"
    for good in ("reply rsa relaxed/simple", "reply rsa simple/simple", "reply ed25519 relaxed/relaxed"):
        assert status[good]["N1"] == "pass", (good, reports[good]["checks"])
    for bad in ("reply one header byte changed before import", "reply body changed before import",
                "reply signed by another key than the record's", "reply header byte changed after sealing"):
        assert status[bad]["N1"] == "fail", bad
    assert status["reply unsigned"]["N1"] == "warn"


def _export(sealed: Any, honest: Any, folder: str, **changes: Any) -> Path:
    built = build_log_export(dataclasses.replace(honest, **changes), packages_dir=sealed.settings.packages_dir / folder,
                             operator=operator_for(sealed.settings), requester=Requester("local", "counsel"))
    return Path(built.path)


def test_log_exports_agree(page: Any, sealed_log: Any, tmp_path: Path) -> None:
    settings = sealed_log.settings
    trust = tmp_path / "trust.toml"
    trust.write_text(trust_toml(local_trust(settings)))
    plan, honest, everything = _plan(sealed_log)
    tampered = [json.loads(json.dumps(r)) for r in honest.records]
    tampered[3]["disclosed"]["device_id"]["value"] = "device-9"
    reordered = [json.loads(json.dumps(r)) for r in honest.records]
    reordered[0]["index"], reordered[1]["index"] = reordered[1]["index"], reordered[0]["index"]
    # The operator drops event 10 and rebuilds its tree: its own proofs hold, the anchored checkpoint does not.
    rewritten = everything[:10] + everything[11:]
    root, dropped_records = _tree_export(rewritten, FIRST - 1, range(20, 30))
    cut = _sign_checkpoint(settings, Checkpoint(honest.origin, FIRST - 1, root))
    rewritten_leaves = [merkle.leaf_hash(commit_event(e, s)) for _, e, s in rewritten]
    # Same size as the anchored checkpoint, another history: event 5 says something else.
    fork = list(everything)
    index, event, salt = fork[5]
    fork[5] = (index, {**event, "ip": "198.51.100.1"}, salt)
    fork_root, fork_records = _tree_export(fork, len(everything), range(0, 10))
    forked = _sign_checkpoint(settings, Checkpoint(honest.origin, len(everything), fork_root))
    other_key = ed25519.Ed25519PrivateKey.generate()
    stranger = _sign_checkpoint(settings, Checkpoint(honest.origin, plan.checkpoint.size,
                                                     bytes.fromhex(plan.checkpoint.root)),
                                other_key.sign, other_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                                                    serialization.PublicFormat.Raw))
    assert honest.aggregates is not None
    shown = [{k: v["value"] for k, v in r["disclosed"].items()} for r in honest.records]
    changed_table = aggregates_document(shown, [(["device_id"], "hour")])
    changed_table["tables"][0]["rows"][0]["events"] += 1
    cases = {
        "honest export with aggregates": _export(sealed_log, honest, "honest"),
        "export without aggregates": Path(log_pipeline.export(settings, sealed_log.engine, "likes",
                                                              "type=view", SHOWN).path),
        "tampered event": _export(sealed_log, honest, "tampered", records=tampered, aggregates=None),
        "reordered events": _export(sealed_log, honest, "reordered", records=reordered),
        "dropped event": _export(sealed_log, honest, "dropped", records=dropped_records, checkpoint=cut,
                                 consistency=merkle.consistency_proof(rewritten_leaves, FIRST - 1), aggregates=None),
        "forked checkpoint": _export(sealed_log, honest, "forked", records=fork_records, checkpoint=forked,
                                     consistency=[], aggregates=None),
        "checkpoint signed by another key": _export(sealed_log, honest, "stranger", checkpoint=stranger),
        "changed aggregate": _export(sealed_log, honest, "aggregate", aggregates=changed_table),
    }
    honest_path = cases["honest export with aggregates"]
    for number, (name, entry, mutate) in enumerate(MALFORMED_LOG_FILES):
        cases[name] = replace_sealed_entry(honest_path, tmp_path / f"malformed-{number}.wacz", entry, mutate)
    problems: list[str] = []
    status = {}
    for name, path in cases.items():
        cli = cli_report(path, trust)
        status[name] = {c["id"]: c["status"] for c in cli["checks"]} | {"verdict": cli["verdict"]}
        problems += mismatches(name, cli, page.verify(path, trust))
    # Without the operator's key in the trust, who signed the checkpoints cannot be judged: L3 skips in both.
    no_operator = tmp_path / "no-operator.toml"
    no_operator.write_text(trust_toml(dataclasses.replace(local_trust(settings), operators=())))
    cli = cli_report(cases["honest export with aggregates"], no_operator)
    problems += mismatches("honest export, no operator in the trust", cli,
                           page.verify(cases["honest export with aggregates"], no_operator))
    assert problems == [], "\n".join(problems)
    assert cli["verdict"] == "cannot judge" and {c["id"]: c["status"] for c in cli["checks"]}["L3"] == "skip"
    assert status["honest export with aggregates"]["verdict"] == "verified (offline)"
    assert status["export without aggregates"]["L4"] == "skip"
    expected_failure = {"tampered event": "L1", "reordered events": "L1", "dropped event": "L2",
                        "forked checkpoint": "L2", "checkpoint signed by another key": "L3", "changed aggregate": "L4"}
    for name, check in expected_failure.items():
        assert status[name][check] == "fail" and status[name]["verdict"] == "failed", (name, status[name])


def test_page_consistency_code_passes_public_vectors() -> None:
    """The page's RFC 9162 consistency proofs (L2) against transparency-dev/merkle's vectors (tests/vectors)."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    result = subprocess.run(["node", str(ROOT / "verifier" / "browser" / "test" / "merkle_vectors.mjs"),
                             str(ROOT / "tests" / "vectors" / "merkle" / "consistency")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "98 vectors, 0 failures" in result.stdout


def test_page_cites_the_kind_checks_as_python_does() -> None:
    """The page's legal bases of N1, N2 and L1-L4 (legalbasis.js KIND_RULES, KIND_BASES) are legal_basis.py's."""
    page = node_json("""
        import { KIND_RULES, legalBasis, sources } from "./legalbasis.js";
        const ids = ["N1", "N2", "L1", "L2", "L3", "L4"];
        console.log(JSON.stringify({ KIND_RULES, text: Object.fromEntries(ids.map((id) =>
          [id, { zh: legalBasis(id, "zh"), en: legalBasis(id, "en"), sources: sources(id) }])) }));
    """)
    assert page["KIND_RULES"] == {key: {"zh": r.zh, "en": r.en, "source": r.source} for key, r in KIND_RULES.items()}
    for cid in KIND_CHECKS:
        assert page["text"][cid] == {"zh": legal_basis(cid, "zh"), "en": legal_basis(cid, "en"),
                                     "sources": list(sources(cid))}, cid
