"""Close a part of a recording and seal it into a signed evidence package of kind ``stream``.

Closing logs the remux (the derived MP4, with its command and tool) and then the ``package`` step
listing every artifact, exactly as a web capture does (``evidence.capture_package``): the manifest
then names the log's last line as ``capture.log_head``, so the operator's signature covers the
whole chain of segment lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evidence.call_log import output_record
from evidence.environment import code_record, platform_record
from evidence.manifest import clock_source, file_artifact
from evidence.operator_key import OperatorKey
from evidence.stream.recording import WARC_NAME, Plan, StreamLog, media_files
from evidence.stream.remux import RemuxError, derivation, ffmpeg_record, remux
from evidence.stream.tools import stream_tools
from evidence.upload import BuiltPackage
from evidence.warc_index import cdxj_index, pages_jsonl
from verifier.call_log import LogLine, parse_call_log
from verifier.capture_format import CAPTURE_LOG_PATH, INDEX_PATH, INDEX_SUMMARY_PATH, PAGES_PATH, ROLES, WARC_PATH
from verifier.manifest_writer import NewManifest, artifact_json, artifact_of_bytes, utc_iso
from verifier.package import MANIFEST_PATH, SIGNATURE_PATH, Requester
from verifier.stream_format import (
    GAP_STEP,
    PACKAGE_STEP,
    PLAYLIST_STEP,
    REMUX_PATH,
    REMUX_ROLE,
    REMUX_STEP,
    SEGMENT_STEP,
    STREAM_KIND,
)
from verifier.wacz import Member, package_metadata, write_package


@dataclass(frozen=True)
class PartFacts:
    """What the package states about a part, read back from its own log."""

    started: datetime
    protocol: str
    playlist_url: str
    segments: int
    first_sequence: int | None
    last_sequence: int | None
    media_seconds: float
    gaps: int


def part_facts(lines: tuple[LogLine, ...]) -> PartFacts:
    segments = [line for line in lines if line.step == SEGMENT_STEP]
    playlists = [line for line in lines if line.step == PLAYLIST_STEP and isinstance(line.inputs.get("url"), str)]
    protocol = next((str(line.inputs["protocol"]) for line in lines if isinstance(line.inputs.get("protocol"), str)),
                    "unknown")
    playlist_url = str(playlists[-1].inputs["url"]) if playlists else str(lines[0].inputs.get("url", ""))
    sequences = [int(s.inputs["sequence"]) for s in segments]
    return PartFacts(started=lines[0].time, protocol=protocol, playlist_url=playlist_url, segments=len(segments),
                     first_sequence=sequences[0] if sequences else None,
                     last_sequence=sequences[-1] if sequences else None,
                     media_seconds=round(sum(float(s.inputs["duration"]) for s in segments), 6),
                     gaps=sum(1 for line in lines if line.step == GAP_STEP))


def _log_remux(part: Path, log: StreamLog, lines: tuple[LogLine, ...]) -> Path | None:
    media = media_files(part, lines)
    if not any(line.step == SEGMENT_STEP for line in lines):
        log.record(REMUX_STEP, inputs={"skipped": "no media segment was recorded"})
        return None
    try:
        remuxed = remux(media, part)
    except RemuxError as exc:
        # The segments in the WARC are the evidence; a remux that failed is stated, not hidden.
        log.record(REMUX_STEP, inputs={"input": f"{len(media)} segment files"},
                   outcome={"status": "error", "error": str(exc)})
        return None
    log.record(REMUX_STEP, inputs=derivation(remuxed), outputs=[output_record(REMUX_PATH, remuxed.path)])
    return remuxed.path


def build_stream_package(part: Path, plan: Plan, log: StreamLog, *, ended_because: str, operator: OperatorKey,
                         requester: Requester, packages_dir: Path) -> BuiltPackage:
    """Remux, log ``package``, sign the manifest and write the package. Raises SignerError."""
    lines = parse_call_log(log.path.read_bytes())
    mp4 = _log_remux(part, log, lines)
    facts = part_facts(lines)
    warc = part / WARC_NAME
    index = cdxj_index(warc)
    pages = pages_jsonl([{"url": facts.playlist_url, "ts": utc_iso(facts.started),
                          "title": f"Live stream recording, part {plan.part}"}])
    files: dict[str, Path] = {WARC_PATH: warc}
    artifacts = []
    if mp4 is not None:
        artifacts.append(file_artifact(REMUX_PATH, REMUX_ROLE, "video/mp4", mp4))
        files[REMUX_PATH] = mp4
    artifacts.append(file_artifact(WARC_PATH, ROLES[WARC_PATH], "application/warc", warc))
    memory = {PAGES_PATH: pages, INDEX_PATH: index.blocks, INDEX_SUMMARY_PATH: index.summary}
    artifacts += [artifact_of_bytes(PAGES_PATH, ROLES[PAGES_PATH], "application/x-ndjson", pages),
                  artifact_of_bytes(INDEX_PATH, ROLES[INDEX_PATH], "application/gzip", index.blocks),
                  artifact_of_bytes(INDEX_SUMMARY_PATH, ROLES[INDEX_SUMMARY_PATH], "text/plain", index.summary)]
    log.record(PACKAGE_STEP, inputs={
        "evidence_id": plan.evidence_id, "artifacts": [artifact_json(a) for a in artifacts],
        "not_logged_here": "the manifest, its signature and the package hash are made after this line"})
    log.close()
    ended = datetime.now(UTC)
    artifacts.insert(1 if mp4 is not None else 0,
                     file_artifact(CAPTURE_LOG_PATH, ROLES[CAPTURE_LOG_PATH], "application/x-ndjson", log.path))
    files[CAPTURE_LOG_PATH] = log.path
    stream: dict[str, Any] = {
        "protocol": facts.protocol, "part": plan.part, "recording_id": plan.recording_id,
        "requested_seconds": plan.requested_seconds, "ends_at": plan.ends_at, "media_seconds": facts.media_seconds,
        "segments": facts.segments, "first_sequence": facts.first_sequence, "last_sequence": facts.last_sequence,
        "gaps": facts.gaps, "ended_because": ended_because,
        "previous_last_sequence": plan.previous_last_sequence}
    capture: dict[str, Any] = {
        "started_at": utc_iso(facts.started), "ended_at": utc_iso(ended),
        "method": "automated recording by the platform: the playlist read again and again with httpx, every "
                  "playlist and segment recorded into the WARC as served, each segment's sha256 logged on arrival "
                  "in evidence/capture-log.jsonl; evidence/stream.mp4 derived with ffmpeg -c copy",
        "tools": stream_tools(), "clock_source": clock_source(), "code": code_record(), "platform": platform_record(),
        "proxy": {"kind": "none", "third_party_proxy": False,
                  "note": "the recorder's HTTP client connects to the server directly, to addresses checked by the "
                          "capture's address policy"},
        "stream": stream, "log_head": log.head,
    }
    manifest = NewManifest(
        evidence_id=plan.evidence_id, kind=STREAM_KIND, created_at=facts.started, operator=operator.manifest_operator(),
        requester=requester, note=f"live stream recording, part {plan.part}",
        target={"requested_url": plan.url, "playlist_url": facts.playlist_url, "protocol": facts.protocol},
        capture=capture, artifacts=artifacts, matter=plan.matter, watch=plan.watch,
        previous=bytes.fromhex(plan.previous) if plan.previous else None)
    body = manifest.canonical_bytes
    members = [Member(a.path, path=files[a.path]) if a.path in files else Member(a.path, data=memory[a.path])
               for a in artifacts]
    members += [Member(MANIFEST_PATH, data=body), Member(SIGNATURE_PATH, data=operator.sign_manifest(body))]
    packages_dir.mkdir(parents=True, exist_ok=True)
    destination = packages_dir / f"{plan.evidence_id}.wacz"
    write_package(destination, members, package_metadata(f"Tiezheng stream recording {plan.evidence_id}",
                                                          facts.started, facts.playlist_url))
    return BuiltPackage(evidence_id=plan.evidence_id, fingerprint=manifest.fingerprint, path=destination)


__all__ = ["build_stream_package", "ffmpeg_record", "part_facts"]
