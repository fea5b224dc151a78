"""The demo's report stage: the lines it prints from downloaded reports."""

from __future__ import annotations

import pytest

from infra.local.demo_reports import _beijing, _html_blocks, _html_lang, _masked_lines

pytestmark = pytest.mark.unit

PAGE = (
    '<!doctype html><html lang="en"><head><title>Report</title></head><body>'
    "<table><tr><td>Identifier</td><td>ID number 3101**********0023<br>Mobile 139****9002</td>"
    "</tr></table><dl><dt>E-mail</dt><dd>a***@example.com</dd></dl>"
    "<ol><li><p>Check your accounts</p>No stars here</li></ol></body></html>"
)


def test_blocks_split_cells_and_breaks() -> None:
    blocks = _html_blocks(PAGE)

    assert "ID number 3101**********0023 Mobile 139****9002" in blocks
    assert "Check your accounts" in blocks
    assert "No stars here" in blocks


def test_masked_lines_only_with_stars() -> None:
    lines = _masked_lines(_html_blocks(PAGE))

    assert lines == ["ID number 3101**********0023 Mobile 139****9002", "a***@example.com"]


def test_masked_lines_at_most_three() -> None:
    assert len(_masked_lines([f"line {index} 1***{index}" for index in range(5)])) == 3


def test_html_lang_read() -> None:
    assert _html_lang(PAGE) == "en"
    assert _html_lang("<html>") == "-"


def test_beijing_time_of_api_value() -> None:
    assert _beijing("2026-12-05T07:47:44.667679+00:00") == "2026-12-05 15:47:44"
    assert _beijing("soon") == "soon"
