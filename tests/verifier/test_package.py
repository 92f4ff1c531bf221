"""Hostile and malformed packages give InvalidPackage with a clear reason, and a report says 'unusable'."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import pytest

from verifier.errors import InvalidPackage
from verifier.package import MAX_FILES, MAX_JSON_DEPTH, MAX_MANIFEST_BYTES, open_package, parse_manifest
from verifier.trust import Trust, TrustedChain
from verifier.verdict import Verdict
from verifier.verify import verify_package

TRUST = Trust(chains=(TrustedChain(chain_id=1, name="x"),))


def _manifest(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "format": "tiezheng/1", "evidence_id": "tz-1", "kind": "upload",
        "operator": {"name": "op", "key_id": "k", "public_key": "AAAA"},
        "requester": {"tenant": "t", "identity": "i"},
        "artifacts": [{"path": "evidence/a.txt", "role": "upload", "media_type": "text/plain", "size": 1,
                       "sha256": "0" * 64}],
    }
    body.update(overrides)
    return body


def _zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return path


def _with_manifest(path: Path, manifest: bytes, *extra: tuple[zipfile.ZipInfo | str, bytes]) -> Path:
    return _zip(path, [("evidence/manifest.json", manifest), *extra])


def test_opens_a_minimal_package(tmp_path: Path) -> None:
    package = open_package(_with_manifest(tmp_path / "p.wacz", json.dumps(_manifest()).encode()))
    assert package.manifest.evidence_id == "tz-1"
    assert package.manifest.artifacts[0].path == "evidence/a.txt"


@pytest.mark.parametrize(("name", "message"), [
    ("../evil.txt", "path traversal"),
    ("evidence/../../evil.txt", "path traversal"),
    ("/etc/passwd", "absolute"),
    ("C:/windows/evil", "absolute"),
    ("evidence\\evil.txt", "absolute"),
    ("evidence/a b.txt", "characters outside"),
])
def test_rejects_unsafe_names(tmp_path: Path, name: str, message: str) -> None:
    path = _with_manifest(tmp_path / "p.wacz", json.dumps(_manifest()).encode(), (name, b"x"))
    with pytest.raises(InvalidPackage, match=message):
        open_package(path)


def test_rejects_symlinks(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("evidence/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = _with_manifest(tmp_path / "p.wacz", json.dumps(_manifest()).encode(), (link, b"/etc/passwd"))
    with pytest.raises(InvalidPackage, match="symbolic link"):
        open_package(path)


def test_rejects_duplicate_names(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="Duplicate name"):
        path = _with_manifest(tmp_path / "p.wacz", json.dumps(_manifest()).encode(),
                              ("evidence/a.txt", b"1"), ("evidence/a.txt", b"2"))
    with pytest.raises(InvalidPackage, match="duplicate entry"):
        open_package(path)


def test_rejects_non_utf8_names(tmp_path: Path) -> None:
    path = _with_manifest(tmp_path / "p.wacz", json.dumps(_manifest()).encode(), ("evidence/ok.txt", b"x"))
    raw = path.read_bytes().replace(b"evidence/ok.txt", b"evidence/\xe9k.txt")
    path.write_bytes(raw)
    with pytest.raises(InvalidPackage, match="not marked UTF-8"):
        open_package(path)


def test_rejects_too_many_files(tmp_path: Path) -> None:
    entries: list[tuple[zipfile.ZipInfo | str, bytes]] = [(f"evidence/f{i}.txt", b"") for i in range(MAX_FILES)]
    path = _with_manifest(tmp_path / "p.wacz", json.dumps(_manifest()).encode(), *entries)
    with pytest.raises(InvalidPackage, match="entries, more than"):
        open_package(path)


def test_rejects_flat_zip_bomb(tmp_path: Path) -> None:
    path = _with_manifest(tmp_path / "p.wacz", json.dumps(_manifest()).encode(),
                          ("evidence/zeros.bin", bytes(64 << 20)))
    assert path.stat().st_size < 1 << 20
    with pytest.raises(InvalidPackage, match="zip bomb"):
        open_package(path)


def test_nested_zip_is_only_an_opaque_artifact(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", bytes(32 << 20))
    # The inner zip is small; it is not unpacked by us, so it is only an opaque artifact.
    path = _with_manifest(tmp_path / "p.wacz", json.dumps(_manifest()).encode(),
                          ("evidence/inner.zip", inner.getvalue()))
    assert open_package(path).entries["evidence/inner.zip"].size == len(inner.getvalue())


def test_rejects_lying_size_header(tmp_path: Path) -> None:
    # Declare 1 byte but hold more: the stream must stop at the declared size.
    path = _with_manifest(tmp_path / "p.wacz", json.dumps(_manifest()).encode(), ("evidence/a.txt", b"0123456789"))
    data = bytearray(path.read_bytes())
    central = data.rfind(b"PK\x01\x02" + bytes(0), 0)
    # Patch the central directory uncompressed size of the last entry (offset 24) to 1.
    last = data.rfind(b"evidence/a.txt") - 46
    assert data[last:last + 4] == b"PK\x01\x02" and central >= 0
    data[last + 24:last + 28] = (1).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    # The local header still says 10 bytes: two readers would disagree, so the package is refused whole.
    with pytest.raises(InvalidPackage, match="disagree on its size"):
        open_package(path)


@pytest.mark.parametrize(("declared", "message"), [(1, "inflates past its declared 1 bytes"),
                                                   (20, "holds 10 bytes, its headers say 20")])
def test_entry_bytes_must_be_exactly_what_both_headers_declare(tmp_path: Path, declared: int, message: str) -> None:
    # Both headers lie alike, so the layout agrees; the stream itself must refuse more or fewer bytes.
    path = _with_manifest(tmp_path / "p.wacz", json.dumps(_manifest()).encode(), ("evidence/a.txt", b"0123456789"))
    data = bytearray(path.read_bytes())
    for header, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = data.rfind(header, 0, data.rfind(b"evidence/a.txt"))
        data[start + at:start + at + 4] = declared.to_bytes(4, "little")
    path.write_bytes(bytes(data))
    package = open_package(path)
    with pytest.raises(InvalidPackage, match=message):
        package.hash_entry("evidence/a.txt")
    with pytest.raises(InvalidPackage, match=message):
        package.hash_entry("evidence/a.txt")  # remembered, not re-read, and still refused


def test_a_damaged_crc_is_refused_while_streaming(tmp_path: Path) -> None:
    path = _with_manifest(tmp_path / "p.wacz", json.dumps(_manifest()).encode(), ("evidence/a.txt", b"0123456789"))
    data = bytearray(path.read_bytes())
    for header, at in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        start = data.rfind(header, 0, data.rfind(b"evidence/a.txt"))
        data[start + at] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidPackage, match="CRC-32"):
        open_package(path).hash_entry("evidence/a.txt")


def _stored(name: str) -> zipfile.ZipInfo:
    # Stored, not deflated, so the size limit is what trips and not the compression-ratio guard.
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_STORED
    return info


def test_rejects_big_manifest(tmp_path: Path) -> None:
    big = json.dumps(_manifest(note="x" * MAX_MANIFEST_BYTES)).encode()
    with pytest.raises(InvalidPackage, match="over the limit"):
        open_package(_zip(tmp_path / "p.wacz", [(_stored("evidence/manifest.json"), big)]))


def test_hundred_megabyte_manifest_is_unusable_quickly(tmp_path: Path) -> None:
    manifest = b'{"note": "' + b"x" * (100 << 20) + b'"}'
    path = _zip(tmp_path / "p.wacz", [(_stored("evidence/manifest.json"), manifest)])
    report = verify_package(path, TRUST)
    assert report.verdict is Verdict.UNUSABLE
    assert "limit" in (report.unusable_reason or "")


@pytest.mark.parametrize(("manifest", "message"), [
    (b"not json", "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[]", "must be a JSON object"),
    (b'{"format": "tiezheng/1", "format": "x"}', "duplicate JSON key"),
    (b'{"format": NaN}', "non-standard JSON constant"),
    (b"[" * 100_000 + b"]" * 100_000, "nested"),
    (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "nested deeper"),
    (json.dumps(_manifest(format="other/1")).encode(), "format"),
    (json.dumps(_manifest(kind="video")).encode(), "kind"),
    (json.dumps(_manifest(artifacts="nope")).encode(), "artifacts must be a list"),
    (json.dumps(_manifest(operator={"name": 1})).encode(), "operator.name must be a str"),
    (json.dumps(_manifest(artifacts=[{"path": "a", "role": "r", "media_type": "m", "size": True,
                                      "sha256": "0" * 64}])).encode(), "size must be a int"),
    (json.dumps(_manifest(artifacts=[{"path": "a", "role": "r", "media_type": "m", "size": 1,
                                      "sha256": "XYZ"}])).encode(), "64 lowercase hex"),
    (json.dumps(_manifest(previous="AB" * 32)).encode(), "previous must be a fingerprint"),
    (json.dumps(_manifest(previous=7)).encode(), "previous must be a str"),
    (json.dumps(_manifest(subject="")).encode(), "subject must be 1 to 500"),
    (json.dumps(_manifest(subject="s" * 501)).encode(), "subject must be 1 to 500"),
    (json.dumps(_manifest(matter=["mt-1"])).encode(), "matter must be a str"),
])
def test_rejects_malformed_manifests(manifest: bytes, message: str) -> None:
    with pytest.raises(InvalidPackage, match=message):
        parse_manifest(manifest)


def test_a_watch_capture_links_its_matter_subject_and_previous() -> None:
    manifest = parse_manifest(json.dumps(_manifest(matter="mt-0123", subject="shop 42",
                                                   previous="ab" * 32)).encode())
    assert (manifest.matter, manifest.subject, manifest.previous) == ("mt-0123", "shop 42", bytes.fromhex("ab" * 32))
    plain = parse_manifest(json.dumps(_manifest()).encode())
    assert (plain.matter, plain.subject, plain.previous) == (None, None, None)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04" + bytes(100)])
def test_not_a_zip_is_unusable(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "p.wacz"
    path.write_bytes(content)
    report = verify_package(path, TRUST)
    assert report.verdict is Verdict.UNUSABLE
    assert not report.verified


def test_missing_file_is_unusable(tmp_path: Path) -> None:
    assert verify_package(tmp_path / "absent.wacz", TRUST).verdict is Verdict.UNUSABLE


def test_package_without_manifest_is_unusable(tmp_path: Path) -> None:
    report = verify_package(_zip(tmp_path / "p.wacz", [("a.txt", b"x")]), TRUST)
    assert "no evidence/manifest.json" in (report.unusable_reason or "")


def test_rejects_an_empty_entry_name(tmp_path: Path) -> None:
    # Found by the fuzzer: zipfile's ZipInfo.is_dir() fails with IndexError on an empty name.
    path = _with_manifest(tmp_path / "p.wacz", json.dumps(_manifest()).encode(), ("evidence/x", b"x"))
    data = bytearray(path.read_bytes())
    central = data.rfind(b"PK\x01\x02")  # the last central-directory entry: evidence/x
    assert data[central + 46:central + 56] == b"evidence/x"
    # Name length 0 and comment length 10: the same bytes now read as an empty name and a comment.
    data[central + 28:central + 30] = (0).to_bytes(2, "little")
    data[central + 32:central + 34] = (10).to_bytes(2, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidPackage, match="empty name"):
        open_package(path)
    assert verify_package(path, TRUST).verdict is Verdict.UNUSABLE
