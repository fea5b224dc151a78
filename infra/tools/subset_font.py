"""Subset Noto Sans SC to the characters reports need and write the two PDF fonts the layer ships.

    .venv/bin/python -m infra.tools.subset_font --source NotoSansSC_400Regular.ttf \
        [--output-dir layers/idsentry/python/idsentry/reports/fonts]

Both subsets keep printable ASCII, Latin-1, general punctuation, CJK symbols and punctuation,
full-width forms, every GB 2312 symbol and the 3,755 level-1 hanzi of GB 2312 (the most
common ones), and every character of the reports' fixed text and of the playbook
configuration. The full subset (`NotoSansSC-Subset.ttf`) also keeps every other hanzi of the
CJK Unified Ideographs block that the source has: GB 2312's level 2, and characters of names
and brands such as 堃, 喆 and 玥. The common one (`NotoSansSC-Common.ttf`) does not. Hinting
and the OpenType layout tables are dropped, because fpdf2 uses neither. The same source gives the same bytes.
`reports/fonts/README.md` names the package the source font comes from.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

ROOT = Path(__file__).resolve().parents[2]
_LAYER = str(ROOT / "layers" / "idsentry" / "python")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)

from idsentry.reports.pdf import CJK_UNIFIED_IDEOGRAPHS, COMMON_FONT, FULL_FONT  # noqa: E402
from idsentry.reports.text import fixed_characters  # noqa: E402
from idsentry.services.playbooks import load_config  # noqa: E402

DEFAULT_OUTPUT_DIR = ROOT / "layers/idsentry/python/idsentry/reports/fonts"
# The file of each subset, and whether it keeps the whole CJK Unified Ideographs block.
SUBSETS = ((Path(FULL_FONT).name, True), (Path(COMMON_FONT).name, False))
FAMILY = "Noto Sans SC Subset"
POSTSCRIPT_NAME = "NotoSansSCSubset-Regular"
# GB 2312 rows (区): 1-9 contain symbols, 16-55 the level-1 hanzi.
_SYMBOL_ROWS = range(1, 10)
_LEVEL_ONE_ROWS = range(16, 56)
_RANGES = (
    (0x20, 0x7E),  # printable ASCII
    (0xA0, 0xFF),  # Latin-1 Supplement
    (0x2010, 0x2027),  # dashes, quotation marks, ellipsis
    (0x2030, 0x203A),  # per mille, primes, angle quotation marks
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0xFF01, 0xFF5E),  # full-width ASCII forms
    (0xFFE0, 0xFFE6),  # full-width currency signs
)


def gb2312_characters(rows: range) -> set[str]:
    """Return the characters of the given GB 2312 rows."""
    found = set()
    for row in rows:
        for cell in range(0xA1, 0xFF):
            try:
                found.add(bytes([row + 0xA0, cell]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return found


def config_characters() -> set[str]:
    """Return every character of the playbook configuration's texts (step, service and check names)."""
    found: set[str] = set()
    config = load_config()
    texts = [
        *(service.name for service in config.services.values()),
        *(service.access for service in config.services.values()),
        *(step.title for step in config.steps.values()),
        *(step.detail for step in config.steps.values()),
        *(check.title for check in config.checks.values()),
        *(label for check in config.checks.values() for label in check.counts.values()),
    ]
    for value in texts:
        found.update(value.zh_cn)
        found.update(value.en)
    for service in config.services.values():
        found.update(service.url or "")
    return found


def characters_to_keep(full: bool) -> set[str]:
    """Return the characters a subset should keep, before checking that the source has them."""
    keep = {chr(code) for start, end in _RANGES for code in range(start, end + 1)}
    keep |= gb2312_characters(_SYMBOL_ROWS) | gb2312_characters(_LEVEL_ONE_ROWS)
    if full:
        keep |= {chr(code) for code in CJK_UNIFIED_IDEOGRAPHS}
    return keep | fixed_characters() | config_characters()


def build_subset(source: Path, full: bool) -> tuple[TTFont, set[str]]:
    """Subset the source font. Returns the subset and the characters to keep that the source lacks."""
    font = TTFont(source, recalcTimestamp=False)
    if "glyf" not in font:
        raise SystemExit(
            f"{source} has no TrueType (glyf) outlines, which fpdf2 embeds. Use a .ttf with glyf outlines."
        )
    cmap = font.getBestCmap()
    keep = characters_to_keep(full)
    missing = {character for character in keep if ord(character) not in cmap}

    options = subset.Options()
    options.hinting = False
    options.layout_features = []
    options.notdef_outline = True
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.drop_tables += ["BASE", "STAT", "GDEF", "GPOS", "GSUB", "vhea", "vmtx"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(ord(character) for character in keep - missing))
    subsetter.subset(font)
    _keep_windows_cmap(font)
    _store_glyph_names(font)
    _rename(font)
    return font, missing


def _keep_windows_cmap(font: TTFont) -> None:
    # The source maps the same characters twice, in a Unicode-platform and a Windows subtable.
    # fpdf2 reads one, but fontTools decodes both when it subsets the font for a PDF.
    cmap = font["cmap"]
    windows = [table for table in cmap.tables if (table.platformID, table.platEncID) == (3, 1)]
    if len(windows) != 1:
        raise SystemExit("the source font has no Windows Unicode BMP (3, 1) cmap subtable")
    cmap.tables = windows
    cmap.numSubTables = 1


def _store_glyph_names(font: TTFont) -> None:
    # The source has no glyph names (post format 3), so fontTools derives all 7,673 of them from
    # the cmap each time fpdf2 loads the font: about 10 ms of every report PDF. Format 2 stores
    # the derived names instead.
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}


def _rename(font: TTFont) -> None:
    # A modified font should not pass for the original, so the subset gets names of its own.
    # The copyright and licence records (name IDs 0, 13 and 14) are kept as they are.
    names = font["name"]
    version = names.getDebugName(5) or ""
    replacements = {
        1: FAMILY,
        3: f"{version.split(';')[0]};IDSentry;{POSTSCRIPT_NAME}",
        4: f"{FAMILY} Regular",
        6: POSTSCRIPT_NAME,
        16: FAMILY,
    }
    for record in list(names.names):
        if record.nameID in replacements:
            record.string = replacements[record.nameID]


def main(argv: list[str] | None = None) -> int:
    """Write both subsets and report their sizes and the characters the source lacks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        required=True,
        help="path of NotoSansSC_400Regular.ttf from the npm package",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_OUTPUT_DIR,
        help="folder to write both subsets to (default: the layer's report fonts)",
    )
    args = parser.parse_args(argv)

    for name, full in SUBSETS:
        font, missing = build_subset(args.source, full)
        required = (fixed_characters() | config_characters()) & missing
        if required:
            listing = " ".join(f"U+{ord(character):04X}" for character in sorted(required))
            raise SystemExit(
                f"the source font lacks characters the reports use: {listing}. "
                "Use a source font that has them, or change the text."
            )

        output = args.output_dir / name
        output.parent.mkdir(parents=True, exist_ok=True)
        font.save(output)
        glyphs = len(font.getGlyphOrder())
        print(f"wrote {output} ({output.stat().st_size} bytes, {glyphs} glyphs)")
        if missing:
            print(f"skipped {len(missing)} characters outside the fixed text that the source lacks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
