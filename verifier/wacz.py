"""The WACZ 1.1.1 side of the package format: datapackage.json and writing a package atomically.

Both building a package (evidence/) and attaching proofs to it (anchor/) write packages, and both
must produce the same layout, so the one writer lives here with the format it writes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from verifier import canonical
from verifier.package import DATAPACKAGE_DIGEST_PATH, DATAPACKAGE_PATH

WACZ_VERSION = "1.1.1"
#: WACZ wants WARCs and compressed indexes stored, so replay tools can seek into them.
STORED_SUFFIXES = (".warc.gz", ".warc", ".cdx.gz", ".png", ".jpg", ".gz", ".zip", ".tsr")
COPY_CHUNK_BYTES = 1 << 20
#: Over this size (2 GiB - 1) zipfile describes an entry with ZIP64; below it by less than this factor,
#: it reserves ZIP64 room in the local header in case deflate makes the data grow.
ZIP64_LIMIT = zipfile.ZIP64_LIMIT
DEFLATE_HEADROOM = 1.05
METADATA_KEYS = ("title", "description", "created", "mainPageURL", "mainPageDate")


@dataclass(frozen=True)
class Member:
    """One file to put in a package: from ``path`` on disk, or ``data`` in memory."""

    name: str
    data: bytes | None = None
    path: Path | None = None

    def open(self) -> IO[bytes]:
        if self.path is not None:
            return self.path.open("rb")
        return io.BytesIO(self.data or b"")

    def size(self) -> int:
        return self.path.stat().st_size if self.path is not None else len(self.data or b"")


def zip_entry(name: str, size: int, stamp: tuple[int, int, int, int, int, int]) -> tuple[zipfile.ZipInfo, bool]:
    """The zip entry for a member of ``size`` bytes, and whether it needs ZIP64.

    ZIP64 only where a size needs it, and then in both headers: zipfile puts a ZIP64 extra in the
    local header whenever told to (or when the size is within 5 % of ``ZIP64_LIMIT``, to leave room
    for deflate growth), but in the central directory only when a size really is over the limit, and
    replay tools (ReplayWeb.page) find an entry's data from what the central directory says. So an
    entry that close to the limit is stored, not deflated: then its compressed size is its size, and
    the ZIP64 decision below is exactly the one zipfile makes for the central directory.
    """
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.compress_type = zipfile.ZIP_STORED if name.endswith(STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
    if size * DEFLATE_HEADROOM > ZIP64_LIMIT:
        info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    info.file_size = size
    return info, size > ZIP64_LIMIT


def _resource_name(path: str) -> str:
    # Frictionless (and so `wacz validate`) allows only ^[-a-z0-9._/]+$ in resource names.
    return re.sub(r"[^-a-z0-9._/]", "-", os.path.basename(path).lower())


def datapackage(resources: Iterable[tuple[str, bytes, int]], metadata: Mapping[str, str]) -> bytes:
    """Return datapackage.json bytes: ``metadata`` (title, created, mainPageURL, ...) and the
    ``(path, sha256, size)`` resources."""
    body: dict[str, Any] = {
        "profile": "data-package",
        "wacz_version": WACZ_VERSION,
        "software": "Tiezheng",
        **{k: v for k, v in metadata.items() if k in METADATA_KEYS},
        "resources": [{"name": _resource_name(p), "path": p, "hash": f"sha256:{digest.hex()}", "bytes": size}
                      for p, digest, size in resources],
    }
    return canonical.canonical_json(body)


def package_metadata(title: str, created: datetime, main_page_url: str | None = None) -> dict[str, str]:
    """The datapackage.json fields that describe the package rather than list its files."""
    metadata = {"title": title, "created": created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if main_page_url:
        metadata["mainPageURL"] = main_page_url
    return metadata


def datapackage_digest(datapackage_bytes: bytes) -> bytes:
    """Return datapackage-digest.json bytes for the given datapackage.json bytes."""
    return canonical.canonical_json({"path": DATAPACKAGE_PATH,
                                     "hash": f"sha256:{canonical.sha256_hex(datapackage_bytes)}"})


def write_package(dest: Path, members: Iterable[Member], metadata: Mapping[str, str], *,
                  sync_folder: bool = True) -> None:
    """Write a WACZ package atomically: temp file in the same folder, fsync, rename, fsync the folder.

    ``sync_folder=False`` leaves the folder's fsync (the new name's durability) to the caller, who
    may batch it with other renames: the file's bytes are always on disk before the rename.

    Hashes every member while copying it (one read), then appends datapackage.json and its digest.
    Entries follow each other with no gap and no data descriptors (the file is seekable), the
    local header of each agrees with its central directory record, and the zip has no comment.
    A crash at any point leaves either the old file or the new one, never half a package.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).timetuple()[:6]
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w") as archive:
            resources = []
            for member in members:
                expected = member.size()
                info, zip64 = zip_entry(member.name, expected, stamp)
                hasher, size = hashlib.sha256(), 0
                with member.open() as source, archive.open(info, "w", force_zip64=zip64) as target:
                    while chunk := source.read(COPY_CHUNK_BYTES):
                        hasher.update(chunk)
                        size += len(chunk)
                        target.write(chunk)
                if size != expected:
                    raise OSError(f"{member.name} changed while being packaged ({expected} then {size} bytes)")
                resources.append((member.name, hasher.digest(), size))
            package_json = datapackage(resources, metadata)
            archive.writestr(DATAPACKAGE_PATH, package_json, zipfile.ZIP_DEFLATED)
            archive.writestr(DATAPACKAGE_DIGEST_PATH, datapackage_digest(package_json), zipfile.ZIP_DEFLATED)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, dest)
        if sync_folder:
            fsync_dir(dest.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries: a rename is durable only once the directory is on disk too."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rewrite_package(path: Path, added: Iterable[Member], *, drop: Callable[[str], bool]) -> None:
    """Rewrite a package in place, atomically: keep its entries except those ``drop`` names, add ``added``.

    Entries are streamed through a temporary folder, never held in memory; datapackage.json is
    rebuilt over the result with the old one's title, dates and main page.
    """
    with tempfile.TemporaryDirectory(prefix="tiezheng-rewrite-") as workdir:
        kept: list[Member] = []
        with zipfile.ZipFile(path) as archive:
            old = json.loads(archive.read(DATAPACKAGE_PATH))
            metadata = {k: v for k, v in old.items() if k in METADATA_KEYS and isinstance(v, str)}
            for info in archive.infolist():
                name = info.filename
                if info.is_dir() or name in (DATAPACKAGE_PATH, DATAPACKAGE_DIGEST_PATH) or drop(name):
                    continue
                target = Path(workdir) / f"{len(kept):05d}"
                with archive.open(info) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst, COPY_CHUNK_BYTES)
                kept.append(Member(name, path=target))
        write_package(path, [*kept, *added], metadata)
