"""The key-file signer (the embedded default): today's file, today's key, and the settings that pick a signer."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.service.runtime import local_trust, operator_for, signer_for
from api.service.settings import Settings
from evidence.signer import FileSigner, SignerError
from verifier.signature import key_id, parse_signature, verify_signature


def test_key_file_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "operator.key"
    first = FileSigner.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    again = FileSigner.load_or_create(path)
    assert again.public_key() == first.public_key() and again.key_id == key_id(first.public_key())
    assert first.backend == "file" and first.location == str(path)


def test_racing_processes_share_one_key(tmp_path: Path) -> None:
    path = tmp_path / "operator.key"
    found: list[bytes] = []
    threads = [threading.Thread(target=lambda: found.append(FileSigner.load_or_create(path).public_key()))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1


def test_an_existing_data_dir_keeps_signing_with_its_key(tmp_path: Path) -> None:
    """A data dir made before signers existed: its keys/operator.key is used as it is, not replaced."""
    data = tmp_path / "data"
    (data / "keys").mkdir(parents=True)
    existing = Ed25519PrivateKey.generate()
    (data / "keys" / "operator.key").write_bytes(existing.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(data / "keys" / "operator.key", 0o600)
    settings = Settings(data_dir=data)
    operator = operator_for(settings)
    raw = existing.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert operator.public_key_raw == raw
    body = b'{"manifest":"canonical bytes"}'
    verify_signature(parse_signature(operator.sign_manifest(body)), body, raw)
    # The trust export reads the key through the same signer.
    assert local_trust(settings).operators[0].public_key == raw


def test_a_file_that_is_not_an_ed25519_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    path = tmp_path / "operator.key"
    path.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(ValueError, match="does not hold an Ed25519 key"):
        FileSigner.load_or_create(path)


def test_pkcs11_settings_name_what_is_missing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, signer="pkcs11", pkcs11_token="hsm", pkcs11_pin="secret-pin")
    with pytest.raises(SignerError, match=r"needs TIEZHENG_PKCS11_MODULE, TIEZHENG_PKCS11_KEY_LABEL$"):
        signer_for(settings)
    assert "secret-pin" not in settings.redacted()
    assert not (tmp_path / "keys").exists()  # no key file is made when a token is configured
