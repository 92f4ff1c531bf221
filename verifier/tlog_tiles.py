"""C2SP tlog-tiles: how a log's Merkle tree and entries are cut into static files.

A tile of level L and index N holds up to 256 consecutive hashes of tree level 8·L, from position
N·256: level-0 tiles hold leaf hashes, a level-1 tile the roots of 256-leaf subtrees, and so on.
Only complete subtrees are stored; a tile of fewer than 256 hashes is partial, and its path says
its width (``.p/W``). An index is written in three-digit path elements, all but the last prefixed
with ``x``: 1234067 is ``x001/x234/067``. Entry bundles (``tile/entries/N``) hold the entries of
the level-0 tile N, each as a two-byte big-endian length and the bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence

from verifier.errors import InvalidInput
from verifier.merkle import HASH_SIZE, NODE_PREFIX

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_ENTRY_BYTES = 0xFFFF
#: The levels the spec allows: six tile levels cover 2**48 leaves.
MAX_LEVEL = 5
_PATH = re.compile(r"tile/(entries|[0-5])/((?:x\d{3}/)*\d{3})(?:\.p/(\d{1,3}))?")


def index_path(index: int) -> str:
    """``1234067`` -> ``x001/x234/067``."""
    if index < 0:
        raise InvalidInput("a tile index is not negative")
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if not index:
            break
    return "/".join(["x" + g for g in reversed(groups[1:])] + [groups[0]])


def tile_path(level: int | str, index: int, width: int = TILE_WIDTH) -> str:
    """The path of a hash tile (``level`` an int) or an entry bundle (``level == "entries"``)."""
    if not 0 < width <= TILE_WIDTH:
        raise InvalidInput(f"tile width {width} outside 1..{TILE_WIDTH}")
    partial = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{index_path(index)}{partial}"


def parse_tile_path(path: str) -> tuple[int | str, int, int]:
    """``tile/1/x001/002.p/7`` -> ``(1, 1002, 7)``; ``entries`` stays a string. Raises InvalidInput."""
    match = _PATH.fullmatch(path)
    if not match:
        raise InvalidInput(f"{path!r} is not a tlog-tiles path")
    level_text, index_text, width_text = match.groups()
    parts = index_text.split("/")
    if any(not p.startswith("x") for p in parts[:-1]) or (len(parts) > 1 and parts[0] == "x000"):
        raise InvalidInput(f"{path!r} is not a canonical tile index")
    index = int("".join(p.removeprefix("x") for p in parts))
    width = int(width_text) if width_text is not None else TILE_WIDTH
    if not 0 < width < TILE_WIDTH and width_text is not None:
        raise InvalidInput(f"{path!r}: a partial tile's width is 1..{TILE_WIDTH - 1}")
    if width_text is not None and width_text != str(width):
        raise InvalidInput(f"{path!r}: width has leading zeros")
    level: int | str = level_text if level_text == "entries" else int(level_text)
    return level, index, width


def tiles_of(size: int) -> Iterator[tuple[int, int, int]]:
    """Every hash tile ``(level, index, width)`` a tree of ``size`` leaves has, lowest level first."""
    level = 0
    while level <= MAX_LEVEL:
        nodes = size >> (TILE_HEIGHT * level)
        if not nodes:
            return
        for index in range(nodes // TILE_WIDTH):
            yield level, index, TILE_WIDTH
        if nodes % TILE_WIDTH:
            yield level, nodes // TILE_WIDTH, nodes % TILE_WIDTH
        level += 1


def complete_levels(leaves: Sequence[bytes], top: int | None = None) -> list[list[bytes]]:
    """Every level of complete subtrees over ``leaves`` (no odd node promoted): level h holds the
    roots of the aligned 2**h-leaf subtrees. Tiles are cut from these levels."""
    levels = [list(leaves)]
    sha, prefix = hashlib.sha256, NODE_PREFIX
    while len(levels[-1]) > 1 and (top is None or len(levels) <= top):
        pairs = iter(levels[-1])
        levels.append([sha(prefix + left + right).digest() for left, right in zip(pairs, pairs, strict=False)])
    return levels


def tile_bytes(levels: Sequence[Sequence[bytes]], level: int, index: int, width: int) -> bytes:
    """The bytes of one hash tile, from ``complete_levels``."""
    row = levels[TILE_HEIGHT * level]
    start = index * TILE_WIDTH
    hashes = row[start:start + width]
    if len(hashes) != width:
        raise InvalidInput(f"tile {level}/{index} of width {width} is beyond the tree")
    return b"".join(hashes)


def split_tile(data: bytes) -> list[bytes]:
    """The hashes of a tile's bytes. Raises InvalidInput when not a whole number of hashes."""
    if len(data) % HASH_SIZE or not 0 < len(data) <= TILE_WIDTH * HASH_SIZE:
        raise InvalidInput(f"a tile of {len(data)} bytes is not 1..{TILE_WIDTH} hashes")
    return [data[i:i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry as a two-byte big-endian length, then its bytes."""
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY_BYTES:
            raise InvalidInput(f"an entry of {len(entry)} bytes is over {MAX_ENTRY_BYTES}")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def decode_bundle(data: bytes) -> list[bytes]:
    """The entries of an entry bundle. Raises InvalidInput when it is cut short."""
    entries, at = [], 0
    while at < len(data):
        if at + 2 > len(data):
            raise InvalidInput("entry bundle ends inside a length")
        length = int.from_bytes(data[at:at + 2], "big")
        if at + 2 + length > len(data):
            raise InvalidInput("entry bundle ends inside an entry")
        entries.append(data[at + 2:at + 2 + length])
        at += 2 + length
    return entries


def tile_hash_at(read: Callable[[int, int], Sequence[bytes]], height: int, position: int) -> bytes:
    """The hash of the complete subtree of ``2**height`` leaves at ``position`` (counted in such
    subtrees), from tiles: ``read(level, index)`` returns a tile's hashes (any width that covers it)."""
    level, within = divmod(height, TILE_HEIGHT)
    span = 1 << within  # hashes of tile level ``level`` under this node
    first = position * span
    tile = read(level, first // TILE_WIDTH)
    start = first % TILE_WIDTH
    row = list(tile[start:start + span])
    if len(row) != span:
        raise InvalidInput(f"tile {level}/{first // TILE_WIDTH} is too narrow for node {height}/{position}")
    while len(row) > 1:
        pairs = iter(row)
        row = [hashlib.sha256(NODE_PREFIX + left + right).digest() for left, right in zip(pairs, pairs, strict=True)]
    return row[0]


def root_from_tiles(size: int, read: Callable[[int, int], Sequence[bytes]]) -> bytes:
    """The RFC 9162 root of the first ``size`` leaves: the complete subtrees of the binary
    decomposition of ``size``, largest first, hashed together from the right."""
    if size == 0:
        return hashlib.sha256(b"").digest()
    parts = []
    offset = 0
    for height in range(size.bit_length() - 1, -1, -1):
        if size >> height & 1:
            parts.append(tile_hash_at(read, height, offset >> height))
            offset += 1 << height
    root = parts[-1]
    for left in reversed(parts[:-1]):
        root = hashlib.sha256(NODE_PREFIX + left + root).digest()
    return root


def extend_tiles(read: Callable[[int, int], Sequence[bytes]], old_size: int, leaves: Sequence[bytes]
                 ) -> dict[tuple[int, int], list[bytes]]:
    """The hash tiles that change when ``leaves`` are appended to a tree of ``old_size`` leaves:
    ``{(level, index): hashes}``, each the tile's whole new content (full, or partial and wider)."""
    changed: dict[tuple[int, int], list[bytes]] = {}
    level, before, new = 0, old_size, list(leaves)
    while new and level <= MAX_LEVEL:
        index = before // TILE_WIDTH
        kept = list(read(level, index)[:before % TILE_WIDTH]) if before % TILE_WIDTH else []
        row = kept + new
        parents = []
        for offset in range(0, len(row), TILE_WIDTH):
            hashes = row[offset:offset + TILE_WIDTH]
            changed[(level, index + offset // TILE_WIDTH)] = hashes
            if len(hashes) == TILE_WIDTH:
                parents.append(complete_levels(hashes)[-1][0])
        level, before, new = level + 1, index, parents
    return changed
