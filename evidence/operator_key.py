"""The operator's Ed25519 signing key: created on first use, kept private in the data dir."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from verifier.qualifications import Qualifications, parse_qualifications
from verifier.signature import encode_signature, key_id

DEFAULT_OPERATOR_NAME = "Tiezheng local operator"


@dataclass(frozen=True)
class OperatorKey:
    name: str
    private_key: Ed25519PrivateKey
    #: Filings and certifications the operator declares (settings); every manifest carries them.
    qualifications: Qualifications = ()

    def with_qualifications(self, declared: Mapping[str, str]) -> OperatorKey:
        """This key with ``declared`` qualifications. Raises ValueError when they are malformed."""
        return replace(self, qualifications=parse_qualifications(declared))

    @property
    def public_key_raw(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                          serialization.PublicFormat.Raw)

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key_raw).decode()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key_raw)

    def manifest_record(self) -> dict[str, object]:
        """The ``operator`` object of a manifest (``qualifications`` only when some are declared)."""
        record: dict[str, object] = {"name": self.name, "key_id": self.key_id, "public_key": self.public_key_b64}
        if self.qualifications:
            record["qualifications"] = dict(self.qualifications)
        return record

    def sign_manifest(self, canonical_manifest: bytes) -> bytes:
        """Return the bytes of ``evidence/manifest.sig`` for canonical manifest bytes."""
        return encode_signature(self.key_id, self.private_key.sign(canonical_manifest))


def load_or_create(path: Path, name: str = DEFAULT_OPERATOR_NAME) -> OperatorKey:
    """Load the key at ``path`` (PEM, PKCS#8), creating it with mode 0600 on first use."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 key")
        return OperatorKey(name, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    # O_EXCL: two processes starting at once must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create(path, name)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    return OperatorKey(name, key)
