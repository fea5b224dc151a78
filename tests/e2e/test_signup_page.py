"""The signup page in headless Chromium against the local stack: errors, codes and checkout."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.service import LocalService
from infra.web.browser import missing_browser, start_chromium
from tests.e2e.conftest import (
    IDENTITIES,
    RecordCollector,
    code_from,
    wait_for_sms,
    watch_handler_logs,
)

pytestmark = pytest.mark.e2e

# Seconds a page may take to show the result of an API call or a redirect.
PAGE_DEADLINE_S = 30
# Short, so that the resend button becomes usable within the test, and long enough for the test
# to see it disabled first.
RESEND_INTERVAL_S = 5


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
def page_service(log_records: RecordCollector) -> Iterator[LocalService]:
    """The local stack with a short resend interval, serving the page under /signup/."""
    parameters = {"OtpResendIntervalSeconds": str(RESEND_INTERVAL_S)}
    with LocalService(port=0, identities_path=IDENTITIES, parameters=parameters) as started:
        watch_handler_logs(started, log_records)
        yield started


@pytest.fixture
def open_browser(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Return a function that starts Chromium. Every browser it started is quit afterwards."""
    drivers: list[Any] = []

    def start(**options: Any) -> Any:
        profile = tmp_path / f"profile-{len(drivers)}"
        profile.mkdir()
        driver = start_chromium(profile, **options)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.quit()


def _wait(driver: Any, condition: Callable[[Any], Any]) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, PAGE_DEADLINE_S).until(condition)


def _open(driver: Any, url: str) -> None:
    driver.get(url)
    _wait(driver, lambda d: d.execute_script("return document.body.dataset.ready") == "true")


def _by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def _type(driver: Any, element_id: str, value: str) -> None:
    field = _by_id(driver, element_id)
    field.clear()
    field.send_keys(value)


def _visible(driver: Any, element_id: str) -> Any:
    return _wait(
        driver, lambda d: _by_id(d, element_id) if _by_id(d, element_id).is_displayed() else None
    )


def _signup_items(service: LocalService) -> list[dict[str, Any]]:
    assert service.stack is not None
    client = service.stack.runtime.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName="idsentry-local"):
        items.extend(item for item in page["Items"] if item["sk"]["S"] == "SIGNUP")
    return items


def _page_errors(driver: Any) -> list[str]:
    """Return console messages of CSP violations and uncaught script errors."""
    messages = [entry["message"] for entry in driver.get_log("browser")]
    return [text for text in messages if "Content Security Policy" in text or "Uncaught" in text]


def _assert_logs_hold_none_of(collector: RecordCollector, raw_values: list[str]) -> None:
    # Selenium's own debug records carry the typed text, and they come from the test, not the
    # service.
    lines = [line for line in collector.lines if "'name': 'selenium" not in line]
    assert any("signup verified" in line for line in lines), "no handler records were collected"
    for line in lines:
        for value in raw_values:
            assert value not in line, "a log record contains a raw identifier"


def test_zh_page_field_errors_wrong_and_right_code(
    page_service: LocalService, open_browser: Callable[..., Any], log_records: RecordCollector
) -> None:
    from selenium.webdriver.common.keys import Keys

    driver = open_browser(language="zh-CN", timezone="Asia/Shanghai")
    _open(driver, page_service.signup_page_url)
    assert driver.find_element("css selector", "html").get_attribute("lang") == "zh-CN"
    assert _by_id(driver, "details-title").text == "注册身份泄露监控"

    # The terms text loads into the page in the page's language.
    _by_id(driver, "consent-terms").find_element("xpath", "../../details/summary").click()
    terms = _wait(
        driver,
        lambda d: (
            d.find_element("css selector", "details[data-consent=terms] .consent-text")
            if "身份哨兵帮助您"
            in d.find_element("css selector", "details[data-consent=terms]").text
            else None
        ),
    )
    assert "IDSentry helps you" not in terms.text
    assert len(terms.find_elements("css selector", "ol > li")) == 5

    _type(driver, "name", "王小明")
    _type(driver, "id_number", "110105199002301234")
    _type(driver, "mobile", "010 6552 9988")
    _type(driver, "email", "wangxm@example.com")
    _by_id(driver, "consent-terms").click()
    _by_id(driver, "consent-cross-border").click()
    _by_id(driver, "details-submit").click()

    id_error = _visible(driver, "id_number-error")
    assert id_error.text == "身份证号中的出生日期无效。"
    assert "不是手机号" in _by_id(driver, "mobile-error").text
    assert "敏感个人信息" in _by_id(driver, "consent-sensitive-error").text
    assert not _by_id(driver, "email-error").is_displayed()
    id_field = _by_id(driver, "id_number")
    assert id_field.get_attribute("aria-invalid") == "true"
    assert id_field.get_attribute("aria-describedby").split() == [
        "id_number-error",
        "id_number-hint",
    ]
    summary = _by_id(driver, "details-alert")
    assert driver.switch_to.active_element == summary
    assert len(summary.find_elements("css selector", "li")) == 3

    _type(driver, "id_number", "110105199003071239")
    _type(driver, "mobile", "13800138001")
    _by_id(driver, "consent-sensitive").click()
    # Enter in a text field submits the form, as keyboard users expect.
    _by_id(driver, "email").send_keys(Keys.ENTER)

    _visible(driver, "step-code")
    assert driver.switch_to.active_element == _by_id(driver, "code")
    status = _by_id(driver, "code-status").text
    assert "验证码正在发送" in status
    assert "138****8001" in status
    assert not _by_id(driver, "id_number").is_displayed()

    right = code_from(wait_for_sms(page_service, "+8613800138001")[-1])
    wrong = "000000" if right != "000000" else "111111"
    _type(driver, "code", wrong)
    _by_id(driver, "code-submit").click()
    code_error = _visible(driver, "code-error")
    assert "验证码不正确" in code_error.text
    assert "4" in code_error.text
    assert _by_id(driver, "code").get_attribute("aria-invalid") == "true"

    _type(driver, "code", right)
    _by_id(driver, "code").send_keys(Keys.ENTER)
    _visible(driver, "step-done")
    # Stop the automatic redirect before it fires, then check the step at leisure.
    _by_id(driver, "stay").click()
    assert "已取消自动跳转" in _by_id(driver, "redirect-status").text
    assert "wangxm@example.com" in _by_id(driver, "email-notice").text
    assert "支付链接" in _by_id(driver, "payment-message").text
    checkout_link = _by_id(driver, "checkout-link")
    assert page_service.stripe_shim is not None
    checkout_url = checkout_link.get_attribute("href")
    assert checkout_url.startswith(f"{page_service.stripe_shim.base_url}/checkout/")
    checkout_link.click()
    _wait(driver, lambda d: d.current_url == checkout_url)
    assert driver.title == "IDSentry 测试支付"

    [signup] = [item for item in _signup_items(page_service) if item["locale"]["S"] == "zh-CN"]
    assert signup["timezone"] == {"S": "Asia/Shanghai"}
    assert signup["status"]["S"] != "pending"
    assert set(signup["consents"]["M"]) == {
        "terms",
        "sensitive_personal_information",
        "cross_border_transfer",
    }
    assert _page_errors(driver) == []
    _assert_logs_hold_none_of(
        log_records, ["110105199003071239", "13800138001", "wangxm@example.com", "王小明"]
    )


def test_en_page_resend_and_automatic_redirect(
    page_service: LocalService, open_browser: Callable[..., Any], log_records: RecordCollector
) -> None:
    driver = open_browser(language="en-GB", timezone="Europe/London")
    _open(driver, page_service.signup_page_url)
    driver.find_element("link text", "English").click()
    _wait(driver, lambda d: d.current_url == f"{page_service.signup_page_url}en/")
    _wait(driver, lambda d: d.execute_script("return document.body.dataset.ready") == "true")
    assert driver.find_element("css selector", "html").get_attribute("lang") == "en"

    _type(driver, "name", "Alice Li")
    _type(driver, "id_number", "310104198512120023")
    _type(driver, "mobile", "+86 139 0013 9002")
    _type(driver, "email", "alice.li@example.com")
    for consent in ("consent-terms", "consent-sensitive", "consent-cross-border"):
        _by_id(driver, consent).click()
    _by_id(driver, "details-submit").click()

    _visible(driver, "step-code")
    resend = _by_id(driver, "resend")
    assert not resend.is_enabled()
    assert resend.text.startswith("Send a new code (")
    assert "139****9002" in _by_id(driver, "code-status").text
    first = code_from(wait_for_sms(page_service, "+8613900139002")[-1])
    _wait(driver, lambda d: _by_id(d, "resend").is_enabled())
    resend.click()
    second = code_from(wait_for_sms(page_service, "+8613900139002", count=2)[-1])

    # The first code belongs to the first signup, so the new signup rejects it.
    stale = first
    if stale == second:
        stale = "000000" if second != "000000" else "111111"
    _type(driver, "code", stale)
    _by_id(driver, "code-submit").click()
    assert "The code is incorrect" in _visible(driver, "code-error").text

    _type(driver, "code", second)
    _by_id(driver, "code-submit").click()
    _visible(driver, "step-done")
    assert "alice.li@example.com" in _by_id(driver, "email-notice").text
    assert page_service.stripe_shim is not None
    checkout = f"{page_service.stripe_shim.base_url}/checkout/"
    _wait(driver, lambda d: d.current_url.startswith(checkout))
    assert driver.title == "IDSentry test checkout"

    english = [item for item in _signup_items(page_service) if item["locale"]["S"] == "en"]
    assert len(english) == 2
    assert {item["timezone"]["S"] for item in english} == {"Europe/London"}
    assert _page_errors(driver) == []
    _assert_logs_hold_none_of(
        log_records, ["310104198512120023", "13900139002", "alice.li@example.com", "Alice Li"]
    )
