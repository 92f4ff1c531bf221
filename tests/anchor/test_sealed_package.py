"""Sealed packages assembled from an immutable built package and proof objects.

The assembly must give one valid WACZ with the strict one reading (tiling, local header == central
record, ZIP64 only when needed), copy the built entries raw, be deterministic, and verify when the
proof objects come from the real sealer.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from cryptography import x509
from sqlmodel import Session, select

import anchor.sealed_package as sealed_module
from anchor.attach import proof_addresses
from anchor.devnet import DEV_OPERATOR_KEY, DEVNET_CHAIN_ID
from anchor.sealed_package import FileSource, sealed_package, write_sealed
from anchor.sealer import ChainEndpoint, Sealer, SealerConfig, TSAEndpoint
from anchor.store import SealBatchProof, SealItemProof, make_engine, sqlite_url
from tests.factory import Workspace
from verifier.errors import InvalidPackage
from verifier.package import DATAPACKAGE_PATH
from verifier.trust import load_trust
from verifier.verify import verify_package
from verifier.zip_layout import read_layout

PROOF_FILES = [("proof/proof.json", b'{"format":"tiezheng-proof/1"}'), ("proof/timestamp-0.tsr", b"\x30\x03token"),
               ("proof/anchor.json", b'{"format":"tiezheng-anchor/1"}')]


class MemoryStore:
    """A content-addressed store in a dict: what the sealer needs of the blob store."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_bytes(self, data: bytes) -> str:
        address = hashlib.sha256(data).hexdigest()
        self.objects[address] = data
        return address

    def get_bytes(self, address: str) -> bytes:
        return self.objects[address]


def assembled(path: Path, proof_files: list[tuple[str, bytes]]) -> bytes:
    plan = sealed_package(FileSource(path), proof_files)
    data = b"".join(plan.chunks())
    assert len(data) == plan.size
    return data


def one_reading(data: bytes) -> list[str]:
    layout = read_layout(io.BytesIO(data), len(data), max_entries=10_000)  # type: ignore[arg-type]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert [i.filename for i in archive.infolist()] == [e.name for e in layout.entries]
    return [e.name for e in layout.entries]


def test_entries_copied_raw_then_proofs_then_datapackage(workspace: Workspace) -> None:
    built = workspace.upload()
    original = built.path.read_bytes()
    data = assembled(built.path, PROOF_FILES)
    names = one_reading(data)
    assert names[-5:] == [n for n, _ in PROOF_FILES] + [DATAPACKAGE_PATH, "datapackage-digest.json"]
    layout = read_layout(io.BytesIO(original), len(original), max_entries=10_000)  # type: ignore[arg-type]
    first_replaced = next(e for e in layout.entries if e.name == DATAPACKAGE_PATH).header_offset
    assert data[:first_replaced] == original[:first_replaced]  # the built entries, byte for byte
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        listed = {r["path"]: r for r in json.loads(archive.read(DATAPACKAGE_PATH))["resources"]}
        for name, body in PROOF_FILES:
            assert archive.read(name) == body
            assert listed[name]["hash"] == f"sha256:{hashlib.sha256(body).hexdigest()}"
        assert archive.getinfo("proof/timestamp-0.tsr").compress_type == zipfile.ZIP_STORED
    assert data == assembled(built.path, PROOF_FILES)  # deterministic


def test_resealing_replaces_the_proof_files(workspace: Workspace) -> None:
    built = workspace.upload()
    write_sealed(built.path, PROOF_FILES)
    late = [*PROOF_FILES, ("proof/anchor-31338.json", b'{"late": true}')]
    write_sealed(built.path, late)
    names = one_reading(built.path.read_bytes())
    assert [n for n in names if n.startswith("proof/")] == [n for n, _ in late]
    # Sealed from the sealed file or from the built one: the same bytes.
    again = workspace.root / "again.wacz"
    shutil.copy(built.path, again)
    assert assembled(again, late) == built.path.read_bytes()


def test_reads_across_block_boundaries(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """A central directory or end record that straddles a cached block is read whole (it was once taken
    for a truncated file: packages of some sizes could not be sealed)."""
    built = workspace.upload()
    expected = assembled(built.path, PROOF_FILES)
    monkeypatch.setattr(sealed_module, "BLOCK_BYTES", 61)  # every record of the layout walk crosses a block
    assert assembled(built.path, PROOF_FILES) == expected


def test_zip64_end_records_when_a_value_needs_them(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    built = workspace.upload()
    monkeypatch.setattr(sealed_module, "ZIP64_LIMIT", 64)  # every new offset is "over the limit"
    data = assembled(built.path, PROOF_FILES)
    one_reading(data)
    assert b"PK\x06\x06" in data[-200:] and b"PK\x06\x07" in data[-100:]
    if shutil.which("unzip"):  # an independent reader agrees
        path = workspace.root / "zip64.wacz"
        path.write_bytes(data)
        assert subprocess.run(["unzip", "-tq", str(path)], capture_output=True).returncode == 0


def test_refuses_what_is_not_a_package_or_not_a_proof(workspace: Workspace, tmp_path: Path) -> None:
    built = workspace.upload()
    with pytest.raises(ValueError, match="not a proof file"):
        sealed_package(FileSource(built.path), [("evidence/extra.txt", b"x")])
    odd = tmp_path / "odd.zip"
    with zipfile.ZipFile(odd, "w") as archive:
        archive.writestr(DATAPACKAGE_PATH, "{}")
        archive.writestr("evidence/after.txt", "hidden after the datapackage")
    with pytest.raises(InvalidPackage, match="not a package Tiezheng wrote"):
        sealed_package(FileSource(odd), PROOF_FILES)
    garbage = tmp_path / "garbage.wacz"
    garbage.write_bytes(b"PK" + bytes(100))
    with pytest.raises(InvalidPackage):
        sealed_package(FileSource(garbage), PROOF_FILES)


def test_sealer_stores_proof_objects_that_assemble_into_a_verified_package(
        workspace: Workspace, rpc_url: str) -> None:
    tsa = workspace.tsa
    with tsa.serve() as served:
        config = SealerConfig(tsas=(TSAEndpoint(name="dev", url=served.url,
                                                roots=tuple(x509.load_pem_x509_certificates(tsa.ca_certificate_pem())),
                                                chain_pem=tsa.chain_pem()),),
                              chain=ChainEndpoint(rpc_url=rpc_url, chain_id=DEVNET_CHAIN_ID,
                                                  private_key=DEV_OPERATOR_KEY), tsa_attempts=1)
        store = MemoryStore()
        sealer = Sealer(make_engine(sqlite_url(workspace.root / "tiezheng.db")), config, proofs=store)
        built = [workspace.upload([(f"exhibit-{i}.txt", f"evidence {i}\n".encode())]) for i in range(3)]
        before = {b.evidence_id: b.path.read_bytes() for b in built}
        for package in built:
            sealer.accept(package.evidence_id, package.fingerprint)  # no package file: the service's way
        [batch_id] = sealer.run_once(force=True)
    with Session(sealer.engine) as session:
        assert len(session.exec(select(SealItemProof)).all()) == 3
        assert session.get(SealBatchProof, batch_id) is not None
        parts = {b.evidence_id: proof_addresses(session, b.evidence_id) for b in built}
    trust = load_trust(workspace.trust_file())
    for package in built:
        assert package.path.read_bytes() == before[package.evidence_id]  # the built package is untouched
        files = [(name, store.get_bytes(address)) for name, address in parts[package.evidence_id] or []]
        sealed = workspace.root / f"{package.evidence_id}-sealed.wacz"
        sealed.write_bytes(assembled(package.path, files))
        report = verify_package(sealed, trust)
        assert report.verified, report.to_json()
