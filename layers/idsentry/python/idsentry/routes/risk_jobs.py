"""Queue-record entry point of risk review: `Exposure.Detected` events delivered through SQS."""

from __future__ import annotations

import json
import logging
from functools import cache

from pydantic import ValidationError

from idsentry.clock import utc_now
from idsentry.errors import PoisonMessageError
from idsentry.models.events import ExposureDetected
from idsentry.services.alerts import AlertDeps, review_exposure
from idsentry.services.risk import load_rules
from idsentry.wiring import main_table, publisher

logger = logging.getLogger(__name__)


@cache
def alert_deps() -> AlertDeps:
    """Return risk review's dependencies; the rule tables are read once per instance."""
    return AlertDeps(table=main_table(), publisher=publisher(), rules=load_rules(), clock=utc_now)


def process_risk_record(message_id: str, body: str) -> str:
    """Review the exposure named by one EventBridge event; raises so SQS retries it."""
    try:
        envelope = json.loads(body)
        if envelope.get("detail-type") != ExposureDetected.detail_type:
            raise ValueError(f"unexpected detail-type {envelope.get('detail-type')!r}")
        detail = ExposureDetected.model_validate(envelope.get("detail"))
    except (json.JSONDecodeError, ValueError, ValidationError) as exc:
        logger.error("risk event invalid", extra={"message_id": message_id})
        raise PoisonMessageError(message_id) from exc
    return review_exposure(alert_deps(), detail.subscriber_id, detail.breach_name)
