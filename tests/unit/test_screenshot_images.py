"""`make screenshots`' image helpers and the sample reconciliation they photograph."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from PIL import Image

from infra.tools.reconcile_samples import sample_reconciliation
from infra.web import images
from infra.web.images import pages_to_render, pdftoppm_command, shrink_png

pytestmark = pytest.mark.unit


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _noisy_png(width: int = 300, height: int = 300) -> bytes:
    """Return an RGB PNG of random pixels, which compresses badly in full colour."""
    generator = random.Random(7)
    pixels = bytes(generator.randrange(256) for _ in range(width * height * 3))
    return _png(Image.frombytes("RGB", (width, height), pixels))


def test_pages_first_of_longer_pdf() -> None:
    assert pages_to_render(5, 2) == [1, 2]


def test_pages_capped_at_page_count() -> None:
    assert pages_to_render(1, 2) == [1]


@pytest.mark.parametrize(
    ("page_count", "count", "message"),
    [(0, 1, "the PDF has no page"), (3, 0, "count must be at least 1")],
)
def test_pages_reject_empty_ranges(page_count: int, count: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pages_to_render(page_count, count)


def test_pdftoppm_one_page_single_file() -> None:
    command = pdftoppm_command(Path("/tmp/in.pdf"), 2, Path("/tmp/out/page-2"), dpi=120)

    assert command == [
        "pdftoppm",
        "-png",
        "-r",
        "120",
        "-f",
        "2",
        "-l",
        "2",
        "-singlefile",
        "/tmp/in.pdf",
        "/tmp/out/page-2",
    ]


@pytest.mark.parametrize(
    ("page", "dpi", "message"),
    [(0, 100, "page numbers start at 1"), (1, 0, "dpi must be positive")],
)
def test_pdftoppm_rejects_bad_numbers(page: int, dpi: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pdftoppm_command(Path("in.pdf"), page, Path("out"), dpi=dpi)


def test_missing_pdftoppm_names_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images.shutil, "which", lambda name: None)

    reason = images.missing_pdftoppm()

    assert reason is not None
    assert "poppler-utils" in reason


def test_shrink_over_budget_uses_palette() -> None:
    data = _noisy_png()

    smaller = shrink_png(data, max_bytes=len(data) // 2)

    assert len(smaller) < len(data)
    with Image.open(io.BytesIO(smaller)) as image:
        assert image.mode == "P"
        assert image.size == (300, 300)


def test_shrink_palette_keeps_small_colour_areas() -> None:
    severity_colours = [
        (0x7F, 0x1D, 0x1D),
        (0xDC, 0x26, 0x26),
        (0xF5, 0x9E, 0x0B),
        (0x60, 0xA5, 0xFA),
    ]
    generator = random.Random(3)
    image = Image.new("RGB", (400, 400), "white")
    # Grey noise, as anti-aliased text leaves, so that the palette has to choose.
    for _ in range(20_000):
        level = generator.randrange(256)
        image.putpixel((generator.randrange(400), generator.randrange(300)), (level,) * 3)
    for index, colour in enumerate(severity_colours):
        image.paste(colour, (20 + index * 60, 340, 32 + index * 60, 352))

    reduced = shrink_png(_png(image), max_bytes=1)

    with Image.open(io.BytesIO(reduced)) as result:
        assert result.mode == "P"
        pixels = result.convert("RGB")
        for index, colour in enumerate(severity_colours):
            found = pixels.getpixel((26 + index * 60, 346))
            assert max(abs(a - b) for a, b in zip(found, colour, strict=True)) <= 12, colour


def test_shrink_under_budget_keeps_colours() -> None:
    data = _png(Image.new("RGB", (200, 100), "#1d4ed8"))

    kept = shrink_png(data, max_bytes=len(data) * 10)

    assert len(kept) <= len(data)
    with Image.open(io.BytesIO(kept)) as image:
        assert image.mode == "RGB"
        assert image.getpixel((10, 10)) == (0x1D, 0x4E, 0xD8)


def test_sample_reconciliation_classes() -> None:
    counts = sample_reconciliation().counts()

    assert counts["missing_in_ledger"] == 2
    assert counts["amount_mismatch"] == 2
    assert counts["status_mismatch"] == 1
    assert counts["missing_in_stripe"] == 0
    assert counts["matched"] > 10


def test_sample_reconciliation_refund_dispute_match() -> None:
    rows = {row.stripe_id: row for row in sample_reconciliation().rows}

    assert rows["re_sample01"].row_class == "matched"
    assert rows["dp_sample01"].row_class == "matched"
    assert rows["in_sample03"].reasons == ("no_ledger_entry",)
