"""The account data shown to a subscriber, and the settings they change from the account.

Every function takes the subscriber id that the verified access token names. No request field
ever chooses whose data is read. Identifiers are shown in the masked form stored with them,
so nothing is decrypted here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from idsentry.adapters.table import MainTable
from idsentry.errors import AccountNotFoundError
from idsentry.item_keys import BREACH_SORT_KEY, DEFER_SK, deferral_pk
from idsentry.models.account import PreferencesChange
from idsentry.services import unsubscribe
from idsentry.services.preferences import EMAIL_LISTS, PREFS_SK, preferences_from_item, set_timezone

logger = logging.getLogger(__name__)

# Most harmful first, the order alerts name matched identifiers in.
IDENTIFIER_ORDER = ("id_number", "bank_card", "mobile", "email")
CHANNELS = ("email", "sms")
# BatchGetItem reads at most 100 keys.
_BATCH_KEYS = 100


def _iso(epoch_seconds: Any) -> str | None:
    if epoch_seconds is None or epoch_seconds == "":
        return None
    return datetime.fromtimestamp(int(epoch_seconds), UTC).isoformat().replace("+00:00", "Z")


def _kind_rank(kind: str) -> int:
    return IDENTIFIER_ORDER.index(kind) if kind in IDENTIFIER_ORDER else len(IDENTIFIER_ORDER)


def _get_all(table: MainTable, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    unique = list(dict.fromkeys(keys))
    found: dict[tuple[str, str], Any] = {}
    for start in range(0, len(unique), _BATCH_KEYS):
        found.update(table.get_many(unique[start : start + _BATCH_KEYS]))
    return found


def _partition(table: MainTable, subscriber_id: str) -> dict[str, dict[str, Any]]:
    items = table.get_partition(f"SUB#{subscriber_id}")
    if "PROFILE" not in items:
        raise AccountNotFoundError()
    return items


def account_summary(table: MainTable, subscriber_id: str) -> dict[str, Any]:
    """Return the account's status, plan, locale and watched identifiers (masked)."""
    items = _partition(table, subscriber_id)
    profile = items["PROFILE"]

    identifiers = []
    removed = []
    for sk, item in items.items():
        if sk.startswith("IDENT#"):
            confirmed = bool(item.get("confirmed"))
            identifiers.append(
                {
                    "kind": sk.removeprefix("IDENT#"),
                    "masked": item.get("masked"),
                    "confirmed": confirmed,
                    # Watch items exist for confirmed identifiers only (e-mail after its link).
                    "watched": confirmed,
                    "added_at": _iso(item.get("added_at")),
                }
            )
        elif sk.startswith("IDENT_REMOVED#"):
            removed.append(
                {
                    "kind": sk.removeprefix("IDENT_REMOVED#"),
                    "masked": item.get("masked"),
                    "removed_at": _iso(item.get("removed_at")),
                }
            )
    identifiers.sort(key=lambda entry: _kind_rank(str(entry["kind"])))

    return {
        "subscriber_id": subscriber_id,
        "status": profile.get("status"),
        "plan": profile.get("plan"),
        "monitored": bool(profile.get("monitored")),
        "locale": "en" if profile.get("locale") == "en" else "zh-CN",
        "email_confirmed": bool(profile.get("email_confirmed_at")),
        "current_period_end": _iso(profile.get("current_period_end")),
        "created_at": _iso(profile.get("created_at")),
        "identifiers": identifiers,
        "removed_identifiers": removed,
    }


def _ledger_keys(alert_id: str) -> list[tuple[str, str]]:
    return [(f"NOTIFY#alert:{alert_id}", channel) for channel in CHANNELS]


def _channel_state(
    channel: str,
    record: dict[str, Any] | None,
    deferred: dict[str, Any] | None,
    sms_items: dict[tuple[str, str], Any],
    items: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Describe one channel of one alert: the ledger state and what the provider reported."""
    if record is None:
        if channel == "sms" and deferred is not None:
            return {
                "channel": channel,
                "state": "deferred",
                "release_at": _iso(deferred.get("release_at")),
            }
        return {"channel": channel, "state": "not_sent"}

    entry: dict[str, Any] = {"channel": channel, "state": record.get("state")}
    if record.get("error_code"):
        entry["error_code"] = record["error_code"]
    provider_id = record.get("provider_id")
    if channel == "sms" and provider_id:
        report = sms_items.get((f"SMS#{provider_id}", "SMS")) or {}
        if report.get("delivery"):
            entry["delivery"] = report["delivery"]
        if report.get("delivery_error"):
            entry["delivery_error"] = report["delivery_error"]
    if channel == "email" and provider_id:
        for event in ("bounce", "complaint"):
            if f"EMAILEVENT#{provider_id}#{event}" in items:
                entry["delivery"] = "bounced" if event == "bounce" else "complained"
    return entry


def _breach_summary(name: str, record: dict[str, Any] | None) -> dict[str, Any]:
    if record is None:
        return {"name": name}
    return {
        "name": name,
        "title": record.get("title"),
        "domain": record.get("domain") or None,
        "breach_date": record.get("breach_date"),
        "data_classes": list(record.get("data_classes") or ()),
        "is_verified": bool(record.get("is_verified")),
    }


def alert_history(table: MainTable, subscriber_id: str) -> list[dict[str, Any]]:
    """Return the account's confirmed alerts, newest first, with why and how each was sent.

    Alerts still waiting for an analyst, and those an analyst dismissed, were never sent and
    are not listed.
    """
    items = _partition(table, subscriber_id)
    alerts = [
        item
        for sk, item in items.items()
        if sk.startswith("ALERT#") and item.get("status") == "confirmed"
    ]

    keys: list[tuple[str, str]] = []
    for alert in alerts:
        keys.append((f"BREACH#{alert['breach_name']}", BREACH_SORT_KEY))
        keys.extend(_ledger_keys(alert["alert_id"]))
        keys.append((deferral_pk(f"job_{alert['alert_id']}"), DEFER_SK))
    related = _get_all(table, keys)
    sms_keys = [
        (f"SMS#{record['provider_id']}", "SMS")
        for (pk, channel), record in related.items()
        if pk.startswith("NOTIFY#") and channel == "sms" and record.get("provider_id")
    ]
    sms_items = _get_all(table, sms_keys)

    history = [_alert_entry(alert, items, related, sms_items) for alert in alerts]
    history.sort(key=lambda entry: (entry["found_at"] or "", entry["alert_id"]), reverse=True)
    return history


def _alert_entry(
    alert: dict[str, Any],
    items: dict[str, dict[str, Any]],
    related: dict[tuple[str, str], Any],
    sms_items: dict[tuple[str, str], Any],
) -> dict[str, Any]:
    alert_id = str(alert["alert_id"])
    breach_name = str(alert["breach_name"])
    exposure = items.get(f"EXPOSURE#{breach_name}") or {}
    matched = sorted(exposure.get("matched_kinds") or (), key=_kind_rank)
    deferred = related.get((deferral_pk(f"job_{alert_id}"), DEFER_SK))
    return {
        "alert_id": alert_id,
        "breach": _breach_summary(breach_name, related.get((f"BREACH#{breach_name}", "BREACH"))),
        "severity": alert.get("severity"),
        "confidence": alert.get("confidence"),
        "status": alert.get("status"),
        "why": {
            "severity_rule": alert.get("severity_rule"),
            "confidence_rule": alert.get("confidence_rule"),
            # The subscriber learns that an analyst decided, never which one.
            "confirmed_by": "analyst" if alert.get("decided_by") else "rules",
        },
        "matched": [
            {"kind": kind, "masked": (items.get(f"IDENT#{kind}") or {}).get("masked")}
            for kind in matched
        ],
        "found_at": _iso(exposure.get("found_at")),
        "found_by": exposure.get("found_by"),
        "confirmed_at": _iso(alert.get("decided_at") or alert.get("created_at")),
        "channels": [
            _channel_state(
                channel,
                related.get((f"NOTIFY#alert:{alert_id}", channel)),
                deferred,
                sms_items,
                items,
            )
            for channel in CHANNELS
        ],
    }


def preferences_view(table: MainTable, subscriber_id: str) -> dict[str, Any]:
    """Return the account's message settings and what the providers reported about them."""
    pk = f"SUB#{subscriber_id}"
    found = table.get_many([(pk, "PROFILE"), (pk, PREFS_SK)])
    profile = found.get((pk, "PROFILE"))
    if profile is None:
        raise AccountNotFoundError()
    preferences = preferences_from_item(found.get((pk, PREFS_SK)))
    return {
        "sms_alerts": preferences.sms_alerts,
        "email_lists": {
            email_list: email_list not in preferences.email_lists_off for email_list in EMAIL_LISTS
        },
        "timezone": preferences.timezone,
        "locale": "en" if profile.get("locale") == "en" else "zh-CN",
        # "opted_out" or "invalid" stop every SMS, and "suppressed" every e-mail, whatever the
        # settings above are.
        "sms_state": preferences.sms_state,
        "email_state": preferences.email_state,
    }


def _changed_fields(change: PreferencesChange, current: dict[str, Any]) -> Iterable[str]:
    lists = current["email_lists"]
    if change.sms_alerts is not None and change.sms_alerts != current["sms_alerts"]:
        yield "sms_alerts"
    if change.email_alerts is not None and change.email_alerts != lists["alerts"]:
        yield "email_alerts"
    if change.email_reports is not None and change.email_reports != lists["reports"]:
        yield "email_reports"
    if change.timezone is not None and change.timezone != current["timezone"]:
        yield "timezone"
    if change.locale is not None and change.locale != current["locale"]:
        yield "locale"


def update_preferences(
    table: MainTable, subscriber_id: str, change: PreferencesChange, now: int
) -> dict[str, Any]:
    """Apply the settings a request changes and return them all. A repeat writes nothing.

    Each setting is one idempotent write, so a request that fails midway is completed by
    sending it again.
    """
    current = preferences_view(table, subscriber_id)
    changed = list(_changed_fields(change, current))

    if "sms_alerts" in changed and change.sms_alerts is not None:
        unsubscribe.set_preference(
            table, subscriber_id, "sms:alerts", change.sms_alerts, "account", now
        )
    if "email_alerts" in changed and change.email_alerts is not None:
        unsubscribe.set_preference(
            table, subscriber_id, "email:alerts", change.email_alerts, "account", now
        )
    if "email_reports" in changed and change.email_reports is not None:
        unsubscribe.set_preference(
            table, subscriber_id, "email:reports", change.email_reports, "account", now
        )
    if "timezone" in changed and change.timezone is not None:
        set_timezone(table, subscriber_id, change.timezone, now)
    if "locale" in changed and change.locale is not None:
        updated = table.update(
            f"SUB#{subscriber_id}",
            "PROFILE",
            "SET locale = :locale, locale_updated_at = :now",
            values={":locale": change.locale, ":now": now},
            condition="attribute_exists(pk)",
        )
        if updated is None:
            raise AccountNotFoundError()

    if changed:
        logger.info(
            "account preferences changed",
            extra={"subscriber_id": subscriber_id, "fields": changed},
        )
    return preferences_view(table, subscriber_id)
