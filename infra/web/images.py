"""PNG files for docs/: PDF pages drawn by pdftoppm, and PNGs reduced to a size budget."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

PDFTOPPM_HINT = "apt-get install -y poppler-utils"
# Keeps docs/ small. A full-page phone screenshot at twice the CSS pixels exceeds it as RGB.
MAX_PNG_BYTES = 400_000
# Resolution of PDF pages in the pictures: an A4 page is 827 by 1169 pixels at 100 dpi.
PDF_DPI = 100
PDFTOPPM_TIMEOUT_S = 60


def missing_pdftoppm() -> str | None:
    """Return why PDF pages cannot become pictures, or None when pdftoppm is installed."""
    if shutil.which("pdftoppm") is None:
        return f"pdftoppm not found; install Debian's poppler-utils: {PDFTOPPM_HINT}"
    return None


def pages_to_render(page_count: int, count: int) -> list[int]:
    """Return the 1-based numbers of the first `count` pages of a PDF with `page_count` pages."""
    if page_count < 1:
        raise ValueError(f"the PDF has no page (page count {page_count})")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    return list(range(1, min(page_count, count) + 1))


def pdftoppm_command(pdf: Path, page: int, out_prefix: Path, dpi: int = PDF_DPI) -> list[str]:
    """Return the pdftoppm command that writes page `page` of `pdf` to `{out_prefix}.png`.

    `-singlefile` keeps pdftoppm from appending the page number, whose width depends on the
    page count.
    """
    if page < 1:
        raise ValueError(f"page numbers start at 1, got {page}")
    if dpi < 1:
        raise ValueError(f"dpi must be positive, got {dpi}")
    return [
        "pdftoppm",
        "-png",
        "-r",
        str(dpi),
        "-f",
        str(page),
        "-l",
        str(page),
        "-singlefile",
        str(pdf),
        str(out_prefix),
    ]


def shrink_png(data: bytes, max_bytes: int = MAX_PNG_BYTES) -> bytes:
    """Return the PNG re-encoded with zlib's best compression, and reduced to 256 colours when
    that is still over `max_bytes`. The smallest encoding wins, so nothing ever grows."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        candidates = [data, _encode(image)]
        if min(len(candidate) for candidate in candidates) > max_bytes:
            rgb = image.convert("RGB")
            # In the report screenshots, median cut turned the small amber legend square into a
            # duller orange (245,158,11 became 234,161,64); the octree keeps its colour.
            candidates.append(_encode(rgb.quantize(colors=256, method=Image.Quantize.FASTOCTREE)))
    return min(candidates, key=len)


def _encode(image: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def pdf_page_count(pdf: bytes) -> int:
    """Return the number of pages of a PDF."""
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)


def render_pdf_pages(pdf: bytes, count: int, out_dir: Path, name: str) -> list[Path]:
    """Write the first `count` pages of `pdf` as `{name}-{page}.png` in `out_dir`."""
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "document.pdf"
        source.write_bytes(pdf)
        for page in pages_to_render(pdf_page_count(pdf), count):
            prefix = Path(work) / f"page-{page}"
            # A fixed program with arguments built from our own paths and numbers.
            subprocess.run(  # noqa: S603
                pdftoppm_command(source, page, prefix),
                check=True,
                capture_output=True,
                timeout=PDFTOPPM_TIMEOUT_S,
            )
            target = out_dir / f"{name}-{page}.png"
            target.write_bytes(shrink_png(prefix.with_suffix(".png").read_bytes()))
            written.append(target)
    return written
