"""Verification speed: one sealed package, offline, per check; and whole-process against Python and OpenSSL.

* In-process: ``verify_opened`` on a real sealed upload package (dev TSA token, anvil anchor with
  its offline proof), repeated; p50/p95 of the whole verification and of each check, in report
  order, sharing the parsed material the way a real run does. Interpreter start is excluded.
* Whole process, on ``samples/packages/good-upload.wacz`` with ``--trust samples/trust.toml`` (or
  ``--package``/``--trust``): ``tiezheng-verify PACKAGE --json`` against a bare ``python -c pass``,
  against importing the X.509/CMS libraries any verification needs (the floor for imports) and
  ``verifier.cli`` itself, all with the same interpreter, and against ``openssl ts -verify`` on the
  package's own token (the floor for the timestamp part). The commands take turns, round after
  round, so that a busy machine slows them alike; medians. A first round, not counted, lets Python
  write its bytecode caches, as ``pip install`` does for an installed verifier.

Targets: ≤ 50 ms p50 in-process for one package offline (DESIGN.md §8); whole process ≤ 4× the
bare interpreter start measured in the same run (issue 12). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from anchor.devnet import Devnet
from tests.factory import make_workspace, seal_batch
from verifier.checks import run_check
from verifier.checks.context import Context
from verifier.package import open_package
from verifier.trust import load_trust
from verifier.verdict import CHECKS

TARGET_P50_MS = 50.0
TARGET_PROCESS_RATIO = 4.0
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
#: What any verification of a package imports from other projects (X.509, CMS, JCS, keccak aside):
#: no placement of the verifier's own imports gets a run below this.
LIBRARIES = "cryptography.x509, asn1crypto.cms, asn1crypto.tsp, rfc8785, rfc3161_client"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _take_turns(commands: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU time (ms) of each command; every round runs each once, after one uncounted round.

    CPU time (user + system, from the children's rusage) is the figure a busy machine disturbs least.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for round_number in range(runs + 1):
        for name, command in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, check=False, env=env)
            elapsed = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if done.returncode != 0:  # a benchmark of a failure would measure the wrong thing
                raise SystemExit(f"{name} exited {done.returncode}: {done.stdout[-300:]!r} {done.stderr[-300:]!r}")
            if round_number:
                wall[name].append(elapsed * 1000)
                cpu[name].append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in commands}


def _token_files(package: Path, trust_file: Path, folder: Path) -> dict[str, str]:
    """The package's first token, its bundled TSA certificates, the trusted roots and the digest it covers."""
    with zipfile.ZipFile(package) as archive:
        (folder / "t.tsr").write_bytes(archive.read("proof/timestamp-0.tsr"))
        (folder / "tsa.pem").write_bytes(archive.read("proof/tsa-0.pem"))
        root = json.loads(archive.read("proof/proof.json"))["root"]
    roots = [cert for tsa in load_trust(trust_file).tsas for cert in tsa.roots]
    (folder / "ca.pem").write_bytes(b"".join(cert.public_bytes(Encoding.PEM) for cert in roots))
    return {"tsr": str(folder / "t.tsr"), "certs": str(folder / "tsa.pem"), "roots": str(folder / "ca.pem"),
            "digest": root}


def _whole_process(package: Path, trust_file: Path, folder: Path, runs: int) -> dict[str, tuple[float, float]]:
    token = _token_files(package, trust_file, folder)
    cli = str(Path(sys.executable).parent / "tiezheng-verify")
    return _take_turns({
        "python": [sys.executable, "-c", "pass"],
        "import": [sys.executable, "-c", "import verifier.cli"],
        "libraries": [sys.executable, "-c", f"import {LIBRARIES}"],
        "verify": [cli, str(package), "--json", "--trust", str(trust_file)],
        "timestamp": [cli, "timestamp", token["tsr"], "--digest", token["digest"], "--roots", token["roots"],
                      "--certs", token["certs"], "--json"],
        "openssl": ["openssl", "ts", "-verify", "-digest", token["digest"], "-in", token["tsr"],
                    "-CAfile", token["roots"], "-untrusted", token["certs"]],
    }, runs)


def _in_process(root: Path, runs: int) -> tuple[int, list[float], dict[str, list[float]]]:
    """Seal a fresh upload on a devnet and verify it ``runs`` times: package size, totals, per-check times."""
    workspace = make_workspace(root)
    with Devnet(root / "chain-data", die_with_parent=True) as devnet:
        packages = [workspace.upload([("exhibit.txt", os.urandom(64 << 10)), ("photo.png", os.urandom(256 << 10))])
                    for _ in range(8)]
        seal_batch(workspace, packages, devnet.rpc_url)
    trust = load_trust(workspace.trust_file())
    package_path = packages[3].path
    totals: list[float] = []
    per_check: dict[str, list[float]] = {spec.id: [] for spec in CHECKS}
    for _ in range(runs):
        started = time.perf_counter()
        ctx = Context(package=open_package(package_path), trust=trust)
        for spec in CHECKS:
            check_started = time.perf_counter()
            run_check(spec.id, ctx)
            per_check[spec.id].append((time.perf_counter() - check_started) * 1000)
        totals.append((time.perf_counter() - started) * 1000)
    return package_path.stat().st_size, totals, per_check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="in-process verifications (0: skip, no devnet)")
    parser.add_argument("--process-runs", type=int, default=21, help="whole-process rounds")
    parser.add_argument("--package", type=Path, default=SAMPLES / "packages" / "good-upload.wacz",
                        help="the package for the whole-process runs")
    parser.add_argument("--trust", type=Path, default=SAMPLES / "trust.toml", help="its trust file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tiezheng-verify-bench-") as folder:
        process = _whole_process(args.package.resolve(), args.trust.resolve(), Path(folder), args.process_runs)
        size, totals, per_check = _in_process(Path(folder) / "in-process", args.runs) if args.runs else (0, [], {})
    result: dict[str, object] = {}
    if totals:
        p50, p95 = _percentile(totals, 0.5), _percentile(totals, 0.95)
        print(f"In process: one sealed package ({size / 1024:.0f} KiB), offline, {args.runs} runs, "
              f"Python {platform.python_version()}\n")
        print(f"{'check':<6} {'p50 ms':>8} {'p95 ms':>8}")
        for spec in CHECKS:
            values = per_check[spec.id]
            print(f"{spec.id:<6} {_percentile(values, 0.5):>8.2f} {_percentile(values, 0.95):>8.2f}")
        print(f"{'total':<6} {p50:>8.2f} {p95:>8.2f}   target p50 ≤ {TARGET_P50_MS:g} ms: "
              f"{'PASS' if p50 <= TARGET_P50_MS else 'FAIL'}\n")
        result.update({"runs": args.runs, "package_bytes": size, "p50_ms": round(p50, 3), "p95_ms": round(p95, 3),
                       "per_check_p50_ms": {k: round(_percentile(v, 0.5), 3) for k, v in per_check.items()},
                       "pass_p50": p50 <= TARGET_P50_MS})
    (python, python_cpu), (verify, verify_cpu) = process["python"], process["verify"]
    ratio, cpu_ratio = verify / python, verify_cpu / python_cpu
    print(f"Whole process: {args.package.name}, offline, median of {args.process_runs} rounds taking turns\n")
    print(f"{'command':<42} {'wall ms':>8} {'CPU ms':>8}")
    for name, label in (("python", "python -c pass (interpreter start)"),
                        ("libraries", "python -c 'import <X.509/CMS libraries>'"),
                        ("import", "python -c 'import verifier.cli'"),
                        ("verify", "tiezheng-verify PACKAGE --json"),
                        ("timestamp", "tiezheng-verify timestamp TSR --json"),
                        ("openssl", "openssl ts -verify (same token)")):
        print(f"{label:<42} {process[name][0]:>8.1f} {process[name][1]:>8.1f}")
    print(f"\ntiezheng-verify PACKAGE --json = {ratio:.2f}× the interpreter start (CPU {cpu_ratio:.2f}×), "
          f"target ≤ {TARGET_PROCESS_RATIO:g}×: {'PASS' if ratio <= TARGET_PROCESS_RATIO else 'FAIL'}; "
          f"the X.509/CMS libraries alone are {process['libraries'][0] / python:.2f}×")
    result.update({"process_package": args.package.name, "process_runs": args.process_runs,
                   **{f"{name}_wall_ms": round(wall, 1) for name, (wall, _) in process.items()},
                   **{f"{name}_cpu_ms": round(cpu, 1) for name, (_, cpu) in process.items()},
                   "process_ratio": round(ratio, 2), "process_cpu_ratio": round(cpu_ratio, 2),
                   "libraries_ratio": round(process["libraries"][0] / python, 2),
                   "pass_process_ratio": ratio <= TARGET_PROCESS_RATIO})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
