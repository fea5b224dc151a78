"""Notification jobs: already sent? → record pending → send → mark sent, per message and channel."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urljoin

from idsentry.adapters.email import EmailSender
from idsentry.adapters.keys import DataKeyNotFoundError, DataKeyStore
from idsentry.adapters.sms import SmsSender
from idsentry.adapters.table import MainTable
from idsentry.clock import Clock, epoch
from idsentry.crypto import Pepper, decrypt_field
from idsentry.i18n import Locale
from idsentry.identifiers import IdentifierKind, mask
from idsentry.models.jobs import (
    AlertJob,
    CheckReminderJob,
    EmailConfirmationJob,
    IdentifierReassignedJob,
    OtpJob,
    PaymentNoticeJob,
    PhoneReconfirmJob,
    ReportReadyJob,
    SignInCodeJob,
)
from idsentry.money import format_money, parse_stripe_amount
from idsentry.services import limits, otp, signin
from idsentry.services.billing_links import billing_url
from idsentry.services.deferrals import defer_alert_sms
from idsentry.services.email_links import confirmation_url
from idsentry.services.ledger import SETTLED_STATES, Channel, Ledger, record_key, record_state
from idsentry.services.preferences import (
    PREFS_SK,
    Preferences,
    preferences_from_item,
    set_sms_state,
)
from idsentry.services.quiet_hours import quiet_until
from idsentry.services.risk import Severity
from idsentry.services.sms_budget import take_alert_sms_budget
from idsentry.services.unsubscribe import preference_url
from idsentry.templates import render_email, render_sms

logger = logging.getLogger(__name__)

# How long Twilio may hold an SMS in its queue before dropping it (error 30036; at most
# 36,000 s): a code is worthless after it expires, and a notice hours late only confuses.
SMS_VALIDITY_SECONDS = {"otp": otp.VALID_SECONDS, "notice": 8 * 3600, "alert": 4 * 3600}
# Stands for a ledger state that the caller has not read.
UNREAD = "unread"
# Twilio's create errors that no retry fixes, and the number state each one means.
SMS_OPTED_OUT_CODES = frozenset({"21610"})
SMS_INVALID_CODES = frozenset({"21211", "21614"})


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
    sms_alert_daily_budget: int = 20000
    # The subscriber's account page, which report e-mails link to.
    account_page_url: str | None = None


def _locale(value: object) -> Locale:
    return "en" if value == "en" else "zh-CN"


def _ledger(deps: NotifierDeps) -> Ledger:
    def lookup(channel: str, provider_id: str) -> str | None:
        # SES has no lookup by message id: a stale e-mail claim is settled as unknown.
        return deps.sms().status(provider_id) if channel == "sms" else None

    return Ledger(deps.table, lambda: epoch(deps.clock()), lookup)


def account_page_link(account_page_url: str, locale: Locale) -> str:
    """Return the account page in `locale`.

    `account_page_url` is the 简体中文 page, `<site>/account/`, and the English page is
    `<site>/en/account/`, as web/ lays them out.
    """
    if locale == "en":
        return urljoin(account_page_url, "../en/account/")
    return account_page_url


def status_callback_url(public_base_url: str, message_key: str) -> str:
    """Return the status callback URL of one SMS; it names the ledger record it settles."""
    return f"{public_base_url}/v1/webhooks/twilio/status?m={quote(message_key, safe='')}&c=sms"


def process_job(
    deps: NotifierDeps,
    job: OtpJob
    | SignInCodeJob
    | EmailConfirmationJob
    | IdentifierReassignedJob
    | PaymentNoticeJob
    | AlertJob
    | CheckReminderJob
    | PhoneReconfirmJob
    | ReportReadyJob,
) -> str:
    """Process one job; returns "sent", "skipped", "failed", "unknown" or "deferred".

    Transient provider errors and DeliveryInFlightError propagate, so the job is retried.
    """
    ledger = _ledger(deps)
    if isinstance(job, OtpJob):
        return _send_code(deps, ledger, job)
    if isinstance(job, SignInCodeJob):
        return _send_sign_in_code(deps, ledger, job)
    if isinstance(job, EmailConfirmationJob):
        return _send_email_confirmation(deps, ledger, job)
    if isinstance(job, PaymentNoticeJob):
        return _send_payment_notice(deps, ledger, job)
    if isinstance(job, AlertJob):
        return _send_alert(deps, ledger, job)
    if isinstance(job, CheckReminderJob):
        return _send_check_reminder(deps, ledger, job)
    if isinstance(job, PhoneReconfirmJob):
        return _send_phone_reconfirm(deps, ledger, job)
    if isinstance(job, ReportReadyJob):
        return _send_report_ready(deps, ledger, job)
    return _send_reassignment_notice(deps, ledger, job)


def _send(
    ledger: Ledger, message_key: str, channel: Channel, subject_id: str, send: Callable[[], str]
) -> str:
    return ledger.deliver(message_key, channel, subject_id, send).outcome


def _combined(email_outcome: str, sms_outcome: str) -> str:
    """Return one outcome for a message sent on both channels: "sent" when either went out."""
    return "sent" if "sent" in (email_outcome, sms_outcome) else sms_outcome


def _send_code(deps: NotifierDeps, ledger: Ledger, job: OtpJob) -> str:
    signup = deps.table.get(f"SIGNUP#{job.signup_id}", "SIGNUP")
    if signup is None or signup["status"] != "pending" or signup.get("code_id") != job.code_id:
        logger.info("code job skipped", extra={"signup_id": job.signup_id, "code_id": job.code_id})
        return "skipped"
    message_key = f"code:{job.code_id}"
    earlier = _earlier_code_outcome(ledger, message_key)
    if earlier is not None:
        return earlier

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
    mobile = decrypt_field(key, job.signup_id, signup["mobile_enc"], purpose="notification")
    return _send_code_sms(
        deps, ledger, message_key, job.signup_id, mobile, _locale(signup.get("locale")), code
    )


def _earlier_code_outcome(ledger: Ledger, message_key: str) -> str | None:
    """Return the outcome of a code SMS that an earlier attempt settled or began, else None."""
    state = ledger.state(message_key, "sms")
    if state in SETTLED_STATES:
        return "skipped"
    if state == "pending":
        # An earlier attempt may have sent the code: a new code would not match that SMS.
        return ledger.resolve_pending(message_key, "sms").outcome
    return None


def _send_code_sms(
    deps: NotifierDeps,
    ledger: Ledger,
    message_key: str,
    subject_id: str,
    mobile: str,
    locale: Locale,
    code: str,
) -> str:
    text = render_sms("otp", locale, code=code)
    callback = status_callback_url(deps.public_base_url, message_key)
    validity = SMS_VALIDITY_SECONDS["otp"]
    return _send(
        ledger,
        message_key,
        "sms",
        subject_id,
        lambda: deps.sms().send(mobile, text, callback, validity),
    )


def _send_sign_in_code(deps: NotifierDeps, ledger: Ledger, job: SignInCodeJob) -> str:
    """Send a sign-in code to the account that has the number, or nothing when no account has it."""
    message_key = f"code:{job.code_id}"
    earlier = _earlier_code_outcome(ledger, message_key)
    if earlier is not None:
        return earlier

    prepared = signin.prepare_code(deps.table, deps.pepper(), job, epoch(deps.clock()))
    found = _subscriber_contact(deps, prepared.subscriber_id) if prepared else None
    if prepared is None or found is None:
        logger.info("sign-in code job skipped", extra={"sign_in_id": job.sign_in_id})
        return "skipped"
    profile, key = found
    mobile = decrypt_field(
        key, prepared.subscriber_id, profile["mobile_enc"], purpose="notification"
    )
    return _send_code_sms(
        deps,
        ledger,
        message_key,
        prepared.subscriber_id,
        mobile,
        _locale(profile.get("locale")),
        prepared.code,
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

    email = decrypt_field(key, job.subscriber_id, profile["email_enc"], purpose="notification")
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
    email = decrypt_field(key, job.subscriber_id, profile["email_enc"], purpose="notification")
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


def _take_notice_slot(deps: NotifierDeps, mobile_fingerprint: str | None, now: int) -> bool:
    """Count one notice SMS in the number's 24-hour window; False when the window is full."""
    if not mobile_fingerprint:
        return False
    key = f"SMSWIN#{mobile_fingerprint}"
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


@dataclass(frozen=True)
class _Contact:
    """A subscriber's decrypted addresses and preferences, for one job."""

    subscriber_id: str
    profile: dict[str, Any]
    key: bytes
    preferences: Preferences
    # The mobile number's fingerprint under the current pepper, which keys its SMS window.
    mobile_fingerprint: str | None

    @property
    def locale(self) -> Locale:
        return _locale(self.profile.get("locale"))

    def email(self) -> str:
        return decrypt_field(
            self.key, self.subscriber_id, self.profile["email_enc"], purpose="notification"
        )

    def mobile(self) -> str:
        return decrypt_field(
            self.key, self.subscriber_id, self.profile["mobile_enc"], purpose="notification"
        )


# The subscriber's items that every job with a contact reads, in one BatchGetItem.
CONTACT_SORT_KEYS = ("PROFILE", PREFS_SK, "IDENT#mobile")


def _contact(
    deps: NotifierDeps, subscriber_id: str, items: dict[str, dict[str, Any]] | None = None
) -> _Contact | None:
    """Return the subscriber's contact from `items` (by sort key), read here when not given."""
    if items is None:
        found = deps.table.get_many([(f"SUB#{subscriber_id}", sk) for sk in CONTACT_SORT_KEYS])
        items = {sk: item for (_, sk), item in found.items()}
    profile = items.get("PROFILE")
    if profile is None:
        return None
    try:
        key = deps.keys.get(subscriber_id)
    except DataKeyNotFoundError:
        # The account was deleted: its contact details are unreadable by design.
        return None

    fingerprint = (
        (items.get("IDENT#mobile") or {}).get("fingerprints", {}).get(deps.pepper().current)
    )
    return _Contact(
        subscriber_id,
        profile,
        key,
        preferences_from_item(items.get(PREFS_SK)),
        str(fingerprint) if fingerprint else None,
    )


def _send_notice_sms(
    deps: NotifierDeps,
    ledger: Ledger,
    contact: _Contact,
    message_key: str,
    text: Callable[[], str],
    validity_seconds: int,
    state: str | None = UNREAD,
    job: AlertJob | PaymentNoticeJob | None = None,
) -> str:
    """Send one alert or notice SMS within the number's daily window; act on a refused number.

    `state` is the ledger record's state (None: no record) when the caller has just read it.
    `job` is kept on the ledger record, to be queued again if Twilio's queue overflows.
    """
    if state == UNREAD:
        state = ledger.state(message_key, "sms")
    if state in SETTLED_STATES:
        return "skipped"
    # Only a first attempt (no record) takes a slot of the number's daily window. A record in
    # `pending` or `retry` took its slot then, and a retry taking another would let a provider
    # outage use up the day's cap with messages that never reached the phone.
    if state == "pending":
        # The earlier attempt may have sent the message. It goes again only if Twilio never
        # received it.
        settled = _settle_pending_sms(deps, ledger, contact, message_key, text())
        if settled != "released":
            return settled
    elif state is None and not _take_notice_slot(
        deps, contact.mobile_fingerprint, epoch(deps.clock())
    ):
        logger.info(
            "sms held back by the daily cap",
            extra={"subscriber_id": contact.subscriber_id, "message_key": message_key},
        )
        return "skipped"

    mobile = contact.mobile()
    callback = status_callback_url(deps.public_base_url, message_key)
    delivery = ledger.deliver(
        message_key,
        "sms",
        contact.subscriber_id,
        lambda: deps.sms().send(mobile, text(), callback, validity_seconds),
        job=job.model_dump_json() if job is not None else None,
    )
    if delivery.outcome == "failed":
        _act_on_refused_number(deps, ledger, contact, delivery.error_code)
    return delivery.outcome


def _settle_pending_sms(
    deps: NotifierDeps, ledger: Ledger, contact: _Contact, message_key: str, body: str
) -> str:
    """Settle an SMS claim an earlier attempt left; "released" when Twilio never received it."""
    mobile = contact.mobile()
    return ledger.resolve_pending(
        message_key, "sms", find=lambda since: deps.sms().find_sent(mobile, body, since)
    ).outcome


def _act_on_refused_number(
    deps: NotifierDeps, ledger: Ledger, contact: _Contact, error_code: str | None
) -> None:
    """Stop SMS to a number Twilio refused for good; ask for a new one when it is invalid."""
    now = epoch(deps.clock())
    if error_code in SMS_OPTED_OUT_CODES:
        # The e-mail of the same message goes out regardless, so nothing else is owed.
        set_sms_state(deps.table, contact.subscriber_id, "opted_out", error_code, now)
        logger.info("sms opted out", extra={"subscriber_id": contact.subscriber_id})
        return
    if error_code not in SMS_INVALID_CODES:
        return

    set_sms_state(deps.table, contact.subscriber_id, "invalid", error_code, now)
    logger.info("mobile number invalid", extra={"subscriber_id": contact.subscriber_id})
    if not contact.preferences.may_email(None):
        return
    masked = mask(IdentifierKind.MOBILE, contact.mobile())
    message = render_email("mobile_invalid", contact.locale, masked_mobile=masked)
    email = contact.email()
    fingerprint = contact.mobile_fingerprint or "unknown"
    _send(
        ledger,
        f"mobile_invalid:{contact.subscriber_id}:{fingerprint}",
        "email",
        contact.subscriber_id,
        lambda: deps.email().send(email, message.subject, message.text, message.html),
    )


def _send_payment_notice(deps: NotifierDeps, ledger: Ledger, job: PaymentNoticeJob) -> str:
    contact = _contact(deps, job.subscriber_id)
    dunning = deps.table.get(f"SUB#{job.subscriber_id}", f"DUNNING#{job.invoice_id}")
    if contact is None or dunning is None or dunning.get("resolved"):
        logger.info(
            "payment notice skipped",
            extra={"subscriber_id": job.subscriber_id, "invoice_id": job.invoice_id},
        )
        return "skipped"
    locale = contact.locale
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
    if job.resend_sms_of:
        # Twilio's queue overflowed for the SMS of an earlier attempt: send it once more.
        ledger.reopen(message_key, "sms", job.resend_sms_of)

    outcome = "skipped"
    if contact.preferences.may_email(None):
        email = contact.email()
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

    if not contact.preferences.may_sms(alert=False):
        return outcome
    sms_outcome = _send_notice_sms(
        deps,
        ledger,
        contact,
        message_key,
        lambda: render_sms(kind, locale, amount=amount, until=until),
        SMS_VALIDITY_SECONDS["notice"],
        job=job,
    )
    return _combined(outcome, sms_outcome)


# The kind an alert message names when several matched, most harmful first.
ALERT_KIND_ORDER = ("id_number", "bank_card", "mobile", "email")


def _send_alert(deps: NotifierDeps, ledger: Ledger, job: AlertJob) -> str:
    from idsentry.alert_templates import (
        SMS_SEVERITIES,
        AlertContent,
        PreferenceLinks,
        render_alert_email,
        render_alert_sms,
    )
    from idsentry.item_keys import BREACH_SORT_KEY
    from idsentry.models.breach import Breach

    # One BatchGetItem reads everything the alert needs: contact, alert, exposure, breach and
    # the SMS's ledger record.
    message_key = f"alert:{job.alert_id}"
    pk = f"SUB#{job.subscriber_id}"
    alert_sort_keys = (f"ALERT#{job.breach_name}", f"EXPOSURE#{job.breach_name}")
    ident_sort_keys = tuple(f"IDENT#{kind}" for kind in ALERT_KIND_ORDER)
    keys = [(pk, sk) for sk in dict.fromkeys(CONTACT_SORT_KEYS + alert_sort_keys + ident_sort_keys)]
    breach_key = (f"BREACH#{job.breach_name}", BREACH_SORT_KEY)
    sms_record_key = record_key(message_key, "sms")
    found = deps.table.get_many([*keys, breach_key, sms_record_key])
    items = {sk: item for (item_pk, sk), item in found.items() if item_pk == pk}
    contact = _contact(deps, job.subscriber_id, items)
    alert = items.get(f"ALERT#{job.breach_name}")
    exposure = items.get(f"EXPOSURE#{job.breach_name}")
    breach = Breach.model_validate(found[breach_key]) if breach_key in found else None
    if contact is None or alert is None or exposure is None or breach is None:
        logger.info(
            "alert skipped", extra={"subscriber_id": job.subscriber_id, "alert_id": job.alert_id}
        )
        return "skipped"
    if alert.get("status") != "confirmed":
        return "skipped"
    locale = contact.locale
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
    # The record's state as read, unless reopening it below changes it. A duplicate delivery
    # of the job may claim the SMS meanwhile, but the claim's condition still lets one send.
    sms_state = record_state(found.get(sms_record_key))
    if job.resend_sms_of:
        # Twilio's queue overflowed for the SMS of an earlier attempt: send it once more.
        ledger.reopen(message_key, "sms", job.resend_sms_of)
        sms_state = ledger.state(message_key, "sms")

    outcome = "skipped"
    if contact.preferences.may_email("alerts"):
        email = contact.email()
        now_epoch = epoch(deps.clock())
        links = PreferenceLinks(
            sms_off=preference_url(
                deps.pepper(), deps.public_base_url, job.subscriber_id, "sms:alerts", now_epoch
            ),
            email_off=preference_url(
                deps.pepper(), deps.public_base_url, job.subscriber_id, "email:alerts", now_epoch
            ),
        )
        message = render_alert_email(content, locale, links, contact.preferences.timezone)
        outcome = _send(
            ledger,
            message_key,
            "email",
            job.subscriber_id,
            lambda: deps.email().send(
                email,
                message.subject,
                message.text,
                message.html,
                unsubscribe_url=links.email_off,
            ),
        )

    if alert["severity"] not in SMS_SEVERITIES or not contact.preferences.may_sms(alert=True):
        return outcome
    if sms_state in SETTLED_STATES:
        return outcome
    now = deps.clock()
    until = quiet_until(now, contact.preferences.timezone)
    if sms_state != "pending" and until is not None and alert["severity"] != Severity.CRITICAL:
        # The e-mail went now; the SMS waits for the morning, and the job comes back then.
        defer_alert_sms(deps.table, job, int(until.timestamp()), epoch(now))
        return _combined(outcome, "deferred")
    if sms_state is None and not take_alert_sms_budget(
        deps.table, epoch(now), deps.sms_alert_daily_budget
    ):
        logger.info("alert sms held back by the daily budget", extra={"alert_id": job.alert_id})
        return outcome
    sms_outcome = _send_notice_sms(
        deps,
        ledger,
        contact,
        message_key,
        lambda: render_alert_sms(
            alert["severity"],
            locale,
            kind=IdentifierKind(kind),
            masked_identifier=masked,
            breach_title=breach.title,
        ),
        SMS_VALIDITY_SECONDS["alert"],
        sms_state,
        job,
    )
    return _combined(outcome, sms_outcome)


def _send_check_reminder(deps: NotifierDeps, ledger: Ledger, job: CheckReminderJob) -> str:
    """E-mail the quarterly reminder to re-run the official lookups, once per quarter.

    The reminder goes out with the "reports" list, so its one-click link stops both.
    """
    from idsentry.services.quarterly_checks import latest_results, render_check_reminder

    items = deps.table.get_partition(f"SUB#{job.subscriber_id}")
    contact = _contact(deps, job.subscriber_id, items)
    if contact is None or not contact.profile.get("monitored"):
        logger.info("check reminder skipped", extra={"subscriber_id": job.subscriber_id})
        return "skipped"
    if not contact.preferences.may_email("reports"):
        return "skipped"

    stop_url = preference_url(
        deps.pepper(),
        deps.public_base_url,
        job.subscriber_id,
        "email:reports",
        epoch(deps.clock()),
    )
    message = render_check_reminder(contact.locale, latest_results(items), stop_url)
    email = contact.email()
    return _send(
        ledger,
        f"check_reminder:{job.quarter}:{job.subscriber_id}",
        "email",
        job.subscriber_id,
        lambda: deps.email().send(
            email, message.subject, message.text, message.html, unsubscribe_url=stop_url
        ),
    )


REPORT_TITLES: dict[str, dict[Locale, str]] = {
    "monthly": {"zh-CN": "月度安全报告", "en": "monthly security report"},
    "on_demand": {"zh-CN": "安全报告", "en": "security report"},
    "deep": {"zh-CN": "深度安全报告", "en": "in-depth security report"},
}


def _purchase_date(report: dict[str, Any], timezone: str) -> str:
    """Return the local date a bought report was paid for, as 2026-05-03 like the report."""
    from zoneinfo import ZoneInfo

    paid_at = report.get("purchased_at")
    if paid_at is None:
        return str(report["generated_at"])[:10]
    return datetime.fromtimestamp(int(paid_at), ZoneInfo(timezone)).date().isoformat()


def _send_report_ready(deps: NotifierDeps, ledger: Ledger, job: ReportReadyJob) -> str:
    """E-mail that a report is ready, with a link to the account page, once per report.

    Monthly reports go out with the "reports" list, so its one-click link stops them; a report
    the subscriber asked for or bought is always announced. The e-mail of a bought report names
    it as bought, with the purchase date and the start of its history.
    """
    items = deps.table.get_partition(f"SUB#{job.subscriber_id}")
    report = items.get(f"REPORT#{job.report_id}")
    contact = _contact(deps, job.subscriber_id, items)
    if contact is None or report is None:
        logger.info(
            "report e-mail skipped",
            extra={"subscriber_id": job.subscriber_id, "report_id": job.report_id},
        )
        return "skipped"
    kind = str(report["report_kind"])
    if not contact.preferences.may_email("reports" if kind == "monthly" else None):
        return "skipped"
    if deps.account_page_url is None:
        raise RuntimeError("ACCOUNT_PAGE_URL is not set, so a report e-mail has no link")

    link = f"{account_page_link(deps.account_page_url, contact.locale)}#reports"
    if kind == "deep":
        message = render_email(
            "report_ready_deep",
            contact.locale,
            purchased=_purchase_date(report, contact.preferences.timezone),
            since=str(report.get("covers_from") or report["generated_at"][:10]),
            link=link,
        )
    else:
        message = render_email(
            "report_ready",
            contact.locale,
            title=REPORT_TITLES[kind][contact.locale],
            month=str(report["month"]),
            link=link,
        )
    email = contact.email()
    return _send(
        ledger,
        f"report_ready:{job.report_id}",
        "email",
        job.subscriber_id,
        lambda: deps.email().send(email, message.subject, message.text, message.html),
    )


def _send_phone_reconfirm(deps: NotifierDeps, ledger: Ledger, job: PhoneReconfirmJob) -> str:
    """E-mail the request to prove the number again, once per confirmation that fell due.

    Skipped when the profile records a later confirmation than the job's, because a sign-in
    since then proved the number.
    """
    from idsentry.services.phone_reconfirm import confirmation_time, message_key, months_between

    contact = _contact(deps, job.subscriber_id)
    confirmation = confirmation_time(contact.profile) if contact is not None else None
    if contact is None or confirmation is None or confirmation[0] != job.confirmed_at:
        logger.info("phone reconfirmation skipped", extra={"subscriber_id": job.subscriber_id})
        return "skipped"
    if not contact.preferences.may_email(None):
        return "skipped"

    if deps.account_page_url is None:
        raise RuntimeError("ACCOUNT_PAGE_URL is not set, so a reconfirmation e-mail has no link")

    masked = mask(IdentifierKind.MOBILE, contact.mobile())
    message = render_email(
        "phone_reconfirm",
        contact.locale,
        masked_mobile=masked,
        months=str(months_between(job.confirmed_at, deps.clock())),
        link=account_page_link(deps.account_page_url, contact.locale),
    )
    email = contact.email()
    return _send(
        ledger,
        message_key(job.subscriber_id, job.confirmed_at),
        "email",
        job.subscriber_id,
        lambda: deps.email().send(email, message.subject, message.text, message.html),
    )
