"""One-time codes by SMS, shared by signup and sign-in: the abuse limits and wrong attempts.

Every code request counts against the source address's hourly limit, the service's daily code
budget and the number's rolling 24-hour SMS window (resend interval and the cap shared with
alerts and notices). The caller puts the counting writes into the transaction that stores its
request, so a rejected request writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn

from idsentry.adapters.table import ConditionFailedError, MainTable, Write, counter_write, put_write
from idsentry.clock import epoch
from idsentry.crypto import Pepper, keyed_hash
from idsentry.errors import RateLimitedError, ServiceUnavailableError
from idsentry.services import limits, otp
from idsentry.settings.codes import CodeSendSettings

# Names of the counting writes, which a failed transaction reports.
IP_WRITE = "ip"
BUDGET_WRITE = "budget"
WINDOW_WRITE = "sms_window"


def sms_window_pk(mobile_fingerprint: str) -> str:
    """Return the key of a number's 24-hour SMS window (current pepper version's fingerprint)."""
    return f"SMSWIN#{mobile_fingerprint}"


def count_code_request(
    table: MainTable,
    settings: CodeSendSettings,
    pepper: Pepper,
    mobile_fingerprint: str,
    source_ip: str,
    moment: datetime,
    on_budget_exhausted: Callable[[], None],
) -> list[Write]:
    """Check every limit of one code request and return the writes that count it.

    Raises RateLimitedError (per address, resend interval, daily cap per number) or
    ServiceUnavailableError (the daily code budget) without writing anything.
    """
    now = epoch(moment)
    ip_hash = keyed_hash(pepper.derive_key("source-ip"), source_ip)
    hour, hour_left = limits.hour_bucket(moment)
    day, day_left = limits.day_bucket(moment)
    ip_key = (f"RATE#ip#{ip_hash}", f"H#{hour}")
    budget_key = ("BUDGET#otp-sms", f"D#{day}")
    window_key = (sms_window_pk(mobile_fingerprint), "SMSWIN")

    # Read every limit first, so a rejected request writes nothing and costs no KMS call.
    current = table.get_many([ip_key, budget_key, window_key])
    if current.get(ip_key, {}).get("count", 0) >= settings.signups_per_ip_per_hour:
        raise RateLimitedError("limit.ip", hour_left)
    window = current.get(window_key, {})
    sends = limits.live_sends(limits.parse_sends(window.get("sends", [])), now)
    decision = limits.decide_code_send(
        sends, now, settings.otp_resend_interval_seconds, settings.sms_per_number_daily_cap
    )
    if not decision.allowed:
        raise RateLimitedError(decision.code or "limit.daily_sms_cap", decision.retry_after)
    if current.get(budget_key, {}).get("count", 0) >= settings.sms_otp_daily_budget:
        on_budget_exhausted()
        raise ServiceUnavailableError("limit.otp_budget_exhausted", day_left)

    new_sends = [f"{send.kind}:{send.sent_at}" for send in sends] + [f"otp:{now}"]
    version = int(window.get("version", 0))
    return [
        counter_write(IP_WRITE, *ip_key, settings.signups_per_ip_per_hour, now + hour_left + 60),
        counter_write(
            BUDGET_WRITE, *budget_key, settings.sms_otp_daily_budget, now + day_left + 3600
        ),
        put_write(
            WINDOW_WRITE,
            {
                "pk": window_key[0],
                "sk": "SMSWIN",
                "sends": new_sends,
                "version": version + 1,
                "expires_at": now + limits.DAY_SECONDS + 60,
            },
            condition="attribute_not_exists(pk) OR version = :version",
            values={":version": version},
        ),
    ]


def raise_limit_error(
    exc: ConditionFailedError,
    settings: CodeSendSettings,
    moment: datetime,
    on_budget_exhausted: Callable[[], None],
) -> NoReturn:
    """Raise the error for a code request whose transaction failed a condition.

    A concurrent request passed the limit first, or changed the number's send window first.
    """
    if exc.name == IP_WRITE:
        raise RateLimitedError("limit.ip", limits.hour_bucket(moment)[1]) from exc
    if exc.name == BUDGET_WRITE:
        on_budget_exhausted()
        raise ServiceUnavailableError(
            "limit.otp_budget_exhausted", limits.day_bucket(moment)[1]
        ) from exc
    raise RateLimitedError("limit.resend_interval", settings.otp_resend_interval_seconds) from exc


def code_record(item: dict[str, Any]) -> otp.CodeRecord:
    """Read a stored code item (`OTP` in its owner's partition)."""
    return otp.CodeRecord(
        code_id=item["code_id"],
        code_hash=item["code_hash"],
        expires_at=int(item["expires_at"]),
        attempts=int(item.get("attempts", 0)),
        used=bool(item.get("used", False)),
    )


def burn_attempt(table: MainTable, owner_pk: str, record: otp.CodeRecord) -> int:
    """Count one failed attempt on the code in `owner_pk` and return the attempts left (0: burned)."""
    updated = table.update(
        owner_pk,
        "OTP",
        "ADD attempts :one",
        values={":one": 1, ":code_id": record.code_id, ":max": otp.MAX_ATTEMPTS},
        condition="code_id = :code_id AND (attribute_not_exists(attempts) OR attempts < :max)",
    )
    if updated is None:
        return 0
    return max(otp.MAX_ATTEMPTS - int(updated["attempts"]), 0)
