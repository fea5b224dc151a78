"""Unit tests that keep the Twilio webhook samples in events/http signed and meaningful."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from idsentry.http import parse_http_event
from idsentry.routes.twilio_routes import parse_form, signature_valid, signed_url
from idsentry.services.delivery import number_state
from idsentry.services.inbound_sms import keyword_of
from infra.local.template import load_template

pytestmark = pytest.mark.unit

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
HTTP_EVENTS = REPOSITORY_ROOT / "events" / "http"
# The sample auth token documented in events/README.md; not a real secret.
SAMPLE_AUTH_TOKEN = "test-auth-token"
TWILIO_SAMPLES = sorted(HTTP_EVENTS.glob("twilio_*.json"))


def load(path: Path) -> dict[str, Any]:
    sample: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return sample


def public_base_url() -> str:
    template = load_template(REPOSITORY_ROOT / "template.yaml")
    return str(template["Parameters"]["PublicBaseUrl"]["Default"])


def test_samples_cover_both_routes() -> None:
    routes = {load(path)["routeKey"] for path in TWILIO_SAMPLES}

    assert routes == {"POST /v1/webhooks/twilio/status", "POST /v1/webhooks/twilio/inbound"}


@pytest.mark.parametrize("path", TWILIO_SAMPLES, ids=lambda path: path.name)
def test_sample_signed_over_public_url(path: Path) -> None:
    sample = load(path)
    request = parse_http_event(sample)
    url = signed_url(public_base_url(), sample["rawPath"], sample["rawQueryString"])

    params = parse_form(request.body)

    assert signature_valid(
        SAMPLE_AUTH_TOKEN, url, params, request.header("x-twilio-signature") or ""
    )
    assert not signature_valid(
        "another-token", url, params, request.header("x-twilio-signature") or ""
    )


@pytest.mark.parametrize("path", TWILIO_SAMPLES, ids=lambda path: path.name)
def test_sample_query_parameters_decoded(path: Path) -> None:
    sample = load(path)

    expected = dict(parse_qsl(sample["rawQueryString"]))

    assert sample.get("queryStringParameters", {}) == expected


def test_undelivered_sample_marks_number_invalid() -> None:
    sample = load(HTTP_EVENTS / "twilio_status_undelivered.json")
    params = parse_form(parse_http_event(sample).body)
    query = dict(parse_qsl(sample["rawQueryString"]))

    assert params.first("MessageStatus") == "undelivered"
    assert number_state(params.first("ErrorCode")) == "invalid"
    assert query == {"m": "alert:alt_3f9c1e7a5b2d4c6e8a0b1d3f5e", "c": "sms"}


def test_alert_sample_names_same_alert() -> None:
    # The undelivered SMS belongs to the alert job in events/sqs.
    job = json.loads(
        load(REPOSITORY_ROOT / "events" / "sqs" / "notification_alert.json")["Records"][0]["body"]
    )
    sample = load(HTTP_EVENTS / "twilio_status_undelivered.json")

    assert dict(parse_qsl(sample["rawQueryString"]))["m"] == f"alert:{job['alert_id']}"


def test_inbound_sample_is_opt_out() -> None:
    params = parse_form(parse_http_event(load(HTTP_EVENTS / "twilio_inbound_stop.json")).body)

    assert keyword_of(params.first("Body")) == "opt_out"
    assert params.first("SmsStatus") == "received"
