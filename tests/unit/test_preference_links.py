"""Unit tests for preference links: token round trips, tampering, expiry, rotation, form bodies."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import MappingProxyType

import pytest

from idsentry.crypto import Pepper, TokenError, sign_token
from idsentry.errors import RequestValidationError
from idsentry.http import HttpRequest, parse_http_event
from idsentry.routes.preference_routes import requested_choice
from idsentry.services.billing_links import billing_url
from idsentry.services.link_tokens import read_link, sign_link
from idsentry.services.unsubscribe import (
    LINK_PURPOSE,
    LINK_VALID_SECONDS,
    PREFERENCE_ACTIONS,
    PreferenceAction,
    PreferenceLinkExpiredError,
    PreferenceLinkInvalidError,
    preference_url,
    read_preference_link,
)

pytestmark = pytest.mark.unit

BASE_URL = "https://idsentry.example.com"
SUBSCRIBER = "sbr_01M91B4ABG36G2R8D4PV2HM6CG"
NOW = 1_796_400_000
PEPPER = Pepper(versions={"1": b"unit-test-pepper-version-one-000000000"}, current="1")


def token_of(url: str) -> str:
    prefix = f"{BASE_URL}/v1/preferences/"
    assert url.startswith(prefix)
    return url[len(prefix) :]


# ---------------------------------------------------------------------------- tokens


@pytest.mark.parametrize("action", PREFERENCE_ACTIONS)
def test_link_round_trip(action: PreferenceAction) -> None:
    token = token_of(preference_url(PEPPER, BASE_URL, SUBSCRIBER, action, NOW))

    assert read_preference_link(PEPPER, token, NOW + 60) == (SUBSCRIBER, action)


def test_link_actions_listed() -> None:
    assert set(PREFERENCE_ACTIONS) == {"email:alerts", "email:reports", "sms:alerts"}


def test_link_valid_until_expiry() -> None:
    token = token_of(preference_url(PEPPER, BASE_URL, SUBSCRIBER, "email:alerts", NOW))

    assert read_preference_link(PEPPER, token, NOW + LINK_VALID_SECONDS - 1)[0] == SUBSCRIBER
    with pytest.raises(PreferenceLinkExpiredError):
        read_preference_link(PEPPER, token, NOW + LINK_VALID_SECONDS)


def test_link_lifetime_ninety_days() -> None:
    assert LINK_VALID_SECONDS == 90 * 24 * 3600


def test_link_tampered_payload() -> None:
    token = token_of(preference_url(PEPPER, BASE_URL, SUBSCRIBER, "email:alerts", NOW))
    body, _, signature = token.partition(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sub"] = "sbr_01M91B4ABG36G2R8D4PV2HM6CH"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    with pytest.raises(PreferenceLinkInvalidError):
        read_preference_link(PEPPER, f"{forged}.{signature}", NOW)


def test_link_tampered_signature() -> None:
    token = token_of(preference_url(PEPPER, BASE_URL, SUBSCRIBER, "sms:alerts", NOW))
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")

    with pytest.raises(PreferenceLinkInvalidError):
        read_preference_link(PEPPER, flipped, NOW)


@pytest.mark.parametrize("token", ["", "no-dot", ".", "abc.", "é.é"])
def test_link_malformed(token: str) -> None:
    with pytest.raises(PreferenceLinkInvalidError):
        read_preference_link(PEPPER, token, NOW)


def test_link_other_pepper() -> None:
    other = Pepper(versions={"1": b"another-pepper-value-for-unit-tests-0000"}, current="1")
    token = token_of(preference_url(other, BASE_URL, SUBSCRIBER, "email:alerts", NOW))

    with pytest.raises(PreferenceLinkInvalidError):
        read_preference_link(PEPPER, token, NOW)


def test_billing_token_not_a_preference_link() -> None:
    # Each kind of link has its own key, so a valid billing token does not verify here.
    url = billing_url(PEPPER, BASE_URL, SUBSCRIBER, "portal", NOW)
    token = url.rsplit("/", 1)[1]

    with pytest.raises(PreferenceLinkInvalidError):
        read_preference_link(PEPPER, token, NOW)


def test_link_unknown_action() -> None:
    token = sign_link(
        PEPPER, LINK_PURPOSE, {"sub": SUBSCRIBER, "act": "email:marketing"}, 3600, NOW
    )

    with pytest.raises(PreferenceLinkInvalidError):
        read_preference_link(PEPPER, token, NOW)


def test_link_missing_subscriber() -> None:
    token = sign_link(PEPPER, LINK_PURPOSE, {"act": "email:alerts"}, 3600, NOW)

    with pytest.raises(PreferenceLinkInvalidError):
        read_preference_link(PEPPER, token, NOW)


def test_link_without_expiry() -> None:
    token = sign_token(PEPPER.derive_key(LINK_PURPOSE), {"sub": SUBSCRIBER, "act": "sms:alerts"})

    with pytest.raises(PreferenceLinkInvalidError):
        read_preference_link(PEPPER, token, NOW)


def test_link_survives_pepper_rotation() -> None:
    token = token_of(preference_url(PEPPER, BASE_URL, SUBSCRIBER, "email:reports", NOW))
    rotated = Pepper(
        versions={**PEPPER.versions, "2": b"unit-test-pepper-version-two-000000000"}, current="2"
    )

    assert read_preference_link(rotated, token, NOW) == (SUBSCRIBER, "email:reports")


def test_link_dies_with_retired_version() -> None:
    token = token_of(preference_url(PEPPER, BASE_URL, SUBSCRIBER, "email:reports", NOW))
    retired = Pepper(versions={"2": b"unit-test-pepper-version-two-000000000"}, current="2")

    with pytest.raises(PreferenceLinkInvalidError):
        read_preference_link(retired, token, NOW)


def test_read_link_reports_expiry() -> None:
    token = sign_link(PEPPER, "test-purpose", {"x": 1}, 10, NOW)

    assert read_link(PEPPER, "test-purpose", token, NOW + 9).expired is False
    assert read_link(PEPPER, "test-purpose", token, NOW + 10).expired is True
    with pytest.raises(TokenError):
        read_link(PEPPER, "other-purpose", token, NOW)


# ---------------------------------------------------------------------------- form bodies


def post(body: bytes, content_type: str | None) -> HttpRequest:
    headers = {"content-type": content_type} if content_type else {}
    return HttpRequest(
        method="POST",
        route_key="POST /v1/preferences/{token}",
        path="/v1/preferences/token",
        path_parameters=MappingProxyType({"token": "token"}),
        query=MappingProxyType({}),
        headers=MappingProxyType(headers),
        body=body,
        source_ip="198.51.100.23",
        request_id="req-1",
        stage="$default",
    )


def multipart(name: str, value: str) -> tuple[bytes, str]:
    boundary = "----idsentry-test-boundary"
    body = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{name}"\r\n\r\n'
        f"{value}\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_one_click_urlencoded() -> None:
    request = post(b"List-Unsubscribe=One-Click", "application/x-www-form-urlencoded")

    assert requested_choice(request) is False


def test_one_click_without_content_type() -> None:
    assert requested_choice(post(b"List-Unsubscribe=One-Click", None)) is False


def test_one_click_multipart() -> None:
    body, content_type = multipart("List-Unsubscribe", "One-Click")

    assert requested_choice(post(body, content_type)) is False


def test_resubscribe_urlencoded() -> None:
    request = post(b"resubscribe=yes", "application/x-www-form-urlencoded; charset=utf-8")

    assert requested_choice(request) is True


@pytest.mark.parametrize(
    "body",
    [b"", b"List-Unsubscribe=Yes", b"unsubscribe=1", b"resubscribe=no", b"\xff\xfe"],
)
def test_choice_missing(body: bytes) -> None:
    with pytest.raises(RequestValidationError) as raised:
        requested_choice(post(body, "application/x-www-form-urlencoded"))

    assert [problem.field for problem in raised.value.problems] == ["List-Unsubscribe"]
    assert raised.value.problems[0].code == "preferences.choice_missing"


# ---------------------------------------------------------------------------- samples

SAMPLE_PEPPER = Pepper(versions={"1": b"sample-pepper-for-event-fixtures-only-0001"}, current="1")
HTTP_SAMPLES = Path(__file__).resolve().parents[2] / "events" / "http"


@pytest.mark.parametrize("name", ["preferences_page.json", "preferences_one_click.json"])
def test_sample_token_verifies(name: str) -> None:
    sample = json.loads((HTTP_SAMPLES / name).read_text(encoding="utf-8"))
    request = parse_http_event(sample)
    sent_at = sample["requestContext"]["timeEpoch"] // 1000

    subscriber_id, action = read_preference_link(
        SAMPLE_PEPPER, request.path_parameters["token"], sent_at
    )
    assert subscriber_id == SUBSCRIBER
    assert action == "email:alerts"


def test_sample_one_click_body() -> None:
    sample = json.loads((HTTP_SAMPLES / "preferences_one_click.json").read_text(encoding="utf-8"))

    assert requested_choice(parse_http_event(sample)) is False
