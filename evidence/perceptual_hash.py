"""A perceptual hash of screenshots: how different two renderings of a page look.

The difference hash (dHash, Krawetz 2013; the ``imagehash`` package has the same) shrinks the
image to a grid of grey cells, one column wider than the hash, and sets a bit where a cell is
brighter than its right neighbour. Noise that a re-render brings (anti-aliasing, a pixel of
jitter) moves cell brightness a little and flips no bit; a swapped picture, a removed block or a
"not found" page flips many. The Hamming distance between two hashes, and its fraction of the
bits, measure how far apart the two looks are. Pillow (already a dependency) does the shrinking,
so no numeric library is needed.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass

from PIL import Image

from verifier.errors import TiezhengError

#: 16 x 16 = 256 bits: fine enough to see a product image swapped on a full-page screenshot,
#: coarse enough that sub-pixel rendering noise stays inside one cell.
HASH_SIDE = 16
HASH_BITS = HASH_SIDE * HASH_SIDE
ALGORITHM = f"dhash-{HASH_SIDE}x{HASH_SIDE}"
#: A full-page screenshot of a long listing is ~1280 x 30,000; Pillow's own bomb guard is ~89 M.
MAX_SCREENSHOT_PIXELS = 64_000_000
#: Big screenshots are first reduced by an integer factor (cheap, box filter) to about this width,
#: then resized to the hash grid: the hash is the same as a direct resize, at a fraction of the cost.
REDUCE_TO_WIDTH = 256


class ScreenshotError(TiezhengError, ValueError):
    """The bytes are not a PNG screenshot this module will decode."""


@dataclass(frozen=True)
class ScreenshotHash:
    """The dHash of one screenshot and the image's size in pixels."""

    bits: int
    width: int
    height: int

    def distance(self, other: ScreenshotHash) -> int:
        """The Hamming distance: how many of the ``HASH_BITS`` bits differ."""
        return (self.bits ^ other.bits).bit_count()


def screenshot_hash(png: bytes) -> ScreenshotHash:
    """The dHash of a PNG screenshot. Raises ScreenshotError for anything but a decodable PNG within
    ``MAX_SCREENSHOT_PIXELS``."""
    try:
        with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
            width, height = image.size
            if width * height > MAX_SCREENSHOT_PIXELS or not width or not height:
                raise ScreenshotError(f"screenshot of {width} x {height} pixels is empty or over "
                                      f"{MAX_SCREENSHOT_PIXELS} pixels")
            return ScreenshotHash(bits=_dhash(image), width=width, height=height)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, ScreenshotError):
            raise
        raise ScreenshotError(f"the screenshot cannot be decoded as PNG: {exc}") from exc


def _dhash(image: Image.Image) -> int:
    grey = image.convert("L")
    factor = max(1, min(grey.width // REDUCE_TO_WIDTH, grey.height // HASH_SIDE))
    if factor > 1:
        grey = grey.reduce(factor)
    cells = grey.resize((HASH_SIDE + 1, HASH_SIDE), Image.Resampling.LANCZOS)
    values = cells.tobytes()  # one byte a cell in mode L
    bits = 0
    for row in range(HASH_SIDE):
        line = values[row * (HASH_SIDE + 1):(row + 1) * (HASH_SIDE + 1)]
        for left, right in itertools.pairwise(line):
            bits = (bits << 1) | (1 if left > right else 0)
    return bits
