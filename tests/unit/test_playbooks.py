"""The playbook configuration, the check-result validation and the quarter arithmetic."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib.resources import files

import pytest

from idsentry.alert_templates import NEXT_STEPS
from idsentry.errors import RequestValidationError
from idsentry.i18n import SUPPORTED_LOCALES, message
from idsentry.models.breach import DataKind
from idsentry.services import playbooks, quarterly_checks

RAW = files("idsentry.config").joinpath("playbooks.json").read_bytes()


def test_config_valid() -> None:
    config = playbooks.parse_config(RAW, "playbooks.json")

    assert set(config.playbooks) == set(DataKind)


def test_every_text_in_both_locales() -> None:
    document = json.loads(RAW)
    texts = []
    for section in ("services", "steps", "checks"):
        for entry in document[section].values():
            texts += [value for value in entry.values() if isinstance(value, dict)]
    for check in document["checks"].values():
        texts += list(check["counts"].values())

    assert texts
    for text in texts:
        if set(text) == {"zh-CN", "en"}:
            for locale in SUPPORTED_LOCALES:
                assert text[locale].strip(), text


def test_services_without_url_say_where() -> None:
    for name, service in playbooks.load_config().services.items():
        assert service.url is None or service.url.startswith("https://"), name
        for locale in SUPPORTED_LOCALES:
            assert service.access.get(locale).strip(), name


def test_official_services_in_id_number_playbook() -> None:
    config = playbooks.load_config()
    services = {
        service
        for step_id in config.playbooks[DataKind.ID_NUMBER].steps
        for service in config.steps[step_id].services
    }

    assert {
        "yizhengtongcha",
        "yunshanfu_card_lookup",
        "pbccrc",
        "anti_fraud_app",
        "police_110",
    } <= services
    assert config.services["pbccrc"].url == "https://www.pbccrc.org.cn"
    assert config.services["anti_fraud_app"].url is None


def test_email_steps_come_from_config() -> None:
    config = playbooks.load_config()

    for kind, playbook in config.playbooks.items():
        assert NEXT_STEPS[kind]["en"] == tuple(
            config.steps[step_id].detail.en for step_id in playbook.email_steps
        )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda doc: doc["playbooks"]["name"].update(steps=["no_such_step"]), "unknown step"),
        (lambda doc: doc["steps"]["answer_96110"].update(services=["nope"]), "unknown service"),
        (lambda doc: doc["playbooks"].pop("address"), "no playbook"),
        (lambda doc: doc["steps"]["answer_96110"]["title"].update(en="  "), "answer_96110"),
        (lambda doc: doc["steps"]["answer_96110"]["title"].pop("zh-CN"), "zh-CN"),
        (lambda doc: doc["services"]["pbccrc"].update(url="http://www.pbccrc.org.cn"), "url"),
        (
            lambda doc: doc["playbooks"]["bank_card"].update(email_steps=["answer_96110"]),
            "does not list",
        ),
    ],
)
def test_invalid_config_rejected(change: object, problem: str) -> None:
    document = json.loads(RAW)
    change(document)  # type: ignore[operator]

    with pytest.raises(playbooks.PlaybookConfigError, match=problem):
        playbooks.parse_config(json.dumps(document).encode(), "test.json")


@pytest.mark.parametrize(
    ("moment", "quarter"),
    [
        (datetime(2026, 12, 31, 15, 59, tzinfo=UTC), "2026q4"),
        # 16:00 UTC on 31 December is midnight of 1 January in China.
        (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), "2027q1"),
        (datetime(2027, 4, 1, 2, 0, tzinfo=UTC), "2027q2"),
        (datetime(2027, 9, 30, 12, 0, tzinfo=UTC), "2027q3"),
    ],
)
def test_quarter_in_china_time(moment: datetime, quarter: str) -> None:
    assert quarterly_checks.quarter_of(moment) == quarter


def test_check_result_parsed() -> None:
    result = quarterly_checks.parse_check_result(
        {"check": "yizhengtongcha", "counts": {"phone_cards": 3, "internet_accounts": 14}}
    )

    assert result.check == "yizhengtongcha"
    assert result.counts == {"phone_cards": 3, "internet_accounts": 14}


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"counts": {"bank_cards": 1}}, "check", "field.missing"),
        ({"check": "bank", "counts": {"bank_cards": 1}}, "check", "check.unknown"),
        (
            {"check": "bank_cards", "counts": {"phone_cards": 1}},
            "counts.phone_cards",
            "check.count_unknown",
        ),
        (
            {"check": "bank_cards", "counts": {"bank_cards": -1}},
            "counts.bank_cards",
            "check.count_invalid",
        ),
        (
            {"check": "bank_cards", "counts": {"bank_cards": 10_001}},
            "counts.bank_cards",
            "check.count_invalid",
        ),
        (
            {"check": "bank_cards", "counts": {"bank_cards": "3"}},
            "counts.bank_cards",
            "field.invalid_type",
        ),
        (
            {"check": "bank_cards", "counts": {"bank_cards": True}},
            "counts.bank_cards",
            "field.invalid_type",
        ),
        ({"check": "bank_cards", "counts": {}}, "counts", "check.counts_missing"),
        (
            {"check": "bank_cards", "counts": {"bank_cards": 1}, "subscriber_id": "x"},
            "subscriber_id",
            "field.unknown",
        ),
    ],
)
def test_check_result_invalid_names_field(body: dict[str, object], field: str, code: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        quarterly_checks.parse_check_result(body)

    problems = [(problem.field, problem.code) for problem in caught.value.problems]
    assert problems == [(field, code)]
    for locale in SUPPORTED_LOCALES:
        assert message(code, locale)


def test_count_limit_matches_message() -> None:
    assert str(quarterly_checks.MAX_COUNT) in message("check.count_invalid", "en")


@pytest.mark.parametrize("body", [{}, {"done": "yes"}, {"done": 1}, {"done": True, "at": 1}])
def test_step_change_invalid(body: dict[str, object]) -> None:
    with pytest.raises(RequestValidationError):
        playbooks.parse_step_change(body)


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_reminder_email_lists_checks(locale: str) -> None:
    latest = {
        "yizhengtongcha": {
            "check": "yizhengtongcha",
            "quarter": "2026q4",
            "counts": {"phone_cards": 3, "internet_accounts": 14},
        }
    }

    email = quarterly_checks.render_check_reminder(locale, latest, "https://example.test/stop")  # type: ignore[arg-type]

    assert "https://getsimnum.caict.ac.cn" in email.text
    assert "https://ipcrs.pbccrc.org.cn" in email.html
    assert "2026q4" in email.text
    assert " 3" in email.text
    assert " 14" in email.text
    assert "https://example.test/stop" in email.text
    assert "云闪付" in email.text
