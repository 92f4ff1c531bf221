"""Open an evidence package safely and parse it into frozen, typed models.

Everything here treats the zip as hostile. The zip is read once, strictly, by ``verifier.zip_layout``
(one reading for every zip reader); names and declared sizes are then judged here before any entry
is decompressed, every later read goes to the offsets that walk verified, sizes and CRCs are
enforced while streaming, each entry is hashed at most once, and JSON is parsed with depth and size
limits. Anything unsafe or malformed raises ``InvalidPackage``, which the CLI reports as unusable input.
Only the manifest is parsed strictly; the sealing files under ``proof/`` are read leniently here and
judged by the checks, so a damaged proof fails a check instead of making the package unusable.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from verifier import canonical
from verifier.errors import InvalidPackage
from verifier.qualifications import Qualifications
from verifier.zip_entry import open_entry
from verifier.zip_layout import ZipEntry, read_layout

#: A package is a few screenshots, pages and WARCs; 4 GiB is far beyond any honest capture.
MAX_PACKAGE_BYTES = 4 << 30
MAX_FILES = 10_000
MAX_ENTRY_BYTES = 2 << 30
MAX_TOTAL_BYTES = 8 << 30
#: Deflate tops out near 1032:1; honest content stays far below this.
MAX_COMPRESSION_RATIO = 200
#: Entries smaller than this may have any ratio: tiny files compress oddly and cannot bomb.
RATIO_EXEMPT_BYTES = 1 << 20
#: What decompression may add to the file's own bytes, over the whole package. This bounds what a
#: package costs to read by its file size plus this, however its ratio is tuned to pass the ratio
#: check (three 2 GiB entries of zeros in a 37 MB file do). Honest large files (WARCs, images,
#: media) are stored or barely compress; what compresses well (HTML, JSON, logs) is small.
MAX_INFLATION_BYTES = 1 << 30
MAX_MANIFEST_BYTES = 4 << 20
MAX_JSON_BYTES = 16 << 20
MAX_JSON_DEPTH = 32
MAX_SIGNATURE_BYTES = 64 << 10
MAX_NAME_LENGTH = 255
#: The MS-DOS directory bit of a zip entry's external attributes.
DOS_DIRECTORY = 0x10
MAX_ARTIFACTS = MAX_FILES
#: The manifest's free-text links: a seller or shop (``subject``), and a matter's or watch's id.
MAX_SUBJECT_CHARS = 500
MAX_MATTER_CHARS = 40

MANIFEST_PATH = "evidence/manifest.json"
SIGNATURE_PATH = "evidence/manifest.sig"
PROOF_PATH = "proof/proof.json"
ANCHOR_PATH = "proof/anchor.json"
#: With several chains, each anchor after the first is proof/anchor-<chain_id>.json.
ANCHOR_NAME = re.compile(r"^proof/anchor-(\d{1,20})\.json$")
DATAPACKAGE_PATH = "datapackage.json"
DATAPACKAGE_DIGEST_PATH = "datapackage-digest.json"
MANIFEST_FORMAT = "tiezheng/1"
KINDS = ("web-capture", "upload", "notice", "notice-reply", "log-export", "stream")
#: Kinds whose files the platform did not fetch from the web: no network facts, capture log or browser.
NOT_CAPTURED_KINDS = ("upload", "notice", "notice-reply", "log-export")
TIMESTAMP_NAME = re.compile(r"^proof/timestamp-(\d{1,3})\.tsr$")
TSA_CERTS_NAME = re.compile(r"^proof/tsa-(\d{1,3})\.pem$")
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._\-]+$")


@dataclass(frozen=True)
class Artifact:
    """One file of evidence as the manifest lists it."""

    path: str
    role: str
    media_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Operator:
    name: str
    key_id: str
    public_key: str
    #: What the writer declares. The reader leaves this empty: S2 judges the manifest's own
    #: declaration, so a malformed one fails that check instead of making the package unusable.
    qualifications: Qualifications = ()


@dataclass(frozen=True)
class Requester:
    tenant: str
    identity: str


@dataclass(frozen=True)
class Manifest:
    """The parsed ``evidence/manifest.json``. ``data`` keeps the full JSON for hashing and display."""

    format: str
    evidence_id: str
    kind: str
    operator: Operator
    requester: Requester
    artifacts: tuple[Artifact, ...]
    data: Mapping[str, Any] = field(repr=False)
    #: The matter (case) the evidence was filed under when it was made.
    matter: str | None = None
    #: The seller, account or shop the capture is about (free text).
    subject: str | None = None
    #: The fingerprint of the same watch's previous capture: the link TL1 follows.
    previous: bytes | None = None
    #: The watch this capture is a run of (its id).
    watch: str | None = None

    @property
    def target(self) -> Mapping[str, Any]:
        value = self.data.get("target")
        return value if isinstance(value, Mapping) else {}

    @property
    def capture(self) -> Mapping[str, Any]:
        value = self.data.get("capture")
        return value if isinstance(value, Mapping) else {}


#: An entry of the package: its name, sizes and where the layout walk found its data.
Entry = ZipEntry
#: What identifies the file on disk: if any of it changes between two reads, the reads may differ.
FileIdentity = tuple[int, int, int, int]


def _identity(info: os.stat_result) -> FileIdentity:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


@dataclass(frozen=True)
class Package:
    """An opened evidence package. Artifacts are streamed from ``path`` on demand, never held."""

    path: Path
    entries: Mapping[str, Entry]
    manifest: Manifest
    manifest_bytes: bytes
    signature: bytes | None
    identity: FileIdentity = field(repr=False)
    #: ``name -> (sha256, size)`` or the error hashing raised: each entry is hashed at most once.
    _digests: dict[str, tuple[bytes, int] | InvalidPackage] = field(default_factory=dict, repr=False,
                                                                    compare=False)

    @property
    def fingerprint(self) -> bytes:
        """sha256 of the canonical manifest bytes: the evidence fingerprint."""
        return canonical.sha256(canonical.canonical_json(self.manifest.data))

    @property
    def manifest_is_canonical(self) -> bool:
        return self.manifest_bytes == canonical.canonical_json(self.manifest.data)

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        """Open one entry for streaming. Raises KeyError for a name the package does not hold, and
        InvalidPackage when the entry turns out damaged while it is read."""
        entry = self.entries[name]
        with _open_file(self.path, self.identity) as f, open_entry(f, entry) as stream:
            yield stream

    def read(self, name: str, limit: int = MAX_JSON_BYTES) -> bytes:
        """Return a small entry's bytes. Raises InvalidPackage past ``limit``, KeyError if absent."""
        entry = self.entries[name]
        with _open_file(self.path, self.identity) as f:
            data = _read_entry(f, entry, limit)
        if name not in self._digests:
            self._digests[name] = (hashlib.sha256(data).digest(), len(data))
        return data

    def hash_entry(self, name: str) -> tuple[bytes, int]:
        """Return ``(sha256, size)`` of an entry, streamed once and remembered. Raises InvalidPackage
        if the entry is damaged (every time it is asked), KeyError if absent."""
        known = self._digests.get(name)
        if known is None:
            try:
                with self.open(name) as stream:
                    known = canonical.sha256_stream(stream, limit=self.entries[name].size)
            except InvalidPackage as exc:
                known = exc
            self._digests[name] = known
        if isinstance(known, InvalidPackage):
            raise known
        return known

    def read_json(self, name: str, limit: int = MAX_JSON_BYTES) -> Any:
        """Parse a JSON entry strictly. Raises InvalidPackage, KeyError if absent."""
        return parse_json(self.read(name, limit), name)

    def anchor_names(self) -> list[str]:
        """proof/anchor.json (if present) first, then proof/anchor-<chain_id>.json by chain id."""
        extra = sorted((n for n in self.entries if ANCHOR_NAME.match(n)),
                       key=lambda n: int(ANCHOR_NAME.match(n).group(1)))  # type: ignore[union-attr]
        return ([ANCHOR_PATH] if ANCHOR_PATH in self.entries else []) + extra

    def timestamp_names(self) -> list[str]:
        return sorted((n for n in self.entries if TIMESTAMP_NAME.match(n)),
                      key=lambda n: int(TIMESTAMP_NAME.match(n).group(1)))  # type: ignore[union-attr]


def anchor_path(chain_id: int) -> str:
    """The file of an anchor on ``chain_id`` that is not the package's first."""
    return f"proof/anchor-{chain_id}.json"


@contextmanager
def _open_file(path: Path, identity: FileIdentity) -> Iterator[BinaryIO]:
    """Open the package file again, refusing it if it is no longer the file that was walked."""
    try:
        f = path.open("rb")
    except OSError as exc:
        raise InvalidPackage(f"cannot read {path}: {exc.strerror}") from exc
    with f:
        if _identity(os.fstat(f.fileno())) != identity:
            raise InvalidPackage("the package file changed while it was being verified")
        yield f


def _read_entry(f: BinaryIO, entry: Entry, limit: int) -> bytes:
    if entry.size > limit:
        raise InvalidPackage(f"{entry.name} is {entry.size} bytes, over the limit of {limit}")
    with open_entry(f, entry) as stream:
        return stream.read()


def _check_name(entry: Entry) -> str:
    """Apply the name rules to files and directories alike; return the name."""
    name = entry.name
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidPackage(f"entry name longer than {MAX_NAME_LENGTH} characters")
    if "\\" in name or "\x00" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise InvalidPackage(f"unsafe entry name {name!r} (absolute or not a plain relative path)")
    segments = (name[:-1] if entry.is_dir else name).split("/")
    if any(s in ("", ".", "..") for s in segments):
        raise InvalidPackage(f"unsafe entry name {name!r} (path traversal)")
    if not all(_SAFE_SEGMENT.match(s) for s in segments):
        raise InvalidPackage(f"entry name {name!r} has characters outside [A-Za-z0-9._-]")
    mode = entry.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise InvalidPackage(f"entry {name!r} is a symbolic link")
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise InvalidPackage(f"entry {name!r} is a device, pipe or socket, not a file")
    if not entry.is_dir and (stat.S_ISDIR(mode) or entry.external_attr & DOS_DIRECTORY):
        # An extractor that trusts the attributes would make a directory where others make a file.
        raise InvalidPackage(f"entry {name!r} is marked as a directory but its name does not end in /")
    if entry.is_dir and (entry.size or entry.compressed_size):
        raise InvalidPackage(f"directory entry {name!r} carries data")
    return name


def check_declared_size(entry: Entry, label: str, max_bytes: int) -> None:
    """Refuse an entry whose central directory declares more than ``max_bytes`` or a bomb's ratio,
    before a byte of it is inflated (``label`` names it in the one-line reason)."""
    if entry.size > max_bytes:
        raise InvalidPackage(f"{label} declares {entry.size} bytes, over {max_bytes}")
    if entry.size > RATIO_EXEMPT_BYTES and entry.size > MAX_COMPRESSION_RATIO * max(entry.compressed_size, 1):
        raise InvalidPackage(f"{label} has a compression ratio over {MAX_COMPRESSION_RATIO} (zip bomb)")


def _entries(layout: tuple[Entry, ...]) -> dict[str, Entry]:
    """Judge names and declared sizes from the central directory, before any data is read.

    Directory entries are kept, so P3 accounts for every entry of the zip.
    """
    entries: dict[str, Entry] = {}
    folded: set[str] = set()
    total = inflation = 0
    for entry in layout:
        name = _check_name(entry)
        if name in entries:
            raise InvalidPackage(f"duplicate entry name {name!r}")
        if name.lower() in folded:
            # One file on a case-insensitive file system, two in the zip: readers would disagree.
            raise InvalidPackage(f"entry names {name!r} and another differ only in case")
        folded.add(name.lower())
        check_declared_size(entry, f"entry {name!r}", MAX_ENTRY_BYTES)
        total += entry.size
        if total > MAX_TOTAL_BYTES:
            raise InvalidPackage(f"package expands to more than {MAX_TOTAL_BYTES} bytes")
        inflation += max(entry.size - entry.compressed_size, 0)
        if inflation > MAX_INFLATION_BYTES:
            raise InvalidPackage(f"entries declare more than {MAX_INFLATION_BYTES} bytes beyond their compressed "
                                 "size (decompression bomb); refused before decompressing")
        entries[name] = entry
    return entries


def _depth(value: Any, limit: int) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise InvalidPackage(f"JSON nested deeper than {limit} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidPackage(f"duplicate JSON key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise InvalidPackage(f"non-standard JSON constant {name}")


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _nesting_exceeds(data: bytes, limit: int) -> bool:
    # The C JSON scanner can overflow the C stack on deep nesting before Python's recursion limit
    # stops it (seen with a raised limit), so the depth is bounded before parsing. Strings are
    # removed first; the loop stops as soon as the limit is passed, so hostile input costs little.
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        depth += 1 if byte in (0x5B, 0x7B) else -1
        if depth > limit:
            return True
    return False


def parse_json(data: bytes, what: str) -> Any:
    """Parse strict JSON (UTF-8, no duplicate keys, no NaN, bounded depth). Raises InvalidPackage."""
    if _nesting_exceeds(data, MAX_JSON_DEPTH):
        raise InvalidPackage(f"{what}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise InvalidPackage(f"{what} is not UTF-8: {exc.reason}") from exc
    except RecursionError as exc:
        # The C scanner guards its recursion; absurd nesting lands here, bounded.
        raise InvalidPackage(f"{what}: JSON nested too deeply") from exc
    except ValueError as exc:
        raise InvalidPackage(f"{what} is not valid JSON: {exc}") from exc
    _depth(value, MAX_JSON_DEPTH)
    return value


def _field(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidPackage(f"manifest: {where}{key} must be a {kind.__name__}")
    return value


def parse_manifest(data: bytes) -> Manifest:
    """Parse and type-check manifest bytes. Raises InvalidPackage with the first problem found."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise InvalidPackage(f"manifest is over {MAX_MANIFEST_BYTES} bytes")
    raw = parse_json(data, "manifest")
    if not isinstance(raw, dict):
        raise InvalidPackage("manifest must be a JSON object")
    fmt = _field(raw, "format", str, "")
    if fmt != MANIFEST_FORMAT:
        raise InvalidPackage(f"manifest format {fmt!r} is not {MANIFEST_FORMAT!r}")
    kind = _field(raw, "kind", str, "")
    if kind not in KINDS:
        raise InvalidPackage(f"manifest kind {kind!r} is not one of {', '.join(KINDS)}")
    operator = _field(raw, "operator", dict, "")
    requester = _field(raw, "requester", dict, "")
    items = _field(raw, "artifacts", list, "")
    if len(items) > MAX_ARTIFACTS:
        raise InvalidPackage(f"manifest lists more than {MAX_ARTIFACTS} artifacts")
    artifacts = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidPackage(f"manifest: artifacts[{i}] must be an object")
        where = f"artifacts[{i}]."
        sha = _field(item, "sha256", str, where)
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise InvalidPackage(f"manifest: {where}sha256 must be 64 lowercase hex digits")
        size = _field(item, "size", int, where)
        if size < 0:
            raise InvalidPackage(f"manifest: {where}size must not be negative")
        artifacts.append(Artifact(path=_field(item, "path", str, where), role=_field(item, "role", str, where),
                                  media_type=_field(item, "media_type", str, where), size=size, sha256=sha))
    if len({a.path for a in artifacts}) != len(artifacts):
        raise InvalidPackage("manifest lists the same artifact path twice")
    matter = _optional_text(raw, "matter", MAX_MATTER_CHARS)
    subject = _optional_text(raw, "subject", MAX_SUBJECT_CHARS)
    watch = _optional_text(raw, "watch", MAX_MATTER_CHARS)
    previous = _optional_text(raw, "previous", 64)
    if previous is not None and not re.fullmatch(r"[0-9a-f]{64}", previous):
        raise InvalidPackage("manifest: previous must be a fingerprint: 64 lowercase hex digits")
    return Manifest(
        format=fmt,
        evidence_id=_field(raw, "evidence_id", str, ""),
        kind=kind,
        operator=Operator(name=_field(operator, "name", str, "operator."),
                          key_id=_field(operator, "key_id", str, "operator."),
                          public_key=_field(operator, "public_key", str, "operator.")),
        requester=Requester(tenant=_field(requester, "tenant", str, "requester."),
                            identity=_field(requester, "identity", str, "requester.")),
        artifacts=tuple(artifacts),
        data=raw,
        matter=matter,
        subject=subject,
        previous=bytes.fromhex(previous) if previous is not None else None,
        watch=watch,
    )


def _optional_text(data: Mapping[str, Any], key: str, limit: int) -> str | None:
    """An optional string field: absent is None; present, it must be 1 to ``limit`` characters."""
    if key not in data:
        return None
    value: str = _field(data, key, str, "")
    if not 1 <= len(value) <= limit:
        raise InvalidPackage(f"manifest: {key} must be 1 to {limit} characters")
    return value


def open_package(path: Path | str) -> Package:
    """Open a package file. Raises InvalidPackage when it cannot be examined safely."""
    path = Path(path)
    try:
        f = path.open("rb")
    except OSError as exc:
        raise InvalidPackage(f"cannot read {path}: {exc.strerror}") from exc
    with f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InvalidPackage(f"{path} is not a regular file")
        if info.st_size > MAX_PACKAGE_BYTES:
            raise InvalidPackage(f"package is {info.st_size} bytes, over the limit of {MAX_PACKAGE_BYTES}")
        try:
            entries = _entries(read_layout(f, info.st_size, max_entries=MAX_FILES).entries)
            if MANIFEST_PATH not in entries:
                raise InvalidPackage(f"package has no {MANIFEST_PATH}")
            manifest_bytes = _read_entry(f, entries[MANIFEST_PATH], MAX_MANIFEST_BYTES)
            signature = (_read_entry(f, entries[SIGNATURE_PATH], MAX_SIGNATURE_BYTES)
                         if SIGNATURE_PATH in entries else None)
        except OSError as exc:
            raise InvalidPackage(f"cannot read {path}: {exc.strerror}") from exc
    return Package(path=path, entries=entries, manifest=parse_manifest(manifest_bytes),
                   manifest_bytes=manifest_bytes, signature=signature, identity=_identity(info))
