"""The packages of a timeline: every ``.wacz`` in a folder, or in a zip of packages, read strictly.

A zip of packages is hostile input like a package: it is walked once by ``verifier.zip_layout`` (one
reading for every zip reader), names and declared sizes are judged before anything is inflated,
and each package in turn is streamed out through ``verifier.zip_entry`` (sizes and CRC enforced)
into a private temporary folder, where the package reader opens it as it opens any file, and is
removed before the next. Anything unsafe raises ``InvalidPackage``: the timeline is then unusable
input.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from verifier.errors import InvalidPackage
from verifier.package import MAX_PACKAGE_BYTES, check_declared_size
from verifier.zip_entry import CHUNK_BYTES, open_entry
from verifier.zip_layout import ZipEntry, read_layout

#: A watch every hour for a year is ~8,800 captures; a timeline put before a court is far shorter.
MAX_TIMELINE_PACKAGES = 10_000
#: Files a zip of packages may hold besides them (a README, a folder entry, a macOS resource fork).
MAX_OTHER_ENTRIES = 100
#: What a zip of packages may expand to, all packages together.
MAX_TIMELINE_BYTES = 64 << 30
PACKAGE_SUFFIX = ".wacz"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._\-]{1,255}$")


@dataclass(frozen=True)
class TimelineInput:
    """The packages to verify, by the name the report shows, and what else the input held."""

    #: (name shown, file): read them in order; a zip's are extracted one at a time.
    packages: Iterable[tuple[str, Path]]
    ignored: tuple[str, ...]


@contextmanager
def timeline_packages(source: Path) -> Iterator[TimelineInput]:
    """The packages of ``source``, a folder or a zip of packages. Raises InvalidPackage."""
    try:
        info = source.stat()
    except OSError as exc:
        raise InvalidPackage(f"cannot read {source}: {exc.strerror}") from exc
    if stat.S_ISDIR(info.st_mode):
        yield _folder(source)
    elif stat.S_ISREG(info.st_mode):
        with _zip_of_packages(source) as found:
            yield found
    else:
        raise InvalidPackage(f"{source} is neither a folder nor a zip file")


def _folder(folder: Path) -> TimelineInput:
    """Every regular ``*.wacz`` directly in ``folder``, by name; sub-folders are not searched."""
    packages, ignored = [], []
    try:
        children = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise InvalidPackage(f"cannot list {folder}: {exc.strerror}") from exc
    for child in children:
        if child.name.endswith(PACKAGE_SUFFIX) and child.is_file() and not child.is_symlink():
            packages.append((child.name, child))
        else:
            ignored.append(child.name)
    _check_count(len(packages), str(folder))
    return TimelineInput(packages=tuple(packages), ignored=tuple(ignored[:MAX_OTHER_ENTRIES]))


def _check_count(count: int, where: str) -> None:
    if not count:
        raise InvalidPackage(f"{where} holds no evidence package (*{PACKAGE_SUFFIX})")
    if count > MAX_TIMELINE_PACKAGES:
        raise InvalidPackage(f"{where} holds {count} packages, more than {MAX_TIMELINE_PACKAGES}")


@contextmanager
def _zip_of_packages(path: Path) -> Iterator[TimelineInput]:
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        layout = read_layout(f, size, max_entries=MAX_TIMELINE_PACKAGES + MAX_OTHER_ENTRIES)
        wanted, ignored, total = [], [], 0
        names: set[str] = set()
        for entry in layout.entries:
            segments = entry.name.rstrip("/").split("/")
            if not all(_SAFE_NAME.match(s) and s not in (".", "..") for s in segments):
                raise InvalidPackage(f"the zip holds an unsafe name {entry.name[:80]!r}")
            if entry.is_dir:
                if entry.size or entry.compressed_size:
                    raise InvalidPackage(f"directory entry {entry.name!r} carries data")
                continue
            base = segments[-1]
            if not base.endswith(PACKAGE_SUFFIX):
                ignored.append(entry.name)
                continue
            if base.lower() in names:
                raise InvalidPackage(f"the zip holds two packages named {base!r}")
            names.add(base.lower())
            check_declared_size(entry, base, MAX_PACKAGE_BYTES)
            total += entry.size
            if total > MAX_TIMELINE_BYTES:
                raise InvalidPackage(f"the packages expand to more than {MAX_TIMELINE_BYTES} bytes")
            wanted.append((base, entry))
        if len(ignored) > MAX_OTHER_ENTRIES:
            raise InvalidPackage(f"the zip holds {len(ignored)} files that are not packages")
        _check_count(len(wanted), path.name)
        work = Path(tempfile.mkdtemp(prefix="tiezheng-timeline-"))
        try:
            yield TimelineInput(packages=_extracted(f, wanted, work), ignored=tuple(ignored))
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _extracted(f: BinaryIO, wanted: list[tuple[str, ZipEntry]], work: Path) -> Iterator[tuple[str, Path]]:
    """Each package streamed out to ``work`` when it is its turn, and removed once the caller moves on:
    a timeline of any length needs the disk space of one package."""
    for base, entry in wanted:
        target = work / base
        with open_entry(f, entry) as stream, target.open("xb") as out:
            shutil.copyfileobj(stream, out, CHUNK_BYTES)
        try:
            yield base, target
        finally:
            target.unlink(missing_ok=True)
