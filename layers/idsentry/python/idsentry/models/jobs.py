"""Notification jobs on SQS: ids and a kind only, never a code, a number or an address."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class StripeEventJob(BaseModel):
    """Apply one Stripe event, fetched again from Stripe by its id; the body is never trusted."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    schema_version: Literal[1] = 1
    kind: Literal["stripe_event"] = "stripe_event"
    event_id: str


class ChunkJob(BaseModel):
    """Ingest bytes [start, end) of a breach file for intake job `job_id`.

    A sequential job (a CSV whose quoted fields may contain line breaks) covers the rest of the
    file from `start`. The worker stops in time and queues the next job from its checkpoint.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    schema_version: Literal[1] = 1
    kind: Literal["breach_chunk"] = "breach_chunk"
    job_id: str
    chunk: int = Field(ge=0)
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    sequential: bool = False


class CheckJob(BaseModel):
    """Check one subscriber in the daily breach check run `run` (its date in China, yyyymmdd)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    schema_version: Literal[1] = 1
    kind: Literal["breach_check"] = "breach_check"
    job_id: str
    subscriber_id: str
    run: str = Field(pattern=r"^[0-9]{8}$")


class PlanPageJob(BaseModel):
    """Queue the check jobs of one page of entitled subscribers, then the job of the next page."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    schema_version: Literal[1] = 1
    kind: Literal["breach_plan_page"] = "breach_plan_page"
    job_id: str
    run: str = Field(pattern=r"^[0-9]{8}$")
    # The index key to continue after (gsi1pk, gsi1sk, pk, sk of the last subscriber), or None.
    start_after: dict[str, str] | None = None


class AccountDeletionJob(BaseModel):
    """Delete one subscriber's account; the steps already done are recorded on the account."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    schema_version: Literal[1] = 1
    kind: Literal["account_deletion"] = "account_deletion"
    job_id: str
    subscriber_id: str


class HibpJob(BaseModel):
    """Ask HIBP about one subscriber's confirmed e-mail address in run `run`."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    schema_version: Literal[1] = 1
    kind: Literal["hibp_lookup"] = "hibp_lookup"
    job_id: str
    subscriber_id: str
    run: str = Field(pattern=r"^[0-9]{8}$")


class ReportJob(BaseModel):
    """Render one subscriber's report of month `month` (yyyy-mm) and store it.

    `report_kind` is "monthly" (the schedule), "on_demand" (the subscriber asked) or "deep"
    (bought; `purchase_id` names the Checkout Session).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    schema_version: Literal[1] = 1
    kind: Literal["report"] = "report"
    job_id: str
    subscriber_id: str
    month: str = Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")
    report_kind: Literal["monthly", "on_demand", "deep"]
    purchase_id: str | None = None


class ReconciliationJob(BaseModel):
    """Reconcile Stripe with the ledger for the Asia/Shanghai days `from_date` to `to_date`.

    `reconciliation_id` names the run and its `RECON#` item, so a message delivered twice runs
    once. `repair` re-applies the Stripe events of rows missing in the ledger. `locale` is the
    CSV header's language. `requested_by` is "schedule" or "admin", and `request_id` is the
    admin request's API Gateway id, which its audit record carries too.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    schema_version: Literal[1] = 1
    kind: Literal["reconciliation"] = "reconciliation"
    job_id: str
    reconciliation_id: str = Field(pattern=r"^rcn_[0-9A-Za-z_]{1,40}$")
    from_date: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    to_date: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    repair: bool = False
    locale: Literal["zh-CN", "en"] = "zh-CN"
    requested_by: Literal["schedule", "admin"]
    request_id: str | None = None
