"""Routes of the Stripe webhook function: verify the signature, enqueue the event id, return 2xx."""

from __future__ import annotations

import json
import logging
from typing import Any

from idsentry.adapters.queue import JobQueue
from idsentry.clock import epoch, utc_now
from idsentry.http import json_response, parse_http_event
from idsentry.models.jobs import StripeEventJob
from idsentry.services.stripe_signature import SignatureError, verify
from idsentry.settings import StripeWebhookSettings, load_settings
from idsentry.wiring import secret_cache

logger = logging.getLogger(__name__)
ROUTE = "POST /v1/webhooks/stripe"


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
        return json_response(400, {"error": {"code": error.code}})

    try:
        payload = json.loads(request.body)
        event_id = payload["id"]
        livemode = payload["livemode"]
    except (ValueError, KeyError, TypeError):
        logger.warning("stripe event malformed", extra={"request_id": request.request_id})
        return json_response(400, {"error": {"code": "event.malformed"}})
    if (
        not isinstance(event_id, str)
        or not event_id.startswith("evt_")
        or livemode is not settings.live_mode
    ):
        logger.warning(
            "stripe event rejected",
            extra={"request_id": request.request_id, "event_id": str(event_id)[:64]},
        )
        return json_response(400, {"error": {"code": "event.wrong_mode_or_id"}})

    JobQueue(settings.stripe_events_queue_url).send(StripeEventJob(event_id=event_id))
    logger.info("stripe event enqueued", extra={"event_id": event_id})
    return json_response(200, {"received": True})
