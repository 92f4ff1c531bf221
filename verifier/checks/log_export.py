"""The checks of a log export (L1-L4): the disclosed events are in a checkpoint that the sealed
checkpoint extends, both signed by the operator, and the aggregates recompute.

A log export's ``proof/`` is the sealing proof of the anchored checkpoint (its leaf is the sha256 of
``evidence/log/anchored-checkpoint``), so H2-H5 fix that checkpoint in time and on chain; L2 ties the
checkpoint the events are proven against to it, L1 ties each event to that checkpoint.
"""

from __future__ import annotations

import json
from typing import Any

from verifier.canonical import canonical_json, sha256
from verifier.checks.context import Context, Outcome, Skip
from verifier.court_time import plural
from verifier.errors import InvalidInput, InvalidPackage, TiezhengError, VerificationError
from verifier.event_log import (
    AGGREGATES_FORMAT,
    AGGREGATES_PATH,
    ANCHORED_CHECKPOINT_PATH,
    CHECKPOINT_PATH,
    CONSISTENCY_FORMAT,
    CONSISTENCY_PATH,
    EVENTS_PATH,
    LOG_EXPORT_KIND,
    DisclosedEvent,
    aggregate,
    read_disclosed,
)
from verifier.merkle import verify_consistency, verify_inclusion
from verifier.package import PROOF_PATH
from verifier.signature import decode_public_key
from verifier.signed_note import Note, verify_note
from verifier.tlog_checkpoint import Checkpoint, parse_checkpoint
from verifier.verdict import Status

#: Mismatches a reason names before it summarises.
MAX_LISTED = 5
#: One disclosed event with its proof: an event is at most 64 KB, its proof about 2 KB.
MAX_RECORD_BYTES = 1 << 20


def _require_export(ctx: Context) -> None:
    if ctx.package.manifest.kind != LOG_EXPORT_KIND:
        raise Skip("not a log export")


def _listing(problems: list[str]) -> str:
    more = len(problems) - MAX_LISTED
    return "; ".join(problems[:MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")


def _read(ctx: Context, path: str) -> bytes:
    if path not in ctx.package.entries:
        raise VerificationError(f"the export has no {path}")
    try:
        return ctx.package.read(path)
    except InvalidPackage as exc:
        raise VerificationError(f"{path} unreadable: {exc}") from exc


def _checkpoint(ctx: Context, path: str) -> tuple[Checkpoint, Note]:
    return parse_checkpoint(_read(ctx, path))


def _events(ctx: Context) -> list[tuple[DisclosedEvent, list[bytes]]]:
    """Every export record with its inclusion path, read a line at a time (an export of many events
    is bigger than a JSON file may be). Raises VerificationError when one is malformed."""
    if EVENTS_PATH not in ctx.package.entries:
        raise VerificationError(f"the export has no {EVENTS_PATH}")
    records = []
    try:
        with ctx.package.open(EVENTS_PATH) as stream:
            for number, line in enumerate(stream, 1):
                if len(line) > MAX_RECORD_BYTES:
                    raise VerificationError(f"events.jsonl line {number} is over {MAX_RECORD_BYTES} bytes")
                records.append(_record(line, f"events.jsonl line {number}"))
    except InvalidPackage as exc:
        raise VerificationError(f"{EVENTS_PATH} unreadable: {exc}") from exc
    return records


def _record(line: bytes, where: str) -> tuple[DisclosedEvent, list[bytes]]:
    try:
        record = json.loads(line)
        path = [bytes.fromhex(h) for h in record.get("inclusion", [])]
    except (ValueError, TypeError, AttributeError) as exc:
        raise VerificationError(f"{where}: not a JSON record with a hex inclusion path") from exc
    return read_disclosed(record, where), path


def check_included(ctx: Context) -> Outcome:
    """L1: every disclosed event recomputes to a leaf included in the checkpoint."""
    _require_export(ctx)
    checkpoint, _ = _checkpoint(ctx, CHECKPOINT_PATH)
    records = _events(ctx)
    if not records:
        return Status.FAIL, "the export discloses no event"
    problems: list[str] = []
    seen: set[int] = set()
    for event, path in records:
        if event.index in seen:
            problems.append(f"event {event.index} is disclosed twice")
            continue
        seen.add(event.index)
        try:
            verify_inclusion(event.leaf, event.index, checkpoint.size, path, checkpoint.root)
        except VerificationError as exc:
            problems.append(f"event {event.index}: {exc}")
    withheld = sorted({name for event, _ in records for name in event.withheld})
    ctx.facts["log"] = {"origin": checkpoint.origin, "checkpoint_size": checkpoint.size,
                        "events": len(records), "withheld_fields": withheld}
    if problems:
        return Status.FAIL, f"{len(problems)} of {plural(len(records), 'event')} not included: {_listing(problems)}"
    hidden = f"; withheld fields (salted hashes only): {', '.join(withheld)}" if withheld else ""
    return Status.PASS, (f"all {plural(len(records), 'disclosed event')} are included in checkpoint "
                         f"{checkpoint.origin} of size {checkpoint.size}{hidden}")


def check_consistent(ctx: Context) -> Outcome:
    """L2: the checkpoint is consistent (RFC 9162) with the anchored checkpoint, the one sealed."""
    _require_export(ctx)
    checkpoint, _ = _checkpoint(ctx, CHECKPOINT_PATH)
    anchored_bytes = _read(ctx, ANCHORED_CHECKPOINT_PATH)
    anchored, _ = parse_checkpoint(anchored_bytes)
    if anchored.origin != checkpoint.origin:
        return Status.FAIL, f"the anchored checkpoint is of log {anchored.origin!r}, not {checkpoint.origin!r}"
    try:
        document = json.loads(_read(ctx, CONSISTENCY_PATH))
        if document.get("format") != CONSISTENCY_FORMAT:
            raise VerificationError(f"consistency.json format is not {CONSISTENCY_FORMAT!r}")
        proof = [bytes.fromhex(h) for h in document["consistency"]]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise VerificationError("consistency.json is not a list of hex hashes") from exc
    verify_consistency(checkpoint.size, anchored.size, proof, checkpoint.root, anchored.root)
    sealed = ctx.proof.leaf if PROOF_PATH in ctx.package.entries else None
    if sealed is not None and sealed != sha256(anchored_bytes):
        return Status.FAIL, "the anchored checkpoint is not the one sealed: its sha256 differs from proof.json's leaf"
    ctx.facts.setdefault("log", {})["anchored_size"] = anchored.size
    how = "is the anchored checkpoint" if anchored.size == checkpoint.size else (
        f"is extended by the anchored checkpoint of size {anchored.size} "
        f"({plural(len(proof), 'hash', 'hashes')} of consistency proof)")
    return Status.PASS, f"checkpoint of size {checkpoint.size} {how}; nothing logged before it was removed or rewritten"


def check_signed(ctx: Context) -> Outcome:
    """L3: both checkpoints' signed notes verify with a trusted operator key."""
    _require_export(ctx)
    signers: list[str] = []
    for path in (CHECKPOINT_PATH, ANCHORED_CHECKPOINT_PATH):
        checkpoint, note = _checkpoint(ctx, path)
        signer = _trusted_signer(ctx, note)
        if signer is None:
            manifest_key = ctx.package.manifest.operator.public_key
            try:
                verify_note(note, checkpoint.origin, decode_public_key(manifest_key))
            except (VerificationError, InvalidInput) as exc:
                return Status.FAIL, f"{path.rsplit('/', 1)[-1]}: no valid signature by a trusted operator key ({exc})"
            raise ctx.lack_trust("L3", f"the operator key that signed checkpoint {checkpoint.origin}")
        signers.append(signer)
    return Status.PASS, (f"both checkpoints are signed notes of log {checkpoint.origin}, verified with the "
                         f"operator key of '{signers[0]}'")


def _trusted_signer(ctx: Context, note: Note) -> str | None:
    """The name of the trusted operator whose key signed ``note`` (under any key name), or None."""
    for operator in ctx.trust.operators:
        for signature in note.signatures:
            try:
                verify_note(note, signature.name, operator.public_key)
            except VerificationError:
                continue
            if operator.development:
                ctx.flag_development(f"operator key '{operator.name}' is a development key")
            return operator.name
    return None


def check_aggregates(ctx: Context) -> Outcome:
    """L4: every aggregate table recomputes from the disclosed events."""
    _require_export(ctx)
    if AGGREGATES_PATH not in ctx.package.entries:
        raise Skip("the export carries no aggregates")
    try:
        document = json.loads(_read(ctx, AGGREGATES_PATH))
        tables = document["tables"] if document.get("format") == AGGREGATES_FORMAT else None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise VerificationError("aggregates.json is malformed") from exc
    if not isinstance(tables, list):
        raise VerificationError(f"aggregates.json format is not {AGGREGATES_FORMAT!r}")
    values = [dict(event.values) for event, _ in _events(ctx)]
    problems = []
    for number, table in enumerate(tables):
        by, per, rows = _table(table, number)
        try:
            computed = aggregate(values, by, per)
        except TiezhengError as exc:
            problems.append(f"table {number}: {exc}")
            continue
        if canonical_json(computed) != canonical_json(sorted(rows, key=canonical_json)):
            problems.append(f"table {number} (by {', '.join(by) or 'nothing'}{' per ' + per if per else ''}) "
                            f"does not recompute: {len(rows)} rows given, {len(computed)} computed")
    if problems:
        return Status.FAIL, _listing(problems)
    return Status.PASS, (f"every aggregate table ({len(tables)}) recomputes from the "
                         f"{plural(len(values), 'disclosed event')}")


def _table(table: Any, number: int) -> tuple[list[str], str | None, list[Any]]:
    if not isinstance(table, dict) or not isinstance(table.get("rows"), list):
        raise VerificationError(f"aggregates.json table {number} has no rows")
    by, per = table.get("by", []), table.get("per")
    if not isinstance(by, list) or not all(isinstance(b, str) for b in by) or not (per is None or isinstance(per, str)):
        raise VerificationError(f"aggregates.json table {number}: by is a list of names, per a string or null")
    return by, per, table["rows"]
