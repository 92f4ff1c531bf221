"""Verification speed: one sealed package, offline, per check; and whole-process against OpenSSL.

* In-process: ``verify_opened`` on a real sealed upload package (dev TSA token, anvil anchor with
  its offline proof), repeated; p50/p95 of the whole verification and of each check, in report
  order, sharing the parsed material the way a real run does. Interpreter start is excluded.
* Whole process: ``tiezheng-verify PACKAGE --json`` against ``openssl ts -verify`` on the same
  token, as the floor for the timestamp part; medians of repeated runs.

Target (DESIGN.md §8): ≤ 50 ms p50 for one package offline. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from anchor.devnet import Devnet
from tests.factory import make_workspace, seal_batch
from verifier.checks import run_check
from verifier.checks.context import Context
from verifier.package import open_package
from verifier.report import CHECKS
from verifier.trust import load_trust

TARGET_P50_MS = 50.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _whole_process(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="in-process verifications")
    parser.add_argument("--process-runs", type=int, default=15, help="whole-process runs of each command")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tiezheng-verify-bench-") as folder:
        root = Path(folder)
        workspace = make_workspace(root)
        with Devnet(root / "chain-data", die_with_parent=True) as devnet:
            packages = [workspace.upload([("exhibit.txt", os.urandom(64 << 10)), ("photo.png", os.urandom(256 << 10))])
                        for _ in range(8)]
            head = seal_batch(workspace, packages, devnet.rpc_url)
        trust_file = workspace.trust_file()
        trust = load_trust(trust_file)
        package_path = packages[3].path

        totals: list[float] = []
        per_check: dict[str, list[float]] = {spec.id: [] for spec in CHECKS}
        for _ in range(args.runs):
            started = time.perf_counter()
            ctx = Context(package=open_package(package_path), trust=trust)
            for spec in CHECKS:
                check_started = time.perf_counter()
                run_check(spec.id, ctx)
                per_check[spec.id].append((time.perf_counter() - check_started) * 1000)
            totals.append((time.perf_counter() - started) * 1000)

        with zipfile.ZipFile(package_path) as archive:
            (root / "t.tsr").write_bytes(archive.read("proof/timestamp-0.tsr"))
            (root / "tsa.pem").write_bytes(archive.read("proof/tsa-0.pem"))
        (root / "ca.pem").write_bytes(workspace.tsa.ca_certificate_pem())
        cli = str(Path(sys.executable).parent / "tiezheng-verify")
        verify_ms = _whole_process([cli, str(package_path), "--json", "--trust", str(trust_file)], args.process_runs)
        timestamp_ms = _whole_process([cli, "timestamp", str(root / "t.tsr"), "--digest", head.hex(), "--roots",
                                       str(root / "ca.pem"), "--certs", str(root / "tsa.pem")], args.process_runs)
        openssl_ms = _whole_process(["openssl", "ts", "-verify", "-digest", head.hex(), "-in", str(root / "t.tsr"),
                                     "-CAfile", str(root / "ca.pem"), "-untrusted", str(root / "tsa.pem")],
                                    args.process_runs)
        python_ms = _whole_process([sys.executable, "-c", "pass"], args.process_runs)
        size = package_path.stat().st_size

    p50, p95 = _percentile(totals, 0.5), _percentile(totals, 0.95)
    print(f"Verification benchmark: one sealed package ({size / 1024:.0f} KiB), offline, {args.runs} runs, "
          f"Python {platform.python_version()}\n")
    print(f"{'check':<6} {'p50 ms':>8} {'p95 ms':>8}")
    for spec in CHECKS:
        values = per_check[spec.id]
        print(f"{spec.id:<6} {_percentile(values, 0.5):>8.2f} {_percentile(values, 0.95):>8.2f}")
    print(f"{'total':<6} {p50:>8.2f} {p95:>8.2f}   target p50 ≤ {TARGET_P50_MS:g} ms: "
          f"{'PASS' if p50 <= TARGET_P50_MS else 'FAIL'}\n")
    print("whole process (median):")
    print(f"  tiezheng-verify PACKAGE --json        {verify_ms:8.1f} ms")
    print(f"  tiezheng-verify timestamp TSR         {timestamp_ms:8.1f} ms")
    print(f"  openssl ts -verify (same token)       {openssl_ms:8.1f} ms   (floor for the TSA part)")
    print(f"  python -c pass (interpreter start)    {python_ms:8.1f} ms")
    print(json.dumps({"runs": args.runs, "package_bytes": size, "p50_ms": round(p50, 3), "p95_ms": round(p95, 3),
                      "per_check_p50_ms": {k: round(_percentile(v, 0.5), 3) for k, v in per_check.items()},
                      "process_verify_ms": round(verify_ms, 1), "process_timestamp_ms": round(timestamp_ms, 1),
                      "openssl_ts_verify_ms": round(openssl_ms, 1), "python_start_ms": round(python_ms, 1),
                      "pass_p50": p50 <= TARGET_P50_MS}))


if __name__ == "__main__":
    main()
