"""Unit tests for mapping domain errors and results to localized HTTP responses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from idsentry.api import error_response, internal_error_response, ok_response
from idsentry.errors import (
    ConflictError,
    DomainError,
    FieldProblem,
    NotFoundError,
    RateLimitedError,
    RequestValidationError,
    ServiceUnavailableError,
)
from idsentry.i18n import MESSAGES, SUPPORTED_LOCALES, Locale

pytestmark = pytest.mark.unit


def decoded(response: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(response["body"])
    return payload


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_validation_error_422(locale: Locale) -> None:
    error = RequestValidationError(
        [
            FieldProblem("name", "name.invalid"),
            FieldProblem("email", "field.too_long", {"max_length": "254"}),
            FieldProblem(
                "consents.terms", "consent.version_outdated", {"current_version": "2026-12-01"}
            ),
        ]
    )

    response = error_response(error, locale)
    payload = decoded(response)

    assert response["statusCode"] == 422
    assert "retry-after" not in response["headers"]
    assert payload["error"]["code"] == "request.invalid"
    assert payload["error"]["message"] == MESSAGES["request.invalid"][locale]
    assert payload["error"]["fields"] == [
        {"field": "name", "code": "name.invalid", "message": MESSAGES["name.invalid"][locale]},
        {
            "field": "email",
            "code": "field.too_long",
            "message": MESSAGES["field.too_long"][locale].format(max_length="254"),
        },
        {
            "field": "consents.terms",
            "code": "consent.version_outdated",
            "message": MESSAGES["consent.version_outdated"][locale].format(
                current_version="2026-12-01"
            ),
        },
    ]


def test_validation_messages_differ_by_locale() -> None:
    error = RequestValidationError([FieldProblem("email", "field.too_long", {"max_length": "254"})])

    chinese = decoded(error_response(error, "zh-CN"))["error"]["fields"][0]["message"]
    english = decoded(error_response(error, "en"))["error"]["fields"][0]["message"]

    assert chinese == "字段过长，最多 254 个字符。"
    assert english == "This field is too long: at most 254 characters."


def test_body_keeps_chinese_readable() -> None:
    response = error_response(NotFoundError("signup.not_found"), "zh-CN")

    assert MESSAGES["signup.not_found"]["zh-CN"] in response["body"]
    assert response["headers"]["content-type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize(
    ("code", "retry_after"),
    [("limit.resend_interval", 1), ("limit.daily_sms_cap", 86399), ("limit.ip", 1800)],
)
def test_rate_limited_429(locale: Locale, code: str, retry_after: int) -> None:
    response = error_response(RateLimitedError(code, retry_after), locale)
    payload = decoded(response)

    assert response["statusCode"] == 429
    assert response["headers"]["retry-after"] == str(retry_after)
    assert payload["error"]["code"] == code
    assert payload["error"]["message"] == MESSAGES[code][locale].format(
        retry_after=str(retry_after)
    )
    assert str(retry_after) in payload["error"]["message"]
    assert "fields" not in payload["error"]


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_unavailable_503_retry_after(locale: Locale) -> None:
    error = ServiceUnavailableError("limit.otp_budget_exhausted", 3600)

    response = error_response(error, locale)
    payload = decoded(response)

    assert response["statusCode"] == 503
    assert response["headers"]["retry-after"] == "3600"
    assert payload["error"] == {
        "code": "limit.otp_budget_exhausted",
        "message": MESSAGES["limit.otp_budget_exhausted"][locale],
    }


def test_unavailable_without_retry_after() -> None:
    response = error_response(ServiceUnavailableError("signup.retry"), "en")

    assert response["statusCode"] == 503
    assert "retry-after" not in response["headers"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFoundError("signup.not_found"), 404),
        (ConflictError("idempotency.in_progress"), 409),
        (ConflictError("code.not_sent"), 409),
        (DomainError("human_check.failed"), 400),
    ],
)
@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_status_per_error(error: DomainError, status: int, locale: Locale) -> None:
    response = error_response(error, locale)
    payload = decoded(response)

    assert response["statusCode"] == status
    assert payload == {"error": {"code": error.code, "message": MESSAGES[error.code][locale]}}
    assert "retry-after" not in response["headers"]
    assert response["headers"]["cache-control"] == "no-store"


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_internal_error_500(locale: Locale) -> None:
    response = internal_error_response(locale)

    assert response["statusCode"] == 500
    assert decoded(response) == {
        "error": {"code": "internal.error", "message": MESSAGES["internal.error"][locale]}
    }


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_ok_with_message(locale: Locale) -> None:
    payload = {"signup_id": "sgn_01JTEST", "status": "code_sent"}

    response = ok_response(201, payload, locale, "signup.code_sent")

    assert response["statusCode"] == 201
    assert decoded(response) == {**payload, "message": MESSAGES["signup.code_sent"][locale]}
    assert "message" not in payload


def test_ok_without_message() -> None:
    response = ok_response(200, {"outcome": "recorded"}, "en")

    assert decoded(response) == {"outcome": "recorded"}
