"""Fixed sample records for reports and dossiers, shaped as the main table stores them.

The story is a subscriber in Asia/Shanghai with a May 2026 report. A shop breach leaked their
ID number and mobile in May (critical, one step done, e-mail sent and SMS delivered). A mail
service leaked their e-mail address and password in February (high, confirmed by an
analyst). An unverified forum breach dates from March 2025, two finds fall on either side of
the new year in China time, one match is still under review and one was dismissed. They
recorded quarterly check results in February and May. `many_exposures` adds more breaches
for timing runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

SUBSCRIBER_ID = "sub_01JSAMPLE0000000000000000"
SHANGHAI = ZoneInfo("Asia/Shanghai")
REPORT_MONTH = "2026-05"
GENERATED_AT = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)  # 09:00 on 1 June in China
MASKED = {
    "id_number": "1101**********100X",
    "mobile": "195****0001",
    "email": "z***@example.com",
}

Items = dict[str, dict[str, Any]]
Related = dict[tuple[str, str], dict[str, Any]]


def epoch(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Return epoch seconds of a wall-clock time in China."""
    return int(datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).timestamp())


def _breach(
    name: str,
    title: str,
    breach_date: str,
    added: str,
    data_classes: list[str],
    *,
    verified: bool,
    source: str = "hibp",
    pwn_count: int = 0,
    domain: str = "",
) -> dict[str, Any]:
    # The catalogue item as hibp_catalogue.breach_item and intake write it.
    item: dict[str, Any] = {
        "pk": f"BREACH#{name}",
        "sk": "BREACH",
        "source": source,
        "name": name,
        "title": title,
        "breach_date": breach_date,
        "added_date": added,
        "modified_date": added,
        "pwn_count": pwn_count,
        "description": "",
        "data_classes": data_classes,
        "is_verified": verified,
        "is_fabricated": False,
        "is_sensitive": False,
        "is_retired": False,
        "is_spam_list": False,
        "is_malware": False,
        "is_stealer_log": False,
    }
    if domain:
        item["domain"] = domain
    return item


def _exposure(breach: str, kinds: set[str], found_at: int, found_by: str) -> dict[str, Any]:
    return {
        "pk": f"SUB#{SUBSCRIBER_ID}",
        "sk": f"EXPOSURE#{breach}",
        "breach_name": breach,
        "matched_kinds": kinds,
        "found_by": found_by,
        "found_at": found_at,
        "announced": True,
        "announcing_at": found_at,
    }


def _alert(
    breach: str,
    alert_id: str,
    severity: str,
    confidence: str,
    status: str,
    created_at: int,
    decided_at: int | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": f"SUB#{SUBSCRIBER_ID}",
        "sk": f"ALERT#{breach}",
        "alert_id": alert_id,
        "breach_name": breach,
        "severity": severity,
        "confidence": confidence,
        "severity_rule": "sample_rule",
        "confidence_rule": "sample_rule",
        "status": status,
        "created_at": created_at,
    }
    if decided_at is not None:
        item.update(
            decided_at=decided_at,
            decided_by="arn:aws:sts::000000000000:assumed-role/analyst/sample",
            audit_record_id="aud_sample",
        )
    if status == "pending_review":
        item.update(gsi1pk="REVIEW", gsi1sk=f"{breach}#{SUBSCRIBER_ID}")
    return item


def _step(alert_id: str, step_id: str, done_at: int) -> dict[str, Any]:
    return {
        "pk": f"SUB#{SUBSCRIBER_ID}",
        "sk": f"PLAYBOOK#{alert_id}#{step_id}",
        "alert_id": alert_id,
        "step_id": step_id,
        "done_at": done_at,
    }


def _check(check: str, quarter: str, counts: dict[str, int], recorded_at: int) -> dict[str, Any]:
    return {
        "pk": f"SUB#{SUBSCRIBER_ID}",
        "sk": f"CHECK#{check}#{quarter}",
        "check": check,
        "quarter": quarter,
        "counts": counts,
        "recorded_at": recorded_at,
    }


def _ledger(alert_id: str, channel: str, state: str, at: int, provider_id: str) -> dict[str, Any]:
    # A delivery-ledger record as services.ledger.Ledger leaves it.
    return {
        "pk": f"NOTIFY#alert:{alert_id}",
        "sk": channel,
        "state": state,
        "subject_id": SUBSCRIBER_ID,
        "claimed_at": at - 2,
        "updated_at": at,
        "attempts": 1,
        "provider_id": provider_id,
        "expires_at": at + 90 * 24 * 3600,
    }


def sample_records(locale: str = "zh-CN") -> tuple[Items, Related]:
    """Return the sample subscriber's partition by sort key and the related items by key."""
    pk = f"SUB#{SUBSCRIBER_ID}"
    partition: Items = {
        "PROFILE": {
            "pk": pk,
            "sk": "PROFILE",
            "status": "active",
            "plan": "monthly",
            "locale": locale,
            "monitored": True,
            "name_enc": "c2FtcGxlIGNpcGhlcnRleHQ=",
            "created_at": epoch(2025, 1, 10, 9),
        },
        "PREFS": {"pk": pk, "sk": "PREFS", "timezone": "Asia/Shanghai", "sms_alerts": True},
        "IDENT#id_number": {
            "pk": pk,
            "sk": "IDENT#id_number",
            "kind": "id_number",
            "masked": MASKED["id_number"],
            "value_enc": "c2FtcGxlIGNpcGhlcnRleHQ=",
            "fingerprints": {"1": "fp-id"},
            "confirmed": True,
        },
        "IDENT#mobile": {
            "pk": pk,
            "sk": "IDENT#mobile",
            "kind": "mobile",
            "masked": MASKED["mobile"],
            "fingerprints": {"1": "fp-mobile"},
            "confirmed": True,
        },
        "IDENT#email": {
            "pk": pk,
            "sk": "IDENT#email",
            "kind": "email",
            "masked": MASKED["email"],
            "fingerprints": {"1": "fp-email"},
            "confirmed": True,
        },
    }
    related: Related = {}

    def add(*items: dict[str, Any]) -> None:
        for item in items:
            if item["pk"] == pk:
                partition[item["sk"]] = item
            else:
                related[(item["pk"], item["sk"])] = item

    # May: the shop breach, critical, one step done, both channels sent.
    add(
        _breach(
            "ExampleShop",
            "示例商城",
            "2026-04-20",
            "2026-05-02T08:00:00Z",
            ["身份证号", "手机号", "姓名", "收货地址"],
            verified=True,
            source="dataset",
            pwn_count=1_250_000,
            domain="shop.example.cn",
        ),
        _exposure("ExampleShop", {"id_number", "mobile"}, epoch(2026, 5, 3, 10, 15), "dataset"),
        _alert(
            "ExampleShop", "alt_shop", "critical", "high", "confirmed", epoch(2026, 5, 3, 10, 16)
        ),
        _step("alt_shop", "check_phone_cards_and_accounts", epoch(2026, 5, 4, 20, 30)),
        _ledger("alt_shop", "email", "sent", epoch(2026, 5, 3, 10, 20), "ses-shop"),
        _ledger("alt_shop", "sms", "sent", epoch(2026, 5, 3, 10, 21), "SMshop"),
        {
            "pk": "SMS#SMshop",
            "sk": "SMS",
            "ledger_pk": "NOTIFY#alert:alt_shop",
            "delivery": "delivered",
        },
    )
    # February: the mail service, high, confirmed by an analyst, password steps done in May.
    add(
        _breach(
            "MailCloud",
            "MailCloud",
            "2025-12-01",
            "2026-02-10T00:00:00Z",
            ["Email addresses", "Passwords"],
            verified=True,
            pwn_count=3_400_000,
            domain="mailcloud.example.com",
        ),
        _exposure("MailCloud", {"email"}, epoch(2026, 2, 14, 8), "hibp"),
        _alert(
            "MailCloud",
            "alt_mail",
            "high",
            "medium",
            "confirmed",
            epoch(2026, 2, 14, 8, 1),
            decided_at=epoch(2026, 2, 15, 11),
        ),
        _step("alt_mail", "change_reused_passwords", epoch(2026, 5, 10, 21)),
        _step("alt_mail", "enable_two_step_verification", epoch(2026, 5, 10, 21, 5)),
        _ledger("alt_mail", "email", "sent", epoch(2026, 2, 15, 11, 1), "ses-mail"),
        {
            "pk": pk,
            "sk": "EMAILEVENT#ses-mail#bounce",
            "type": "bounce",
            "reason": "Transient",
        },
    )
    # March 2025: an unverified forum breach, medium, nothing done.
    add(
        _breach(
            "OldForum",
            "Old Forum <b>Archive</b>",
            "2024-06-01",
            "2025-02-20T00:00:00Z",
            ["Email addresses", "Usernames"],
            verified=False,
        ),
        _exposure("OldForum", {"email"}, epoch(2025, 3, 1, 12), "hibp"),
        _alert("OldForum", "alt_forum", "medium", "low", "confirmed", epoch(2025, 3, 1, 12, 1)),
    )
    # Either side of the new year in China time. The second is still in December in UTC.
    add(
        _breach(
            "YearEndGame",
            "年终游戏",
            "2025-12-20",
            "2025-12-31T00:00:00Z",
            ["手机号"],
            verified=True,
            source="dataset",
        ),
        _exposure("YearEndGame", {"mobile"}, epoch(2025, 12, 31, 23, 30), "dataset"),
        _alert(
            "YearEndGame", "alt_yearend", "medium", "high", "confirmed", epoch(2025, 12, 31, 23, 31)
        ),
        _breach(
            "NewYearTickets",
            "New Year Tickets",
            "2025-12-25",
            "2025-12-31T10:00:00Z",
            ["Phone numbers"],
            verified=True,
        ),
        _exposure("NewYearTickets", {"mobile"}, epoch(2026, 1, 1, 0, 30), "index"),
        _alert(
            "NewYearTickets", "alt_tickets", "low", "high", "confirmed", epoch(2026, 1, 1, 0, 31)
        ),
        _step("alt_tickets", "watch_for_fraud_calls", epoch(2026, 1, 2, 9)),
        _step("alt_tickets", "answer_96110", epoch(2026, 1, 2, 9, 1)),
        _step("alt_tickets", "check_phone_cards_and_accounts", epoch(2026, 1, 2, 9, 2)),
    )
    # Still under review, and dismissed: neither counts.
    add(
        _breach(
            "Telecom2026",
            "某运营商",
            "2026-05-01",
            "2026-05-19T00:00:00Z",
            ["手机号"],
            verified=False,
        ),
        _exposure("Telecom2026", {"mobile"}, epoch(2026, 5, 20, 9), "index"),
        _alert(
            "Telecom2026", "alt_telecom", "high", "low", "pending_review", epoch(2026, 5, 20, 9, 1)
        ),
        _breach(
            "SpamList",
            "Spam List",
            "2026-03-01",
            "2026-03-05T00:00:00Z",
            ["Email addresses"],
            verified=False,
        ),
        _exposure("SpamList", {"email"}, epoch(2026, 3, 6, 9), "hibp"),
        _alert(
            "SpamList",
            "alt_spam",
            "low",
            "low",
            "dismissed",
            epoch(2026, 3, 6, 9, 1),
            decided_at=epoch(2026, 3, 7, 10),
        ),
    )
    add(
        _check(
            "yizhengtongcha",
            "2026q1",
            {"phone_cards": 2, "internet_accounts": 5},
            epoch(2026, 2, 20, 20),
        ),
        _check(
            "yizhengtongcha",
            "2026q2",
            {"phone_cards": 3, "internet_accounts": 5},
            epoch(2026, 5, 6, 21),
        ),
        _check("bank_cards", "2026q1", {"bank_cards": 4}, epoch(2026, 2, 20, 20, 10)),
    )
    return partition, related


def many_exposures(count: int, locale: str = "zh-CN") -> tuple[Items, Related]:
    """Return the sample records with `count` more confirmed exposures spread over a year."""
    partition, related = sample_records(locale)
    severities = ("critical", "high", "medium", "low")
    for index in range(count):
        name = f"Breach{index:03d}"
        month = 6 + index % 12
        year = 2025 if month <= 12 else 2026
        month = month if month <= 12 else month - 12
        found_at = epoch(year, month, 1 + index % 27, 10)
        alert_id = f"alt_bulk{index:03d}"
        related[(f"BREACH#{name}", "BREACH")] = _breach(
            name,
            f"泄露事件 {index}",
            "2025-01-01",
            "2025-05-01T00:00:00Z",
            ["Email addresses", "Passwords", "Phone numbers"],
            verified=index % 3 != 0,
            pwn_count=10_000 * (index + 1),
        )
        partition[f"EXPOSURE#{name}"] = _exposure(name, {"email", "mobile"}, found_at, "index")
        partition[f"ALERT#{name}"] = _alert(
            name, alert_id, severities[index % 4], "high", "confirmed", found_at + 60
        )
        if index % 2:
            step = _step(alert_id, "change_reused_passwords", found_at + 3600)
            partition[step["sk"]] = step
        ledger = _ledger(alert_id, "email", "sent", found_at + 120, f"ses-{index}")
        related[(ledger["pk"], ledger["sk"])] = ledger
    return partition, related
