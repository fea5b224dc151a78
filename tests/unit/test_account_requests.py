"""Unit tests of the sign-in and account requests: parsing, the authorizer and the route guard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from idsentry.api import error_response
from idsentry.errors import RequestValidationError
from idsentry.models.account import PreferencesChange, parse_preferences
from idsentry.models.sign_in import parse_sign_in
from idsentry.routes import account_authorizer, account_routes
from idsentry.services.tokens import VerificationKey, issue_access_token
from idsentry.settings.account import AccountAuthorizerSettings

pytestmark = pytest.mark.unit

ISSUER = "https://idsentry.example.com"
SUBSCRIBER = "sbr_01M91B4ABG36G2R8D4PV2HM6CG"
NOW = 1_796_415_302
SETTINGS = AccountAuthorizerSettings(
    stage="dev",
    table_name="idsentry-dev",
    key_table_name="idsentry-dev-keys",
    event_bus_name="idsentry-dev",
    data_key_arn="arn:aws:kms:us-east-1:123456789012:key/data",
    pepper_secret_id="idsentry/fingerprint-pepper",
    notification_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/n",
    public_base_url=ISSUER,
    account_token_key_arn="arn:aws:kms:us-east-1:123456789012:key/token-key",
)


class LocalSigner:
    key_id = "token-key"

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))


@pytest.fixture(scope="module")
def signer() -> LocalSigner:
    return LocalSigner()


def problems(error: RequestValidationError) -> list[tuple[str, str]]:
    return [(problem.field, problem.code) for problem in error.problems]


# ---------------------------------------------------------------------------- sign-in body


def test_sign_in_mobile_canonical() -> None:
    assert parse_sign_in({"mobile": "138 0013 8001"}, allowed_regions=("CN",)) == "+8613800138001"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, [("mobile", "field.missing")]),
        ({"mobile": 13800138001}, [("mobile", "field.invalid_type")]),
        ({"mobile": "+8613800138001", "email": "x"}, [("email", "field.unknown")]),
        ({"mobile": "12345"}, [("mobile", "mobile.invalid")]),
        ({"mobile": "+14155550100"}, [("mobile", "mobile.country_not_allowed")]),
        ({"mobile": "1" * 65}, [("mobile", "field.too_long")]),
    ],
)
def test_sign_in_body_problems(payload: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    with pytest.raises(RequestValidationError) as raised:
        parse_sign_in(payload, allowed_regions=("CN",))

    assert problems(raised.value) == expected


def test_sign_in_error_both_languages() -> None:
    with pytest.raises(RequestValidationError) as raised:
        parse_sign_in({"mobile": "12345"}, allowed_regions=("CN",))

    chinese = json.loads(error_response(raised.value, "zh-CN")["body"])
    english = json.loads(error_response(raised.value, "en")["body"])
    assert chinese["error"]["fields"][0]["field"] == "mobile"
    assert chinese["error"]["fields"][0]["message"] == "手机号无效。"
    assert english["error"]["fields"][0]["message"] == "The mobile number is not valid."


# ---------------------------------------------------------------------------- preferences body


def test_preferences_partial_change() -> None:
    change = parse_preferences({"email_lists": {"reports": False}, "locale": "en"})

    assert change == PreferencesChange(email_reports=False, locale="en")


def test_preferences_full_change() -> None:
    change = parse_preferences(
        {
            "sms_alerts": False,
            "email_lists": {"alerts": True, "reports": False},
            "timezone": "Europe/Berlin",
            "locale": "zh-CN",
        }
    )

    assert change == PreferencesChange(
        sms_alerts=False,
        email_alerts=True,
        email_reports=False,
        timezone="Europe/Berlin",
        locale="zh-CN",
    )


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, [("body", "preferences.nothing_to_change")]),
        ({"email_lists": {}}, [("body", "preferences.nothing_to_change")]),
        ({"sms_alerts": "no"}, [("sms_alerts", "field.invalid_type")]),
        ({"sms_alerts": 0}, [("sms_alerts", "field.invalid_type")]),
        ({"email_lists": {"alerts": "yes"}}, [("email_lists.alerts", "field.invalid_type")]),
        ({"email_lists": {"news": True}}, [("email_lists.news", "field.unknown")]),
        ({"timezone": "Mars/Olympus"}, [("timezone", "timezone.unknown")]),
        ({"timezone": "../../etc/passwd"}, [("timezone", "timezone.unknown")]),
        ({"locale": "fr"}, [("locale", "locale.unsupported")]),
        (
            {"timezone": "Nowhere/City", "locale": "de"},
            [("timezone", "timezone.unknown"), ("locale", "locale.unsupported")],
        ),
        ({"subscriber_id": SUBSCRIBER}, [("subscriber_id", "field.unknown")]),
    ],
)
def test_preferences_problems(payload: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    with pytest.raises(RequestValidationError) as raised:
        parse_preferences(payload)

    assert problems(raised.value) == expected


# ---------------------------------------------------------------------------- authorizer


def authorizer_event(authorization: str | None) -> dict[str, Any]:
    headers = {"host": "idsentry.example.com"}
    if authorization is not None:
        headers["authorization"] = authorization
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/$default/GET/v1/account",
        "identitySource": [authorization] if authorization else [],
        "routeKey": "GET /v1/account",
        "headers": headers,
        "requestContext": {"requestId": "X9Nd4Wu0YwUnXw=="},
    }


def authorize(event: dict[str, Any], signer: LocalSigner, now: int = NOW) -> dict[str, Any]:
    key = VerificationKey(signer.key_id, signer.private_key.public_key())
    return account_authorizer.handle(event, settings=SETTINGS, key=lambda: key, now=lambda: now)


def test_authorizer_allows_valid_token(signer: LocalSigner) -> None:
    token = issue_access_token(signer, ISSUER, SUBSCRIBER, NOW, 900)

    response = authorize(authorizer_event(f"Bearer {token.access_token}"), signer)

    assert response == {
        "isAuthorized": True,
        "context": {"subscriber_id": SUBSCRIBER, "token_id": token.token_id},
    }


def test_authorizer_scheme_case_insensitive(signer: LocalSigner) -> None:
    token = issue_access_token(signer, ISSUER, SUBSCRIBER, NOW, 900).access_token

    assert authorize(authorizer_event(f"bearer {token}"), signer)["isAuthorized"] is True


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz"])
def test_authorizer_denies_without_bearer(signer: LocalSigner, authorization: str | None) -> None:
    assert authorize(authorizer_event(authorization), signer) == {"isAuthorized": False}


def test_authorizer_denies_expired(signer: LocalSigner) -> None:
    token = issue_access_token(signer, ISSUER, SUBSCRIBER, NOW, 900).access_token

    response = authorize(authorizer_event(f"Bearer {token}"), signer, now=NOW + 3600)

    assert response == {"isAuthorized": False}


def test_authorizer_denies_other_issuer(signer: LocalSigner) -> None:
    token = issue_access_token(signer, "https://other.example.org", SUBSCRIBER, NOW, 900)

    response = authorize(authorizer_event(f"Bearer {token.access_token}"), signer)

    assert response == {"isAuthorized": False}


def test_authorizer_denies_longer_lifetime(signer: LocalSigner) -> None:
    token = issue_access_token(signer, ISSUER, SUBSCRIBER, NOW, 3600).access_token

    assert authorize(authorizer_event(f"Bearer {token}"), signer) == {"isAuthorized": False}


def test_authorizer_logs_no_token(signer: LocalSigner, caplog: pytest.LogCaptureFixture) -> None:
    token = issue_access_token(signer, ISSUER, SUBSCRIBER, NOW, 900).access_token
    caplog.set_level("INFO")

    authorize(authorizer_event(f"Bearer {token}x"), signer)

    assert [record.getMessage() for record in caplog.records] == ["access token rejected"]
    assert token not in caplog.text
    assert caplog.records[0].__dict__["reason"] == "signature is not 64 bytes"


# ---------------------------------------------------------------------------- account routes


def account_event(authorizer: dict[str, Any] | None) -> dict[str, Any]:
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "a1b2c3d4e5",
        "http": {"method": "GET", "path": "/v1/account", "sourceIp": "203.0.113.10"},
        "requestId": "X9Nd4Wu0YwUnXw==",
        "routeKey": "GET /v1/account",
        "stage": "$default",
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    return {
        "version": "2.0",
        "routeKey": "GET /v1/account",
        "rawPath": "/v1/account",
        "rawQueryString": "",
        "headers": {"accept-language": "en"},
        "requestContext": context,
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize(
    "authorizer",
    [
        None,
        {},
        {"lambda": {}},
        {"lambda": {"subscriber_id": "sgn_01M91B4ABG36G2R8D4PV2HM6CG"}},
        {"lambda": {"subscriber_id": "SUB#sbr_01M91B4ABG36G2R8D4PV2HM6CG"}},
        {"iam": {"userArn": "arn:aws:iam::123456789012:user/x"}},
    ],
)
def test_account_route_needs_authorizer_subscriber(authorizer: dict[str, Any] | None) -> None:
    response = account_routes.handle(account_event(authorizer))

    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"] == {
        "code": "account.unauthorized",
        "message": "Sign in first.",
    }


def test_authorized_subscriber_read() -> None:
    from idsentry.http import parse_http_event

    request = parse_http_event(account_event({"lambda": {"subscriber_id": SUBSCRIBER}}))

    assert account_routes.authorized_subscriber(request) == SUBSCRIBER


def test_route_modules_match_their_routes() -> None:
    listed: dict[str, set[str]] = {}
    for route_key, module in account_routes.ROUTE_MODULES.items():
        listed.setdefault(module, set()).add(route_key)

    for module, route_keys in listed.items():
        assert set(account_routes.module_routes(module)) == route_keys, module
    assert not set(account_routes.ROUTES) & set(account_routes.ROUTE_MODULES)


def test_unknown_route_has_no_handler() -> None:
    assert account_routes.route_handler("GET /v1/account/unknown") is None
    assert account_routes.route_handler("GET /v1/account/reports") is not None
