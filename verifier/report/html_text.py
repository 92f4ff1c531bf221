"""Text as the report documents show it: a fact as display text, and escaped once for HTML.

Facts and reasons carry text from the package, which an adversary may have written: every value
goes through ``sanitize.display_text`` (hidden characters shown as codes) and then ``html.escape``.
The HTML page and its sections share these, and the PDF certificate shares ``text``.
"""

from __future__ import annotations

import html

from verifier.sanitize import display_text


def text(value: object) -> str:
    """A fact as display text: None as an em dash, lists joined, everything else ``str`` with every
    hidden character (controls, bidi overrides) shown as its code, because facts come from the package."""
    if value is None or value == "":
        return "—"
    if isinstance(value, list | tuple):
        return " → ".join(text(v) for v in value)
    return display_text(str(value))


def escaped(value: object) -> str:
    """``text(value)`` escaped for HTML, quotes included (safe in attributes too)."""
    return html.escape(text(value), quote=True)


def bilingual(english: str, chinese: str) -> str:
    """A label and its Chinese, escaped, the Chinese marked for fonts and readers."""
    return f'{html.escape(english)} <span lang="zh-CN" class="zh">{html.escape(chinese)}</span>'
