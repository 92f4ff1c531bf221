"""File names from multipart bodies are made safe before they touch the disk."""

from __future__ import annotations

import pytest

from api.multipart_stream import MAX_FILENAME_CHARS, safe_filename


@pytest.mark.parametrize(("raw", "safe"), [
    ("report.pdf", "report.pdf"), ("../../etc/passwd", "passwd"), ("C:\\Users\\x\\evil.exe", "evil.exe"),
    ("..", "file"), ("", "file"), ("a\x00b\nc.txt", "abc.txt"), ("截图 1.png", "截图 1.png"),
])
def test_safe_filename(raw: str, safe: str) -> None:
    assert safe_filename(raw) == safe


def test_long_names_are_cut() -> None:
    assert len(safe_filename("x" * 1000)) == MAX_FILENAME_CHARS
