"""Open an evidence package safely and parse it into frozen, typed models.

Everything here treats the zip as hostile: names are checked before anything is read, sizes are
enforced while streaming (a zip header can lie), and JSON is parsed with depth and size limits.
Anything unsafe or malformed raises ``InvalidPackage``, which the CLI reports as unusable input.
Only the manifest is parsed strictly; the sealing files under ``proof/`` are read leniently here and
judged by the checks, so a damaged proof fails a check instead of making the package unusable.
"""

from __future__ import annotations

import json
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from verifier import canonical
from verifier.errors import InvalidPackage

#: A package is a few screenshots, pages and WARCs; 4 GiB is far beyond any honest capture.
MAX_PACKAGE_BYTES = 4 << 30
MAX_FILES = 10_000
MAX_ENTRY_BYTES = 2 << 30
MAX_TOTAL_BYTES = 8 << 30
#: Deflate tops out near 1032:1; honest content stays far below this.
MAX_COMPRESSION_RATIO = 200
#: Entries smaller than this may have any ratio: tiny files compress oddly and cannot bomb.
RATIO_EXEMPT_BYTES = 1 << 20
MAX_MANIFEST_BYTES = 4 << 20
MAX_JSON_BYTES = 16 << 20
MAX_JSON_DEPTH = 32
MAX_SIGNATURE_BYTES = 64 << 10
MAX_NAME_LENGTH = 255
MAX_ARTIFACTS = MAX_FILES

MANIFEST_PATH = "evidence/manifest.json"
SIGNATURE_PATH = "evidence/manifest.sig"
PROOF_PATH = "proof/proof.json"
ANCHOR_PATH = "proof/anchor.json"
#: With several chains, each anchor after the first is proof/anchor-<chain_id>.json.
ANCHOR_NAME = re.compile(r"^proof/anchor-(\d{1,20})\.json$")
DATAPACKAGE_PATH = "datapackage.json"
DATAPACKAGE_DIGEST_PATH = "datapackage-digest.json"
MANIFEST_FORMAT = "tiezheng/1"
KINDS = ("web-capture", "upload")
TIMESTAMP_NAME = re.compile(r"^proof/timestamp-(\d{1,3})\.tsr$")
TSA_CERTS_NAME = re.compile(r"^proof/tsa-(\d{1,3})\.pem$")
#: What the zipfile module raises for damaged data; always turned into InvalidPackage.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError)
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

    @property
    def target(self) -> Mapping[str, Any]:
        value = self.data.get("target")
        return value if isinstance(value, Mapping) else {}

    @property
    def capture(self) -> Mapping[str, Any]:
        value = self.data.get("capture")
        return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class Entry:
    name: str
    size: int
    compressed_size: int


@dataclass(frozen=True)
class Package:
    """An opened evidence package. Artifacts are streamed from ``path`` on demand, never held."""

    path: Path
    entries: Mapping[str, Entry]
    manifest: Manifest
    manifest_bytes: bytes
    signature: bytes | None

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
        if name not in self.entries:
            raise KeyError(name)
        try:
            with zipfile.ZipFile(self.path) as archive, archive.open(name) as stream:
                yield stream
        except ZIP_ERRORS as exc:
            raise InvalidPackage(f"damaged zip entry {name}: {exc}") from exc

    def read(self, name: str, limit: int = MAX_JSON_BYTES) -> bytes:
        """Return a small entry's bytes. Raises InvalidPackage past ``limit``, KeyError if absent."""
        return _read_member(self.path, self.entries[name], limit)

    def hash_entry(self, name: str) -> tuple[bytes, int]:
        """Return ``(sha256, size)`` of an entry, streamed, enforcing its declared size."""
        with self.open(name) as stream:
            return canonical.sha256_stream(stream, limit=self.entries[name].size)

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


def _read_member(path: Path, entry: Entry, limit: int) -> bytes:
    if entry.size > limit:
        raise InvalidPackage(f"{entry.name} is {entry.size} bytes, over the limit of {limit}")
    try:
        with zipfile.ZipFile(path) as archive, archive.open(entry.name) as stream:
            data = stream.read(limit + 1)
    except ZIP_ERRORS as exc:
        raise InvalidPackage(f"damaged zip entry {entry.name}: {exc}") from exc
    if len(data) > limit:
        raise InvalidPackage(f"{entry.name} is over the limit of {limit} bytes")
    return data


def _check_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if not name:
        # zipfile's own is_dir() indexes name[-1]: an empty name must be refused before anything asks.
        raise InvalidPackage("an entry has an empty name")
    if not info.flag_bits & 0x800 and not name.isascii():
        raise InvalidPackage(f"entry name {name!r} is not marked UTF-8")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidPackage(f"entry name longer than {MAX_NAME_LENGTH} characters")
    if "\\" in name or "\x00" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise InvalidPackage(f"unsafe entry name {name!r} (absolute or not a plain relative path)")
    if info.is_dir():
        return name
    segments = name.split("/")
    if any(s in ("", ".", "..") for s in segments):
        raise InvalidPackage(f"unsafe entry name {name!r} (path traversal)")
    if not all(_SAFE_SEGMENT.match(s) for s in segments):
        raise InvalidPackage(f"entry name {name!r} has characters outside [A-Za-z0-9._-]")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise InvalidPackage(f"entry {name!r} is a symbolic link")
    return name


def _entries(archive: zipfile.ZipFile) -> dict[str, Entry]:
    infos = archive.infolist()
    if len(infos) > MAX_FILES:
        raise InvalidPackage(f"package has {len(infos)} entries, more than {MAX_FILES}")
    entries: dict[str, Entry] = {}
    total = 0
    for info in infos:
        name = _check_name(info)
        if info.is_dir():
            continue
        if name in entries:
            raise InvalidPackage(f"duplicate entry name {name!r}")
        if info.flag_bits & 0x1:
            raise InvalidPackage(f"entry {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise InvalidPackage(f"entry {name!r} uses an unsupported compression method")
        if info.file_size > MAX_ENTRY_BYTES:
            raise InvalidPackage(f"entry {name!r} declares {info.file_size} bytes, over {MAX_ENTRY_BYTES}")
        if (info.file_size > RATIO_EXEMPT_BYTES
                and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1)):
            raise InvalidPackage(f"entry {name!r} has a compression ratio over {MAX_COMPRESSION_RATIO} (zip bomb)")
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise InvalidPackage(f"package expands to more than {MAX_TOTAL_BYTES} bytes")
        entries[name] = Entry(name, info.file_size, info.compress_size)
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
    )


def open_package(path: Path | str) -> Package:
    """Open a package file. Raises InvalidPackage when it cannot be examined safely."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidPackage(f"cannot read {path}: {exc.strerror}") from exc
    if not path.is_file():
        raise InvalidPackage(f"{path} is not a regular file")
    if size > MAX_PACKAGE_BYTES:
        raise InvalidPackage(f"package is {size} bytes, over the limit of {MAX_PACKAGE_BYTES}")
    try:
        with zipfile.ZipFile(path) as archive:
            entries = _entries(archive)
    except zipfile.BadZipFile as exc:
        raise InvalidPackage(f"not a zip file: {exc}") from exc
    except (*ZIP_ERRORS, struct.error, IndexError) as exc:
        # Reading a hostile central directory can fail inside zipfile in ways it does not wrap.
        raise InvalidPackage(f"damaged zip file: {type(exc).__name__}: {exc}") from exc
    if MANIFEST_PATH not in entries:
        raise InvalidPackage(f"package has no {MANIFEST_PATH}")
    manifest_bytes = _read_member(path, entries[MANIFEST_PATH], MAX_MANIFEST_BYTES)
    signature = (_read_member(path, entries[SIGNATURE_PATH], MAX_SIGNATURE_BYTES)
                 if SIGNATURE_PATH in entries else None)
    return Package(path=path, entries=entries, manifest=parse_manifest(manifest_bytes),
                   manifest_bytes=manifest_bytes, signature=signature)
