"""What a stream server lists: HLS media playlists (RFC 8216) and DASH MPDs (ISO/IEC 23009-1).

Only what a recorder needs is read: each media segment's URL, media sequence number and duration,
the init segment, and whether the list is final. A master playlist names variants; the recorder
follows the one with the highest bandwidth. A DASH MPD is read for its first video (or first)
representation with a ``SegmentTemplate``, numbered by ``$Number$`` from a ``SegmentTimeline``
or from a fixed ``duration``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urljoin

from verifier.errors import TiezhengError

MAX_PLAYLIST_BYTES = 4 << 20
#: A DASH timeline entry may repeat; a hostile MPD must not make us list millions of segments.
MAX_LISTED_SEGMENTS = 100_000
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')
_TEMPLATE = re.compile(r"\$(RepresentationID|Number|Bandwidth|Time)(%0(\d+)d)?\$")


class PlaylistError(TiezhengError):
    """The server's playlist or manifest cannot be read as one."""


@dataclass(frozen=True)
class MediaSegment:
    sequence: int
    duration: float
    url: str


@dataclass(frozen=True)
class Listing:
    """One reading of a playlist: its segments, in order, and whether the server says it is final."""

    segments: tuple[MediaSegment, ...]
    ended: bool
    target_duration: float
    init_url: str | None = None
    #: Set for an HLS master playlist: the variant to follow instead.
    variant_url: str | None = None


def detect_protocol(body: bytes, content_type: str | None) -> str:
    """``hls``, ``dash`` or ``progressive``, from the first bytes and the media type."""
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"#EXTM3U"):
        return "hls"
    if b"<MPD" in head or (content_type or "").startswith("application/dash+xml"):
        return "dash"
    return "progressive"


def parse_hls(text: str, base_url: str) -> Listing:
    """Read an HLS playlist. Raises PlaylistError when it is not one."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise PlaylistError("not an HLS playlist (no #EXTM3U)")
    variants: list[tuple[int, str]] = []
    sequence, target, ended, init = 0, 0.0, False, None
    duration: float | None = None
    segments: list[MediaSegment] = []
    pending_variant: int | None = None
    for line in lines[1:]:
        if line.startswith("#EXT-X-STREAM-INF:"):
            attributes = dict(_ATTRIBUTE.findall(line.split(":", 1)[1]))
            pending_variant = int(attributes.get("BANDWIDTH", "0") or 0)
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(_number(line, int))
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            target = float(_number(line, float))
        elif line.startswith("#EXT-X-ENDLIST"):
            ended = True
        elif line.startswith("#EXT-X-MAP:"):
            uri = dict(_ATTRIBUTE.findall(line.split(":", 1)[1])).get("URI", "").strip('"')
            init = urljoin(base_url, uri) if uri else None
        elif line.startswith("#EXTINF:"):
            duration = float(_number(line.split(",", 1)[0], float))
        elif not line.startswith("#"):
            if pending_variant is not None:
                variants.append((pending_variant, urljoin(base_url, line)))
                pending_variant = None
            elif duration is not None:
                segments.append(MediaSegment(sequence, duration, urljoin(base_url, line)))
                sequence += 1
                duration = None
    if variants:
        return Listing((), False, target, variant_url=max(variants)[1])
    return Listing(tuple(segments), ended, target or max((s.duration for s in segments), default=1.0), init)


def _number(line: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(line.split(":", 1)[1].strip())
    except (IndexError, ValueError) as exc:
        raise PlaylistError(f"malformed playlist tag: {line[:80]}") from exc


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in element if _local(c.tag) == name), None)


def _fill(template: str, representation: str, number: int, bandwidth: str, time: int) -> str:
    values = {"RepresentationID": representation, "Number": number, "Bandwidth": bandwidth, "Time": time}

    def one(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return str(value).zfill(int(match.group(3))) if match.group(3) else str(value)

    return _TEMPLATE.sub(one, template).replace("$$", "$")


def parse_dash(body: bytes, base_url: str) -> Listing:
    """Read a DASH MPD with a numbered SegmentTemplate. Raises PlaylistError."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        # An MPD needs neither; refusing them leaves no entity expansion for a hostile server to abuse.
        raise PlaylistError("the MPD declares a DOCTYPE or entities, which a DASH manifest never needs")
    try:
        mpd = ET.fromstring(body)  # noqa: S314 (no DOCTYPE or entity can reach the parser, see above)
    except ET.ParseError as exc:
        raise PlaylistError(f"not a readable DASH MPD: {exc}") from exc
    if _local(mpd.tag) != "MPD":
        raise PlaylistError("not a DASH MPD")
    period = _child(mpd, "Period")
    sets = [a for a in (period if period is not None else []) if _local(a.tag) == "AdaptationSet"]
    if not sets:
        raise PlaylistError("the MPD has no AdaptationSet")
    chosen = next((a for a in sets if (a.get("contentType") or a.get("mimeType") or "").startswith("video")), sets[0])
    representation = _child(chosen, "Representation")
    if representation is None:
        raise PlaylistError("the MPD's AdaptationSet has no Representation")
    template = _child(representation, "SegmentTemplate") or _child(chosen, "SegmentTemplate")
    if template is None or not template.get("media"):
        raise PlaylistError("only DASH with a SegmentTemplate is followed")
    rep_id, bandwidth = representation.get("id", ""), representation.get("bandwidth", "")
    timescale = int(template.get("timescale", "1"))
    number = int(template.get("startNumber", "1"))
    entries: list[tuple[int, int]] = []  # (start time, duration) in timescale units
    timeline = _child(template, "SegmentTimeline")
    if timeline is not None:
        time = 0
        for s in timeline:
            time = int(s.get("t", time))
            d, r = int(s.get("d", "0")), int(s.get("r", "0"))
            for _ in range(r + 1):
                entries.append((time, d))
                time += d
                if len(entries) > MAX_LISTED_SEGMENTS:
                    raise PlaylistError(f"the MPD lists more than {MAX_LISTED_SEGMENTS} segments")
    elif template.get("duration") and mpd.get("type", "static") == "static":
        d = int(template.get("duration", "0"))
        total = _iso_duration(mpd.get("mediaPresentationDuration", "PT0S")) * timescale
        entries = [(i * d, d) for i in range(min(MAX_LISTED_SEGMENTS, int(-(-total // d)) if d else 0))]
    else:
        raise PlaylistError("a live DASH MPD without a SegmentTimeline is not followed")
    media = template.get("media", "")
    segments = tuple(MediaSegment(number + i, d / timescale, urljoin(base_url, _fill(media, rep_id, number + i,
                                                                                     bandwidth, t)))
                     for i, (t, d) in enumerate(entries))
    init = template.get("initialization")
    return Listing(segments, mpd.get("type", "static") == "static",
                   max((s.duration for s in segments), default=1.0),
                   urljoin(base_url, _fill(init, rep_id, number, bandwidth, 0)) if init else None)


def _iso_duration(text: str) -> float:
    match = re.fullmatch(r"P(?:T)?(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?", text.strip())
    if not match:
        raise PlaylistError(f"unreadable duration {text[:40]!r}")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds
