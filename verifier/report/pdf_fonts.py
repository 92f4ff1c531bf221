"""The fonts of the PDF certificate, and text as reportlab markup in them.

Every font is embedded, so the certificate looks the same in any viewer, years later: Latin text in
Bitstream Vera (shipped inside reportlab), Chinese in WenQuanYi Micro Hei (Debian fonts-wqy-microhei).
Only when no CJK font file is at hand does the CID fallback (STSong-Light) leave Chinese glyphs to the
viewer. reportlab is imported inside functions: the base verifier imports without the pdf extra.
"""

from __future__ import annotations

import html
import os
import unicodedata
from itertools import groupby
from pathlib import Path

from verifier.errors import InvalidInput
from verifier.report.html_text import text

#: Names a TrueType/OpenType font file (.ttf/.ttc/.otf) or a CID font name; tried first.
CJK_FONT_ENV = "TIEZHENG_CJK_FONT"
#: Debian's fonts-wqy-microhei. Embedded (subset) into the PDF, so the PDF shows the same everywhere.
DEBIAN_CJK_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
#: reportlab's built-in Adobe CID fonts need no file: the PDF viewer supplies the glyphs, so this
#: works on any machine (counsel's), though the font is not embedded.
CID_FONTS = ("STSong-Light", "MSung-Light")
#: Where the CJK font comes from, in order (after CJK_FONT_ENV, when set).
CJK_FONT_ORDER = (DEBIAN_CJK_FONT, "STSong-Light")
#: Latin text is set in Bitstream Vera, which ships inside reportlab: always at hand, always embedded
#: (the standard-14 fonts such as Helvetica are never embedded, so a viewer substitutes its own).
SANS, SANS_BOLD, MONO = "TZ-Sans", "TZ-Sans-Bold", "TZ-Mono"
VERA_FILES = {SANS: "Vera.ttf", SANS_BOLD: "VeraBd.ttf", "TZ-Sans-Italic": "VeraIt.ttf",
              "TZ-Sans-BoldItalic": "VeraBI.ttf"}
#: Monospace for hashes: WenQuanYi Micro Hei Mono, face 1 of the Debian CJK collection; Vera otherwise.
MONO_FACE = (DEBIAN_CJK_FONT, 1)
#: Longest text put in one table cell: reportlab cannot split a cell across pages, and a hostile
#: package must not make the certificate fail. The JSON report has the full text.
MAX_CELL_CHARS = 1500

def register_cjk_font() -> str:
    """Register the first usable CJK font of CJK_FONT_ENV, then CJK_FONT_ORDER; return its name.

    Raises InvalidInput when CJK_FONT_ENV is set but names neither a readable font file nor a CID font.
    """
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont

    override = os.environ.get(CJK_FONT_ENV, "").strip()
    for candidate in ((override,) if override else ()) + CJK_FONT_ORDER:
        if candidate in CID_FONTS:
            name = candidate
            if name not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(UnicodeCIDFont(name))
        elif Path(candidate).is_file():
            name = f"TZ-CJK-{Path(candidate).stem}"
            if name not in pdfmetrics.getRegisteredFontNames():
                try:
                    pdfmetrics.registerFont(TTFont(name, candidate, subfontIndex=0))
                except Exception as exc:  # reportlab raises its own TTFError and plain ones for bad files
                    if candidate == override:
                        raise InvalidInput(f"{CJK_FONT_ENV}={override!r} is not a usable TrueType font: {exc}") from exc
                    continue
        elif candidate == override:
            raise InvalidInput(f"{CJK_FONT_ENV}={override!r} is neither a font file nor one of {', '.join(CID_FONTS)}")
        else:
            continue
        # One face serves regular and bold, so <b> around Chinese text cannot fail on a missing face.
        pdfmetrics.registerFontFamily(name, normal=name, bold=name, italic=name, boldItalic=name)
        return name
    raise InvalidInput("no CJK font available")  # unreachable: CJK_FONT_ORDER ends with a CID font


def register_latin_fonts() -> None:
    """Register the embedded Latin faces (SANS, SANS_BOLD, MONO) once."""
    import reportlab
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if MONO in pdfmetrics.getRegisteredFontNames():
        return
    folder = Path(reportlab.__file__).parent / "fonts"
    for name, file in VERA_FILES.items():
        pdfmetrics.registerFont(TTFont(name, str(folder / file)))
    pdfmetrics.registerFontFamily(SANS, normal=SANS, bold=SANS_BOLD, italic="TZ-Sans-Italic",
                                  boldItalic="TZ-Sans-BoldItalic")
    try:
        pdfmetrics.registerFont(TTFont(MONO, MONO_FACE[0], subfontIndex=MONO_FACE[1]))
    except Exception:  # no Debian font (or another collection there): Vera is a fine fallback for hex
        pdfmetrics.registerFont(TTFont(MONO, str(folder / VERA_FILES[SANS])))


def _latin(char: str) -> bool:
    try:
        char.encode("cp1252")  # what the Latin face (Vera) can show
    except UnicodeEncodeError:
        return False
    return True


def markup(value: object, cjk: str, *, limit: int = MAX_CELL_CHARS) -> str:
    """Paragraph markup for (untrusted) text: escaped, control characters blanked, and every run that
    the Latin face cannot show set in the CJK font, so nothing renders as a missing-glyph box."""
    raw = text(value)
    if len(raw) > limit:
        raw = raw[:limit] + " … [truncated here; the JSON report has the full text]"
    clean = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in raw)
    runs = []
    for latin, chars in groupby(clean, key=_latin):
        run = html.escape("".join(chars), quote=False)
        runs.append(run if latin else f'<font name="{cjk}">{run}</font>')
    return "".join(runs)
