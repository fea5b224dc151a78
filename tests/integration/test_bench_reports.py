"""The report, reconciliation and exposure-event bench at a tiny size: figures from real runs."""

from __future__ import annotations

import pytest

from infra.bench.exposure_events import exposure_events_section, measure_exposure_events
from infra.bench.reconcile import UNIT_OBJECTS, lower_bound, measure_reconciliation
from infra.bench.reports import (
    ReportsBench,
    interleaved_medians,
    measure_sample,
    plain_html,
    reports_section,
    visible_lines,
)

pytestmark = pytest.mark.integration


def test_visible_lines_skip_styles() -> None:
    page = "<html><head><style>p { color: red }</style></head><body><p>已泄露</p> <b>2</b></body>"

    assert visible_lines(page) == ["已泄露", "2"]


def test_plain_html_escapes_every_line() -> None:
    page = plain_html(["<script>", "a & b"], "<style></style>", "en")

    assert "<p>&lt;script&gt;</p>" in page
    assert "<p>a &amp; b</p>" in page


def test_interleaved_medians_warm_up_once() -> None:
    calls = {"one": 0, "two": 0}

    def count(name: str) -> None:
        calls[name] += 1

    medians = interleaved_medians({"one": lambda: count("one"), "two": lambda: count("two")}, 3)

    assert calls["one"] == 4
    assert calls["two"] == 4
    assert set(medians) == {"one", "two"}


def test_sample_renders_both_formats() -> None:
    html_figure, pdf_figure = measure_sample("zh-CN", 0, runs=1)

    assert html_figure.output == "HTML"
    assert pdf_figure.output == "PDF"
    assert html_figure.exposures > 0
    assert pdf_figure.exposures == html_figure.exposures
    assert pdf_figure.pages >= 1
    assert html_figure.baseline_size_bytes > 0
    assert html_figure.size_bytes > html_figure.baseline_size_bytes


def test_reconciliation_meets_lower_bound() -> None:
    reconciliation = measure_reconciliation(UNIT_OBJECTS)

    assert reconciliation.objects == UNIT_OBJECTS
    assert reconciliation.matched > 0
    assert reconciliation.total_requests == reconciliation.lower_bound

    figures = measure_sample("en", 0, runs=1)
    section = reports_section(ReportsBench(figures, 1, reconciliation))
    assert f"Stripe requests for {UNIT_OBJECTS} objects" in section
    assert "PDF, en" in section


def test_lower_bound_empty_list() -> None:
    assert lower_bound([0, 100, 101]) == 1 + 1 + 2


def test_exposure_events_share_requests() -> None:
    bench = measure_exposure_events(25)

    assert bench.events == 25
    assert bench.requests == 3
    assert "`events:PutEvents`" in exposure_events_section(bench)
