"""What a reader sees of a captured page: its visible text, line by line, and the key fields a watch marks.

The page is the rendered DOM (``evidence/dom.html``), parsed with selectolax (the Lexbor engine:
an HTML5 parser, so a page parses to the tree a browser built, and CSS selectors as browsers
read them). Nothing here trusts the page: sizes are capped before parsing, and every string that
leaves this module is bounded in length (``bounded``), because it ends up in a signed artifact
and in documents for a court.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from selectolax.lexbor import LexborHTMLParser, SelectolaxError

from verifier.errors import TiezhengError

#: A rendered listing with reviews is 1-5 MB; an endless feed scrolled far can pass 10 MB. Past this a
#: capture is not compared (the change record says so) rather than compared on a part of the page.
MAX_HTML_BYTES = 32 << 20
#: Lines of visible text kept for the diff; a page with more is compared on its first lines only.
MAX_TEXT_LINES = 20_000
#: Any string from a page, once it leaves this module (a line, a field value, a title, a URL).
MAX_STRING_CHARS = 300
#: A watch marks a handful of fields (price, sales, views, likes, seller); more is a mistake.
MAX_KEY_FIELDS = 32
MAX_SELECTOR_CHARS = 500
MAX_FIELD_NAME_CHARS = 64
#: Elements whose end is a line break for a reader. Inline elements (b, span, a) join their text.
BLOCK_ELEMENTS = ("address,article,aside,blockquote,br,dd,details,dialog,div,dl,dt,fieldset,figcaption,figure,"
                  "footer,form,h1,h2,h3,h4,h5,h6,header,hr,li,main,nav,ol,p,pre,section,summary,table,tr,td,"
                  "th,ul,option")
#: Never shown to a reader.
INVISIBLE_ELEMENTS = "script,style,noscript,template,head"
MEDIA_ELEMENTS = "img,picture,video,canvas,svg,iframe,embed,object"
MAX_HEADINGS = 50
_SPACES = re.compile(r"\s+")
ELLIPSIS = "…"


class FieldSpecError(TiezhengError, ValueError):
    """A key field as the watch gave it is unusable (no name, too long, bad selector)."""


@dataclass(frozen=True)
class KeyField:
    """A field the user marks on a watch: a name shown in documents and the CSS selector that finds it."""

    name: str
    css_selector: str

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > MAX_FIELD_NAME_CHARS:
            raise FieldSpecError(f"a key field needs a name of 1 to {MAX_FIELD_NAME_CHARS} characters")
        if not self.css_selector.strip() or len(self.css_selector) > MAX_SELECTOR_CHARS:
            raise FieldSpecError(f"key field {self.name!r} needs a CSS selector of 1 to {MAX_SELECTOR_CHARS} "
                                 "characters")
        try:
            LexborHTMLParser("<p></p>").css(self.css_selector)
        except SelectolaxError as exc:
            raise FieldSpecError(f"key field {self.name!r}: {self.css_selector!r} is not a CSS selector") from exc

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "css_selector": self.css_selector}


def parse_key_fields(value: Any) -> tuple[KeyField, ...]:
    """A watch's key fields from JSON: a list of ``{"name", "css_selector"}`` objects, or one object
    ``{name: css_selector}``. Raises FieldSpecError naming the first problem, so a watch with a bad
    selector is refused when it is made."""
    if isinstance(value, dict):
        value = [{"name": name, "css_selector": selector} for name, selector in value.items()]
    if not isinstance(value, list) or len(value) > MAX_KEY_FIELDS:
        raise FieldSpecError(f"key fields must be a list of at most {MAX_KEY_FIELDS} {{name, css_selector}} objects")
    fields = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) \
                or not isinstance(item.get("css_selector"), str):
            raise FieldSpecError("each key field must be an object with a name and a css_selector (strings)")
        fields.append(KeyField(item["name"], item["css_selector"]))
    if len({f.name for f in fields}) != len(fields):
        raise FieldSpecError("two key fields have the same name")
    return tuple(fields)


def bounded(text: str, limit: int = MAX_STRING_CHARS) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[:limit - 1] + ELLIPSIS


def decode_html(data: bytes) -> str:
    """The HTML as text. The rendered DOM is UTF-8 (the browser serialised it); a raw source that is
    not UTF-8 is most often GB 18030 (GBK, GB 2312) on the sites this serves."""
    data = data[:MAX_HTML_BYTES]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError:
            return data.decode("utf-8", "replace")


@dataclass(frozen=True)
class PageText:
    """A page as a reader sees it: its title and its visible lines (whitespace collapsed, empty lines
    dropped). Lines are kept whole for comparison; ``bounded`` applies where they are shown."""

    title: str
    lines: tuple[str, ...]
    #: The text of the h1-h3 headings: where a notice page states that content is gone.
    headings: tuple[str, ...] = ()
    #: Whether the body shows an image, video, canvas or embedded frame: a page of those alone is not empty.
    has_media: bool = False

    @property
    def is_empty(self) -> bool:
        """Nothing for a reader to see: no title, no text, no picture."""
        return not self.lines and not self.title and not self.has_media


def page_text(html: str) -> PageText:
    """The visible text of ``html``."""
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = _SPACES.sub(" ", title_node.text(deep=True)).strip() if title_node is not None else ""
    for node in tree.css(INVISIBLE_ELEMENTS):
        node.decompose()
    root = tree.body
    if root is None:
        return PageText(title=bounded(title), lines=())
    headings = tuple(_SPACES.sub(" ", node.text(deep=True)).strip() for node in root.css("h1,h2,h3"))
    has_media = root.css_first(MEDIA_ELEMENTS) is not None
    for node in root.css(BLOCK_ELEMENTS):
        node.insert_after("\n")
    raw = root.text(deep=True, separator="")
    lines = tuple(line for line in (_SPACES.sub(" ", part).strip() for part in raw.split("\n")) if line)
    return PageText(title=bounded(title), lines=lines[:MAX_TEXT_LINES],
                    headings=tuple(bounded(h) for h in headings if h)[:MAX_HEADINGS], has_media=has_media)


def key_field_values(html: str, fields: Sequence[KeyField]) -> list[str | None]:
    """The text of the first element each field's selector matches (None where nothing matches),
    whitespace collapsed and bounded."""
    if len(fields) > MAX_KEY_FIELDS:
        raise FieldSpecError(f"{len(fields)} key fields; the limit is {MAX_KEY_FIELDS}")
    tree = LexborHTMLParser(html)
    values: list[str | None] = []
    for field in fields:
        node = tree.css_first(field.css_selector)
        values.append(None if node is None else bounded(_SPACES.sub(" ", node.text(deep=True)).strip()))
    return values
