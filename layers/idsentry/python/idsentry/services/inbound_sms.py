"""Inbound SMS replies: opt-out and opt-in keywords change the SMS state of the sender's subscribers.

Replies exist only where Twilio supports them, which excludes mainland China: there, opting
out is a link and an account setting. The message body and the sender's number are personal
data, so neither is ever logged.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable
from typing import Literal

from idsentry.adapters.table import MainTable
from idsentry.crypto import Pepper
from idsentry.services.preferences import load_preferences, set_sms_state
from idsentry.services.sms_numbers import canonical_number, subscribers_with_mobile

logger = logging.getLogger(__name__)

# Twilio's default opt-out and opt-in keywords for long codes, plus TD and 退订 (unsubscribe),
# which Chinese-speaking subscribers use. After one of its own opt-out keywords Twilio rejects
# sends to the number with 21610, so recording the opt-out here avoids those failed sends.
OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "TD", "退订"}
)
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES"})

Keyword = Literal["opt_out", "opt_in"]
InboundOutcome = Literal["opted_out", "opted_in", "unchanged", "no_subscriber", "not_a_keyword"]


def keyword_of(body: str) -> Keyword | None:
    """Return which keyword a reply is: the whole body, trimmed, in any case or width."""
    word = unicodedata.normalize("NFKC", body).strip().upper()
    if word in OPT_OUT_KEYWORDS:
        return "opt_out"
    if word in OPT_IN_KEYWORDS:
        return "opt_in"
    return None


def apply_inbound(
    table: MainTable,
    pepper: Callable[[], Pepper],
    message_sid: str,
    from_number: str,
    body: str,
    now: int,
) -> InboundOutcome:
    """Apply one inbound message to every subscriber whose mobile number sent it.

    An opt-out keyword sets `opted_out`. An opt-in keyword sets `ok` again, but only where the
    state is `opted_out`: a number marked invalid stays invalid. Repeating a message changes
    nothing further.
    """
    keyword = keyword_of(body)
    if keyword is None:
        logger.info("inbound sms is not a keyword", extra={"message_sid": message_sid})
        return "not_a_keyword"

    canonical = canonical_number(from_number)
    subscriber_ids = (
        [] if canonical is None else subscribers_with_mobile(table, pepper(), canonical)
    )
    if not subscriber_ids:
        logger.info(
            "inbound sms keyword from an unknown number",
            extra={"message_sid": message_sid, "keyword": keyword},
        )
        return "no_subscriber"

    changed = 0
    for subscriber_id in subscriber_ids:
        if keyword == "opt_out":
            set_sms_state(table, subscriber_id, "opted_out", "inbound_stop", now)
            changed += 1
        elif load_preferences(table, subscriber_id).sms_state == "opted_out":
            set_sms_state(table, subscriber_id, "ok", "inbound_start", now)
            changed += 1

    logger.info(
        "inbound sms keyword applied",
        extra={
            "message_sid": message_sid,
            "keyword": keyword,
            "subscribers": len(subscriber_ids),
            "changed": changed,
        },
    )
    if changed == 0:
        return "unchanged"
    return "opted_out" if keyword == "opt_out" else "opted_in"
