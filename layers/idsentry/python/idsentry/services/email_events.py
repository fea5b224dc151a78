"""SES bounces and complaints: suppress the address and record each event once per subscriber.

A permanent bounce or a complaint suppresses e-mail to every subscriber whose confirmed
address is the bounced one (`set_email_state(..., "suppressed", reason)`). A transient or
undetermined bounce, and a complaint marked "not-spam", is recorded only. The record
`SUB#{id}/EMAILEVENT#{ses message id}#{type}` makes a redelivered event a no-op. Addresses
are matched by fingerprint through the watch items of confirmed addresses, or through the
ledger's link from the SES message id to the account it went to, and never logged.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from idsentry.adapters.table import MainTable
from idsentry.clock import Clock, epoch
from idsentry.crypto import Pepper
from idsentry.identifiers import IdentifierError, canonical_email
from idsentry.item_keys import watch_pk
from idsentry.models.ses_events import NOT_SPAM_FEEDBACK, SesEvent
from idsentry.services.ledger import sent_email_subject
from idsentry.services.preferences import set_email_state

logger = logging.getLogger(__name__)

# Longer than SQS keeps a message (14 days at most), so a redelivery always finds the record.
# The rest of the time lets support see why e-mail stopped.
RECORD_TTL_SECONDS = 400 * 24 * 3600


@dataclass
class EmailEventDeps:
    """Dependencies of the SES event consumer."""

    table: MainTable
    pepper: Callable[[], Pepper]
    clock: Clock


@dataclass(frozen=True)
class _Verdict:
    """The meaning of one SES event for the addresses it names."""

    event_type: str  # "bounce" or "complaint"
    suppress: bool
    reason: str
    recipients: tuple[str, ...]


def _verdict(event: SesEvent) -> _Verdict:
    # SesEventDetail guarantees the object that matches the event type.
    bounce, complaint = event.detail.bounce, event.detail.complaint
    if bounce is not None:
        return _Verdict(
            event_type="bounce",
            suppress=bounce.bounce_type == "Permanent",
            reason=f"bounce:{bounce.bounce_type}:{bounce.bounce_sub_type}",
            recipients=tuple(r.email_address for r in bounce.bounced_recipients),
        )
    assert complaint is not None
    feedback = complaint.complaint_feedback_type or "unspecified"
    return _Verdict(
        event_type="complaint",
        suppress=feedback != NOT_SPAM_FEEDBACK,
        reason=f"complaint:{feedback}",
        recipients=tuple(r.email_address for r in complaint.complained_recipients),
    )


def apply_ses_event(deps: EmailEventDeps, event: SesEvent) -> Counter[str]:
    """Apply one SES event; returns counts of "suppressed", "recorded", "duplicate", "unmatched"."""
    verdict = _verdict(event)
    message_id = event.detail.mail.message_id
    now = epoch(deps.clock())
    outcomes: Counter[str] = Counter()

    for address in verdict.recipients:
        subscriber_ids = _subscribers_with_address(deps, address, message_id)
        if not subscriber_ids:
            outcomes["unmatched"] += 1
            logger.info(
                "ses event matched no confirmed address",
                extra={"ses_message_id": message_id, "event_type": verdict.event_type},
            )
            continue
        for subscriber_id in sorted(subscriber_ids):
            outcome = _apply_to_subscriber(
                deps.table, subscriber_id, message_id, verdict, event, now
            )
            outcomes[outcome] += 1
    return outcomes


def _subscribers_with_address(deps: EmailEventDeps, address: str, message_id: str) -> set[str]:
    """Return the subscribers whose current e-mail address is `address`.

    Those with the address confirmed are found through its watch items. The account the
    message itself went to is found through the ledger's link from SES's message id, so the
    bounce of a confirmation e-mail (often a mistyped address) reaches its account too.
    """
    try:
        canonical = canonical_email(address)
    except IdentifierError:
        return set()
    fingerprints = deps.pepper().fingerprints("email", canonical)

    # Watch items exist for confirmed addresses only, under every live pepper version.
    keys = [(watch_pk("email", fingerprint), "WATCH") for fingerprint in fingerprints]
    confirmed: set[str] = set()
    for item in deps.table.get_many(keys).values():
        confirmed.update(item.get("subscriber_ids") or ())
    recipient = sent_email_subject(deps.table, message_id)

    # The profile is checked too, so that only each subscriber's current address counts.
    current = {str(fingerprint) for fingerprint in fingerprints}
    matched = set()
    for subscriber_id in confirmed | ({recipient} if recipient else set()):
        profile = deps.table.get(f"SUB#{subscriber_id}", "PROFILE")
        if profile is None or profile.get("email_fp") not in current:
            continue
        if subscriber_id == recipient or profile.get("email_confirmed_at"):
            matched.add(subscriber_id)
    return matched


def _apply_to_subscriber(
    table: MainTable,
    subscriber_id: str,
    message_id: str,
    verdict: _Verdict,
    event: SesEvent,
    now: int,
) -> str:
    """Suppress (when the verdict requires it) and record the event; a recorded event is skipped."""
    pk, sk = f"SUB#{subscriber_id}", f"EMAILEVENT#{message_id}#{verdict.event_type}"
    if table.get(pk, sk) is not None:
        logger.info(
            "ses event already recorded",
            extra={"subscriber_id": subscriber_id, "ses_message_id": message_id},
        )
        return "duplicate"

    # Suppressing before recording means a crash in between repeats an idempotent write on
    # the retry, rather than leaving a record without its suppression.
    if verdict.suppress:
        set_email_state(table, subscriber_id, "suppressed", verdict.reason, now)
    outcome = "suppressed" if verdict.suppress else "recorded"
    table.put(
        {
            "pk": pk,
            "sk": sk,
            "event_type": verdict.event_type,
            "reason": verdict.reason,
            "outcome": outcome,
            "ses_message_id": message_id,
            "ses_event_id": event.id,
            "event_time": event.time,
            "recorded_at": now,
            "expires_at": now + RECORD_TTL_SECONDS,
        },
        condition="attribute_not_exists(pk)",
    )
    logger.info(
        "ses event applied",
        extra={
            "subscriber_id": subscriber_id,
            "ses_message_id": message_id,
            "event_type": verdict.event_type,
            "outcome": outcome,
        },
    )
    return outcome
