"""Routes of the Twilio webhook function: signed status callbacks and inbound replies.

Twilio signs the exact URL it called (`X-Twilio-Signature`: HMAC-SHA1 of the URL followed by
the sorted form parameters). That URL is rebuilt as `PublicBaseUrl` followed by the request's
raw path below the base URL's own path, plus `?` and the raw query string byte for byte:

- `https://api.example.com` and raw path `/v1/webhooks/twilio/status` give
  `https://api.example.com/v1/webhooks/twilio/status`;
- a named stage is part of the raw path on the execute-api endpoint. `PublicBaseUrl` may name
  it (`https://x.execute-api…/prod`, raw path `/prod/v1/…`, the prefix counted once) or not
  (`https://x.execute-api…`, the same raw path appended whole): both give `…/prod/v1/…`;
- a base path that a proxy strips before API Gateway (raw path `/v1/…` under
  `https://example.com/idsentry`) is kept from `PublicBaseUrl`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from idsentry.clock import epoch, utc_now
from idsentry.http import HttpRequest, json_response, parse_http_event
from idsentry.services.delivery import StatusCallback, record_status, resend_overflowed
from idsentry.services.inbound_sms import apply_inbound
from idsentry.services.ledger import link_provider_id
from idsentry.settings import load_settings
from idsentry.settings.notify import TwilioWebhookSettings
from idsentry.wiring import main_table, notification_queue, pepper_loader, secret_cache

logger = logging.getLogger(__name__)

STATUS_ROUTE = "POST /v1/webhooks/twilio/status"
INBOUND_ROUTE = "POST /v1/webhooks/twilio/inbound"
# SMS and MMS message SIDs.
MESSAGE_SID = re.compile(r"(?:SM|MM)[0-9a-f]{32}")
# Twilio's error codes are five-digit numbers, and the cap keeps the SMS item small.
ERROR_CODE = re.compile(r"[0-9]{1,10}")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


class FormParams(dict[str, list[str]]):
    """Form parameters with every value of a repeated name, as Twilio's validator reads them."""

    def getall(self, name: str) -> list[str]:
        """Return every value of `name`; RequestValidator calls this for multi-value forms."""
        return self[name]

    def first(self, name: str) -> str:
        """Return the first value of `name`, or "" when it is absent."""
        values = self.get(name) or [""]
        return values[0]


def signed_url(public_base_url: str, raw_path: str, raw_query: str) -> str:
    """Rebuild the URL that Twilio called and signed; see the module docstring."""
    base = public_base_url.rstrip("/")
    base_path = urlsplit(base).path
    path = raw_path
    if base_path and (raw_path == base_path or raw_path.startswith(base_path + "/")):
        path = raw_path[len(base_path) :]

    url = base + path
    if raw_query:
        url += "?" + raw_query
    return url


def parse_form(body: bytes) -> FormParams:
    """Parse an application/x-www-form-urlencoded body; raise ValueError when it is not UTF-8."""
    params = FormParams()
    for name, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
        params.setdefault(name, []).append(value)
    return params


def signature_valid(auth_token: str, url: str, params: FormParams, signature: str) -> bool:
    """Check `X-Twilio-Signature` with the twilio SDK's validator, in constant time."""
    from twilio.request_validator import RequestValidator

    if not auth_token or not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, params, signature))


def handle(event: dict[str, Any]) -> dict[str, Any]:
    """Check the request's signature over the public URL, then apply the callback or reply."""
    try:
        request = parse_http_event(event)
        params = parse_form(request.body)
    except ValueError:
        logger.warning("twilio request malformed")
        return json_response(400, {"error": {"code": "request.invalid", "field": "body"}})
    if request.route_key not in (STATUS_ROUTE, INBOUND_ROUTE):
        return json_response(404, {"error": {"code": "route.not_found"}})

    settings = load_settings(TwilioWebhookSettings)
    raw_query = str(event.get("rawQueryString") or "")
    url = signed_url(settings.public_base_url, str(event.get("rawPath") or ""), raw_query)
    auth_token = str(secret_cache().get_json(settings.twilio_secret_id).get("auth_token", ""))
    if not auth_token:
        logger.error("twilio auth token missing", extra={"request_id": request.request_id})
    signature = request.header("x-twilio-signature") or ""
    if not signature_valid(auth_token, url, params, signature):
        logger.warning("twilio signature invalid", extra={"request_id": request.request_id})
        return json_response(
            403, {"error": {"code": "signature.invalid", "field": "X-Twilio-Signature"}}
        )

    message_sid = params.first("MessageSid")
    if not MESSAGE_SID.fullmatch(message_sid):
        return _invalid_field(request, "MessageSid")

    if request.route_key == STATUS_ROUTE:
        return _status(request, params, message_sid, dict(parse_qsl(raw_query)), settings)
    return _inbound(params, message_sid, settings)


def _status(
    request: HttpRequest,
    params: FormParams,
    message_sid: str,
    query: Mapping[str, str],
    settings: TwilioWebhookSettings,
) -> dict[str, Any]:
    status = params.first("MessageStatus")
    if not status:
        return _invalid_field(request, "MessageStatus")
    error_code = params.first("ErrorCode")
    if error_code and not ERROR_CODE.fullmatch(error_code):
        return _invalid_field(request, "ErrorCode")
    now = epoch(utc_now())
    table = main_table()

    message_key = query.get("m") or None
    channel = query.get("c") or None
    if message_key and channel:
        link_provider_id(table, message_key, channel, message_sid, now)

    callback = StatusCallback(
        message_sid=message_sid,
        status=status,
        error_code=error_code or None,
        to=params.first("To") or None,
        message_key=message_key,
        channel=channel,
    )
    # Before the status is recorded: a repeated callback, after a failure here, queues it again.
    resend_overflowed(table, notification_queue(), callback)
    outcome = record_status(table, callback, lambda: pepper_loader(settings), now)
    return json_response(200, {"outcome": outcome})


def _inbound(
    params: FormParams, message_sid: str, settings: TwilioWebhookSettings
) -> dict[str, Any]:
    apply_inbound(
        main_table(),
        lambda: pepper_loader(settings),
        message_sid,
        params.first("From"),
        params.first("Body"),
        epoch(utc_now()),
    )
    # Empty TwiML: the service sends no reply of its own.
    return {
        "statusCode": 200,
        "headers": {"content-type": "text/xml; charset=utf-8", "cache-control": "no-store"},
        "body": EMPTY_TWIML,
        "isBase64Encoded": False,
    }


def _invalid_field(request: HttpRequest, field: str) -> dict[str, Any]:
    logger.warning(
        "twilio request invalid", extra={"request_id": request.request_id, "field": field}
    )
    return json_response(400, {"error": {"code": "request.invalid", "field": field}})
