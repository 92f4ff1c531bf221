"""The zip and index layout every package is written with, read byte by byte as a replay tool reads it.

ReplayWeb.page finds an entry's data from the central directory and the local header, and finds pages
through ``indexes/index.idx``; these tests hold the writer to that for a fresh upload, for the same
package after sealing rewrote it, and for the ZIP64 decision at sizes too big to write in a test.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from evidence import upload
from tests.factory import Workspace, seal_batch
from verifier.capture_format import INDEX_PATH, INDEX_SUMMARY_PATH
from verifier.package import MANIFEST_PATH
from verifier.wacz import ZIP64_LIMIT, zip_entry

LOCAL = struct.Struct("<4sHHHHHIIIHH")
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
END = struct.Struct("<4sHHHHIIH")
ZIP64_EXTRA_ID = 0x0001
STAMP = (2026, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Header:
    name: bytes
    flags: int
    method: int
    crc: int
    compressed: int
    size: int
    extra: bytes


def _extra_ids(extra: bytes) -> list[int]:
    ids, at = [], 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, at)
        ids.append(kind)
        at += 4 + length
    return ids


def zip_layout(path: Path) -> list[tuple[Header, Header, int, int]]:
    """Every entry as ``(central, local, local offset, end of its data)``, in file order."""
    raw = path.read_bytes()
    end_at = raw.rfind(b"PK\x05\x06")
    _, _, _, _, count, cd_size, cd_offset, comment_length = END.unpack_from(raw, end_at)
    assert comment_length == 0 and end_at + END.size == len(raw)
    entries, at = [], cd_offset
    for _ in range(count):
        fields = CENTRAL.unpack_from(raw, at)
        assert fields[0] == b"PK\x01\x02"
        name_length, extra_length, comment = fields[10], fields[11], fields[12]
        name = raw[at + CENTRAL.size:at + CENTRAL.size + name_length]
        extra = raw[at + CENTRAL.size + name_length:at + CENTRAL.size + name_length + extra_length]
        central = Header(name, fields[3], fields[4], fields[7], fields[8], fields[9], extra)
        offset = fields[16]
        local_fields = LOCAL.unpack_from(raw, offset)
        assert local_fields[0] == b"PK\x03\x04" and comment == 0
        local_name_end = offset + LOCAL.size + local_fields[9]
        local = Header(raw[offset + LOCAL.size:local_name_end], local_fields[2], local_fields[3], local_fields[6],
                       local_fields[7], local_fields[8], raw[local_name_end:local_name_end + local_fields[10]])
        entries.append((central, local, offset, local_name_end + local_fields[10] + local.compressed))
        at += CENTRAL.size + name_length + extra_length + comment
    assert at == cd_offset + cd_size == end_at
    return entries


def assert_replayable_zip(path: Path) -> None:
    """Local headers agree with the central directory, carry no ZIP64 extra a small entry does not
    need, and follow each other from byte 0 to the central directory with no gap."""
    entries = zip_layout(path)
    expected_offset = 0
    for central, local, offset, data_end in entries:
        assert local == central, (local, central)
        assert ZIP64_EXTRA_ID not in _extra_ids(local.extra)
        assert not central.flags & 0x08  # no data descriptor: sizes are in the headers
        assert offset == expected_offset, f"gap before {central.name!r}"
        expected_offset = data_end
    raw = path.read_bytes()
    assert raw[expected_offset:expected_offset + 4] == b"PK\x01\x02"


def assert_zipnum_index(path: Path) -> None:
    """``index.idx`` names ``index.cdx.gz`` and locates every gzip block of it, in key order."""
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo(INDEX_PATH).compress_type == zipfile.ZIP_STORED  # read by offset in place
        blocks = archive.read(INDEX_PATH)
        summary = archive.read(INDEX_SUMMARY_PATH).decode().splitlines()
        listed = {r["path"] for r in json.loads(archive.read("datapackage.json"))["resources"]}
    assert {INDEX_PATH, INDEX_SUMMARY_PATH} <= listed
    meta_key, zero, meta = summary[0].split(" ", 2)
    assert (meta_key, zero) == ("!meta", "0")
    assert json.loads(meta) == {"format": "cdxj-gzip-1.0", "filename": "index.cdx.gz"}
    lines: list[str] = []
    covered = 0
    for row in summary[1:]:
        key, located = row.split(" {", 1)
        where = json.loads("{" + located)
        assert where["offset"] == covered
        block = zlib.decompress(blocks[where["offset"]:where["offset"] + where["length"]], wbits=16 + zlib.MAX_WBITS)
        block_lines = block.decode().splitlines()
        assert block_lines[0].startswith(key)
        lines += block_lines
        covered += where["length"]
    assert covered == len(blocks) and lines and lines == sorted(lines)
    assert gzip.decompress(blocks).decode().splitlines() == lines  # still one valid gzip file


def test_upload_and_sealed_packages_have_replayable_layout(workspace: Workspace, rpc_url: str) -> None:
    built = workspace.upload([("exhibit.txt", b"infringing copy\n"), ("photo.png", b"\x89PNG" + bytes(5000)),
                              ("说明.txt", "中文说明\n".encode())])
    assert_replayable_zip(built.path)
    assert_zipnum_index(built.path)
    seal_batch(workspace, [built], rpc_url)  # sealing rewrites the package with proof/ added
    assert_replayable_zip(built.path)
    assert_zipnum_index(built.path)
    with zipfile.ZipFile(built.path) as archive:
        assert any(name.startswith("proof/") for name in archive.namelist())
    with tempfile.TemporaryDirectory() as cwd:
        validated = subprocess.run([str(Path(sys.executable).parent / "wacz"), "validate", "-f",
                                    str(built.path.resolve())], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert validated.returncode == 0, validated.stdout + validated.stderr


@pytest.mark.parametrize(("name", "size", "method", "zip64"), [
    ("evidence/note.json", 10, zipfile.ZIP_DEFLATED, False),
    ("archive/data.warc.gz", 10, zipfile.ZIP_STORED, False),
    ("evidence/big.json", 1 << 30, zipfile.ZIP_DEFLATED, False),
    # Within 5 % of the limit, zipfile would put a ZIP64 extra in the local header only; stored, it need not.
    ("evidence/video.bin", ZIP64_LIMIT - 1000, zipfile.ZIP_STORED, False),
    ("evidence/video.bin", ZIP64_LIMIT, zipfile.ZIP_STORED, False),
    ("evidence/video.bin", ZIP64_LIMIT + 1, zipfile.ZIP_STORED, True),
    ("evidence/big.json", 3 << 30, zipfile.ZIP_STORED, True),
    ("archive/data.warc.gz", 5 << 30, zipfile.ZIP_STORED, True),
])
def test_zip64_only_where_a_size_needs_it(name: str, size: int, method: int, zip64: bool) -> None:
    info, needs_zip64 = zip_entry(name, size, STAMP)
    assert (info.compress_type, needs_zip64, info.file_size) == (method, zip64, size)
    if method == zipfile.ZIP_STORED:
        # zipfile's own rule for the central directory, once the entry is written: the same answer.
        info.compress_size = size
        assert (info.file_size > ZIP64_LIMIT or info.compress_size > ZIP64_LIMIT) == needs_zip64


@pytest.mark.parametrize("in_memory_bytes", [upload.IN_MEMORY_BYTES, 100])
def test_upload_packaged_in_memory_or_through_a_work_folder(workspace: Workspace, monkeypatch: pytest.MonkeyPatch,
                                                            in_memory_bytes: int) -> None:
    """Small uploads are packaged in memory, bigger ones through a work folder: the same package either way."""
    monkeypatch.setattr(upload, "IN_MEMORY_BYTES", in_memory_bytes)
    contents = [("exhibit.txt", b"infringing copy\n" * 20), ("photo.png", b"\x89PNG" + bytes(5000))]
    built = workspace.upload(contents)
    assert_replayable_zip(built.path)
    assert_zipnum_index(built.path)
    with zipfile.ZipFile(built.path) as archive:
        manifest = json.loads(archive.read(MANIFEST_PATH))
        for artifact in manifest["artifacts"]:  # every artifact record describes the bytes in the zip
            data = archive.read(artifact["path"])
            assert (len(data), hashlib.sha256(data).hexdigest()) == (artifact["size"], artifact["sha256"])
        assert [archive.read(f"evidence/{name}") for name, _ in contents] == [data for _, data in contents]
        warc = archive.read("archive/data.warc.gz")
    payloads = [record.content_stream().read() for record in ArchiveIterator(io.BytesIO(warc))
                if record.rec_type == "resource"]
    assert payloads == [data for _, data in contents]
