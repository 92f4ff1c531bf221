"""The operator: a name, declared qualifications and a ``ManifestSigner`` (a key file or a PKCS#11 token)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from evidence.signer import FileSigner, ManifestSigner
from verifier.package import Operator
from verifier.qualifications import Qualifications, parse_qualifications
from verifier.signature import encode_signature

DEFAULT_OPERATOR_NAME = "Tiezheng local operator"


@dataclass(frozen=True)
class OperatorKey:
    name: str
    #: Holds the private key (a file, or a token that never lets it out); everything here goes through it.
    signer: ManifestSigner
    #: Filings and certifications the operator declares (settings); every manifest carries them.
    qualifications: Qualifications = ()

    def with_qualifications(self, declared: Mapping[str, str]) -> OperatorKey:
        """This key with ``declared`` qualifications. Raises ValueError when they are malformed."""
        return replace(self, qualifications=parse_qualifications(declared))

    @property
    def public_key_raw(self) -> bytes:
        return self.signer.public_key()

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key_raw).decode()

    @property
    def key_id(self) -> str:
        return self.signer.key_id

    def manifest_operator(self) -> Operator:
        """The operator as a manifest names it."""
        return Operator(name=self.name, key_id=self.key_id, public_key=self.public_key_b64,
                        qualifications=self.qualifications)

    def sign_manifest(self, canonical_manifest: bytes) -> bytes:
        """Return the bytes of ``evidence/manifest.sig`` for canonical manifest bytes. Raises SignerError."""
        return encode_signature(self.key_id, self.signer.sign(canonical_manifest))


def load_or_create(path: Path, name: str = DEFAULT_OPERATOR_NAME) -> OperatorKey:
    """The operator signing with the key file at ``path`` (PEM, PKCS#8), created with mode 0600 on first use."""
    return OperatorKey(name, FileSigner.load_or_create(path))
