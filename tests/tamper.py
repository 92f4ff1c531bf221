"""Make tampered copies of a package: one mutation each, the rest byte-identical."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path


def rewrite(source: Path, target: Path, change: Callable[[str, bytes], bytes | None],
            add: dict[str, bytes] | None = None) -> Path:
    """Copy ``source`` to ``target`` passing each entry through ``change`` (None drops it)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = change(info.filename, src.read(info))
            if data is not None:
                dst.writestr(info.filename, data)
        for name, data in (add or {}).items():
            dst.writestr(name, data)
    return target


def replace_entry(source: Path, target: Path, name: str, mutate: Callable[[bytes], bytes]) -> Path:
    return rewrite(source, target, lambda n, d: mutate(d) if n == name else d)


def flip_byte(data: bytes, position: int = 0) -> bytes:
    position %= max(len(data), 1)
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1:]


def replace_sealed_entry(source: Path, target: Path, name: str, mutate: Callable[[bytes], bytes]) -> Path:
    """Like ``replace_entry``, but rebuild datapackage.json over the change, as a careful forger would,
    so that only the check aimed at ``name`` can notice."""
    import json

    from verifier.package import DATAPACKAGE_DIGEST_PATH, DATAPACKAGE_PATH
    from verifier.wacz import Member, write_package

    with zipfile.ZipFile(source) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    entries[name] = mutate(entries[name])
    metadata = json.loads(entries[DATAPACKAGE_PATH])
    members = [Member(n, data=d) for n, d in entries.items() if n not in (DATAPACKAGE_PATH, DATAPACKAGE_DIGEST_PATH)]
    write_package(target, members, {k: v for k, v in metadata.items() if isinstance(v, str)})
    return target
