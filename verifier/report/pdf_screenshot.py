"""The screenshot in the PDF certificate: any band of rows of it, scaled to the text width.

The whole image is drawn under a clip, so the PDF holds it once however many bands (the first screen
on page 1, the page-high parts after) show it. Pillow decodes only a PNG whose header size
verifier.report.exhibit checked against MAX_SCREENSHOT_PIXELS already, and only as PNG.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from verifier.errors import InvalidInput
from verifier.report.exhibit import Screenshot

if TYPE_CHECKING:
    from reportlab.platypus import Flowable

LINE = "#c8d1da"


def mm_points() -> float:
    from reportlab.lib.units import mm

    return float(mm)


def decode(shot: Screenshot) -> Any:
    """The screenshot as one reportlab ImageReader, drawn by every band, so the PDF embeds it once.

    Raises InvalidInput when Pillow cannot decode it. Pillow sees only a PNG whose header size
    verifier.report.exhibit checked against MAX_SCREENSHOT_PIXELS, and reads it only as PNG."""
    from PIL import Image
    from reportlab.lib.utils import ImageReader

    try:
        with Image.open(io.BytesIO(shot.png), formats=["PNG"]) as image:
            if image.size != (shot.width, shot.height):
                raise InvalidInput("its size differs from its header")
            return ImageReader(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidInput(f"the screenshot cannot be decoded: {exc}") from exc


def screenshot_band(shot: Screenshot, image: Any, top: int, bottom: int, scale: float, width: float) -> Flowable:
    """Rows ``top``..``bottom`` of the screenshot at ``scale`` points per pixel, centred in ``width``.

    The whole image (``decode(shot)``) is drawn under a clip, so the PDF holds it once however many
    bands show it."""
    from reportlab.platypus import Flowable as Base

    class Band(Base):  # type: ignore[misc]
        def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
            return width, (bottom - top) * scale + 1

        def draw(self) -> None:
            canvas = self.canv
            shown_width, shown_height = shot.width * scale, (bottom - top) * scale
            left = (width - shown_width) / 2
            canvas.saveState()
            path = canvas.beginPath()
            path.rect(left, 0, shown_width, shown_height)
            canvas.clipPath(path, stroke=0, fill=0)
            canvas.drawImage(image, left, shown_height - (shot.height - top) * scale,
                             width=shown_width, height=shot.height * scale)
            canvas.restoreState()
            canvas.setStrokeColor(LINE)
            canvas.rect(left, 0, shown_width, shown_height, stroke=1, fill=0)

    return Band()
