"""Capture latency and throughput on the sample site, run as ``python benchmarks/capture.py``.

The sample site (samples/site) is served on loopback; every capture is a real one: raw fetch, the
recording proxy, headless Chromium, screenshot, DOM, WARC, index, signed WACZ package written with
fsync. Measured:

* warm: one browser launched once, ``--warm`` sequential captures (after 2 warm-ups), p50/p95, with
  the default wait (network idle) and with ``wait="load"``;
* session video: the default (with video) and ``video=False``, ``--warm`` each, alternating in the same
  run so both see the same machine; the cost is the difference of the p50s, the encoder's CPU time per
  capture (ffmpeg is this process's child: its CPU is what ``RUSAGE_CHILDREN`` gains) and the video's size;
* cold: ``--cold`` runs that each launch Chromium (hashing its binary anew, as a fresh process
  would), capture once and close it;
* throughput: ``--batch`` captures through ``capture_many`` with 1, 2 and 4 at once, as captures
  per minute;
* package size: median bytes of a package and of its largest parts.

Target (DESIGN.md §8): p50 ≤ 1.5 s for the sample page with a warm browser. Prints a table, then one
JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.server
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evidence import browser as browser_module
from evidence.capture import CaptureOptions, WarmBrowser, capture_many, capture_one
from evidence.operator_key import load_or_create
from verifier.package import Requester

SITE = Path(__file__).resolve().parent.parent / "samples" / "site"
TARGET_WARM_P50_S = 1.5
REQUESTER = Requester(tenant="bench-rights", identity="bench@example.test")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_site() -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(SITE)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/index.html"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def timed_captures(url: str, count: int, browser: WarmBrowser, packages: Path, options: CaptureOptions,
                         operator: Any) -> tuple[list[float], list[Path]]:
    times, paths = [], []
    for _ in range(count):
        started = time.perf_counter()
        built = await capture_one(url, browser=browser, packages_dir=packages, operator=operator,
                                  requester=REQUESTER, options=options)
        times.append(time.perf_counter() - started)
        paths.append(built.path)
    return times, paths


async def video_cost(url: str, count: int, browser: WarmBrowser, packages: Path, operator: Any) -> dict[str, Any]:
    """With and without the session video, alternating: p50/p95 of each, encoder CPU and video size."""
    with_video, without, encoder_cpu, video_bytes = [], [], [], []
    for _ in range(count):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        times, paths = await timed_captures(url, 1, browser, packages, CaptureOptions(allow_private=True), operator)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        with_video += times
        encoder_cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        with zipfile.ZipFile(paths[0]) as archive:
            video_bytes.append(archive.getinfo("evidence/session.webm").file_size)
        times, _ = await timed_captures(url, 1, browser, packages, CaptureOptions(allow_private=True, video=False),
                                        operator)
        without += times
    return {"n": count, "video_p50_s": percentile(with_video, 0.5), "video_p95_s": percentile(with_video, 0.95),
            "no_video_p50_s": percentile(without, 0.5), "no_video_p95_s": percentile(without, 0.95),
            "encoder_cpu_p50_s": percentile(encoder_cpu, 0.5), "video_bytes_p50": percentile(video_bytes, 0.5)}


async def run(args: argparse.Namespace, folder: Path, url: str) -> dict[str, Any]:
    operator = load_or_create(folder / "operator.key")
    packages = folder / "packages"
    default = CaptureOptions(allow_private=True)
    load = CaptureOptions(allow_private=True, wait="load")
    results: dict[str, Any] = {}
    async with await WarmBrowser.launch() as browser:
        results["chromium"] = browser.facts.version
        await timed_captures(url, 2, browser, packages, default, operator)
        warm, paths = await timed_captures(url, args.warm, browser, packages, default, operator)
        warm_load, _ = await timed_captures(url, args.warm, browser, packages, load, operator)
        results["warm"] = {"n": len(warm), "p50_s": percentile(warm, 0.5), "p95_s": percentile(warm, 0.95),
                           "wait": "networkidle"}
        results["warm_load"] = {"n": len(warm_load), "p50_s": percentile(warm_load, 0.5),
                                "p95_s": percentile(warm_load, 0.95), "wait": "load"}
        results["video"] = await video_cost(url, args.warm, browser, packages, operator)
        throughput = []
        for concurrency in (1, 2, 4):
            options = CaptureOptions(allow_private=True, concurrency=concurrency)
            started = time.perf_counter()
            done = await capture_many([url] * args.batch, packages_dir=packages, operator=operator,
                                      requester=REQUESTER, options=options, browser=browser)
            elapsed = time.perf_counter() - started
            failed = [r.error for r in done if not r.ok]
            if failed:
                raise SystemExit(f"capture failed during the throughput run: {failed[0]}")
            throughput.append({"concurrency": concurrency, "captures": args.batch, "seconds": elapsed,
                               "per_minute": args.batch / elapsed * 60})
        results["throughput"] = throughput
    cold = []
    for _ in range(args.cold):
        browser_module._file_sha256.cache_clear()  # a fresh process would hash the binary again
        started = time.perf_counter()
        async with await WarmBrowser.launch() as browser:
            await capture_one(url, browser=browser, packages_dir=packages, operator=operator, requester=REQUESTER,
                              options=default)
            cold.append(time.perf_counter() - started)
    results["cold"] = {"n": len(cold), "p50_s": percentile(cold, 0.5), "p95_s": percentile(cold, 0.95)}
    sizes = [p.stat().st_size for p in paths]
    with zipfile.ZipFile(paths[0]) as archive:
        parts = {i.filename: i.file_size for i in archive.infolist()}
    results["package"] = {"median_bytes": statistics.median(sizes), "parts": parts}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=20, help="sequential warm captures per wait mode")
    parser.add_argument("--cold", type=int, default=5, help="cold starts (launch + one capture + close)")
    parser.add_argument("--batch", type=int, default=12, help="captures per throughput run")
    args = parser.parse_args()
    server, url = serve_site()
    try:
        with tempfile.TemporaryDirectory(prefix="tiezheng-bench-capture-") as workdir:
            results = asyncio.run(run(args, Path(workdir), url))
    finally:
        server.shutdown()
    warm, load, cold = results["warm"], results["warm_load"], results["cold"]
    print(f"Capture benchmark on Python {platform.python_version()}, {os.cpu_count()} CPUs; sample site on "
          f"loopback; Chromium {results.get('chromium', '')}\n")
    print(f"{'latency':<34} {'n':>4} {'p50 s':>8} {'p95 s':>8}")
    print(f"{'warm browser, wait=networkidle':<34} {warm['n']:>4} {warm['p50_s']:>8.3f} {warm['p95_s']:>8.3f}")
    print(f"{'warm browser, wait=load':<34} {load['n']:>4} {load['p50_s']:>8.3f} {load['p95_s']:>8.3f}")
    print(f"{'cold (launch + capture + close)':<34} {cold['n']:>4} {cold['p50_s']:>8.3f} {cold['p95_s']:>8.3f}")
    video = results["video"]
    print(f"{'warm, session video (default)':<34} {video['n']:>4} {video['video_p50_s']:>8.3f} "
          f"{video['video_p95_s']:>8.3f}")
    print(f"{'warm, --no-video (same run)':<34} {video['n']:>4} {video['no_video_p50_s']:>8.3f} "
          f"{video['no_video_p95_s']:>8.3f}")
    print(f"session video: +{video['video_p50_s'] - video['no_video_p50_s']:.3f} s p50 per capture, encoder CPU "
          f"{video['encoder_cpu_p50_s']:.3f} s p50, {video['video_bytes_p50']:,.0f} bytes p50")
    print(f"\n{'concurrent captures':<22} {'captures':>9} {'seconds':>9} {'per minute':>11}")
    for row in results["throughput"]:
        print(f"{row['concurrency']:<22} {row['captures']:>9} {row['seconds']:>9.2f} {row['per_minute']:>11.1f}")
    package = results["package"]
    largest = sorted(package["parts"].items(), key=lambda kv: -kv[1])[:3]
    print(f"\npackage: {package['median_bytes']:,.0f} bytes median; largest parts: "
          + ", ".join(f"{name} {size:,}" for name, size in largest))
    met = warm["p50_s"] <= TARGET_WARM_P50_S
    print(f"target warm p50 ≤ {TARGET_WARM_P50_S} s: {'met' if met else 'NOT met'} ({warm['p50_s']:.3f} s)")
    print(json.dumps({"python": platform.python_version(), "cpus": os.cpu_count(), **results,
                      "target_warm_p50_s": TARGET_WARM_P50_S, "target_met": met}, separators=(",", ":")))


if __name__ == "__main__":
    main()
