"""Notification jobs on SQS: ids and a kind only, never a code, a number or an address."""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Job(BaseModel):
    # Each function validates or sends a few of these jobs, so a model builds its validator on
    # first use (defer_build) rather than every job model at import, in every cold start.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    schema_version: Literal[1] = 1
    job_id: str


class OtpJob(_Job):
    """Send the one-time code `code_id` of a pending signup by SMS."""

    kind: Literal["otp"] = "otp"
    signup_id: str
    code_id: str


class SignInCodeJob(_Job):
    """Send the one-time code `code_id` of sign-in `sign_in_id` to the account that has its number.

    Every sign-in request queues one, whether or not an account has the number, so the request
    path is the same for both. The notifier sends nothing when no account has it.
    """

    kind: Literal["sign_in_code"] = "sign_in_code"
    sign_in_id: str
    code_id: str


class EmailConfirmationJob(_Job):
    """E-mail a subscriber the link that confirms their address."""

    kind: Literal["email_confirmation"] = "email_confirmation"
    subscriber_id: str


class IdentifierReassignedJob(_Job):
    """Tell a subscriber that a verified owner took over one of their identifiers."""

    kind: Literal["identifier_reassigned"] = "identifier_reassigned"
    subscriber_id: str
    identifier_kind: str


class PaymentNoticeJob(_Job):
    """Tell a subscriber that paying `invoice_id` failed (`failed`), or remind them (`reminder`)."""

    kind: Literal["payment_notice"] = "payment_notice"
    subscriber_id: str
    invoice_id: str
    notice: Literal["failed", "reminder"]
    # Set on a copy queued when Twilio failed the SMS of an earlier attempt with error 30001
    # (queue overflow): the sid of that message, whose ledger record the copy reopens.
    resend_sms_of: str | None = None


class AlertJob(_Job):
    """Tell a subscriber about confirmed alert `alert_id` (breach `breach_name`)."""

    kind: Literal["alert"] = "alert"
    subscriber_id: str
    alert_id: str
    breach_name: str
    # Set on a copy queued when Twilio failed the SMS of an earlier attempt with error 30001
    # (queue overflow): the sid of that message, whose ledger record the copy reopens.
    resend_sms_of: str | None = None


class CheckReminderJob(_Job):
    """Remind a subscriber to re-run the official lookups of quarter `quarter` (yyyyqn)."""

    kind: Literal["check_reminder"] = "check_reminder"
    subscriber_id: str
    quarter: str = Field(pattern=r"^[0-9]{4}q[1-4]$")


class PhoneReconfirmJob(_Job):
    """Ask a subscriber by e-mail to prove their number again, last proven at `confirmed_at`."""

    kind: Literal["phone_reconfirm"] = "phone_reconfirm"
    subscriber_id: str
    # Epoch seconds; the e-mail is skipped once the profile records a later confirmation.
    confirmed_at: int = Field(ge=0)


class ReportReadyJob(_Job):
    """Tell a subscriber by e-mail that report `report_id` is ready to download."""

    kind: Literal["report_ready"] = "report_ready"
    subscriber_id: str
    report_id: str


NotificationJob = Annotated[
    OtpJob
    | SignInCodeJob
    | EmailConfirmationJob
    | IdentifierReassignedJob
    | PaymentNoticeJob
    | AlertJob
    | CheckReminderJob
    | PhoneReconfirmJob
    | ReportReadyJob,
    Field(discriminator="kind"),
]
_NOTIFICATION_JOB_TYPES: dict[str, type[_Job]] = {
    job_type.model_fields["kind"].default: job_type
    for job_type in (
        OtpJob,
        SignInCodeJob,
        EmailConfirmationJob,
        IdentifierReassignedJob,
        PaymentNoticeJob,
        AlertJob,
        CheckReminderJob,
        PhoneReconfirmJob,
        ReportReadyJob,
    )
}


@cache
def _union_adapter() -> TypeAdapter[NotificationJob]:
    return TypeAdapter(NotificationJob)


def parse_notification_job(body: str) -> NotificationJob:
    """Validate one queued notification job with the model that its `kind` names.

    A message names its kind, so only that model's validator is built, where validating the
    union would build all nine in the cold start. A message that is not JSON, or names no known
    kind, is validated against the union, whose ValidationError names what is wrong.
    """
    try:
        kind = json.loads(body).get("kind")
    except (ValueError, AttributeError):
        kind = None
    job_type = _NOTIFICATION_JOB_TYPES.get(kind) if isinstance(kind, str) else None
    if job_type is None:
        return _union_adapter().validate_json(body)
    return cast("NotificationJob", job_type.model_validate_json(body))
