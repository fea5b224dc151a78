"""Bus event details. Every detail carries ids only: no personal data ever travels on the bus."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict


class EventDetail(BaseModel):
    """Common fields: the schema version and the event id consumers de-duplicate by."""

    # A function publishes one or two kinds of event, so each detail model builds its validator
    # on first use (defer_build) rather than every model at import, in every cold start.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    source: ClassVar[str]
    detail_type: ClassVar[str]

    schema_version: Literal[1] = 1
    event_id: str


class SubscriberRegistered(EventDetail):
    """A verified signup became a subscriber awaiting payment."""

    source: ClassVar[str] = "idsentry.signup"
    detail_type: ClassVar[str] = "Subscriber.Registered"

    subscriber_id: str
    signup_id: str
    plan: str
    locale: str
    referral_code: str | None = None


class IdentifierReassigned(EventDetail):
    """A verified owner took an ID number over from another account."""

    source: ClassVar[str] = "idsentry.signup"
    detail_type: ClassVar[str] = "Identifier.Reassigned"

    kind: str
    from_subscriber_id: str
    to_subscriber_id: str


class EmailConfirmed(EventDetail):
    """A subscriber confirmed their e-mail address; breach checks may now use it."""

    source: ClassVar[str] = "idsentry.signup"
    detail_type: ClassVar[str] = "Email.Confirmed"

    subscriber_id: str


class SubscriptionChanged(EventDetail):
    """A subscriber's subscription status or entitlement changed."""

    source: ClassVar[str] = "idsentry.billing"
    detail_type: ClassVar[str] = "Subscription.Changed"

    subscriber_id: str
    subscription_id: str
    status: str
    previous_status: str | None
    monitored: bool


class PaymentFailed(EventDetail):
    """A subscriber's invoice payment failed, so the notifier can send them the next steps."""

    source: ClassVar[str] = "idsentry.billing"
    detail_type: ClassVar[str] = "Payment.Failed"

    subscriber_id: str
    invoice_id: str
    attempt_count: int


class ExposureDetected(EventDetail):
    """One of a subscriber's identifiers was found in a breach; sent once per (subscriber, breach)."""

    source: ClassVar[str] = "idsentry.breaches"
    detail_type: ClassVar[str] = "Exposure.Detected"

    subscriber_id: str
    breach_name: str
    # The kinds that matched when the exposure was first found: id_number, mobile, email …
    matched_kinds: tuple[str, ...]
    # "dataset" (an uploaded breach file), "index" (the daily lookup) or "hibp".
    found_by: Literal["dataset", "index", "hibp"]


class AlertConfirmed(EventDetail):
    """An exposure became an alert for the subscriber: confirmed by the rules or by an analyst."""

    source: ClassVar[str] = "idsentry.risk"
    detail_type: ClassVar[str] = "Alert.Confirmed"

    subscriber_id: str
    alert_id: str
    breach_name: str
    severity: Literal["critical", "high", "medium", "low"]
    confidence: Literal["high", "medium", "low"]
    # "rules" when the confidence table confirmed it, or "analyst".
    confirmed_by: Literal["rules", "analyst"]


class AlertDismissed(EventDetail):
    """An analyst dismissed an alert that waited for review, so no message goes to the subscriber."""

    source: ClassVar[str] = "idsentry.risk"
    detail_type: ClassVar[str] = "Alert.Dismissed"

    subscriber_id: str
    alert_id: str
    breach_name: str


class ReportGenerated(EventDetail):
    """A subscriber's report was rendered and stored; the notifier e-mails a link to it."""

    source: ClassVar[str] = "idsentry.reports"
    detail_type: ClassVar[str] = "Report.Generated"

    subscriber_id: str
    report_id: str
    # "monthly" (the schedule), "on_demand" (the subscriber asked) or "deep" (bought).
    report_kind: Literal["monthly", "on_demand", "deep"]
    month: str


ALL_EVENT_TYPES: tuple[type[EventDetail], ...] = (
    SubscriberRegistered,
    IdentifierReassigned,
    EmailConfirmed,
    SubscriptionChanged,
    PaymentFailed,
    ExposureDetected,
    AlertConfirmed,
    AlertDismissed,
    ReportGenerated,
)
