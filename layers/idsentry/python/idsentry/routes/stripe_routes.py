"""Routes of the Stripe webhook function: verify the signature, enqueue the event id, return 2xx."""

from __future__ import annotations

import logging
import re
from typing import Any

from idsentry import jsontext
from idsentry.adapters.queue import JobQueue
from idsentry.clock import epoch, utc_now
from idsentry.http import json_response, parse_http_event
from idsentry.models.billing_jobs import StripeEventJob
from idsentry.services.stripe_signature import SignatureError, verify
from idsentry.settings import load_settings
from idsentry.settings.billing import StripeWebhookSettings
from idsentry.wiring import secret_cache

logger = logging.getLogger(__name__)
ROUTE = "POST /v1/webhooks/stripe"
# Stripe's event ids are `evt_` and letters and digits (test fixtures use underscores too). The
# length cap keeps every job far below SQS's message size limit.
EVENT_ID = re.compile(r"evt_[A-Za-z0-9_]{1,251}")


def handle(event: dict[str, Any]) -> dict[str, Any]:
    """Accept one Stripe delivery.

    Nothing else happens on the request path: the consumer fetches the event from Stripe by its
    id, de-duplicates and applies it. The id is not recorded here, because a crash between
    recording and enqueueing would make Stripe's retry look like a duplicate and lose the event.
    """
    request = parse_http_event(event)
    if request.route_key != ROUTE:
        return json_response(404, {"error": {"code": "route.not_found"}})
    settings = load_settings(StripeWebhookSettings)
    secret = secret_cache().get_json(settings.stripe_secret_id)
    secrets = [
        str(secret.get("webhook_secret", "")),
        str(secret.get("webhook_secret_previous", "")),
    ]

    try:
        verify(request.body, request.header("stripe-signature"), secrets, epoch(utc_now()))
    except SignatureError as error:
        logger.warning(
            "stripe signature rejected",
            extra={"code": error.code, "request_id": request.request_id},
        )
        return _rejection(error.code, "Stripe-Signature")

    try:
        payload = jsontext.loads(request.body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or "id" not in payload or "livemode" not in payload:
        logger.warning("stripe event malformed", extra={"request_id": request.request_id})
        missing = "id" if isinstance(payload, dict) and "id" not in payload else "livemode"
        return _rejection("event.malformed", missing if isinstance(payload, dict) else "body")
    event_id = payload["id"]
    field = None
    if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id):
        field = "id"
    elif payload["livemode"] is not settings.live_mode:
        field = "livemode"
    if field is not None:
        logger.warning(
            "stripe event rejected",
            extra={"request_id": request.request_id, "event_id": str(event_id)[:64]},
        )
        return _rejection("event.wrong_mode_or_id", field)

    JobQueue(settings.stripe_events_queue_url).send(StripeEventJob(event_id=event_id))
    logger.info("stripe event enqueued", extra={"event_id": event_id})
    return json_response(200, {"received": True})


def _rejection(code: str, field: str) -> dict[str, Any]:
    """Return a 400 naming the header or body field that was rejected."""
    return json_response(400, {"error": {"code": code, "field": field}})
