"""Follow a live stream for one part of a recording and log every segment the moment it arrives.

The recorder reads the playlist (HLS) or MPD (DASH) again and again, fetches each segment it has
not yet seen, and appends one ``segment`` line to the hash-chained call log as soon as the body is
in: its sequence number, duration, sha256, size, arrival time and WARC record. Every playlist
reading and every segment goes through the capture's ``Fetcher`` (SSRF policy on each connection,
the capture's TLS policy, bytes recorded into the WARC as they crossed the wire).

A span the recorder cannot get is logged, never skipped: a segment that left the sliding playlist
before it was read, a segment the server refused, and the time between two parts after a restart
each become a ``gap`` line naming the missing sequence numbers. A progressive file (one plain media
response) is one segment whose duration ffprobe reads.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evidence.capture_errors import CaptureError
from evidence.manifest import tool_record
from evidence.network_facts import Fetcher, RawFetch
from evidence.resolver import HostResolver
from evidence.ssrf import AddressPolicy
from evidence.stream.playlists import (
    MAX_PLAYLIST_BYTES,
    Listing,
    MediaSegment,
    PlaylistError,
    detect_protocol,
    parse_dash,
    parse_hls,
)
from evidence.stream.recording import MEDIA_DIR, Plan, StreamLog, StreamWarc
from evidence.stream.remux import probe_seconds
from evidence.tls_policy import TlsPolicy
from verifier.call_log import MAX_LOG_BYTES, MAX_LOG_LINES
from verifier.manifest_writer import utc_iso
from verifier.stream_format import GAP_STEP, PLAYLIST_STEP, SEGMENT_STEP, START_STEP

MAX_SEGMENT_BYTES = 64 << 20
MAX_PROGRESSIVE_BYTES = 256 << 20
FETCH_TIMEOUT_SECONDS = 20.0
#: Poll at half the target duration (RFC 8216 §6.3.4 allows reloading that often), within bounds.
MIN_POLL_SECONDS = 0.1
MAX_POLL_SECONDS = 5.0

#: A part is closed and the recording goes on in the next one before its log reaches the verifier's
#: limits (verifier.call_log: MAX_LOG_LINES, MAX_LOG_BYTES), with room for the closing lines.
MAX_PART_LINES = MAX_LOG_LINES - 500
MAX_PART_LOG_BYTES = MAX_LOG_BYTES - (256 << 10)

ENDED_BY_DURATION = "the requested duration was reached"
ENDED_BY_SIZE = "the part reached its size limit; the recording goes on in the next part without a stop"
ENDED_BY_SERVER = "the server ended the stream"
ENDED_FILE = "the progressive file was complete"


@dataclass
class Progress:
    elapsed: float
    duration: float
    segments: int
    gaps: int


@dataclass
class PartResult:
    ended_because: str
    protocol: str
    playlist_url: str
    delays: list[float] = field(default_factory=list)


class PartRecorder:
    """Records one part into ``part``: its log is open, its WARC new. Not thread-safe."""

    def __init__(self, part: Path, plan: Plan, log: StreamLog, warc: StreamWarc, *,
                 previous_logged_at: datetime | None = None,
                 on_progress: Callable[[Progress], None] = lambda _: None) -> None:
        self.part, self.plan, self.log, self.warc = part, plan, log, warc
        self.policy, self.tls = AddressPolicy(allow_private=plan.allow_private), TlsPolicy()
        self.resolver = HostResolver(self.policy)
        self.fetcher = Fetcher(resolver=self.resolver, tls_policy=self.tls, warc=warc,
                               user_agent=f"Tiezheng/{tool_record()['version']} (stream recorder)",
                               timeout=FETCH_TIMEOUT_SECONDS)
        self.on_progress = on_progress
        self.previous_logged_at = previous_logged_at
        self.last_sequence = plan.previous_last_sequence
        self.init_logged = False
        self.segments = 0
        self.gaps = 0
        self.started = datetime.now(UTC)
        self.delays: list[float] = []
        self.last_playlist: tuple[int, str] | None = None
        self.unchanged = 0
        (part / MEDIA_DIR).mkdir(parents=True, exist_ok=True)

    # -- logging -------------------------------------------------------------------------------

    def _start(self) -> None:
        self.log.record(START_STEP, inputs={
            "evidence_id": self.plan.evidence_id, "url": self.plan.url, "recording_id": self.plan.recording_id,
            "part": self.plan.part, "requested_seconds": self.plan.requested_seconds, "ends_at": self.plan.ends_at,
            "previous": self.plan.previous, "previous_last_sequence": self.plan.previous_last_sequence,
            "continues_without_stop": self.plan.continues_without_stop,
            "address_policy": self.policy.record(), "tls": self.tls.record()})
        if self.plan.part > 1 and not self.plan.continues_without_stop:
            down = (datetime.now(UTC) - self.previous_logged_at).total_seconds() if self.previous_logged_at else None
            self.gaps += 1
            self.log.record(GAP_STEP, inputs={
                "between_parts": True, "first_missing": None, "last_missing": None,
                "seconds_not_recording": round(down, 3) if down is not None else None,
                "since": utc_iso(self.previous_logged_at) if self.previous_logged_at else None,
                "reason": "the recorder was restarted; segments still listed when it came back are fetched, "
                          "any that had left the playlist are logged as a gap below"})

    def _gap(self, first: int, last: int, reason: str) -> None:
        self.gaps += 1
        self.log.record(GAP_STEP, inputs={"first_missing": first, "last_missing": last, "reason": reason})

    def _progress(self) -> None:
        elapsed = (datetime.now(UTC) - self.started).total_seconds()
        self.on_progress(Progress(elapsed, self.plan.requested_seconds, self.segments, self.gaps))

    # -- fetching ------------------------------------------------------------------------------

    async def _fetch_playlist(self, url: str) -> RawFetch | None:
        try:
            fetched = await self.fetcher.fetch(url, limit=MAX_PLAYLIST_BYTES)
        except CaptureError as exc:
            self.log.record(PLAYLIST_STEP, inputs={"url": url}, outcome={"status": "error", "error": str(exc)})
            return None
        final = fetched.final
        digest = hashlib.sha256(fetched.body.data).hexdigest()
        # Every reading is in the WARC; the log names a reading only when it changed (or failed), so
        # an unchanged playlist read every second does not fill the log.
        if (final.status, digest) != self.last_playlist:
            self.last_playlist = (final.status, digest)
            self.log.record(PLAYLIST_STEP, inputs={
                "url": final.url, "http_status": final.status, "sha256": digest, "size": len(fetched.body.data),
                "warc_response_id": final.response_id, "warc_end": self.warc.end_offset(),
                "unchanged_readings_not_logged": self.unchanged},
                outcome=None if final.status == 200 else {"status": "error", "error": f"HTTP {final.status}"})
            self.unchanged = 0
        else:
            self.unchanged += 1
        return fetched if final.status == 200 else None

    async def _media(self, step: str, url: str, name: str, extra: dict[str, Any],
                     limit: int = MAX_SEGMENT_BYTES) -> str | None:
        """Fetch one segment, keep its body, log it; return None, or why it could not be had."""
        try:
            fetched = await self.fetcher.fetch(url, limit=limit)
        except CaptureError as exc:
            return str(exc)
        arrived = datetime.now(UTC)
        if fetched.final.status != 200:
            return f"the server answered HTTP {fetched.final.status}"
        body = fetched.body.data
        digest = hashlib.sha256(body).hexdigest()
        (self.part / MEDIA_DIR / name).write_bytes(body)
        self.log.record(step, inputs={
            "url": fetched.final.url, **extra, "sha256": digest, "size": len(body), "arrived_at": utc_iso(arrived),
            "warc_response_id": fetched.final.response_id, "warc_end": self.warc.end_offset(), "file": name})
        assert self.log.last_time is not None
        self.delays.append((self.log.last_time - arrived).total_seconds())
        return None

    async def _segment(self, segment: MediaSegment) -> None:
        if self.last_sequence is not None and segment.sequence > self.last_sequence + 1:
            reason = ("no longer listed when the recorder came back after a restart"
                      if self.plan.part > 1 and self.segments == 0 else
                      "no longer listed in the playlist when it was read (the server dropped them first)")
            self._gap(self.last_sequence + 1, segment.sequence - 1, reason)
        failure = await self._media(SEGMENT_STEP, segment.url, f"{segment.sequence:010d}.seg",
                                    {"sequence": segment.sequence, "duration": segment.duration})
        if failure is None:
            self.segments += 1
        else:
            self._gap(segment.sequence, segment.sequence, f"segment could not be fetched: {failure}")
        self.last_sequence = segment.sequence
        self._progress()

    # -- the loop --------------------------------------------------------------------------------

    def _full(self) -> bool:
        return self.log.lines >= MAX_PART_LINES or self.log.path.stat().st_size >= MAX_PART_LOG_BYTES

    def _time_left(self) -> float:
        return (self.plan.deadline - datetime.now(UTC)).total_seconds()

    async def _read_listing(self, url: str, protocol: str) -> Listing | None:
        fetched = await self._fetch_playlist(url)
        if fetched is None:
            return None
        try:
            if protocol == "hls":
                return parse_hls(fetched.body.data.decode("utf-8", "replace"), fetched.final.url)
            return parse_dash(fetched.body.data, fetched.final.url)
        except PlaylistError as exc:
            self.log.record(PLAYLIST_STEP, inputs={"url": fetched.final.url},
                            outcome={"status": "error", "error": str(exc)})
            return None

    async def run(self) -> PartResult:
        """Record until the deadline or the end of the stream. Raises CaptureError when the first
        answer is unusable (unreachable, blocked address, not a stream)."""
        self._start()
        try:
            first = await self.fetcher.fetch(self.plan.url, limit=MAX_PROGRESSIVE_BYTES)
        except CaptureError:
            self.resolver.close()
            raise
        final = first.final
        if final.status != 200:
            raise CaptureError(f"{self.plan.url[:200]} answered HTTP {final.status}")
        content_type = next((v for k, v in final.headers if k.lower() == "content-type"), None)
        protocol = detect_protocol(first.body.data, content_type)
        try:
            if protocol == "progressive":
                return await self._progressive(first)
            return await self._follow(first, protocol)
        finally:
            self.resolver.close()

    async def _progressive(self, fetched: RawFetch) -> PartResult:
        arrived = datetime.now(UTC)
        body = fetched.body.data
        name = "0000000000.seg"
        (self.part / MEDIA_DIR / name).write_bytes(body)
        seconds = probe_seconds(self.part / MEDIA_DIR / name)
        self.log.record(SEGMENT_STEP, inputs={
            "url": fetched.final.url, "protocol": "progressive", "sequence": 0, "duration": round(seconds or 0.0, 6),
            "duration_source": "ffprobe of the file as served", "sha256": hashlib.sha256(body).hexdigest(),
            "size": len(body), "arrived_at": utc_iso(arrived), "warc_response_id": fetched.final.response_id,
            "warc_end": self.warc.end_offset(), "file": name})
        self.segments = 1
        self._progress()
        return PartResult(ENDED_FILE, "progressive", fetched.final.url)

    async def _follow(self, first: RawFetch, protocol: str) -> PartResult:
        url = first.final.url
        self.last_playlist = (first.final.status, hashlib.sha256(first.body.data).hexdigest())
        self.log.record(PLAYLIST_STEP, inputs={
            "url": url, "protocol": protocol, "http_status": first.final.status,
            "sha256": hashlib.sha256(first.body.data).hexdigest(), "size": len(first.body.data),
            "warc_response_id": first.final.response_id, "warc_end": self.warc.end_offset()})
        try:
            listing = (parse_hls(first.body.data.decode("utf-8", "replace"), url) if protocol == "hls"
                       else parse_dash(first.body.data, url))
        except PlaylistError as exc:
            raise CaptureError(f"{url[:200]}: {exc}") from exc
        if listing.variant_url is not None:
            url = listing.variant_url
            listing = await self._read_listing(url, protocol) or Listing((), False, 1.0)
        while True:
            if listing.init_url and not self.init_logged:
                failure = await self._media("init", listing.init_url, "init.seg", {})
                self.init_logged = failure is None
            for segment in listing.segments:
                if self.last_sequence is not None and segment.sequence <= self.last_sequence:
                    continue
                if self._time_left() <= 0:
                    return PartResult(ENDED_BY_DURATION, protocol, url, self.delays)
                if self._full():
                    return PartResult(ENDED_BY_SIZE, protocol, url, self.delays)
                await self._segment(segment)
            if listing.ended:
                return PartResult(ENDED_BY_SERVER, protocol, url, self.delays)
            left = self._time_left()
            if left <= 0:
                return PartResult(ENDED_BY_DURATION, protocol, url, self.delays)
            await asyncio.sleep(min(max(listing.target_duration / 2, MIN_POLL_SECONDS), MAX_POLL_SECONDS, left))
            listing = await self._read_listing(url, protocol) or Listing((), False, listing.target_duration)
