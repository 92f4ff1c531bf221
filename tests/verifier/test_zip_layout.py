"""A zip has one reading: every layout two zip readers could read differently is unusable (exit 2).

Each hostile case starts from a genuine sealed package and changes as little as it can; each runs
through the real ``tiezheng-verify`` process and must end in one line naming the problem. The same
bytes are read by a central-directory reader, a streaming reader and Info-ZIP ``unzip -t``, to show
where they would disagree: a forged archive in front is what a streaming reader sees, one behind
is what ``zipfile`` sees, a hidden local header is a file only streaming readers list.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.factory import make_workspace, seal_batch
from tests.verifier import zip_forge as forge
from tests.verifier.zip_forge import CD, LH

CLI = str(Path(sys.executable).parent / "tiezheng-verify")
MANIFEST = "evidence/manifest.json"


@dataclass(frozen=True)
class Genuine:
    data: bytes
    trust: Path


@pytest.fixture(scope="module")
def genuine(rpc_url: str, tmp_path_factory: pytest.TempPathFactory) -> Genuine:
    workspace = make_workspace(tmp_path_factory.mktemp("layout"))
    built = workspace.upload([("exhibit.txt", b"the infringing copy, as found\n" * 50)])
    seal_batch(workspace, [built], rpc_url)
    return Genuine(built.path.read_bytes(), workspace.trust_file())


def verify_cli(data: bytes, trust: Path, tmp_path: Path, name: str = "case.wacz") -> tuple[int, dict[str, object]]:
    path = tmp_path / name
    path.write_bytes(data)
    result = subprocess.run([CLI, str(path), "--json", "--trust", str(trust)], capture_output=True, text=True,
                            timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def _forged(data: bytes) -> bytes:
    """Another zip with the same names: the exhibit replaced, as a forger would."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            target.writestr(info.filename, b"a harmless page\n" if "exhibit" in info.filename else content)
    return out.getvalue()


def _appended(data: bytes, info: zipfile.ZipInfo, content: bytes) -> bytes:
    """``data`` with one more entry appended the ordinary way (zipfile in append mode)."""
    buffer = io.BytesIO(data)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(info, content)
    return buffer.getvalue()


def _dir(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o40755 << 16
    return info


def _attributes(name: str, external: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = external
    return info


def _with_comment(data: bytes) -> bytes:
    comment = b"see also the other archive"
    return data[:-2] + struct.pack("<H", len(comment)) + comment


def _plain(data: bytes) -> bytes:
    """The same entries with plain local headers, ZIP64 nowhere (the layout of a writer using it only when needed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(zipfile.ZipInfo(info.filename, info.date_time), source.read(info), info.compress_type)
    return out.getvalue()


def _local(field: str, change: Callable[[int], int], name: str = MANIFEST) -> Callable[[bytes], bytes]:
    def mutate(genuine: bytes) -> bytes:
        data = _plain(genuine)
        record = forge.find(data, name)
        return forge.set_field(data, record.local, LH, field, change(forge.read_field(data, record.local, LH, field)))
    return mutate


def _local_name(data: bytes) -> bytes:
    record = forge.find(data, MANIFEST)
    at = record.local + 30 + len("evidence/manifes")
    return data[:at] + b"T" + data[at + 1:]


def _zip64_local_size(data: bytes) -> bytes:
    rebuilt = _zip64_locals(data)
    record = forge.find(rebuilt, MANIFEST)
    at = forge.local_zip64_extra(rebuilt, record)
    assert at is not None
    size = struct.unpack_from("<Q", rebuilt, at)[0]
    return rebuilt[:at] + struct.pack("<Q", size + 1) + rebuilt[at + 8:]


def _descriptor_crc(data: bytes) -> bytes:
    rebuilt = forge.with_data_descriptors(data)
    record = forge.find(rebuilt, MANIFEST)
    n, m = (forge.read_field(rebuilt, record.local, LH, f) for f in ("name_len", "extra_len"))
    at = record.local + 30 + n + m + forge.read_field(rebuilt, record.central, CD, "csize")
    assert rebuilt[at:at + 4] == b"PK\x07\x08"
    return rebuilt[:at + 4] + bytes([rebuilt[at + 4] ^ 1]) + rebuilt[at + 5:]


def _overlap(data: bytes) -> bytes:
    entries, _ = forge.records(data)
    return forge.set_field(data, entries[1].central, CD, "offset", entries[0].local)


def _gap(data: bytes) -> bytes:
    return forge.insert(data, forge.records(data)[0][1].local, bytes(16))


def _hidden_entry(data: bytes) -> bytes:
    # A whole local header and its data between two entries, listed in no central directory.
    content = b"planted after sealing\n"
    header = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0x21, 0, len(content), len(content),
                         len("evidence/planted.txt"), 0)
    return forge.insert(data, forge.records(data)[0][1].local, header + b"evidence/planted.txt" + content)


def _unicode_path(data: bytes) -> bytes:
    info = zipfile.ZipInfo("evidence/notes.txt")
    alias = b"evidence/manifest.json"
    info.extra = struct.pack("<HHB", 0x7075, 5 + len(alias), 1) + struct.pack("<I", 0) + alias
    return _appended(data, info, b"x")


def _zip64_end_disagrees(data: bytes) -> bytes:
    # The classic EOCD says one entry fewer than the ZIP64 record: which count a reader takes decides what it lists.
    out = bytearray(forge.with_zip64_end(data, sentinels=False))
    count = struct.unpack_from("<H", out, len(out) - forge.EOCD_SIZE + 10)[0]
    struct.pack_into("<HH", out, len(out) - forge.EOCD_SIZE + 8, count - 1, count - 1)
    return bytes(out)


def _zip64_locals(data: bytes) -> bytes:
    """The same entries written with a ZIP64 extra in every local header (the writer's old layout)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            copy = zipfile.ZipInfo(info.filename, info.date_time)
            copy.compress_type = info.compress_type
            with target.open(copy, "w", force_zip64=True) as sink:
                sink.write(source.read(info))
    return out.getvalue()


@dataclass(frozen=True)
class Case:
    build: Callable[[bytes], bytes]
    message: str
    #: Do a central-directory reader, a streaming reader and unzip -t see something different here?
    readers_disagree: bool


CASES: dict[str, Case] = {
    "prefix bytes": Case(lambda d: b"\x00" * 7 + d, "unexplained before the end records", True),
    "prefix with offsets shifted": Case(lambda d: forge.insert(d, 0, b"MZ" + bytes(62)),
                                        "precede the first local header", True),
    "suffix bytes": Case(lambda d: d + b"trailing bytes", "follow the end of central directory", False),
    "non-empty comment": Case(_with_comment, "zip comment is not empty", False),
    "forged zip in front": Case(lambda d: _forged(d) + d, "unexplained before the end records", True),
    "forged zip behind": Case(lambda d: d + _forged(d), "unexplained before the end records", True),
    "two end records": Case(lambda d: d + d[-forge.EOCD_SIZE:], "second end record", True),
    "overlapping entries": Case(_overlap, "overlaps the next entry", True),
    "local name differs": Case(_local_name, "the local header names", True),
    "local compressed size differs": Case(_local("csize", lambda v: v + 1), "disagree on its compressed size",
                                          True),
    "local size differs": Case(_local("size", lambda v: v + 1), "disagree on its size", True),
    "local CRC differs": Case(_local("crc", lambda v: v ^ 1), "disagree on its CRC", True),
    "local method differs": Case(_local("method", lambda v: 0), "disagree on its compression method", True),
    "local flags differ": Case(_local("flags", lambda v: v | 0x2), "disagree on its flags", False),
    "local time differs": Case(_local("time", lambda v: v ^ 0x20), "disagree on its modification time", False),
    "local ZIP64 size differs": Case(_zip64_local_size, "disagree on its size", True),
    "data descriptor disagrees": Case(_descriptor_crc, "data descriptor disagrees", True),
    "gap between entries": Case(_gap, "unexplained bytes follow", True),
    "hidden local header": Case(_hidden_entry, "unexplained bytes follow", True),
    "directory with data": Case(lambda d: _appended(d, _dir("evidence/folder/"), b"hidden"), "carries data",
                                False),
    "directory with ..": Case(lambda d: _appended(d, _dir("evidence/../../x/"), b""), "path traversal", False),
    "absolute directory": Case(lambda d: _appended(d, _dir("/etc/cron.d/"), b""), "absolute", False),
    "backslash directory": Case(lambda d: _appended(d, _dir("evidence\\x/"), b""), "absolute", False),
    "drive-letter directory": Case(lambda d: _appended(d, _dir("C:/x/"), b""), "absolute", False),
    "ZIP64 end record disagrees": Case(_zip64_end_disagrees, "ZIP64 record disagree", True),
    "ZIP64 extra replacing nothing": Case(lambda d: forge.with_central_zip64_offset(d, MANIFEST, sentinel=False),
                                          "does not match the fields it replaces", False),
    "file marked as a directory": Case(lambda d: _appended(d, _attributes("evidence/notes.txt", 0o40755 << 16),
                                                           b""), "marked as a directory", False),
    "file marked as a DOS directory": Case(lambda d: _appended(d, _attributes("evidence/notes.txt", 0x10), b""),
                                           "marked as a directory", False),
    "device entry": Case(lambda d: _appended(d, _attributes("evidence/tty", 0o20644 << 16), b""),
                         "device, pipe or socket", False),
    "Info-ZIP Unicode path": Case(_unicode_path, "Info-ZIP Unicode name", False),
    "names differing in case": Case(lambda d: _appended(d, zipfile.ZipInfo("EVIDENCE/Manifest.json"), b"{}"),
                                    "differ only in case", False),
}


def _readers(data: bytes, path: Path) -> tuple[object, object, int]:
    path.write_bytes(data)
    return forge.central_view(data), forge.stream_view(data), forge.unzip_test(str(path))


VARIANTS: dict[str, Callable[[bytes], bytes]] = {
    "as sealed": lambda d: d, "ZIP64 local headers": _zip64_locals, "plain local headers": _plain,
    "data descriptors": forge.with_data_descriptors, "ZIP64 end records": forge.with_zip64_end,
    "ZIP64 end records, values repeated": lambda d: forge.with_zip64_end(d, sentinels=False),
    "ZIP64 central offset": lambda d: forge.with_central_zip64_offset(d, MANIFEST)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_genuine_layouts_verify_and_every_reader_agrees(genuine: Genuine, variant: str, tmp_path: Path) -> None:
    data = VARIANTS[variant](genuine.data)
    code, report = verify_cli(data, genuine.trust, tmp_path)
    assert code == 0, report.get("error") or report["checks"]
    central, stream, unzip = _readers(data, tmp_path / "readers.zip")
    assert central == stream and isinstance(central, list) and len(central) >= 6
    assert unzip == 0


@pytest.mark.parametrize("case", CASES)
def test_hostile_layout_is_unusable(genuine: Genuine, case: str, tmp_path: Path) -> None:
    spec = CASES[case]
    data = spec.build(genuine.data)
    assert data != genuine.data
    code, report = verify_cli(data, genuine.trust, tmp_path)
    assert code == 2, report["checks"]
    assert report["verdict"] == "unusable"
    error = str(report["error"])
    assert spec.message in error and "\n" not in error and len(error) < 200, error
    baseline = _readers(genuine.data, tmp_path / "genuine.zip")
    central, stream, unzip = _readers(data, tmp_path / "readers.zip")
    disagree = central != stream or unzip != baseline[2]
    assert disagree is spec.readers_disagree, (central, stream, unzip)


def test_text_output_names_the_problem_in_one_line(genuine: Genuine, tmp_path: Path) -> None:
    path = tmp_path / "forged.wacz"
    path.write_bytes(_forged(genuine.data) + genuine.data)
    result = subprocess.run([CLI, str(path), "--trust", str(genuine.trust)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stdout.splitlines() if "unexplained before the end records" in line]
    assert len(lines) == 1, result.stdout


def test_an_empty_directory_entry_is_accounted_for_by_p3(genuine: Genuine, tmp_path: Path) -> None:
    code, report = verify_cli(_appended(genuine.data, _dir("evidence/folder/"), b""), genuine.trust, tmp_path)
    assert code == 1
    failed = {c["id"]: c["reason"] for c in report["checks"] if c["status"] == "fail"}  # type: ignore[attr-defined]
    assert "evidence/folder/" in failed["P3"]
