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
