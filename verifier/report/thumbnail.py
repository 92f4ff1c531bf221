"""A small picture of a capture's first screen, for the timeline document.

Made only from a screenshot that ``verifier.report.exhibit`` already accepted (H1 showed it to be the sealed
file, and its PNG header size is within MAX_SCREENSHOT_PIXELS), decoded by Pillow as PNG only.
Pillow is the ``pdf`` extra: without it there is no thumbnail, and nothing else changes.
"""

from __future__ import annotations

import io

from verifier.report.exhibit import Screenshot

#: Wide enough to recognise a listing, small enough that a year of captures stays a light document.
THUMBNAIL_WIDTH = 240


def first_screen_thumbnail(shot: Screenshot) -> bytes | None:
    """The first screen of ``shot`` as a PNG ``THUMBNAIL_WIDTH`` pixels wide; None when Pillow is
    missing or cannot decode it."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(io.BytesIO(shot.png), formats=["PNG"]) as image:
            top = image.crop((0, 0, shot.width, shot.first_screen)).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    height = max(1, round(shot.first_screen * THUMBNAIL_WIDTH / shot.width))
    small = top.resize((THUMBNAIL_WIDTH, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue()
