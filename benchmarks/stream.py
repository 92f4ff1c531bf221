"""Live-stream recording cost, run as ``python benchmarks/stream.py``.

ffmpeg encodes a test pattern into a sliding HLS playlist on loopback (``tests/stream_source.py``),
faster than real time, and ``tiezheng capture-stream``'s service call records it for ``--seconds``
of wall time: every playlist and segment into the WARC, each segment's sha256 logged on arrival,
the remux to MP4, the signed package. Measured:

* CPU per stream-minute: the recorder process's CPU time (user + system, the ffmpeg remux and
  ffprobe children included, the ffmpeg making the stream excluded) divided by the minutes of
  media recorded;
* the delay from a segment's arrival (its response complete) to its hash being in the log, p50/p95
  and max, as the log itself records them (``arrived_at`` against the line's time).

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.service import streams
from api.service.settings import load_settings
from tests.stream_source import live_stream
from verifier.call_log import parse_call_log, parse_time
from verifier.capture_format import CAPTURE_LOG_PATH


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(seconds: float, rate: float, segment: float, size: str, bitrate: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tiezheng-bench-stream-") as work:
        root = Path(work)
        settings = load_settings(root / "data")
        settings.root.mkdir(parents=True)
        with live_stream(root / "source", "hls", segment=segment, rate=rate, window=8, size=size,
                         bitrate=bitrate) as source:
            time.sleep(1.0)
            # The remux's ffmpeg is reaped during the call (counted); the source ffmpeg after it (not).
            cpu_before, wall_before = _cpu(), time.perf_counter()
            built = streams.record_local(settings, source.url("live.m3u8"), seconds, allow_private=True)
            cpu, wall = _cpu() - cpu_before, time.perf_counter() - wall_before
        package = built[0].path
        lines = parse_call_log(zipfile.ZipFile(package).read(CAPTURE_LOG_PATH))
        segments = [line for line in lines if line.step == "segment"]
        delays = [(line.time - parse_time(line.inputs["arrived_at"])).total_seconds() * 1000 for line in segments]
        media = sum(float(line.inputs["duration"]) for line in segments)
        megabytes = sum(int(line.inputs["size"]) for line in segments) / 1e6
        return {"wall_seconds": round(wall, 2), "media_seconds": round(media, 2), "segments": len(segments),
                "gaps": sum(line.step == "gap" for line in lines), "media_mb": round(megabytes, 2),
                "package_mb": round(package.stat().st_size / 1e6, 2), "cpu_seconds": round(cpu, 2),
                "cpu_seconds_per_stream_minute": round(cpu / (media / 60), 2) if media else None,
                "delay_ms_p50": round(statistics.median(delays), 2),
                "delay_ms_p95": round(_percentile(delays, 0.95), 2),
                "delay_ms_max": round(max(delays), 2),
                "video": f"{size} x264 ultrafast 20 fps, {bitrate}bit/s CBR"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="wall seconds to record")
    parser.add_argument("--rate", type=float, default=3.0, help="how many times faster than real time")
    parser.add_argument("--segment", type=float, default=1.0, help="segment length in media seconds")
    parser.add_argument("--size", default="640x360", help="video size of the test stream")
    parser.add_argument("--bitrate", default="2M", help="constant video bitrate of the test stream (ffmpeg units)")
    args = parser.parse_args()
    result = run(args.seconds, args.rate, args.segment, args.size, args.bitrate)
    print(f"stream recording ({result['video']}), {result['media_seconds']} s of media in {result['wall_seconds']} s "
          f"({result['segments']} segments, {result['media_mb']} MB, {result['gaps']} gaps)")
    print(f"  CPU per stream-minute   {result['cpu_seconds_per_stream_minute']} s")
    print(f"  arrival → logged hash   p50 {result['delay_ms_p50']} ms, p95 {result['delay_ms_p95']} ms, "
          f"max {result['delay_ms_max']} ms (limit 1000 ms)")
    print(json.dumps({"benchmark": "stream", "python": platform.python_version(), **result}))


if __name__ == "__main__":
    main()
