"""Preference links in e-mails: leave or rejoin one list (e-mail alerts, e-mail reports, alert SMS).

A link is a signed token of (subscriber, action). `POST /v1/preferences/{token}` applies it,
which is what a mail client's one-click unsubscribe sends (RFC 8058), and `GET` only shows
a page, because mail scanners fetch every link in a message. A mail client may send the
one-click POST long after the message arrived, so a link is valid for 90 days. At least two
monthly reports, each with a fresh link, arrive in that time. An expired link changes nothing,
and its page points to a newer e-mail or the account settings.

SMS opt-out is a link here, and a setting in the account, because replies such as STOP or
退订 from mainland Chinese numbers never reach Twilio.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, cast, get_args

from idsentry.adapters.table import MainTable
from idsentry.crypto import Pepper, TokenError
from idsentry.errors import DomainError
from idsentry.i18n import Locale
from idsentry.services.link_tokens import read_link, sign_link
from idsentry.services.preferences import (
    EmailList,
    load_preferences,
    set_email_list,
    set_sms_alerts,
)

logger = logging.getLogger(__name__)

LINK_VALID_SECONDS = 90 * 24 * 3600
LINK_PURPOSE = "preference-link"

PreferenceAction = Literal["email:alerts", "email:reports", "sms:alerts"]
PREFERENCE_ACTIONS: tuple[PreferenceAction, ...] = get_args(PreferenceAction)
# Origin of a change: the link in an e-mail or the account settings.
ChangeSource = Literal["email_link", "account"]


class PreferenceLinkInvalidError(DomainError):
    """The link is malformed or forged, or names an action that does not exist."""

    status = 400

    def __init__(self) -> None:
        super().__init__("preferences.link_invalid")


class PreferenceLinkExpiredError(DomainError):
    """The link was signed by us but is older than LINK_VALID_SECONDS."""

    status = 410

    def __init__(self) -> None:
        super().__init__("preferences.link_expired")


@dataclass(frozen=True)
class PreferenceState:
    """Whether the subscriber receives what `action` names, and the locale of their account.

    `account_exists` is False when the subscriber's profile is gone (the account was deleted).
    """

    subscriber_id: str
    action: PreferenceAction
    subscribed: bool
    locale: Locale
    account_exists: bool = True
    changed: bool = False


def preference_url(
    pepper: Pepper, base_url: str, subscriber_id: str, action: PreferenceAction, now: int
) -> str:
    """Return the link that stops (or, from its page, restarts) `action` for the subscriber."""
    token = sign_link(
        pepper, LINK_PURPOSE, {"sub": subscriber_id, "act": action}, LINK_VALID_SECONDS, now
    )
    return f"{base_url}/v1/preferences/{token}"


def read_preference_link(pepper: Pepper, token: str, now: int) -> tuple[str, PreferenceAction]:
    """Return the subscriber and action of a valid link.

    Raises PreferenceLinkInvalidError or PreferenceLinkExpiredError.
    """
    try:
        link = read_link(pepper, LINK_PURPOSE, token, now)
    except TokenError as exc:
        raise PreferenceLinkInvalidError() from exc

    subscriber_id = link.claims.get("sub")
    action = link.claims.get("act")
    if action not in PREFERENCE_ACTIONS or not isinstance(subscriber_id, str) or not subscriber_id:
        raise PreferenceLinkInvalidError()
    if link.expired:
        raise PreferenceLinkExpiredError()
    return subscriber_id, cast(PreferenceAction, action)


def _email_list(action: PreferenceAction) -> EmailList | None:
    if action == "email:alerts":
        return "alerts"
    if action == "email:reports":
        return "reports"
    return None


def preference_state(
    table: MainTable, subscriber_id: str, action: PreferenceAction
) -> PreferenceState:
    """Read whether the subscriber currently receives what `action` names; writes nothing."""
    profile = table.get(f"SUB#{subscriber_id}", "PROFILE")
    if profile is None:
        return PreferenceState(subscriber_id, action, False, "zh-CN", account_exists=False)

    locale: Locale = "en" if profile.get("locale") == "en" else "zh-CN"
    preferences = load_preferences(table, subscriber_id)
    email_list = _email_list(action)
    if email_list is None:
        subscribed = preferences.sms_alerts
    else:
        subscribed = email_list not in preferences.email_lists_off
    return PreferenceState(subscriber_id, action, subscribed, locale)


def set_preference(
    table: MainTable,
    subscriber_id: str,
    action: PreferenceAction,
    subscribed: bool,
    source: ChangeSource,
    now: int,
) -> PreferenceState:
    """Leave (`subscribed=False`) or rejoin one list; a repeat of the current choice writes nothing.

    Only the named list changes: the account, its monitoring and every other list stay as
    they are. A suppression after a bounce or complaint is separate and is not lifted here.
    The account settings call this with `source="account"` to turn a list back on.
    """
    state = preference_state(table, subscriber_id, action)
    if not state.account_exists or state.subscribed == subscribed:
        return state

    email_list = _email_list(action)
    if email_list is None:
        set_sms_alerts(table, subscriber_id, subscribed, source, now)
    else:
        set_email_list(table, subscriber_id, email_list, subscribed, now)
    logger.info(
        "subscriber preference changed",
        extra={
            "subscriber_id": subscriber_id,
            "action": action,
            "subscribed": subscribed,
            "source": source,
        },
    )
    return PreferenceState(
        subscriber_id, action, subscribed, state.locale, account_exists=True, changed=True
    )
