"""Line breaking for the PDF: Chinese between characters, punctuation rules, Latin at spaces."""

from __future__ import annotations

import pytest

from idsentry.reports.linebreak import (
    NO_BREAK_AFTER,
    NO_BREAK_BEFORE,
    break_lines,
    segments,
)

pytestmark = pytest.mark.unit


def _width(value: str) -> float:
    # Wide characters count 2, everything else 1, like a terminal.
    return sum(2 if ord(character) > 0x2E80 else 1 for character in value)


def test_chinese_breaks_between_characters():
    assert break_lines("身份哨兵月度安全报告", 8, _width) == ["身份哨兵", "月度安全", "报告"]


def test_closing_punctuation_never_starts_a_line():
    lines = break_lines("查询名下手机卡，发现不认识的请联系运营商。", 8, _width)
    assert all(line[0] not in NO_BREAK_BEFORE for line in lines)
    assert "".join(lines) == "查询名下手机卡，发现不认识的请联系运营商。"


def test_opening_punctuation_never_ends_a_line():
    lines = break_lines("请使用国家反诈中心“反诈”功能", 14, _width)
    assert all(line[-1] not in NO_BREAK_AFTER for line in lines)
    assert "".join(lines) == "请使用国家反诈中心“反诈”功能"


def test_latin_words_and_masked_values_stay_whole():
    lines = break_lines("身份证号 1101**********100X 已泄露", 24, _width)
    assert lines == ["身份证号", "1101**********100X 已泄", "露"]
    assert break_lines("Check the phone cards under your ID", 12, _width) == [
        "Check the",
        "phone cards",
        "under your",
        "ID",
    ]


def test_piece_wider_than_line_is_split():
    lines = break_lines("https://ipcrs.pbccrc.org.cn", 10, _width)
    assert lines == ["https://ip", "crs.pbccrc", ".org.cn"]


def test_explicit_newlines_are_kept():
    assert break_lines("身份证号\n手机号", 40, _width) == ["身份证号", "手机号"]
    assert break_lines("", 40, _width) == [""]


def test_segments_glue_punctuation():
    assert segments("好，“反诈”。") == ["好，", "“反", "诈”。"]
    assert segments("Call 110, now") == ["Call", " ", "110,", " ", "now"]
