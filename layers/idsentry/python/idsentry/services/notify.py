"""Notification jobs: already sent? → record pending → send → mark sent, per message and channel."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from idsentry.adapters.email import EmailSender
from idsentry.adapters.keys import DataKeyNotFoundError, DataKeyStore
from idsentry.adapters.sms import SmsSender
from idsentry.adapters.table import MainTable
from idsentry.clock import Clock, epoch
from idsentry.crypto import Pepper, decrypt_field
from idsentry.errors import ProviderError
from idsentry.i18n import Locale
from idsentry.identifiers import IdentifierKind, mask
from idsentry.models.jobs import (
    AlertJob,
    EmailConfirmationJob,
    IdentifierReassignedJob,
    OtpJob,
    PaymentNoticeJob,
)
from idsentry.money import format_money, parse_stripe_amount
from idsentry.services import limits, otp
from idsentry.services.billing_links import billing_url
from idsentry.services.email_links import confirmation_url
from idsentry.templates import render_email, render_sms

logger = logging.getLogger(__name__)

LEDGER_TTL_SECONDS = 90 * 24 * 3600


@dataclass
class NotifierDeps:
    """Everything the notifier talks to, injected so tests can swap any of it."""

    table: MainTable
    keys: DataKeyStore
    pepper: Callable[[], Pepper]
    sms: Callable[[], SmsSender]
    email: Callable[[], EmailSender]
    clock: Clock
    public_base_url: str
    sms_daily_cap: int = 4


def _locale(value: object) -> Locale:
    return "en" if value == "en" else "zh-CN"


class Ledger:
    """Delivery records keyed by message instance and channel, e.g. `code:{code_id}` + `sms`."""

    def __init__(self, table: MainTable, now: Callable[[], int]) -> None:
        self._table = table
        self._now = now

    def already_sent(self, message_key: str, channel: str) -> bool:
        """Return whether this message went out on this channel before (or failed for good)."""
        record = self._table.get(f"NOTIFY#{message_key}", channel)
        return record is not None and record["state"] in {"sent", "failed"}

    def record_pending(self, message_key: str, channel: str, subject_id: str) -> None:
        """Record that a send is about to happen; a crash leaves it pending for the retry."""
        now = self._now()
        self._table.update(
            f"NOTIFY#{message_key}",
            channel,
            "SET #state = :pending, subject_id = :subject, attempts = if_not_exists(attempts, :zero) + :one, "
            "updated_at = :now, expires_at = :expires",
            values={
                ":pending": "pending",
                ":subject": subject_id,
                ":zero": 0,
                ":one": 1,
                ":now": now,
                ":expires": now + LEDGER_TTL_SECONDS,
            },
            names={"#state": "state"},
        )

    def record_sent(self, message_key: str, channel: str, provider_id: str) -> None:
        """Mark the send done with the provider's message id."""
        self._table.update(
            f"NOTIFY#{message_key}",
            channel,
            "SET #state = :sent, provider_id = :provider_id, updated_at = :now",
            values={
                ":sent": "sent",
                ":provider_id": provider_id,
                ":now": self._now(),
            },
            names={"#state": "state"},
        )
        if channel == "sms":
            # Status callbacks carry only the message sid; this item points back to the ledger
            # and stores the delivery state, even when a callback arrived first.
            self._table.update(
                f"SMS#{provider_id}",
                "SMS",
                "SET ledger_pk = :ledger_pk, ledger_sk = :ledger_sk, "
                "expires_at = if_not_exists(expires_at, :expires)",
                values={
                    ":ledger_pk": f"NOTIFY#{message_key}",
                    ":ledger_sk": channel,
                    ":expires": self._now() + LEDGER_TTL_SECONDS,
                },
            )

    def record_failed(self, message_key: str, channel: str, reason: str) -> None:
        """Mark a permanent failure, which no retry will fix."""
        self._table.update(
            f"NOTIFY#{message_key}",
            channel,
            "SET #state = :failed, failure = :reason, updated_at = :now",
            values={":failed": "failed", ":reason": reason, ":now": self._now()},
            names={"#state": "state"},
        )


def process_job(
    deps: NotifierDeps,
    job: OtpJob | EmailConfirmationJob | IdentifierReassignedJob | PaymentNoticeJob | AlertJob,
) -> str:
    """Process one job; returns "sent", "skipped" or "failed". Transient errors propagate."""
    ledger = Ledger(deps.table, lambda: epoch(deps.clock()))
    if isinstance(job, OtpJob):
        return _send_code(deps, ledger, job)
    if isinstance(job, EmailConfirmationJob):
        return _send_email_confirmation(deps, ledger, job)
    if isinstance(job, PaymentNoticeJob):
        return _send_payment_notice(deps, ledger, job)
    if isinstance(job, AlertJob):
        return _send_alert(deps, ledger, job)
    return _send_reassignment_notice(deps, ledger, job)


def _send(
    ledger: Ledger, message_key: str, channel: str, subject_id: str, send: Callable[[], str]
) -> str:
    if ledger.already_sent(message_key, channel):
        logger.info(
            "notification already sent", extra={"message_key": message_key, "channel": channel}
        )
        return "skipped"

    ledger.record_pending(message_key, channel, subject_id)
    try:
        provider_id = send()
    except ProviderError as exc:
        if exc.transient:
            raise
        ledger.record_failed(message_key, channel, str(exc))
        logger.warning(
            "notification failed permanently",
            extra={"message_key": message_key, "channel": channel, "provider": exc.provider},
        )
        return "failed"

    ledger.record_sent(message_key, channel, provider_id)
    logger.info("notification sent", extra={"message_key": message_key, "channel": channel})
    return "sent"


def _send_code(deps: NotifierDeps, ledger: Ledger, job: OtpJob) -> str:
    signup = deps.table.get(f"SIGNUP#{job.signup_id}", "SIGNUP")
    if signup is None or signup["status"] != "pending" or signup.get("code_id") != job.code_id:
        logger.info("code job skipped", extra={"signup_id": job.signup_id, "code_id": job.code_id})
        return "skipped"
    message_key = f"code:{job.code_id}"
    if ledger.already_sent(message_key, "sms"):
        return "skipped"

    # The code exists only here, between generation and the SMS: only its hash is stored.
    now = epoch(deps.clock())
    code = otp.generate_code()
    code_hash = otp.hash_code(deps.pepper().derive_key("otp"), job.signup_id, job.code_id, code)
    stored = deps.table.put(
        {
            "pk": f"SIGNUP#{job.signup_id}",
            "sk": "OTP",
            "code_id": job.code_id,
            "code_hash": code_hash,
            "created_at": now,
            "expires_at": now + otp.VALID_SECONDS,
            "attempts": 0,
            "used": False,
        },
        # A redelivered job replaces its own unused code (the first SMS may never have left);
        # it never touches a code that was used.
        condition="attribute_not_exists(pk) OR (code_id = :code_id AND used = :false)",
        values={":code_id": job.code_id, ":false": False},
    )
    if not stored:
        return "skipped"

    key = deps.keys.get(job.signup_id)
    mobile = decrypt_field(key, job.signup_id, signup["mobile_enc"])
    text = render_sms("otp", _locale(signup.get("locale")), code=code)
    callback = f"{deps.public_base_url}/v1/webhooks/twilio/status"
    return _send(
        ledger, message_key, "sms", job.signup_id, lambda: deps.sms().send(mobile, text, callback)
    )


def _subscriber_contact(
    deps: NotifierDeps, subscriber_id: str
) -> tuple[dict[str, Any], bytes] | None:
    profile = deps.table.get(f"SUB#{subscriber_id}", "PROFILE")
    if profile is None:
        return None
    try:
        key = deps.keys.get(subscriber_id)
    except DataKeyNotFoundError:
        # The account was deleted: its contact details are unreadable by design.
        return None
    return profile, key


def _send_email_confirmation(deps: NotifierDeps, ledger: Ledger, job: EmailConfirmationJob) -> str:
    found = _subscriber_contact(deps, job.subscriber_id)
    if found is None:
        return "skipped"
    profile, key = found
    if profile.get("email_confirmed_at"):
        return "skipped"

    email = decrypt_field(key, job.subscriber_id, profile["email_enc"])
    link = confirmation_url(
        deps.pepper(),
        deps.public_base_url,
        job.subscriber_id,
        profile["email_fp"],
        epoch(deps.clock()),
    )
    message = render_email(
        "email_confirmation",
        _locale(profile.get("locale")),
        masked_email=mask(IdentifierKind.EMAIL, email),
        link=link,
    )
    return _send(
        ledger,
        f"email_confirmation:{profile['email_fp']}",
        "email",
        job.subscriber_id,
        lambda: deps.email().send(email, message.subject, message.text, message.html),
    )


def _send_reassignment_notice(
    deps: NotifierDeps, ledger: Ledger, job: IdentifierReassignedJob
) -> str:
    found = _subscriber_contact(deps, job.subscriber_id)
    if found is None:
        return "skipped"
    profile, key = found

    removed = deps.table.get(f"SUB#{job.subscriber_id}", "IDENT_REMOVED#id_number")
    masked = removed["masked"] if removed else "****"
    email = decrypt_field(key, job.subscriber_id, profile["email_enc"])
    message = render_email(
        "identifier_reassigned", _locale(profile.get("locale")), masked_identifier=masked
    )
    return _send(
        ledger,
        f"reassigned:{job.job_id}",
        "email",
        job.subscriber_id,
        lambda: deps.email().send(email, message.subject, message.text, message.html),
    )


def _beijing_date(epoch_seconds: int, locale: Locale) -> str:
    from zoneinfo import ZoneInfo

    moment = datetime.fromtimestamp(epoch_seconds, ZoneInfo("Asia/Shanghai"))
    if locale == "en":
        return f"{moment.day} {moment:%B %Y}"
    return f"{moment.year}年{moment.month}月{moment.day}日"


def _take_notice_slot(deps: NotifierDeps, subscriber_id: str, now: int) -> bool:
    """Count one notice SMS in the number's 24-hour window; False when the window is full."""
    mobile = deps.table.get(f"SUB#{subscriber_id}", "IDENT#mobile")
    pepper = deps.pepper()
    fingerprint = (mobile or {}).get("fingerprints", {}).get(pepper.current)
    if not fingerprint:
        return False
    key = f"SMSWIN#{fingerprint}"
    window = deps.table.get(key, "SMSWIN") or {}
    sends = limits.live_sends(limits.parse_sends(window.get("sends", [])), now)
    if not limits.decide_notice_send(sends, now, deps.sms_daily_cap).allowed:
        return False
    version = int(window.get("version", 0))
    return deps.table.put(
        {
            "pk": key,
            "sk": "SMSWIN",
            "sends": [f"{send.kind}:{send.sent_at}" for send in sends] + [f"notice:{now}"],
            "version": version + 1,
            "expires_at": now + limits.DAY_SECONDS + 60,
        },
        condition="attribute_not_exists(pk) OR version = :version",
        values={":version": version},
    )


def _send_payment_notice(deps: NotifierDeps, ledger: Ledger, job: PaymentNoticeJob) -> str:
    found = _subscriber_contact(deps, job.subscriber_id)
    dunning = deps.table.get(f"SUB#{job.subscriber_id}", f"DUNNING#{job.invoice_id}")
    if found is None or dunning is None or dunning.get("resolved"):
        logger.info(
            "payment notice skipped",
            extra={"subscriber_id": job.subscriber_id, "invoice_id": job.invoice_id},
        )
        return "skipped"
    profile, key = found
    locale = _locale(profile.get("locale"))
    now = epoch(deps.clock())

    amount = format_money(
        parse_stripe_amount(int(dunning["amount_due"]), str(dunning["currency"])), locale
    )
    until = _beijing_date(int(dunning["monitored_until"]), locale)
    kind = "payment_failed" if job.notice == "failed" else "payment_reminder"
    # One message per failed attempt, and one reminder per invoice.
    message_key = (
        f"invoice:{job.invoice_id}:failed:{dunning['attempt_count']}"
        if job.notice == "failed"
        else f"invoice:{job.invoice_id}:reminder"
    )

    email = decrypt_field(key, job.subscriber_id, profile["email_enc"])
    link = billing_url(deps.pepper(), deps.public_base_url, job.subscriber_id, "portal", now)
    message = render_email(
        kind,
        locale,
        amount=amount,
        until=until,
        attempt=str(dunning["attempt_count"]),
        link=link,
    )
    outcome = _send(
        ledger,
        message_key,
        "email",
        job.subscriber_id,
        lambda: deps.email().send(email, message.subject, message.text, message.html),
    )

    if ledger.already_sent(message_key, "sms"):
        return outcome
    if not _take_notice_slot(deps, job.subscriber_id, now):
        logger.info(
            "payment notice sms held back by the daily cap",
            extra={"subscriber_id": job.subscriber_id, "invoice_id": job.invoice_id},
        )
        return outcome
    mobile = decrypt_field(key, job.subscriber_id, profile["mobile_enc"])
    text = render_sms(kind, locale, amount=amount, until=until)
    callback = f"{deps.public_base_url}/v1/webhooks/twilio/status"
    sms_outcome = _send(
        ledger,
        message_key,
        "sms",
        job.subscriber_id,
        lambda: deps.sms().send(mobile, text, callback),
    )
    return "sent" if "sent" in (outcome, sms_outcome) else sms_outcome


# The kind an alert message names when several matched, most harmful first.
ALERT_KIND_ORDER = ("id_number", "bank_card", "mobile", "email")


def _send_alert(deps: NotifierDeps, ledger: Ledger, job: AlertJob) -> str:
    from idsentry.alert_templates import (
        SMS_SEVERITIES,
        AlertContent,
        render_alert_email,
        render_alert_sms,
    )
    from idsentry.services.hibp_catalogue import load_breach

    found = _subscriber_contact(deps, job.subscriber_id)
    items = deps.table.get_partition(f"SUB#{job.subscriber_id}")
    alert = items.get(f"ALERT#{job.breach_name}")
    exposure = items.get(f"EXPOSURE#{job.breach_name}")
    breach = load_breach(deps.table, job.breach_name)
    if found is None or alert is None or exposure is None or breach is None:
        logger.info(
            "alert skipped", extra={"subscriber_id": job.subscriber_id, "alert_id": job.alert_id}
        )
        return "skipped"
    if alert.get("status") != "confirmed":
        return "skipped"
    profile, key = found
    locale = _locale(profile.get("locale"))
    matched = set(exposure.get("matched_kinds") or ())
    kind = next(kind for kind in ALERT_KIND_ORDER if kind in matched)
    masked = str((items.get(f"IDENT#{kind}") or {}).get("masked") or "****")
    content = AlertContent(
        kind=IdentifierKind(kind),
        masked_identifier=masked,
        breach=breach,
        found_at=datetime.fromtimestamp(int(exposure["found_at"]), UTC),
        found_by=exposure["found_by"],
        severity=alert["severity"],
        confidence=alert["confidence"],
    )
    message_key = f"alert:{job.alert_id}"

    email = decrypt_field(key, job.subscriber_id, profile["email_enc"])
    message = render_alert_email(content, locale)
    outcome = _send(
        ledger,
        message_key,
        "email",
        job.subscriber_id,
        lambda: deps.email().send(email, message.subject, message.text, message.html),
    )

    # NOTE: quiet hours (22:00-08:00) are not applied yet: a high or critical alert SMS goes out at once.
    if alert["severity"] not in SMS_SEVERITIES or ledger.already_sent(message_key, "sms"):
        return outcome
    if not _take_notice_slot(deps, job.subscriber_id, epoch(deps.clock())):
        logger.info("alert sms held back by the daily cap", extra={"alert_id": job.alert_id})
        return outcome
    mobile = decrypt_field(key, job.subscriber_id, profile["mobile_enc"])
    text = render_alert_sms(
        alert["severity"],
        locale,
        kind=IdentifierKind(kind),
        masked_identifier=masked,
        breach_title=breach.title,
    )
    callback = f"{deps.public_base_url}/v1/webhooks/twilio/status"
    sms_outcome = _send(
        ledger,
        message_key,
        "sms",
        job.subscriber_id,
        lambda: deps.sms().send(mobile, text, callback),
    )
    return "sent" if "sent" in (outcome, sms_outcome) else sms_outcome
