"""The root of Tiezheng's one error tree, and the verifier's branch of it.

Every error class of the project derives from ``TiezhengError``: the verifier's (here and beside
the code that raises them: ``Skip`` in ``verifier.checks.context``, ``AnchorProofError``, ...), and
those of ``evidence`` (``CaptureError``, ``UploadError``, ``SignerError``), ``anchor``
(``AnchorError``, ``TSAError``, ...) and ``api`` (``ApiError``, ``UserError``, ``BlobMissing``, the
verify pool's). tests/test_error_tree.py walks all four packages to keep it so. A class that
replaces a built-in exception its callers catch keeps that base too (``UploadError`` is still a
``ValueError``, ``BlobMissing`` a ``LookupError``).

Low-level checks raise these; ``verify_package`` turns them into report entries. Every error can
explain itself with ``diagnostics()`` and carries its data as attributes: mismatch errors carry
both values, so a reader can debug them without re-running anything.
"""

from __future__ import annotations


class TiezhengError(Exception):
    """Base of every error Tiezheng raises on purpose."""

    def diagnostics(self) -> str:
        """A one-line, human-readable explanation."""
        return str(self)


class InvalidPackage(TiezhengError):
    """The input cannot be examined at all: not a zip, unsafe, over a limit, or malformed.

    The CLI maps this to exit code 2 ("unusable input").
    """


class InvalidInput(TiezhengError):
    """A value given on the command line or in a file is malformed (bad hex, bad PEM, ...)."""


class VerificationError(TiezhengError):
    """The input is well-formed, but what it claims does not hold."""


class HashMismatchError(VerificationError):
    """A computed hash differs from the one that was expected."""

    def __init__(self, what: str, expected: bytes, calculated: bytes) -> None:
        self.what = what
        self.expected = expected
        self.calculated = calculated
        super().__init__(f"{what} mismatch: expected {expected.hex() or '(empty)'}, "
                         f"calculated {calculated.hex() or '(empty)'}")


class RootMismatchError(HashMismatchError):
    """A Merkle proof leads to a different root than the one given."""

    def __init__(self, expected: bytes, calculated: bytes) -> None:
        super().__init__("Merkle root", expected, calculated)


class ProofError(VerificationError):
    """A Merkle proof has the wrong shape for the tree it claims to be from."""


class TimestampError(VerificationError):
    """An RFC 3161 token is not valid for the digest and trust roots given."""


class TrustError(TiezhengError):
    """The trust configuration is missing, empty or unreadable. Trust fails closed."""
