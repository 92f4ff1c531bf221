"""WACZ side files derived from the WARC: the CDXJ index and the page list."""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

from cdxj_indexer import CDXJIndexer


def cdxj_index(warc_path: Path, name_in_package: str = "data.warc.gz") -> bytes:
    """Return the gzipped, sorted CDXJ index of a WARC (``indexes/index.cdx.gz``)."""
    with tempfile.TemporaryDirectory(prefix="tiezheng-cdx-") as workdir:
        out = Path(workdir) / "index.cdxj"
        CDXJIndexer(output=str(out), inputs=[str(warc_path)], sort=True, filename=name_in_package).process_all()
        text = out.read_text(encoding="utf-8")
    # mtime=0 keeps the index byte-identical for identical WARCs.
    return gzip.compress(text.encode(), mtime=0)


def pages_jsonl(pages: Iterable[dict[str, str]]) -> bytes:
    """Return ``pages/pages.jsonl``: the WACZ header line, then one page per line."""
    header = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
    return "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in [header, *pages]).encode()
