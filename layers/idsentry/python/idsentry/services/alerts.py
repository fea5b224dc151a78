"""Risk review: score each new exposure, confirm it by the rules or queue it for an analyst.

`Exposure.Detected` reaches this service through an EventBridge rule and a queue. The exposure
is read again, scored with the severity and confidence tables, and written as
`SUB#{id}/ALERT#{breach}`: `confirmed` (and `Alert.Confirmed` published) when the confidence
table allows, otherwise `pending_review` in the `REVIEW` index, grouped by breach, for analysts.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from idsentry.adapters.bus import EventPublisher
from idsentry.adapters.table import MainTable
from idsentry.clock import Clock, epoch
from idsentry.models.events import AlertConfirmed
from idsentry.services.hibp_catalogue import load_breach
from idsentry.services.risk import ExposureFacts, RiskRules, assess

logger = logging.getLogger(__name__)

REVIEW_INDEX_KEY = "REVIEW"


@dataclass
class AlertDeps:
    """Everything risk review talks to, injected so tests can swap any of it."""

    table: MainTable
    publisher: EventPublisher
    rules: RiskRules
    clock: Clock


def alert_id_for(subscriber_id: str, breach_name: str) -> str:
    """Return the alert id of one (subscriber, breach): the same whatever is redelivered."""
    digest = hashlib.sha256(f"{subscriber_id}\x1f{breach_name}".encode()).hexdigest()
    return f"alt_{digest[:26]}"


def review_exposure(deps: AlertDeps, subscriber_id: str, breach_name: str) -> str:
    """Score one exposure and record its alert; returns "confirmed", "pending_review" or "skipped".

    Repeating it changes nothing: the alert item is written once, and the event id comes from
    the alert id.
    """
    items = deps.table.get_partition(f"SUB#{subscriber_id}")
    exposure = items.get(f"EXPOSURE#{breach_name}")
    if exposure is None or items.get("PROFILE") is None:
        logger.info(
            "exposure not found", extra={"subscriber_id": subscriber_id, "breach_name": breach_name}
        )
        return "skipped"
    breach = load_breach(deps.table, breach_name)
    if breach is not None and not breach.alertable:
        logger.info(
            "exposure not alertable",
            extra={"subscriber_id": subscriber_id, "breach_name": breach_name},
        )
        return "skipped"

    shared = False
    mobile = items.get("IDENT#mobile")
    if mobile is not None and "mobile" in (exposure.get("matched_kinds") or ()):
        watchers = deps.table.get_many(
            [
                (f"WATCH#mobile#{version}#{value}", "WATCH")
                for version, value in (mobile.get("fingerprints") or {}).items()
            ]
        )
        shared = any(len(item.get("subscriber_ids") or ()) > 1 for item in watchers.values())
    facts = ExposureFacts.model_validate(
        {
            "matched_kinds": frozenset(exposure.get("matched_kinds") or ()),
            "found_by": exposure["found_by"],
            "mobile_shared": shared,
            "email_confirmed": "email" in (exposure.get("matched_kinds") or ())
            and bool((items.get("IDENT#email") or {}).get("confirmed")),
        }
    )
    assessment = assess(facts, breach, deps.rules)

    alert_id = alert_id_for(subscriber_id, breach_name)
    status = "confirmed" if assessment.auto_confirm else "pending_review"
    now = epoch(deps.clock())
    item: dict[str, Any] = {
        "pk": f"SUB#{subscriber_id}",
        "sk": f"ALERT#{breach_name}",
        "alert_id": alert_id,
        "breach_name": breach_name,
        "severity": str(assessment.severity),
        "confidence": str(assessment.confidence),
        "severity_rule": assessment.severity_rule,
        "confidence_rule": assessment.confidence_rule,
        "status": status,
        "created_at": now,
    }
    if status == "pending_review":
        item["gsi1pk"] = REVIEW_INDEX_KEY
        item["gsi1sk"] = f"{breach_name}#{subscriber_id}"
    deps.table.put(item, condition="attribute_not_exists(pk)")
    stored = deps.table.get(f"SUB#{subscriber_id}", f"ALERT#{breach_name}") or item

    if stored["status"] == "confirmed":
        # Published on every delivery until one succeeds; consumers de-duplicate by event id.
        deps.publisher.publish(
            [
                AlertConfirmed(
                    event_id=f"evt_alert_{alert_id}",
                    subscriber_id=subscriber_id,
                    alert_id=alert_id,
                    breach_name=breach_name,
                    severity=stored["severity"],
                    confidence=stored["confidence"],
                    confirmed_by="rules",
                )
            ]
        )
    logger.info(
        "exposure reviewed",
        extra={
            "subscriber_id": subscriber_id,
            "alert_id": alert_id,
            "status": stored["status"],
            "severity": stored["severity"],
            "confidence": stored["confidence"],
        },
    )
    return str(stored["status"])
