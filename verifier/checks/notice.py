"""The notice checks: N1 (a reply's provenance) and N2 (a notice's completeness). No network.

1. **N1, reply provenance** (kind ``notice-reply``). The sealed reply's DKIM signature is checked
   again, offline, against the key record sealed beside it at import (``verifier.dkim``): the
   record's name must be the one the signature names (``s=._domainkey.d=``). A changed byte in a
   signed header or the body fails. A reply with no signature warns: it is what was received, but
   nothing ties it to a domain. A signing domain that is not the From address's domain (or a parent
   of it) warns too.
2. **N2, completeness** (kind ``notice``). The sealed notice record is judged by the rule sets it
   names (``verifier.notice_rules``, the table the send gate used). First, the record and PDF must
   be what the sealed message carried: the message's JSON attachment is the record, its PDF
   attachment is ``evidence/notice.pdf``; otherwise N2 fails. A notice lacking elements warns and
   names them per rule set: the evidence of what was sent holds, the notice itself was incomplete.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

from verifier.checks.context import Context, Outcome, Skip
from verifier.dkim import MAX_MESSAGE_BYTES, DkimFailure, DkimTesting, split_message, tag_list, verify_dkim
from verifier.errors import InvalidPackage
from verifier.notice_rules import ELEMENTS, describe_missing, judge
from verifier.package import parse_json
from verifier.verdict import Status


def _listed_bytes(ctx: Context, path: Any, what: str) -> bytes:
    """The bytes of artifact ``path``, which the manifest must list. A file that differs from its
    manifest hash is still read and judged (H1 reports the difference), and noted in ``ctx.facts``."""
    artifact = next((a for a in ctx.package.manifest.artifacts if a.path == path), None)
    if artifact is None or path not in ctx.package.entries:
        raise InvalidPackage(f"the {what} ({path!r}) is not a listed artifact of the package")
    data = ctx.package.read(artifact.path, MAX_MESSAGE_BYTES)
    if hashlib.sha256(data).hexdigest() != artifact.sha256:
        ctx.facts.setdefault("notice_files_changed", []).append(artifact.path)
    return data


def _record(ctx: Context, key: str) -> Mapping[str, Any]:
    record = ctx.package.manifest.data.get(key)
    if not isinstance(record, Mapping):
        raise InvalidPackage(f"the manifest has no {key} record")
    return record


def _domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2].lower().rstrip(".")


def _moment(value: object) -> datetime | None:
    """The sealed record's fetch time: when the signature was checked at import (t= and x= are judged
    against it, not against today: a signature may expire after the reply was received and sealed)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def check_reply_provenance(ctx: Context) -> Outcome:
    """N1: the reply's DKIM signature verifies, offline, against the key record sealed at import."""
    if ctx.package.manifest.kind != "notice-reply":
        raise Skip("not a notice reply")
    reply = _record(ctx, "reply")
    message = _listed_bytes(ctx, reply.get("message"), "reply message")
    fields, _ = split_message(message)
    signature = next((raw for name, raw in fields if name == b"dkim-signature"), None)
    if signature is None:
        return Status.WARN, ("the reply carries no DKIM signature: it is sealed as received, but no domain "
                             "vouches for it")
    try:
        tags = tag_list(signature.split(b":", 1)[1])
    except DkimFailure as exc:
        return Status.FAIL, f"the reply's DKIM-Signature is malformed: {exc}"
    expected_name = (tags.get("s", b"") + b"._domainkey." + tags.get("d", b"")).decode("ascii", "replace").lower()
    dns_record = parse_json(_listed_bytes(ctx, reply.get("dns_record"), "DKIM key record"), "DKIM key record")
    if not isinstance(dns_record, Mapping):
        return Status.FAIL, "the sealed DKIM key record is not a JSON object"
    name = str(dns_record.get("name", "")).lower().rstrip(".")
    where = f"fetched from {dns_record.get('resolver')} at {dns_record.get('fetched_at')}"
    if name != expected_name:
        return Status.FAIL, (f"the sealed key record is for {name or 'nothing'}, not {expected_name} "
                             "as the signature says")
    value = dns_record.get("value")
    if not isinstance(value, str) or not value:
        return Status.FAIL, (f"no key record was found for {expected_name} at import "
                             f"({where}: {dns_record.get('error')})")
    try:
        result = verify_dkim(message, value, checked_at=_moment(dns_record.get("fetched_at")))
    except DkimTesting as exc:
        return Status.WARN, f"{exc}; the reply is sealed as received, but no domain vouches for it"
    except DkimFailure as exc:
        return Status.FAIL, f"DKIM signature of {expected_name} does not verify against the record {where}: {exc}"
    senders = [raw for name_, raw in fields if name_ == b"from"]
    if len(senders) != 1:
        return Status.FAIL, (f"the reply has {len(senders)} From fields: which sender the DKIM signature of "
                             f"{result.domain} vouches for is ambiguous")
    sender = senders[0].split(b":", 1)[-1]
    from_domain = _domain_of(sender.decode("utf-8", "replace").strip())
    ctx.facts["reply_provenance"] = {"domain": result.domain, "selector": result.selector,
                                     "algorithm": result.algorithm, "from_domain": from_domain,
                                     "resolver": dns_record.get("resolver"), "fetched_at": dns_record.get("fetched_at")}
    if result.unsigned_body_bytes:
        return Status.WARN, (f"DKIM pass for {result.domain}, but only part of the body is signed (l=): "
                             f"{result.unsigned_body_bytes} bytes at its end are not covered")
    if not (from_domain == result.domain or from_domain.endswith("." + result.domain)):
        return Status.WARN, (f"DKIM pass for {result.domain} ({result.algorithm}, key record {where}), but the "
                             f"From address is of {from_domain or 'no domain'}: the signer is not the sender's domain")
    return Status.PASS, (f"DKIM pass for {result.domain} (selector {result.selector}, {result.algorithm}), checked "
                         f"offline against the key record {where}; From is {from_domain}")


def _attachments(message: bytes) -> dict[str, bytes]:
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    found: dict[str, bytes] = {}
    if isinstance(parsed, EmailMessage):
        for part in parsed.iter_attachments():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found.setdefault(part.get_content_type(), payload)
    return found


def _delivery(ctx: Context, message: bytes) -> str:
    """How the message was delivered, as its sealed SMTP transcript shows (``"; accepted by …"``), or
    ``"!" + why`` when the transcript's DATA is not the sealed message. Empty without a transcript."""
    transcript_artifact = next((a for a in ctx.package.manifest.artifacts if a.role == "smtp-transcript"), None)
    if transcript_artifact is None:
        return ""
    transcript = parse_json(_listed_bytes(ctx, transcript_artifact.path, "SMTP transcript"), "SMTP transcript")
    if not isinstance(transcript, list):
        return "!the SMTP transcript is not a list of exchanges"
    data = next((e.get("data") for e in transcript if isinstance(e, Mapping) and isinstance(e.get("data"), Mapping)),
                None)
    if data is None:
        return "!the SMTP transcript shows no message sent (no DATA)"
    if data.get("sha256") != hashlib.sha256(_on_the_wire(message)).hexdigest():
        return "!the message in the SMTP transcript (by its sha256) is not the sealed message"
    replies = [e for e in transcript if isinstance(e, Mapping) and e.get("from") == "server"]
    after = next((i for i, e in enumerate(transcript) if isinstance(e, Mapping) and "data" in e), 0)
    accepted = next((e for e in transcript[after:] if isinstance(e, Mapping) and e.get("from") == "server"), None)
    if accepted is None or accepted.get("code") != 250:
        return "!the SMTP transcript shows no 250 accepting the message"
    delivery = _record(ctx, "notice").get("delivery")
    server = delivery.get("server") if isinstance(delivery, Mapping) else None
    tls = next((e for e in transcript if isinstance(e, Mapping) and e.get("from") == "tls"), None)
    ctx.facts["notice_delivery"] = {"server": server, "accepted": f"{accepted.get('code')} {accepted.get('text')}",
                                    "tls": tls.get("version") if tls else None, "exchanges": len(replies)}
    over = f" over {tls.get('version')}" if tls else " without TLS"
    return f"; {server or 'the server'} accepted it{over}: {accepted.get('code')} {accepted.get('text')}"


def _on_the_wire(message: bytes) -> bytes:
    """The DATA bytes an SMTP client sends for ``message`` (RFC 5321 §4.5.2 dot-stuffing, final dot line)."""
    stuffed = re.sub(rb"(?m)^\.", b"..", message)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


def check_notice_complete(ctx: Context) -> Outcome:
    """N2: the sealed notice is what was sent, and holds every element its rule sets require."""
    if ctx.package.manifest.kind != "notice":
        raise Skip("not a notice")
    notice = _record(ctx, "notice")
    record = notice.get("record")
    if not isinstance(record, Mapping):
        return Status.FAIL, "the manifest's notice record is missing"
    message = _listed_bytes(ctx, notice.get("message"), "sent message")
    delivered = _delivery(ctx, message)
    if delivered.startswith("!"):
        return Status.FAIL, delivered[1:]
    attached = _attachments(message)
    pdf = _listed_bytes(ctx, notice.get("pdf"), "notice PDF")
    if attached.get("application/pdf") != pdf:
        return Status.FAIL, "the notice PDF in the package is not the PDF the sent message carried"
    try:
        sent_record = json.loads(attached.get("application/json", b"null"))
    except ValueError:
        sent_record = None
    if sent_record != dict(record):
        return Status.FAIL, "the notice record in the manifest is not the record the sent message carried"
    results = judge(record)
    if not results:
        return Status.FAIL, "the notice names no known rule set"
    ctx.facts["notice"] = {"notice_id": record.get("notice_id"), "action": record.get("action"),
                           "version": record.get("version"), "previous": record.get("previous"),
                           "rule_sets": [r.to_json() for r in results]}
    contained = sorted({e for r in results for e in r.present}, key=list(ELEMENTS).index)
    holds = "; ".join(ELEMENTS[e].en for e in contained) or "none of the elements"
    if record.get("action") == "withdrawal":
        return Status.PASS, f"a withdrawal of an earlier notice (it needs no grounds); it holds: {holds}{delivered}"
    missing = describe_missing(results)
    if missing:
        return Status.WARN, ("the notice as sent is incomplete: " + " | ".join(missing) + f". It holds: {holds}"
                             + delivered)
    titles = ", ".join(r.rule_set.en for r in results)
    return Status.PASS, f"the notice as sent holds every element of {titles}: {holds}{delivered}"
