"""The bundled PDF font: TrueType outlines, its licence beside it, and every fixed character."""

from __future__ import annotations

import pytest
from fontTools.ttLib import TTFont

from idsentry.reports.pdf import font_path
from idsentry.reports.text import TEXT, fixed_characters
from infra.tools.subset_font import config_characters, gb2312_characters

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def font() -> TTFont:
    return TTFont(font_path(), lazy=True)


@pytest.fixture(scope="module")
def cmap(font) -> set[int]:
    return set(font.getBestCmap())


def test_font_has_truetype_outlines(font):
    assert "glyf" in font
    assert "CFF " not in font
    # fsType 0 allows installable embedding.
    assert font["OS/2"].fsType == 0


def test_licence_and_readme_beside_font():
    folder = font_path().parent
    licence = (folder / "LICENSE").read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE Version 1.1" in licence
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "@expo-google-fonts/noto-sans-sc" in readme
    assert "infra.tools.subset_font" in readme


def test_font_keeps_copyright_and_licence_names(font):
    names = font["name"]
    assert "Adobe" in names.getDebugName(0)
    assert "Open Font License" in names.getDebugName(13)
    assert names.getDebugName(1) == "Noto Sans SC Subset"


def test_every_fixed_character_is_in_font(cmap):
    missing = sorted(character for character in fixed_characters() if ord(character) not in cmap)
    assert missing == []


def test_every_catalogue_entry_has_both_locales():
    incomplete = [key for key, entry in TEXT.items() if set(entry) != {"zh-CN", "en"}]
    assert incomplete == []


def test_every_playbook_character_is_in_font(cmap):
    missing = sorted(character for character in config_characters() if ord(character) not in cmap)
    assert missing == []


def test_gb2312_hanzi_both_levels_are_in_font(cmap):
    level_one = gb2312_characters(range(16, 56))
    level_two = gb2312_characters(range(56, 88))
    assert len(level_one) == 3755
    assert len(level_two) == 3008
    assert {character for character in level_one | level_two if ord(character) not in cmap} == set()


def test_font_stays_small():
    # The subset is about 2.3 MB, while the full Noto Sans SC Regular is over 10 MB.
    assert font_path().stat().st_size < 2_500_000


def test_font_glyph_names_and_cmap(font):
    # Both spare fpdf2 work on every PDF: names derived from the cmap took about 10 ms, and
    # fontTools decoded the second, identical subtable when it subset the font.
    assert font["post"].formatType == 2.0
    assert [(table.platformID, table.platEncID) for table in font["cmap"].tables] == [(3, 1)]
    assert font.getGlyphOrder()[:2] == [".notdef", "space"]
