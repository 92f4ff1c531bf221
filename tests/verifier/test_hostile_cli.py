"""Hostile packages through the real CLI: `unusable` (exit 2) in bounded time and memory.

Each case runs `tiezheng-verify` in its own process and reads its peak memory from the kernel, so a
reader that buffered a bomb or recursed without end would show here.
"""

from __future__ import annotations

import io
import json
import re
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).parent / "tiezheng-verify")
MAX_SECONDS = 20
MAX_RSS_MIB = 400

MANIFEST = json.dumps({
    "format": "tiezheng/1", "evidence_id": "tz-hostile", "kind": "upload",
    "operator": {"name": "op", "key_id": "k", "public_key": "AAAA"}, "requester": {"tenant": "t", "identity": "i"},
    "artifacts": [],
}).encode()


def _zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


def _stored(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_STORED
    return info


def _symlink() -> bytes:
    link = zipfile.ZipInfo("evidence/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zip([("evidence/manifest.json", MANIFEST), (link, b"/etc/passwd")])


def _duplicate() -> bytes:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _zip([("evidence/manifest.json", MANIFEST), ("evidence/a", b"1"), ("evidence/a", b"2")])


def _non_utf8() -> bytes:
    return _zip([("evidence/manifest.json", MANIFEST), ("evidence/ok.txt", b"x")]).replace(b"ok.txt", b"\xe9k.txt")


def _sparse_bomb() -> bytes:
    import tempfile

    from tests.verifier.zip_forge import sparse_bomb

    with tempfile.TemporaryDirectory() as folder:
        return sparse_bomb(Path(folder) / "sparse.wacz", manifest=MANIFEST).read_bytes()


CASES: dict[str, Callable[[], bytes]] = {
    "three 2 GiB sparse entries under the ratio check": _sparse_bomb,
    "flat zip bomb": lambda: _zip([("evidence/manifest.json", MANIFEST), ("evidence/zeros", bytes(200 << 20))]),
    "zip slip": lambda: _zip([("evidence/manifest.json", MANIFEST), ("../../etc/cron.d/evil", b"x")]),
    "absolute name": lambda: _zip([("evidence/manifest.json", MANIFEST), ("/tmp/evil", b"x")]),
    "symlink entry": _symlink,
    "duplicate names": _duplicate,
    "non-UTF-8 name": _non_utf8,
    "100 MB manifest": lambda: _zip([(_stored("evidence/manifest.json"), b'{"x":"' + b"a" * (100 << 20) + b'"}')]),
    "deeply nested JSON": lambda: _zip([("evidence/manifest.json", b"[" * 500_000 + b"]" * 500_000)]),
    "not a zip": lambda: b"\x00" * 4096,
    "truncated zip": lambda: _zip([("evidence/manifest.json", MANIFEST)])[:-30],
}


#: Runs the CLI's main() in a fresh interpreter and reports that process's own peak memory. VmHWM
#: belongs to the new address space; ru_maxrss would carry over the forking test process's peak.
_PROBE = ("import sys\nfrom verifier.cli import main\ncode = main(sys.argv[1:])\n"
          "peak = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
          "sys.stderr.write('PEAK_KIB ' + peak.split()[1] + '\\n')\nsys.exit(code)\n")


def _run(path: Path) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run the CLI on ``path``; returns its result, wall time and its own peak RSS (MiB)."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", _PROBE, str(path), "--json"], capture_output=True, text=True,
                            timeout=MAX_SECONDS * 3)
    elapsed = time.monotonic() - started
    peak = re.search(r"PEAK_KIB (\d+)", result.stderr)
    assert peak, result.stderr
    return result, elapsed, int(peak.group(1)) / 1024


@pytest.mark.parametrize("case", CASES)
def test_hostile_input_is_unusable(case: str, tmp_path: Path) -> None:
    path = tmp_path / "hostile.wacz"
    path.write_bytes(CASES[case]())
    result, elapsed, peak_mib = _run(path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert json.loads(result.stdout)["verdict"] == "unusable"
    assert "Traceback" not in result.stderr
    assert elapsed < MAX_SECONDS
    assert peak_mib < MAX_RSS_MIB


def test_nested_zip_bomb_is_never_unpacked(tmp_path: Path) -> None:
    # Archives inside a package are opaque evidence bytes: hashed, never opened. A nested bomb costs
    # what its compressed bytes cost, and (unlisted) fails P3.
    inner = _zip([(f"layer{i}.zip", _zip([("zeros", bytes(50 << 20))])) for i in range(4)])
    path = tmp_path / "nested.wacz"
    path.write_bytes(_zip([("evidence/manifest.json", MANIFEST), (_stored("evidence/bomb.zip"), inner)]))
    result, elapsed, peak_mib = _run(path)
    assert result.returncode == 1
    assert "P3" in [c["id"] for c in json.loads(result.stdout)["checks"] if c["status"] == "fail"]
    assert elapsed < MAX_SECONDS and peak_mib < MAX_RSS_MIB
