"""The bundled PDF fonts: TrueType outlines, the licence beside them, every fixed character,
and exactly the hanzi beyond GB 2312's level 1 between the common and the full subset."""

from __future__ import annotations

import pytest
from fontTools.ttLib import TTFont

from idsentry.reports.pdf import CJK_UNIFIED_IDEOGRAPHS, COMMON_FONT, FULL_FONT, font_path
from idsentry.reports.text import TEXT, fixed_characters
from infra.tools.subset_font import config_characters, gb2312_characters

pytestmark = pytest.mark.unit


LEVEL_ONE = gb2312_characters(range(16, 56))
LEVEL_TWO = gb2312_characters(range(56, 88))


@pytest.fixture(scope="module", params=[FULL_FONT, COMMON_FONT])
def font(request) -> TTFont:
    return TTFont(font_path(request.param), lazy=True)


@pytest.fixture(scope="module")
def cmap(font) -> set[int]:
    return set(font.getBestCmap())


@pytest.fixture(scope="module")
def full_cmap() -> set[int]:
    return set(TTFont(font_path(FULL_FONT), lazy=True).getBestCmap())


@pytest.fixture(scope="module")
def common_cmap() -> set[int]:
    return set(TTFont(font_path(COMMON_FONT), lazy=True).getBestCmap())


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


def test_gb2312_level_one_hanzi_are_in_font(cmap):
    assert len(LEVEL_ONE) == 3755
    assert {character for character in LEVEL_ONE if ord(character) not in cmap} == set()


def test_full_subset_has_level_two_hanzi(full_cmap):
    assert len(LEVEL_TWO) == 3008
    assert {character for character in LEVEL_TWO if ord(character) not in full_cmap} == set()


def test_full_subset_has_name_hanzi(full_cmap, common_cmap):
    # Outside GB 2312, and common in names and brands.
    for character in "堃喆玥":
        assert ord(character) in full_cmap
        assert ord(character) not in common_cmap


def test_subsets_differ_by_unified_ideographs(full_cmap, common_cmap):
    # The PDF writer loads the full subset only for a hanzi of the CJK Unified Ideographs block
    # that the common one lacks, so every character that only the full subset has must be one.
    only_full = full_cmap - common_cmap
    assert common_cmap <= full_cmap
    assert len(only_full) > 17000
    assert [code for code in only_full if code not in CJK_UNIFIED_IDEOGRAPHS] == []
    in_both = LEVEL_ONE | fixed_characters() | config_characters()
    assert {chr(code) for code in only_full} == {
        chr(code) for code in CJK_UNIFIED_IDEOGRAPHS if code in full_cmap
    } - in_both


def test_fonts_stay_small():
    # The subsets are about 7.6 MB and 1.3 MB, while Noto Sans SC Regular is over 10 MB.
    assert font_path(FULL_FONT).stat().st_size < 8_000_000
    assert font_path(COMMON_FONT).stat().st_size < 1_400_000


def test_font_glyph_names_and_cmap(font):
    # Both spare fpdf2 work on every PDF: names derived from the cmap took about 10 ms, and
    # fontTools decoded the second, identical subtable when it subset the font.
    assert font["post"].formatType == 2.0
    assert [(table.platformID, table.platEncID) for table in font["cmap"].tables] == [(3, 1)]
    assert font.getGlyphOrder()[:2] == [".notdef", "space"]
