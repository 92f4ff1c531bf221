"""Make text from a package safe to show: every invisible or controlling character becomes visible.

A package is written by whoever made it, and its strings (names, URLs, requester, file names, and
every reason that quotes them) reach a terminal, an HTML page and a PDF. There they must read as
what they are. A terminal obeys ESC/CSI/OSC sequences (``ESC[1A ESC[2K`` erases the line above,
OSC 8 makes a hidden hyperlink), a carriage return or newline starts a fake line, and the Unicode
bidi controls (U+202A-U+202E, U+2066-U+2069) reorder what a reader sees in any renderer.

``display_text`` escapes rather than strips: the report should show that the package carried such
characters, because that is itself a finding. Each one becomes a visible code (``\\x1b``,
``\\u202e``), so what follows an ESC or a bidi override is inert, readable text. JSON output does not
use this: it stays faithful data, and ``json.dumps(..., ensure_ascii=True)`` writes every
non-ASCII character, bidi controls included, as a ``\\uXXXX`` escape.
"""

from __future__ import annotations

import unicodedata

#: Unicode categories that never render as themselves: controls (C0, DEL, C1 incl. 8-bit CSI/OSC),
#: format characters (bidi embeddings, overrides and isolates, zero-width and tag characters, BOM),
#: line and paragraph separators, and lone surrogates.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def visible_code(char: str) -> str:
    """The escape a reader sees in place of a hidden character: ``\\x1b``, ``\\u202e``, ``\\U000e0041``."""
    point = ord(char)
    if point < 0x100:
        return f"\\x{point:02x}"
    if point < 0x10000:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"


def is_hidden(char: str) -> bool:
    """Whether ``char`` controls a terminal or a layout instead of showing as a glyph."""
    return unicodedata.category(char) in HIDDEN_CATEGORIES


def display_text(value: str) -> str:
    """``value`` with every hidden character replaced by its visible code; other text unchanged.

    Fast path: most strings are plain, and the verifier renders thousands per report.
    """
    if value.isascii() and value.isprintable():
        return value
    return "".join(visible_code(c) if is_hidden(c) else c for c in value)
