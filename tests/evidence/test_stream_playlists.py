"""Reading what a stream server lists: HLS media and master playlists, DASH MPDs (pure, no network)."""

from __future__ import annotations

import pytest

from evidence.stream.playlists import PlaylistError, detect_protocol, parse_dash, parse_hls

MEDIA = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:41
#EXTINF:2.000,
live41.ts
#EXTINF:1.960,
https://cdn.example/live42.ts
#EXT-X-ENDLIST
"""

MASTER = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360
low/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2"
high/index.m3u8
"""

MPD = b"""<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic">
 <Period id="0">
  <AdaptationSet contentType="video">
   <Representation id="0" bandwidth="900000">
    <SegmentTemplate timescale="1000" initialization="init-$RepresentationID$.m4s"
                     media="chunk-$RepresentationID$-$Number%05d$.m4s" startNumber="7">
     <SegmentTimeline><S t="6000" d="1000" r="2"/><S d="500"/></SegmentTimeline>
    </SegmentTemplate>
   </Representation>
  </AdaptationSet>
 </Period>
</MPD>"""


def test_media_playlist_numbers_segments_from_the_media_sequence() -> None:
    listing = parse_hls(MEDIA, "http://origin.example/live/index.m3u8")
    assert [(s.sequence, s.duration, s.url) for s in listing.segments] == [
        (41, 2.0, "http://origin.example/live/live41.ts"), (42, 1.96, "https://cdn.example/live42.ts")]
    assert listing.ended and listing.target_duration == 2


def test_master_playlist_names_the_highest_bandwidth_variant() -> None:
    listing = parse_hls(MASTER, "http://origin.example/live/master.m3u8")
    assert listing.variant_url == "http://origin.example/live/high/index.m3u8" and not listing.segments


def test_dash_timeline_gives_numbers_durations_and_the_init_segment() -> None:
    listing = parse_dash(MPD, "http://origin.example/dash/live.mpd")
    assert [(s.sequence, s.duration) for s in listing.segments] == [(7, 1.0), (8, 1.0), (9, 1.0), (10, 0.5)]
    assert listing.segments[0].url == "http://origin.example/dash/chunk-0-00007.m4s"
    assert listing.init_url == "http://origin.example/dash/init-0.m4s" and not listing.ended


def test_protocol_is_told_from_the_body() -> None:
    assert detect_protocol(MEDIA.encode(), "application/vnd.apple.mpegurl") == "hls"
    assert detect_protocol(MPD, None) == "dash"
    assert detect_protocol(b"\x00\x00\x00\x20ftypisom", "video/mp4") == "progressive"


@pytest.mark.parametrize(("body", "message"), [
    (b'<?xml version="1.0"?><!DOCTYPE MPD [<!ENTITY a "aaaa">]><MPD>&a;</MPD>', "DOCTYPE or entities"),
    (b"<MPD", "not a readable DASH MPD"),
    (b"<MPD xmlns='urn:mpeg:dash:schema:mpd:2011'><Period/></MPD>", "no AdaptationSet"),
    (b"<MPD><Period><AdaptationSet><Representation id='v'><SegmentTemplate media='$Number$.m4s' startNumber='1'>"
     b"<SegmentTimeline><S d='1' r='200000'/></SegmentTimeline></SegmentTemplate></Representation></AdaptationSet>"
     b"</Period></MPD>", "more than 100000 segments"),
])
def test_hostile_or_unusable_mpds_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(PlaylistError, match=message):
        parse_dash(body, "http://origin.example/live.mpd")


def test_a_page_is_not_a_playlist() -> None:
    with pytest.raises(PlaylistError, match="not an HLS playlist"):
        parse_hls("<html></html>", "http://origin.example/")
