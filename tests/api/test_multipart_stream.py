"""Received file names: kept as sent for the manifest, never used on disk or as archive paths."""

from __future__ import annotations

import pytest

from evidence.upload import MAX_NAME_CHARS, safe_name


@pytest.mark.parametrize(("sent", "stored"), [
    ("report.pdf", "report.pdf"), ("../../etc/passwd", "passwd"), ("C:\\Users\\x\\evil.exe", "evil.exe"),
    ("..", "file"), ("", "file"), ("a\x00b\nc.txt", "a_b_c.txt"), ("截图 1.png", "1.png"),
    ("证" * 100 + ".pdf", "file.pdf"), ("名" * 300, "file"), ("报告 (final).docx", "final.docx"),
    ("archive.tar.gz", "archive.tar.gz"), ("notes.verylongextension", "notes.verylongextension"),
    ("manifest.json", "manifest-2.json"), ("manifest.sig", "manifest-2.sig"),  # beside the package's own
])
def test_archive_names_are_short_ascii(sent: str, stored: str) -> None:
    assert safe_name(sent, set()) == stored


def test_archive_names_are_unique_and_bounded() -> None:
    taken: set[str] = set()
    names = [safe_name(sent, taken) for sent in ("证据.pdf", "材料.pdf", "a" * 1000 + ".txt", "a" * 1000 + ".txt")]
    assert names[:2] == ["file.pdf", "file-2.pdf"] and len(set(names)) == 4
    assert all(name.isascii() and len(name) <= MAX_NAME_CHARS + 12 for name in names)
