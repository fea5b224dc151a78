"""Unit tests for GSM-7 and UCS-2 detection and segment counts, with and without a signature."""

from __future__ import annotations

import pytest

from idsentry.sms_segments import GSM7_EXTENSION, count_segments

pytestmark = pytest.mark.unit

SIGNATURE = "【身份哨兵】"
HAN = "身"
EMOJI = "\U0001f600"


def test_ucs2_70_chinese_one_segment() -> None:
    count = count_segments(HAN * 70)

    assert count.encoding == "UCS-2"
    assert count.units == 70
    assert count.segments == 1
    assert count.per_segment == 70


def test_ucs2_71_chinese_two_segments() -> None:
    count = count_segments(HAN * 71)

    assert count.encoding == "UCS-2"
    assert count.units == 71
    assert count.segments == 2
    assert count.per_segment == 67


def test_ucs2_134_and_135_chinese() -> None:
    assert count_segments(HAN * 134).segments == 2
    assert count_segments(HAN * 135).segments == 3


def test_gsm7_160_and_161() -> None:
    single = count_segments("a" * 160)
    double = count_segments("a" * 161)

    assert single.encoding == "GSM-7"
    assert single.segments == 1
    assert single.per_segment == 160
    assert double.encoding == "GSM-7"
    assert double.segments == 2
    assert double.per_segment == 153


def test_gsm7_extension_costs_two() -> None:
    for character in GSM7_EXTENSION:
        count = count_segments(character)
        assert count.encoding == "GSM-7", repr(character)
        assert count.units == 2, repr(character)


def test_gsm7_extension_at_160() -> None:
    fits = count_segments("a" * 158 + "€")
    over = count_segments("a" * 159 + "€")

    assert fits.units == 160
    assert fits.segments == 1
    assert over.units == 161
    assert over.segments == 2


def test_gsm7_extension_text_boundaries() -> None:
    text = "Price: 5€ [approx] {tax} ~10% | a^b \\ c\f" + "x" * 110
    count = count_segments(text)

    assert count.encoding == "GSM-7"
    assert count.units == 160
    assert count.segments == 1
    assert count_segments(text + "x").segments == 2


def test_gsm7_escape_not_split_at_153() -> None:
    # 306 septets would fill two parts exactly, but the escape sequence of € cannot
    # straddle the first boundary, so it moves whole to the second part.
    count = count_segments("a" * 152 + "€" + "a" * 152)

    assert count.units == 306
    assert count.segments == 3
    assert count_segments("a" * 153 + "€" + "a" * 151).segments == 2


def test_gsm7_basic_accents() -> None:
    count = count_segments("Café Müller à Øresund")

    assert count.encoding == "GSM-7"
    assert count.units == 21


def test_one_non_gsm_forces_ucs2() -> None:
    gsm = count_segments("a" * 100)
    mixed = count_segments("a" * 100 + "’")

    assert gsm.encoding == "GSM-7"
    assert gsm.segments == 1
    assert mixed.encoding == "UCS-2"
    assert mixed.units == 101
    assert mixed.segments == 2


def test_small_c_cedilla_is_ucs2() -> None:
    assert count_segments("ç").encoding == "UCS-2"
    assert count_segments("Ç").encoding == "GSM-7"


def test_emoji_counts_two_units() -> None:
    fits = count_segments(HAN * 68 + EMOJI)
    over = count_segments(HAN * 69 + EMOJI)

    assert fits.units == 70
    assert fits.segments == 1
    assert over.units == 71
    assert over.segments == 2


def test_emoji_straddling_67_moves() -> None:
    # Units 67 and 68 would be the two halves of the surrogate pair: the emoji moves whole to
    # the second part, which pushes the last character into a third part.
    count = count_segments(HAN * 66 + EMOJI + HAN * 66)

    assert count.encoding == "UCS-2"
    assert count.units == 134
    assert count.segments == 3
    assert count_segments(HAN * 67 + EMOJI + HAN * 65).segments == 2


def test_signature_counts_against_budget() -> None:
    fits = count_segments(HAN * 64, SIGNATURE)
    over = count_segments(HAN * 65, SIGNATURE)

    assert fits.units == 70
    assert fits.segments == 1
    assert over.units == 71
    assert over.segments == 2


def test_signature_forces_ucs2() -> None:
    count = count_segments("a" * 60, SIGNATURE)

    assert count.encoding == "UCS-2"
    assert count.units == 66
    assert count.segments == 1
    assert count_segments("a" * 60, "[IDSentry]").encoding == "GSM-7"


def test_empty_text_rejected() -> None:
    with pytest.raises(ValueError, match="text must not be empty"):
        count_segments("")
