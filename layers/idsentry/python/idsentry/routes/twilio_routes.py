"""Routes of the Twilio webhook function: signed status callbacks."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

from idsentry.clock import epoch, utc_now
from idsentry.http import json_response, parse_http_event
from idsentry.services.delivery import apply_sms_status
from idsentry.settings import TwilioWebhookSettings, load_settings
from idsentry.wiring import main_table, secret_cache

logger = logging.getLogger(__name__)


def handle(event: dict[str, Any]) -> dict[str, Any]:
    """Check the callback's signature over the public URL, then record the status."""
    from twilio.request_validator import RequestValidator

    request = parse_http_event(event)
    settings = load_settings(TwilioWebhookSettings)
    if request.route_key != "POST /v1/webhooks/twilio/status":
        return json_response(404, {"error": {"code": "route.not_found"}})

    # Twilio signs the URL it called, which is the public one, not the API Gateway one.
    url = settings.public_base_url + request.path
    if request.query:
        url += "?" + event.get("rawQueryString", "")
    params = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
    signature = request.header("x-twilio-signature") or ""
    auth_token = str(secret_cache().get_json(settings.twilio_secret_id).get("auth_token", ""))
    if not auth_token or not RequestValidator(auth_token).validate(url, params, signature):
        logger.warning("twilio signature invalid", extra={"request_id": request.request_id})
        return json_response(403, {"error": {"code": "signature.invalid"}})

    outcome = apply_sms_status(
        main_table(),
        params.get("MessageSid", ""),
        params.get("MessageStatus", ""),
        params.get("ErrorCode"),
        epoch(utc_now()),
    )
    return json_response(200, {"outcome": outcome})
