"""The live-stream side of the package format (``kind: stream``): file names, log steps, limits.

The stream recorder (``evidence.stream``) writes these files and log steps, and V1
(``verifier.checks.stream``) reads them, so both take the names from here.

A stream package holds every playlist and segment response in ``archive/data.warc.gz``, exactly as
served. The call log (``evidence/capture-log.jsonl``, hash-chained like a web capture's) holds one
``segment`` line per media segment, written as the segment arrives: its media sequence number, its
duration as the playlist stated it, the sha256 of its body and the WARC record that holds it. A span
the recorder could not get is logged as a ``gap`` line, never left out. ``evidence/stream.mp4`` is
derived: the segments remuxed without re-encoding by ffmpeg, whose command and version the
``remux`` line records.
"""

from __future__ import annotations

STREAM_KIND = "stream"
REMUX_PATH = "evidence/stream.mp4"
REMUX_ROLE = "stream-remux"

#: Protocols the recorder follows (``capture.stream.protocol``).
PROTOCOLS = ("hls", "dash", "progressive")

#: Log steps of a stream recording.
START_STEP = "start"
PLAYLIST_STEP = "playlist"
SEGMENT_STEP = "segment"
GAP_STEP = "gap"
#: The first line after a restart: the process was interrupted and this part was closed on recovery.
INTERRUPTED_STEP = "interrupted"
REMUX_STEP = "remux"
PACKAGE_STEP = "package"
#: Steps every stream log holds, in this order (others come between them).
REQUIRED_STEPS = (START_STEP, PACKAGE_STEP)

#: A segment's hash must be logged within this many seconds of the segment's arrival.
MAX_LOG_DELAY_SECONDS = 1.0
#: How far the sum of segment durations may differ from the claimed span: rounding in the
#: playlist's EXTINF values (milliseconds) per segment, plus this much overall.
DURATION_SLACK_SECONDS = 0.05
DURATION_SLACK_PER_SEGMENT = 0.002
