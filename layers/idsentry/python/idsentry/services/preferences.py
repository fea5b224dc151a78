"""A subscriber's contact preferences and channel states, in one item per subscriber.

`SUB#{id}/PREFS` contains what the subscriber chose (SMS for alerts, the e-mail lists they left)
and what the providers reported (an SMS opt-out, an invalid number, a suppressed address).
Every writer sets only its own attributes, so a bounce and an unsubscribe never overwrite
each other. A missing item means the defaults: everything on, quiet hours in Asia/Shanghai.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from idsentry.adapters.table import MainTable

PREFS_SK = "PREFS"
DEFAULT_TIMEZONE = "Asia/Shanghai"

# Lists a subscriber can leave from an e-mail's one-click link. Codes, e-mail confirmations,
# payment notices and account notices are transactional and belong to no list.
EmailList = Literal["alerts", "reports"]
EMAIL_LISTS: tuple[EmailList, ...] = ("alerts", "reports")

# The number's state as a provider reported it: opted out (Twilio 21610 or an inbound STOP) or
# not a mobile number that can receive SMS (21211, 21614). "unconfirmed" means the number was
# not proven again within the reconfirmation period, so it may belong to someone else by now
# (set and cleared by services/phone_reconfirm.py).
SmsState = Literal["ok", "opted_out", "invalid", "unconfirmed"]
EmailState = Literal["ok", "suppressed"]


@dataclass(frozen=True)
class Preferences:
    """The messages one subscriber may receive, on which channels, and when."""

    sms_alerts: bool = True
    sms_state: SmsState = "ok"
    email_state: EmailState = "ok"
    email_lists_off: frozenset[str] = field(default_factory=frozenset)
    timezone: str = DEFAULT_TIMEZONE

    def may_sms(self, *, alert: bool) -> bool:
        """Return whether an SMS may go to the subscriber's number; alerts also need the setting."""
        if self.sms_state != "ok":
            return False
        return self.sms_alerts or not alert

    def may_email(self, email_list: EmailList | None) -> bool:
        """Return whether an e-mail of `email_list` (None: transactional) may be sent."""
        if self.email_state != "ok":
            return False
        return email_list is None or email_list not in self.email_lists_off


def load_preferences(table: MainTable, subscriber_id: str) -> Preferences:
    """Read a subscriber's preferences; a missing item gives the defaults."""
    item = table.get(f"SUB#{subscriber_id}", PREFS_SK)
    return preferences_from_item(item)


def preferences_from_item(item: dict[str, Any] | None) -> Preferences:
    """Build preferences from the stored item (already read with the subscriber's partition)."""
    if item is None:
        return Preferences()
    return Preferences(
        sms_alerts=bool(item.get("sms_alerts", True)),
        sms_state=item.get("sms_state") or "ok",
        email_state=item.get("email_state") or "ok",
        email_lists_off=frozenset(item.get("email_lists_off") or ()),
        timezone=str(item.get("timezone") or DEFAULT_TIMEZONE),
    )


def _set(table: MainTable, subscriber_id: str, attributes: dict[str, Any], now: int) -> None:
    names = {f"#a{index}": name for index, name in enumerate(attributes)}
    values = {f":v{index}": value for index, value in enumerate(attributes.values())}
    assignments = ", ".join(f"#a{index} = :v{index}" for index in range(len(attributes)))
    table.update(
        f"SUB#{subscriber_id}",
        PREFS_SK,
        f"SET {assignments}, updated_at = :now",
        values={**values, ":now": now},
        names=names,
    )


def set_sms_alerts(
    table: MainTable, subscriber_id: str, enabled: bool, source: str, now: int
) -> None:
    """Turn alert SMS on or off at the subscriber's request (`source`: "email_link", "account")."""
    _set(table, subscriber_id, {"sms_alerts": enabled, "sms_alerts_source": source}, now)


def set_timezone(table: MainTable, subscriber_id: str, timezone: str, now: int) -> None:
    """Set the IANA time zone that quiet hours follow (already validated by the caller)."""
    _set(table, subscriber_id, {"timezone": timezone}, now)


def set_sms_state(
    table: MainTable, subscriber_id: str, state: SmsState, reason: str, now: int
) -> None:
    """Record the number's state from a provider (`reason`: an error code or an inbound keyword)."""
    _set(table, subscriber_id, {"sms_state": state, "sms_state_reason": reason}, now)


def set_email_state(
    table: MainTable, subscriber_id: str, state: EmailState, reason: str, now: int
) -> None:
    """Record a bounce or complaint suppression (`reason`), or its removal with state "ok"."""
    _set(table, subscriber_id, {"email_state": state, "email_state_reason": reason}, now)


def set_email_list(
    table: MainTable, subscriber_id: str, email_list: EmailList, subscribed: bool, now: int
) -> None:
    """Leave or rejoin one e-mail list; the account and every other list stay as they were."""
    operation = "DELETE" if subscribed else "ADD"
    table.update(
        f"SUB#{subscriber_id}",
        PREFS_SK,
        f"SET updated_at = :now {operation} email_lists_off :list",
        values={":now": now, ":list": {email_list}},
    )
