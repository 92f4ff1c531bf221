"""C2SP tlog-checkpoint: the signed statement of a log's size and root.

The text of a checkpoint note is the origin (a unique name of the log), the tree size in decimal
without leading zeros, and the base64 RFC 9162 root, one a line; optional extension lines follow.
The note is signed per C2SP signed-note (``verifier.signed_note``).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from verifier.errors import VerificationError
from verifier.merkle import HASH_SIZE
from verifier.signed_note import Note, parse_note

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The note text this checkpoint is signed as."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint_text(text: str) -> Checkpoint:
    """Parse a checkpoint's note text. Raises VerificationError when malformed."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise VerificationError("checkpoint has fewer than three lines, or no final newline")
    origin, size, root, *extensions = lines[:-1]
    if not origin or not _SIZE.fullmatch(size):
        raise VerificationError("checkpoint origin is empty or its size is not a decimal number")
    try:
        root_hash = base64.b64decode(root, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationError("checkpoint root is not base64") from exc
    if len(root_hash) != HASH_SIZE:
        raise VerificationError(f"checkpoint root is {len(root_hash)} bytes, expected {HASH_SIZE}")
    if any(not line for line in extensions):
        raise VerificationError("checkpoint has an empty extension line")
    return Checkpoint(origin=origin, size=int(size), root=root_hash, extensions=tuple(extensions))


def parse_checkpoint(data: bytes) -> tuple[Checkpoint, Note]:
    """Parse a signed checkpoint note (signatures are checked by ``verify_note``)."""
    note = parse_note(data)
    return parse_checkpoint_text(note.text), note
