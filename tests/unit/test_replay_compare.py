"""The replay comparison: run-specific values are ignored, every real difference is counted."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from infra.chaos.compare import compare, normalise, repeated_sends
from infra.chaos.end_state import EndState
from infra.local.replay import KINDS, Replay

pytestmark = pytest.mark.unit

FIRST_RUN = {
    "subscriber": "sbr_01M92HTDWQ5HYYR6D614ADKZBV",
    "signup": "sgn_01M92HTCFG50NZH7HHRADDK96B",
    "invoice": "in_4qLy9Wzld4rMS9",
    "sms_sid": "SMa6e9f1bdea58a3c35bf52ce84cb17472",
    "epoch": Decimal("1796455872"),
    "code": "429460",
    "port": "56735",
    "fingerprint": "58449cbc0e32966229c237680b4b0ee8eba01d5440a6226fc4833a473656c8a7",
}
SECOND_RUN = {
    "subscriber": "sbr_01M92J7TSB8AZPP0Q5S2V8KB8K",
    "signup": "sgn_01M92J7R4W0H2B8QK4Y6X3DNVE",
    "invoice": "in_9Zk3LmQw7XyPaB",
    "sms_sid": "SM02d232ff111ba39aac2c81b567b3eaa5",
    "epoch": Decimal("1796456901"),
    "code": "918273",
    "port": "41207",
    "fingerprint": "42566128ac1df710276fc90be8d97aeaaa5367b43d4e454d083c938603a63c68",
}
MOBILE = "+8613800138001"
EMAIL = "wang.xiaoming@example.com"


def end_state(run: dict[str, Any]) -> EndState:
    """Return a small end state: a profile, a ledger item, an SMS pointer, one SMS, one e-mail."""
    subscriber = run["subscriber"]
    items = [
        {
            "pk": f"SUB#{subscriber}",
            "sk": "PROFILE",
            "status": "active",
            "plan": "annual",
            "signup_id": run["signup"],
            "name_enc": "g1:ykOTPrO1GrWrZ0sxmxj4KaHVkUyvnsl2ufkTmnzIw/Yh/dq0yw==",
            "updated_at": run["epoch"],
        },
        {
            "pk": f"SUB#{subscriber}",
            "sk": f"LEDGER#{run['epoch']}#invoice_paid#{run['invoice']}",
            "kind": "invoice_paid",
            "amount": Decimal("18000"),
            "currency": "cny",
            "gsi1pk": "LEDGER#20261205",
        },
        {
            "pk": f"SMS#{run['sms_sid']}",
            "sk": "SMS",
            "ledger_pk": "NOTIFY#alert:alt_542489a21cd5d84c364c9cecb8",
            "delivery": "delivered",
        },
        {
            "pk": f"SMSWIN#{run['fingerprint']}",
            "sk": "SMSWIN",
            "sends": [f"otp:{run['epoch']}"],
        },
    ]
    return EndState(
        items={"Table": items},
        sms=[
            {
                "to": MOBILE,
                "body": f"身份哨兵验证码：{run['code']}，10分钟内有效。",
                "status": "delivered",
                "error_code": None,
                "num_segments": 1,
                "held_for_review": False,
            }
        ],
        emails=[
            {
                "to": [EMAIL],
                "subject": "请确认您的邮箱 - 身份哨兵",
                "text": f"http://127.0.0.1:{run['port']}/v1/email-confirmations/"
                "eyJlZnAiOiIxOjI4YWJlNzM1NzlkZjIy.famRq-oNlrA0nBklBga2_kS",
                "html": None,
                "headers": {},
            }
        ],
        stripe_customers=[],
        labels={MOBILE: "wang.signup", EMAIL: "wang.signup", subscriber: "wang.signup"},
    )


def test_runs_differing_only_in_ids_are_identical() -> None:
    comparison = compare(normalise(end_state(FIRST_RUN)), normalise(end_state(SECOND_RUN)))

    assert comparison.identical, comparison.summary_lines()
    assert comparison.categories["money_ledger"].first == 1
    assert comparison.categories["sms"].second == 1


def test_extra_ledger_item_is_duplicated() -> None:
    second = end_state(SECOND_RUN)
    ledger = next(item for item in second.items["Table"] if item["sk"].startswith("LEDGER#"))
    second.items["Table"].append(copy.deepcopy(ledger))

    comparison = compare(normalise(end_state(FIRST_RUN)), normalise(second))

    assert comparison.categories["money_ledger"].duplicated == 1
    assert comparison.duplicated == 1
    assert comparison.lost == 0


def test_sms_sent_twice_is_duplicated() -> None:
    second = end_state(SECOND_RUN)
    second.sms.append(dict(second.sms[0], body="身份哨兵验证码：555123，10分钟内有效。"))

    comparison = compare(normalise(end_state(FIRST_RUN)), normalise(second))

    assert comparison.categories["sms"].duplicated == 1
    assert "<wang.signup>" in comparison.categories["sms"].examples[0]


def test_missing_email_is_lost() -> None:
    second = end_state(SECOND_RUN)
    second.emails.clear()

    comparison = compare(normalise(end_state(FIRST_RUN)), normalise(second))

    assert comparison.categories["email"].lost == 1
    assert not comparison.identical


def test_changed_status_is_differing() -> None:
    second = end_state(SECOND_RUN)
    second.items["Table"][0]["status"] = "past_due"

    comparison = compare(normalise(end_state(FIRST_RUN)), normalise(second))

    assert comparison.categories["entitlements"].differing == 1
    assert comparison.lost == 0
    assert comparison.duplicated == 0


def test_changed_amount_is_differing() -> None:
    second = end_state(SECOND_RUN)
    second.items["Table"][1]["amount"] = Decimal("36000")

    comparison = compare(normalise(end_state(FIRST_RUN)), normalise(second))

    assert comparison.categories["money_ledger"].differing == 1


def test_unknown_recipient_never_reported() -> None:
    second = end_state(SECOND_RUN)
    second.sms.append(dict(second.sms[0], to="+8613912345678"))

    comparison = compare(normalise(end_state(FIRST_RUN)), normalise(second))

    assert comparison.categories["sms"].duplicated == 1
    assert "+8613912345678" not in "\n".join(comparison.summary_lines())


def test_replay_counts_every_kind() -> None:
    replay = Replay(7)
    replay.count("queue_messages", 3)
    replay.count("bus_events")

    counts = replay.counts()

    assert set(counts) == set(KINDS)
    assert (counts["queue_messages"], counts["bus_events"]) == (3, 1)
    with pytest.raises(ValueError, match="kind must be one of"):
        replay.count("faxes")


def test_replay_streams_repeat_per_seed() -> None:
    first = [Replay(7).random("sqs:Mapping").random() for _ in range(2)]
    other_stream = Replay(7).random("stripe_webhooks").random()

    assert first[0] == first[1]
    assert other_stream != first[0]


def audit_record(action: str, request_id: str) -> dict[str, Any]:
    return {
        "pk": "RECONCILIATION#rcn_01M92HTCFG50NZH7HHRADDK96B",
        "sk": f"2026-12-05T07:57:51.838Z#aud_01M92HTCFG50NZH7HHRADD{request_id[:4].upper()}",
        "action": action,
        "outcome": "viewed" if action.endswith(".view") else "created",
        "request_id": request_id,
    }


def test_repeated_reads_compared_as_set() -> None:
    first = end_state(FIRST_RUN)
    first.items["AuditTable"] = [audit_record("reconciliation.view", "JdZAGNxNFlH1Ng==")]
    second = end_state(SECOND_RUN)
    second.items["AuditTable"] = [
        audit_record("reconciliation.view", "I2YTvuFBx4awCw=="),
        audit_record("reconciliation.view", "opJkPCB1ryzwUw=="),
    ]

    comparison = compare(normalise(first), normalise(second))

    assert comparison.identical, comparison.summary_lines()


def test_missing_audited_request_is_lost() -> None:
    first = end_state(FIRST_RUN)
    first.items["AuditTable"] = [
        audit_record("reconciliation.request", "JdZAGNxNFlH1Ng=="),
        audit_record("reconciliation.request", "gRngyN0aoA/JCg=="),
    ]
    second = end_state(SECOND_RUN)
    second.items["AuditTable"] = [audit_record("reconciliation.request", "I2YTvuFBx4awCw==")]

    comparison = compare(normalise(first), normalise(second))

    assert comparison.categories["other"].lost == 1


def test_repeated_sms_counted_within_run() -> None:
    state = end_state(SECOND_RUN)
    state.sms.append(dict(state.sms[0]))
    state.sms.append(dict(state.sms[0], body="", redacted=True))
    state.sms.append(dict(state.sms[0], body="", redacted=True))

    assert repeated_sends(state) == 1
    assert repeated_sends(end_state(FIRST_RUN)) == 0
