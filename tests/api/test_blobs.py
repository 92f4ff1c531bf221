"""The blob store: content-addressed, idempotent, unaffected when the source is replaced."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from api.service.blobs import BlobMissing, BlobStore


def test_put_open_and_replace(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    source = tmp_path / "package.wacz"
    source.write_bytes(b"accepted bytes")
    address = store.put_file(source)
    assert address == hashlib.sha256(b"accepted bytes").hexdigest()
    assert store.put_file(source) == address and store.exists(address)
    # Sealing replaces the package by rename: the stored bytes stay as they were.
    replacement = tmp_path / "new.wacz"
    replacement.write_bytes(b"sealed bytes")
    os.replace(replacement, source)
    with store.open(address) as stream:
        assert stream.read() == b"accepted bytes"
    assert store.put_file(source) != address


@pytest.mark.parametrize("address", ["", "../../etc/passwd", "A" * 64, "0" * 63])
def test_bad_addresses(tmp_path: Path, address: str) -> None:
    store = BlobStore(tmp_path)
    assert not store.exists(address)
    with pytest.raises(BlobMissing):
        store.open(address)
