"""Seal a sent notice (kind ``notice``) or an imported reply (kind ``notice-reply``) as an evidence package.

Both are packages like an upload: their files are WARC ``resource`` records (so the package stays a
valid WACZ), listed with their hashes in a manifest written by ``verifier.manifest_writer`` and
signed by the operator. What differs is the typed record the manifest carries (``notice`` or
``reply``), which the verifier's N2 and N1 judge.

A notice package holds the exact bytes that went out (``evidence/message.eml``), the notice PDF and
record as attached, and the SMTP transcript. A reply package holds the raw ``.eml`` as received and
the DKIM key's DNS TXT record as fetched at import (``evidence/dkim-dns.json``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evidence.manifest import clock_source, new_evidence_id, tool_record
from evidence.operator_key import OperatorKey
from evidence.upload import BuiltPackage, _Received, _write_warc  # the upload's WARC writer: one, not a twin
from evidence.warc_index import pages_jsonl
from verifier import canonical
from verifier.capture_format import INDEX_PATH, INDEX_SUMMARY_PATH, ROLES
from verifier.manifest_writer import NewManifest, artifact_of_bytes, utc_iso
from verifier.package import MANIFEST_PATH, SIGNATURE_PATH, Requester
from verifier.wacz import Member, package_metadata, write_package

MESSAGE_PATH = "evidence/message.eml"
NOTICE_PDF_PATH = "evidence/notice.pdf"
NOTICE_RECORD_PATH = "evidence/notice.json"
TRANSCRIPT_PATH = "evidence/smtp-transcript.json"
REPLY_PATH = "evidence/reply.eml"
DKIM_DNS_PATH = "evidence/dkim-dns.json"


@dataclass(frozen=True)
class File:
    path: str
    role: str
    media_type: str
    data: bytes
    title: str


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True).encode() + b"\n"


def _build(kind: str, files: Sequence[File], *, packages_dir: Path, operator: OperatorKey, requester: Requester,
           started: datetime, method: str, target: Mapping[str, Any], note: str,
           notice: Mapping[str, Any] | None = None, reply: Mapping[str, Any] | None = None) -> BuiltPackage:
    evidence_id = new_evidence_id(started)
    received = [_Received(f.title, f.path, f.media_type, canonical.sha256_hex(f.data), len(f.data), f.data)
                for f in files]
    warc_member, warc_record, index = _write_warc(evidence_id, received, None)
    pages = pages_jsonl({"url": f"urn:tiezheng:{evidence_id}:{f.path}", "ts": utc_iso(started), "title": f.title}
                        for f in files)
    artifacts = [artifact_of_bytes(f.path, f.role, f.media_type, f.data) for f in files]
    artifacts += [warc_record,
                  artifact_of_bytes("pages/pages.jsonl", "wacz-pages", "application/x-ndjson", pages),
                  artifact_of_bytes(INDEX_PATH, ROLES[INDEX_PATH], "application/gzip", index.blocks),
                  artifact_of_bytes(INDEX_SUMMARY_PATH, ROLES[INDEX_SUMMARY_PATH], "text/plain", index.summary)]
    manifest = NewManifest(
        evidence_id=evidence_id, kind=kind, created_at=started, operator=operator.manifest_operator(),
        requester=requester, note=note, artifacts=artifacts, target=target,
        capture={"started_at": utc_iso(started), "ended_at": utc_iso(datetime.now(UTC)),
                 "tools": [tool_record()], "clock_source": clock_source(), "method": method},
        notice=notice, reply=reply)
    body = manifest.canonical_bytes
    members = [Member(f.path, data=f.data) for f in files]
    members += [warc_member, Member("pages/pages.jsonl", data=pages),
                Member(INDEX_PATH, data=index.blocks), Member(INDEX_SUMMARY_PATH, data=index.summary),
                Member(MANIFEST_PATH, data=body), Member(SIGNATURE_PATH, data=operator.sign_manifest(body))]
    destination = packages_dir / f"{evidence_id}.wacz"
    write_package(destination, members, package_metadata(f"Tiezheng {kind} {evidence_id}", started))
    return BuiltPackage(evidence_id=evidence_id, fingerprint=manifest.fingerprint, path=destination)


def build_notice_package(*, message: bytes, pdf: bytes, record: Mapping[str, Any],
                         completeness: Sequence[Mapping[str, Any]], delivery: Mapping[str, Any],
                         transcript: Sequence[Mapping[str, Any]], recipient: str, sent_at: datetime,
                         packages_dir: Path, operator: OperatorKey, requester: Requester) -> BuiltPackage:
    """Seal a notice exactly as sent: message bytes, PDF, record and SMTP transcript."""
    notice_id = str(record.get("notice_id"))
    files = [File(MESSAGE_PATH, "notice-message", "message/rfc822", message, f"{notice_id}.eml"),
             File(NOTICE_PDF_PATH, "notice-document", "application/pdf", pdf, f"{notice_id}.pdf"),
             File(NOTICE_RECORD_PATH, "notice-record", "application/json", json_bytes(record), f"{notice_id}.json"),
             File(TRANSCRIPT_PATH, "smtp-transcript", "application/json", json_bytes(list(transcript)),
                  "SMTP transcript")]
    return _build("notice", files, packages_dir=packages_dir, operator=operator, requester=requester,
                  started=sent_at, method="notice sent by the platform over SMTP; the message as it went out",
                  target={"recipient": recipient, "smtp_server": delivery.get("server")},
                  note=f"{record.get('action')} {notice_id} version {record.get('version')}",
                  notice={"record": dict(record), "completeness": [dict(c) for c in completeness],
                          "delivery": dict(delivery), "message": MESSAGE_PATH, "pdf": NOTICE_PDF_PATH})


def build_reply_package(*, eml: bytes, dns_record: Mapping[str, Any], dkim_result: Mapping[str, Any],
                        notice_id: str, notice_fingerprint: str, received_at: datetime,
                        packages_dir: Path, operator: OperatorKey, requester: Requester) -> BuiltPackage:
    """Seal a reply (or delivery-status notification) as received, with its DKIM key record as fetched."""
    files = [File(REPLY_PATH, "notice-reply", "message/rfc822", eml, "reply.eml"),
             File(DKIM_DNS_PATH, "dkim-dns-record", "application/json", json_bytes(dict(dns_record)),
                  "DKIM key record as fetched")]
    return _build("notice-reply", files, packages_dir=packages_dir, operator=operator, requester=requester,
                  started=received_at, method="reply imported by the requester; its DKIM key record fetched at import",
                  target={"notice_id": notice_id}, note=f"reply to {notice_id}",
                  reply={"notice_id": notice_id, "notice_fingerprint": notice_fingerprint,
                         "dkim_at_import": dict(dkim_result), "message": REPLY_PATH, "dns_record": DKIM_DNS_PATH})
