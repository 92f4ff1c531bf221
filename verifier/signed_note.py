"""C2SP signed-note: a text signed by one or more keys, with Ed25519 signatures.

A note is UTF-8 text ending in a newline, a blank line, then one signature line per key:
``— <key name> <base64(key hash ‖ signature)>`` (U+2014, a space, the name, a space). The key hash
is the first four bytes of ``SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key)``; 0x01 is Ed25519's
signature type. A signature covers the text, final newline included. A verifier key is written
``<name>+<key hash, 8 hex digits>+<base64(0x01 ‖ public key)>``.

Lines signed by keys the verifier does not know are ignored, as the spec asks: a witness may add
its own cosignature to a checkpoint without breaking it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from verifier.errors import InvalidInput, VerificationError

ED25519_TYPE = b"\x01"
KEY_HASH_BYTES = 4
SIGNATURE_PREFIX = "\u2014 "
#: Notes are small (a checkpoint is three lines); anything bigger is not one of ours.
MAX_NOTE_BYTES = 1 << 20
_NAME = re.compile(r"[^\s+\u2014]+")


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_hash: bytes
    signature: bytes


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[NoteSignature, ...]


def key_hash(name: str, public_key: bytes) -> bytes:
    """The four-byte key hash of an Ed25519 key named ``name``."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_TYPE + public_key).digest()[:KEY_HASH_BYTES]


def verifier_key(name: str, public_key: bytes) -> str:
    """The verifier key string ``name+hash+base64(0x01 ‖ key)`` that tlog tooling reads."""
    return f"{name}+{key_hash(name, public_key).hex()}+{base64.b64encode(ED25519_TYPE + public_key).decode()}"


def check_key_name(name: str) -> str:
    """Return ``name`` when it is a valid key name (non-empty, no space, no ``+``). Raises InvalidInput."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"key name {name!r} is empty or holds a space, '+' or an em dash")
    return name


def signature_line(name: str, public_key: bytes, signature: bytes) -> str:
    """One signature line, without its newline."""
    return f"{SIGNATURE_PREFIX}{name} {base64.b64encode(key_hash(name, public_key) + signature).decode()}"


def format_note(text: str, lines: list[str]) -> bytes:
    """The bytes of a note: its text, a blank line, and the signature lines."""
    if not text.endswith("\n"):
        raise InvalidInput("a note's text ends with a newline")
    return (text + "\n" + "".join(line + "\n" for line in lines)).encode()


def parse_note(data: bytes) -> Note:
    """Split a note into its text and signatures. Raises VerificationError when malformed."""
    if len(data) > MAX_NOTE_BYTES:
        raise VerificationError(f"note is {len(data)} bytes, over {MAX_NOTE_BYTES}")
    try:
        whole = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VerificationError("note is not UTF-8") from exc
    split = whole.rfind("\n\n")
    if split < 0 or not whole.endswith("\n"):
        raise VerificationError("note has no blank line before its signatures, or no final newline")
    text, block = whole[:split + 1], whole[split + 2:]
    signatures = []
    for line in block.removesuffix("\n").split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise VerificationError(f"note signature line does not start with an em dash: {line[:40]!r}")
        name, _, encoded = line[len(SIGNATURE_PREFIX):].rpartition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise VerificationError(f"note signature of {name!r} is not base64") from exc
        if not _NAME.fullmatch(name) or len(raw) < KEY_HASH_BYTES:
            raise VerificationError(f"note signature line is malformed: {line[:40]!r}")
        signatures.append(NoteSignature(name, raw[:KEY_HASH_BYTES], raw[KEY_HASH_BYTES:]))
    if not signatures:
        raise VerificationError("note carries no signature")
    return Note(text=text, signatures=tuple(signatures))


def verify_note(note: Note, name: str, public_key: bytes) -> None:
    """Check that the Ed25519 key ``public_key``, named ``name``, signed ``note``.

    Returns None, or raises VerificationError: no signature by that key (name and key hash), or a
    signature that does not verify.
    """
    wanted = key_hash(name, public_key)
    mine = [s for s in note.signatures if s.name == name and s.key_hash == wanted]
    if not mine:
        names = ", ".join(f"{s.name} ({s.key_hash.hex()})" for s in note.signatures)
        raise VerificationError(f"note is not signed by key {name} ({wanted.hex()}); it is signed by {names}")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(mine[0].signature, note.text.encode())
    except (InvalidSignature, ValueError) as exc:
        raise VerificationError(f"note signature by {name} does not verify") from exc
