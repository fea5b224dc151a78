"""Unit tests for rebuilding the URL Twilio signed and checking X-Twilio-Signature over it."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from idsentry.routes.twilio_routes import FormParams, parse_form, signature_valid, signed_url

pytestmark = pytest.mark.unit

AUTH_TOKEN = "unit-test-auth-token"
PATH = "/v1/webhooks/twilio/status"
QUERY = "m=alert%3Aalt_01&c=sms"
PARAMS = {
    "MessageSid": "SM" + "0" * 32,
    "MessageStatus": "delivered",
    "To": "+14155550100",
}


def form(values: dict[str, str]) -> FormParams:
    return FormParams({name: [value] for name, value in values.items()})


def sign(url: str, params: dict[str, str] = PARAMS) -> str:
    return str(RequestValidator(AUTH_TOKEN).compute_signature(url, params))


@pytest.mark.parametrize(
    ("base", "raw_path", "raw_query", "expected"),
    [
        (
            "https://api.example.com",
            PATH,
            "",
            f"https://api.example.com{PATH}",
        ),
        (
            "https://api.example.com/",
            PATH,
            QUERY,
            f"https://api.example.com{PATH}?{QUERY}",
        ),
        # A named stage on the execute-api endpoint, with the stage in PublicBaseUrl.
        (
            "https://a1b2c3.execute-api.us-east-1.amazonaws.com/prod",
            f"/prod{PATH}",
            QUERY,
            f"https://a1b2c3.execute-api.us-east-1.amazonaws.com/prod{PATH}?{QUERY}",
        ),
        # The same request with PublicBaseUrl naming only the host.
        (
            "https://a1b2c3.execute-api.us-east-1.amazonaws.com",
            f"/prod{PATH}",
            "",
            f"https://a1b2c3.execute-api.us-east-1.amazonaws.com/prod{PATH}",
        ),
        # A base path that a proxy strips before API Gateway sees the request.
        (
            "https://example.com/idsentry",
            PATH,
            "",
            f"https://example.com/idsentry{PATH}",
        ),
        # A stage named like the start of another segment is not a prefix of it.
        (
            "https://example.com/pro",
            f"/prod{PATH}",
            "",
            f"https://example.com/pro/prod{PATH}",
        ),
    ],
)
def test_signed_url_rebuilt(base: str, raw_path: str, raw_query: str, expected: str) -> None:
    assert signed_url(base, raw_path, raw_query) == expected


def test_signature_exact_url_passes() -> None:
    url = f"https://api.example.com{PATH}?{QUERY}"

    assert signature_valid(AUTH_TOKEN, url, form(PARAMS), sign(url))


def test_signature_other_scheme_fails() -> None:
    signed_over = f"http://api.example.com{PATH}"
    checked_against = f"https://api.example.com{PATH}"

    assert not signature_valid(AUTH_TOKEN, checked_against, form(PARAMS), sign(signed_over))


def test_signature_without_stage_fails() -> None:
    base = "https://a1b2c3.execute-api.us-east-1.amazonaws.com/prod"
    signed_over = f"https://a1b2c3.execute-api.us-east-1.amazonaws.com{PATH}"
    checked_against = signed_url(base, f"/prod{PATH}", "")

    assert not signature_valid(AUTH_TOKEN, checked_against, form(PARAMS), sign(signed_over))


def test_signature_stage_twice_fails() -> None:
    base = "https://a1b2c3.execute-api.us-east-1.amazonaws.com/prod"
    signed_over = f"{base}{PATH}"
    # What a rebuild that appended the raw path to a base naming the stage would give.
    doubled = f"{base}/prod{PATH}"

    assert signature_valid(
        AUTH_TOKEN, signed_url(base, f"/prod{PATH}", ""), form(PARAMS), sign(signed_over)
    )
    assert not signature_valid(AUTH_TOKEN, doubled, form(PARAMS), sign(signed_over))


@pytest.mark.parametrize(
    "rebuilt_query",
    [
        "c=sms&m=alert%3Aalt_01",  # reordered
        "m=alert:alt_01&c=sms",  # decoded
        "m=alert%3aalt_01&c=sms",  # re-encoded in lower case
        "m=alert%3Aalt_01&c=sms&",  # a trailing separator
        "",  # dropped
    ],
)
def test_signature_query_bytes_differ_fails(rebuilt_query: str) -> None:
    signed_over = f"https://api.example.com{PATH}?{QUERY}"
    checked_against = signed_url("https://api.example.com", PATH, rebuilt_query)

    assert not signature_valid(AUTH_TOKEN, checked_against, form(PARAMS), sign(signed_over))


def test_signature_tampered_parameter_fails() -> None:
    url = f"https://api.example.com{PATH}"
    signature = sign(url)

    tampered = form({**PARAMS, "MessageStatus": "failed"})

    assert not signature_valid(AUTH_TOKEN, url, tampered, signature)


def test_signature_other_token_fails() -> None:
    url = f"https://api.example.com{PATH}"

    assert not signature_valid("another-token", url, form(PARAMS), sign(url))


def test_signature_missing_token_fails() -> None:
    url = f"https://api.example.com{PATH}"

    assert not signature_valid("", url, form(PARAMS), sign(url))
    assert not signature_valid(AUTH_TOKEN, url, form(PARAMS), "")


def test_parse_form_keeps_every_value() -> None:
    params = parse_form(b"Body=STOP&MediaUrl0=a&MediaUrl0=b&Empty=")

    assert params.getall("MediaUrl0") == ["a", "b"]
    assert params.first("Body") == "STOP"
    assert params.first("Empty") == ""
    assert params.first("Missing") == ""


def test_parse_form_decodes_utf8() -> None:
    params = parse_form(b"Body=%E9%80%80%E8%AE%A2+")

    assert params.first("Body") == "退订 "


def test_parse_form_rejects_invalid_utf8() -> None:
    with pytest.raises(ValueError):
        parse_form(b"Body=%FF&x=\xff")


def test_signature_covers_repeated_values() -> None:
    url = f"https://api.example.com{PATH}"
    validator = RequestValidator(AUTH_TOKEN)
    params = parse_form(b"MessageSid=SM1&MediaUrl0=a&MediaUrl0=b")
    signature = str(validator.compute_signature(url, params))

    assert signature_valid(AUTH_TOKEN, url, params, signature)
    assert not signature_valid(
        AUTH_TOKEN, url, parse_form(b"MessageSid=SM1&MediaUrl0=a"), signature
    )
