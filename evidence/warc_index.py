"""WACZ side files derived from the WARC: the CDXJ index and the page list."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cdxj_indexer import CDXJIndexer

#: CDXJ lines per gzip block: what py-wacz and cdxj-indexer write, small enough for one range read.
LINES_PER_BLOCK = 300


@dataclass(frozen=True)
class ReplayIndex:
    """A compressed (ZipNum) CDXJ index, the layout WACZ 1.1.1 names and ReplayWeb.page reads.

    ``blocks`` is ``indexes/index.cdx.gz``: the sorted CDXJ lines as a series of gzip members, one per
    block (so still one valid gzip file). ``summary`` is ``indexes/index.idx``: a ``!meta`` line naming
    the blocks file, then each block's first key with its offset and length. A viewer reads the summary
    and then only the blocks it needs; without the summary it finds no index at all.
    """

    blocks: bytes
    summary: bytes


def cdxj_index(warc: Path | BinaryIO, name_in_package: str = "data.warc.gz",
               blocks_name: str = "index.cdx.gz") -> ReplayIndex:
    """Return the ZipNum CDXJ index of a WARC (a file, or a readable stream at the WARC's start).

    ``blocks_name`` is the blocks file's name in ``indexes/``. Both outputs are built in memory (an
    index is small next to its WARC), so indexing leaves no temporary files behind to remove.
    """
    blocks, summary = io.BytesIO(), io.StringIO()
    # The gzip members are written by zlib with no file name and mtime 0: identical WARCs give
    # byte-identical indexes.
    CDXJIndexer(output=summary, inputs=[str(warc) if isinstance(warc, Path) else warc], sort=True,
                filename=name_in_package, compress=blocks, data_out_name=blocks_name,
                lines=LINES_PER_BLOCK).process_all()
    return ReplayIndex(blocks=blocks.getvalue(), summary=summary.getvalue().encode())


def pages_jsonl(pages: Iterable[dict[str, str]]) -> bytes:
    """Return ``pages/pages.jsonl``: the WACZ header line, then one page per line."""
    header = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
    return "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in [header, *pages]).encode()
