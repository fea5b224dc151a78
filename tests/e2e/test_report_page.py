"""The HTML security report in headless Chromium at phone width: nothing wider than the screen."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from idsentry.reports.document import report_document
from idsentry.reports.html import render_html
from idsentry.reports.model import from_records, report_data
from infra.tools.report_samples import (
    GENERATED_AT,
    MASKED,
    REPORT_MONTH,
    SUBSCRIBER_ID,
    sample_records,
)
from infra.web.browser import PHONE_WIDTH, missing_browser, start_chromium

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", autouse=True)
def chromium_available() -> None:
    """Skip the module where Chromium is missing, but fail under CI, which must install it."""
    reason = missing_browser()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"browser test cannot run under CI: {reason} (.ci/run installs them)")
    pytest.skip(f"browser test skipped: {reason}")


@pytest.fixture(scope="module")
def phone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("profile")
    driver = start_chromium(profile, width=PHONE_WIDTH)
    yield driver
    driver.quit()


def _open_report(driver: Any, directory: Path, locale: str) -> None:
    partition, related = sample_records(locale)
    facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)
    page = directory / f"report-{locale}.html"
    page.write_text(
        render_html(report_document(report_data(facts, REPORT_MONTH, GENERATED_AT))),
        encoding="utf-8",
    )
    driver.get(page.as_uri())


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_report_fits_phone_width(phone: Any, tmp_path: Path, locale: str) -> None:
    _open_report(phone, tmp_path, locale)

    page_width = phone.execute_script("return document.documentElement.scrollWidth")
    viewport = phone.execute_script("return window.innerWidth")
    assert page_width <= viewport


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_chart_whole_on_phone(phone: Any, tmp_path: Path, locale: str) -> None:
    _open_report(phone, tmp_path, locale)

    frame = phone.execute_script(
        "const frame = document.querySelector('.chart-frame');"
        "const chart = frame.querySelector('svg').getBoundingClientRect();"
        "return {scroll: frame.scrollWidth, client: frame.clientWidth, chart: chart.width};"
    )
    assert frame["scroll"] <= frame["client"]
    assert 0 < frame["chart"] <= frame["client"]
