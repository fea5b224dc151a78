"""Report and dossier data, and the builder that fills it from main-table items.

`from_records` takes the subscriber's partition (`SUB#{id}` items by sort key), the related
items read by key (catalogue breaches, delivery-ledger records, SMS pointers, deferred SMS
jobs) and the masked forms of the subscriber's identifiers. The models never hold an
unmasked identifier: `MaskedIdentifier` rejects a value without a run of `***`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from idsentry.i18n import Locale
from idsentry.identifiers import IdentifierKind
from idsentry.models.breach import DataKind, kind_for_data_class
from idsentry.services.playbooks import load_config
from idsentry.services.risk import Confidence, Severity

FoundBy = Literal["dataset", "index", "hibp"]
ExposureStatus = Literal["confirmed", "pending_review", "dismissed", "not_scored"]
Channel = Literal["sms", "email"]
DeliveryStatus = Literal[
    "delivered",
    "sent",
    "undelivered",
    "bounced",
    "complained",
    "failed",
    "unknown",
    "sending",
    "deferred",
]
Audience = Literal["police", "bank", "carrier", "general"]

DEFAULT_TIME_ZONE = "Asia/Shanghai"
CHANNELS: tuple[Channel, ...] = ("email", "sms")
# Every form that identifiers.mask returns hides characters in a run of at least three `*`.
_MASK_RUN = "***"
# A masked mobile keeps at most a 3-digit country code, 3 leading and 4 trailing digits, and
# a masked ID number keeps 8 characters. More visible digits means the value was not masked.
_MAX_VISIBLE_DIGITS = 10
_MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
# Twilio statuses after which an SMS never reached the phone.
_SMS_FAILED = frozenset({"undelivered", "failed", "canceled"})
_SMS_DELIVERED = frozenset({"delivered", "read"})
_KIND_ORDER = (
    IdentifierKind.ID_NUMBER,
    IdentifierKind.BANK_CARD,
    IdentifierKind.MOBILE,
    IdentifierKind.EMAIL,
)


class ReportDataError(ValueError):
    """A table item cannot be read into report data; the message names the item and field."""


class _Frozen(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")


class MaskedIdentifier(_Frozen):
    """One of the subscriber's identifiers in its masked display form."""

    kind: IdentifierKind
    # None when the identifier was removed and no masked form was passed.
    masked: str | None

    @field_validator("masked")
    @classmethod
    def _check_masked(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if _MASK_RUN not in value:
            raise ValueError("must be a masked form, with hidden characters shown as ***")
        kind = info.data.get("kind")
        digits = sum(character.isdigit() for character in value)
        if kind != IdentifierKind.EMAIL and digits > _MAX_VISIBLE_DIGITS:
            raise ValueError(f"a masked form shows at most {_MAX_VISIBLE_DIGITS} digits")
        return value


class StepDone(_Frozen):
    """A playbook step the subscriber marked done for one alert."""

    step_id: str
    done_at: AwareDatetime


class BreachEvidence(_Frozen):
    """Catalogue record of a breach. Most fields are None when the breach is not catalogued."""

    name: str
    title: str
    domain: str | None = None
    breach_date: date | None = None
    added_date: AwareDatetime | None = None
    pwn_count: int | None = Field(default=None, ge=0)
    data_classes: tuple[str, ...] = ()
    # None when the breach is missing from the catalogue.
    verified: bool | None = None
    source: Literal["hibp", "dataset"] | None = None


class Exposure(_Frozen):
    """The subscriber found in one breach, with the alert that scored it and the steps done."""

    breach: BreachEvidence
    matched: tuple[MaskedIdentifier, ...] = Field(min_length=1)
    # Matched kinds and the breach's data kinds, most harmful first (the playbook order).
    exposed_kinds: tuple[DataKind, ...] = Field(min_length=1)
    found_at: AwareDatetime
    found_by: FoundBy
    status: ExposureStatus
    alert_id: str | None = None
    severity: Severity | None = None
    confidence: Confidence | None = None
    confirmed_at: AwareDatetime | None = None
    confirmed_by: Literal["rules", "analyst"] | None = None
    steps_done: tuple[StepDone, ...] = ()

    @model_validator(mode="after")
    def _check_confirmed(self) -> Self:
        if self.status == "confirmed":
            missing = [
                name
                for name in ("alert_id", "severity", "confidence", "confirmed_at", "confirmed_by")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"a confirmed exposure needs {', '.join(missing)}")
        return self


class Delivery(_Frozen):
    """One channel of one alert: what happened to the message and when."""

    alert_id: str
    breach_name: str
    channel: Channel
    status: DeliveryStatus
    # When the message was sent or failed; for a deferred SMS, when it will be released.
    at: AwareDatetime | None
    error_code: str | None = None


class CheckResult(_Frozen):
    """The counts a subscriber recorded for one quarterly check with an official service."""

    check: str
    quarter: str = Field(pattern=r"^\d{4}q[1-4]$")
    counts: dict[str, int]
    recorded_at: AwareDatetime


class SubscriberFacts(_Frozen):
    """Everything about one subscriber that reports and dossiers draw on."""

    subscriber_id: str = Field(min_length=1)
    locale: Locale = "zh-CN"
    timezone: str = DEFAULT_TIME_ZONE
    identifiers: tuple[MaskedIdentifier, ...] = ()
    exposures: tuple[Exposure, ...] = ()
    deliveries: tuple[Delivery, ...] = ()
    check_results: tuple[CheckResult, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone name such as Asia/Shanghai") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The subscriber's time zone."""
        return ZoneInfo(self.timezone)


class ReportData(_Frozen):
    """The input of one monthly report: the facts, the month and the generation time."""

    facts: SubscriberFacts
    month: str = Field(pattern=_MONTH_PATTERN)
    generated_at: AwareDatetime
    # The check results the previous report showed. None derives them from the history in
    # `facts`, as recorded before this month started.
    previous_check_results: tuple[CheckResult, ...] | None = None


class DeepReportData(_Frozen):
    """The input of one bought in-depth report, which covers everything since signup."""

    facts: SubscriberFacts
    generated_at: AwareDatetime
    # When the subscriber signed up. An exposure found earlier moves the start of the history
    # back to it, so that no exposure falls outside the report.
    since: AwareDatetime
    purchased_at: AwareDatetime

    @model_validator(mode="after")
    def _check_order(self) -> Self:
        if self.since > self.generated_at:
            raise ValueError("since must not be after generated_at")
        return self


class DossierData(_Frozen):
    """The input of one incident dossier."""

    facts: SubscriberFacts
    generated_at: AwareDatetime
    audience: Audience = "general"
    # The breaches to include; None includes every confirmed exposure.
    breach_names: tuple[str, ...] | None = Field(default=None, min_length=1)


# --- building the facts from table items ----------------------------------------------------


def related_keys(partition: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Return the (pk, sk) keys `from_records` needs besides the partition, in a stable order.

    They are the catalogue breach of every exposure, the delivery-ledger records of every
    alert on both channels and each alert's deferred SMS job. SMS pointers come second,
    from `sms_pointer_keys`, because their keys are in the ledger records.
    """
    keys: list[tuple[str, str]] = []
    for sk, item in sorted(partition.items()):
        if sk.startswith("EXPOSURE#"):
            keys.append(
                (f"BREACH#{item.get('breach_name') or sk.removeprefix('EXPOSURE#')}", "BREACH")
            )
        elif sk.startswith("ALERT#") and item.get("alert_id"):
            alert_id = str(item["alert_id"])
            keys.extend((f"NOTIFY#alert:{alert_id}", channel) for channel in CHANNELS)
            keys.append((f"DEFER#job_{alert_id}", "DEFER"))
    return list(dict.fromkeys(keys))


def sms_pointer_keys(related: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Return the keys of the SMS pointers (`SMS#{sid}`) that carry Twilio's delivery status."""
    keys = [
        (f"SMS#{item['provider_id']}", "SMS")
        for (pk, sk), item in sorted(related.items())
        if pk.startswith("NOTIFY#alert:") and sk == "sms" and item.get("provider_id")
    ]
    return list(dict.fromkeys(keys))


def from_records(
    subscriber_id: str,
    partition: Mapping[str, Mapping[str, Any]],
    related: Mapping[tuple[str, str], Mapping[str, Any]],
    masked: Mapping[str, str | Sequence[str]],
) -> SubscriberFacts:
    """Build a subscriber's facts from table items as MainTable returns them.

    `partition` is `get_partition("SUB#{id}")`. `related` contains the items of
    `related_keys` and `sms_pointer_keys` by (pk, sk), with missing ones left out. `masked`
    maps an identifier kind to its masked form, or to several for bank cards. Raises ReportDataError naming the
    item and field when an item cannot be read.
    """
    profile = partition.get("PROFILE") or {}
    preferences = partition.get("PREFS") or {}
    locale: Locale = "en" if profile.get("locale") == "en" else "zh-CN"
    forms = _masked_forms(masked)

    identifiers: list[MaskedIdentifier] = []
    for sk in sorted(partition, key=_identifier_order):
        if sk.startswith("IDENT#"):
            kind = _identifier_kind(sk.removeprefix("IDENT#").split("#", 1)[0], sk)
            identifiers.extend(
                _build(MaskedIdentifier, sk, kind=kind, masked=form)
                for form in forms.get(kind, (None,))
            )

    exposures = []
    deliveries = []
    for sk in sorted(partition):
        if not sk.startswith("EXPOSURE#"):
            continue
        exposure = _exposure(sk, partition, related, forms)
        exposures.append(exposure)
        if exposure.alert_id is not None:
            deliveries.extend(_deliveries(exposure, partition, related))

    checks = [
        _build(
            CheckResult,
            sk,
            check=item.get("check"),
            quarter=item.get("quarter"),
            counts=_ordered_counts(str(item.get("check")), item.get("counts") or {}),
            recorded_at=_instant(item.get("recorded_at"), sk, "recorded_at"),
        )
        for sk, item in sorted(partition.items())
        if sk.startswith("CHECK#")
    ]

    return _build(
        SubscriberFacts,
        "PREFS",
        subscriber_id=subscriber_id,
        locale=locale,
        timezone=preferences.get("timezone") or DEFAULT_TIME_ZONE,
        identifiers=tuple(identifiers),
        exposures=tuple(exposures),
        deliveries=tuple(deliveries),
        check_results=tuple(checks),
    )


def _ordered_counts(check: str, counts: Mapping[str, Any]) -> dict[str, Any]:
    # DynamoDB does not promise an order for map attributes, so the configuration's order of
    # count fields fixes it and the rendering stays the same.
    known = load_config().checks.get(check)
    order = list(known.counts) if known is not None else []

    def rank(name: str) -> tuple[int, str]:
        return (order.index(name) if name in order else len(order), name)

    return {str(name): counts[name] for name in sorted(counts, key=rank)}


def _identifier_order(sort_key: str) -> tuple[int, str]:
    # Most harmful first, the order alerts and the account page list identifiers in.
    kind = sort_key.removeprefix("IDENT#").split("#", 1)[0]
    order = [kind.value for kind in _KIND_ORDER]
    return (order.index(kind) if kind in order else len(order), sort_key)


def _masked_forms(
    masked: Mapping[str, str | Sequence[str]],
) -> dict[IdentifierKind, tuple[str, ...]]:
    forms: dict[IdentifierKind, tuple[str, ...]] = {}
    for kind, value in masked.items():
        values = (value,) if isinstance(value, str) else tuple(value)
        forms[_identifier_kind(str(kind), "masked")] = values
    return forms


def _identifier_kind(value: str, where: str) -> IdentifierKind:
    try:
        return IdentifierKind(value)
    except ValueError:
        raise ReportDataError(f"{where}: unknown identifier kind {value!r}") from None


def _exposure(
    sk: str,
    partition: Mapping[str, Mapping[str, Any]],
    related: Mapping[tuple[str, str], Mapping[str, Any]],
    forms: Mapping[IdentifierKind, tuple[str, ...]],
) -> Exposure:
    item = partition[sk]
    breach_name = str(item.get("breach_name") or sk.removeprefix("EXPOSURE#"))
    breach = _breach(breach_name, related.get((f"BREACH#{breach_name}", "BREACH")))

    order = list(load_config().playbooks)
    matched_kinds = sorted(
        {
            _identifier_kind(str(kind), f"{sk}: matched_kinds")
            for kind in item.get("matched_kinds") or ()
        },
        key=lambda kind: order.index(DataKind(kind.value)),
    )
    # NOTE: an exposure names the matched kind, not the value, so a subscriber who watches
    # several bank cards gets every card listed for a bank-card match.
    matched = tuple(
        _build(MaskedIdentifier, sk, kind=kind, masked=form)
        for kind in matched_kinds
        for form in forms.get(kind, (None,))
    )
    exposed = {DataKind(kind.value) for kind in matched_kinds}
    exposed.update(
        kind for kind in map(kind_for_data_class, breach.data_classes) if kind is not None
    )

    alert = partition.get(f"ALERT#{breach_name}") or {}
    alert_id = alert.get("alert_id")
    status = str(alert.get("status") or "not_scored")
    steps = []
    if alert_id:
        prefix = f"PLAYBOOK#{alert_id}#"
        steps = [
            _build(
                StepDone,
                step_sk,
                step_id=step_sk.removeprefix(prefix),
                done_at=_instant(step.get("done_at"), step_sk, "done_at"),
            )
            for step_sk, step in sorted(partition.items())
            if step_sk.startswith(prefix)
        ]
    # An analyst's decision time replaces the time the rules queued the alert for review.
    confirmed_at = None
    confirmed_by = None
    if status == "confirmed":
        moment = alert.get("decided_at") or alert.get("created_at")
        confirmed_at = _instant(moment, f"ALERT#{breach_name}", "created_at")
        confirmed_by = "analyst" if alert.get("decided_by") else "rules"
    return _build(
        Exposure,
        sk,
        breach=breach,
        matched=matched,
        exposed_kinds=tuple(sorted(exposed, key=order.index)),
        found_at=_instant(item.get("found_at"), sk, "found_at"),
        found_by=item.get("found_by"),
        status=status,
        alert_id=alert_id,
        severity=alert.get("severity"),
        confidence=alert.get("confidence"),
        confirmed_at=confirmed_at,
        confirmed_by=confirmed_by,
        steps_done=tuple(sorted(steps, key=lambda step: (step.done_at, step.step_id))),
    )


def _breach(name: str, item: Mapping[str, Any] | None) -> BreachEvidence:
    where = f"BREACH#{name}"
    if item is None:
        return _build(BreachEvidence, where, name=name, title=name)
    return _build(
        BreachEvidence,
        where,
        name=name,
        title=item.get("title") or name,
        domain=item.get("domain") or None,
        breach_date=item.get("breach_date"),
        added_date=item.get("added_date"),
        pwn_count=item.get("pwn_count"),
        data_classes=tuple(item.get("data_classes") or ()),
        verified=bool(item.get("is_verified")),
        source=item.get("source"),
    )


def _deliveries(
    exposure: Exposure,
    partition: Mapping[str, Mapping[str, Any]],
    related: Mapping[tuple[str, str], Mapping[str, Any]],
) -> list[Delivery]:
    alert_id = str(exposure.alert_id)
    found = []
    for channel in CHANNELS:
        where = f"NOTIFY#alert:{alert_id}/{channel}"
        record = related.get((f"NOTIFY#alert:{alert_id}", channel))
        if record is None:
            deferred = related.get((f"DEFER#job_{alert_id}", "DEFER"))
            if channel == "sms" and deferred is not None:
                found.append(
                    _build(
                        Delivery,
                        f"DEFER#job_{alert_id}",
                        alert_id=alert_id,
                        breach_name=exposure.breach.name,
                        channel=channel,
                        status="deferred",
                        at=_instant(
                            deferred.get("release_at"), f"DEFER#job_{alert_id}", "release_at"
                        ),
                    )
                )
            continue
        status = _delivery_status(channel, record, partition, related)
        at = record.get("updated_at") or record.get("claimed_at")
        found.append(
            _build(
                Delivery,
                where,
                alert_id=alert_id,
                breach_name=exposure.breach.name,
                channel=channel,
                status=status,
                at=_instant(at, where, "updated_at") if at is not None else None,
                error_code=record.get("error_code"),
            )
        )
    return found


def _delivery_status(
    channel: Channel,
    record: Mapping[str, Any],
    partition: Mapping[str, Mapping[str, Any]],
    related: Mapping[tuple[str, str], Mapping[str, Any]],
) -> DeliveryStatus:
    state = record.get("state")
    if state in ("pending", "retry"):
        return "sending"
    if state == "failed":
        return "failed"
    if state != "sent":
        return "unknown"

    provider_id = record.get("provider_id")
    if channel == "sms" and provider_id:
        report = related.get((f"SMS#{provider_id}", "SMS")) or {}
        if report.get("delivery") in _SMS_DELIVERED:
            return "delivered"
        if report.get("delivery") in _SMS_FAILED:
            return "undelivered"
    if channel == "email" and provider_id:
        if f"EMAILEVENT#{provider_id}#bounce" in partition:
            return "bounced"
        if f"EMAILEVENT#{provider_id}#complaint" in partition:
            return "complained"
    return "sent"


def _instant(value: Any, where: str, field: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReportDataError(f"{where}: {field} must be epoch seconds, got {type(value).__name__}")
    return datetime.fromtimestamp(int(value), UTC)


def _build[ModelT: BaseModel](model: type[ModelT], where: str, **fields: Any) -> ModelT:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or model.__name__}: "
            f"{error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise ReportDataError(f"{where}: {problems}") from None


def report_data(
    facts: SubscriberFacts,
    month: str,
    generated_at: datetime,
    previous_check_results: Iterable[CheckResult] | None = None,
) -> ReportData:
    """Return the input of one monthly report. Raises ReportDataError naming an invalid field."""
    previous = tuple(previous_check_results) if previous_check_results is not None else None
    return _build(
        ReportData,
        "report",
        facts=facts,
        month=month,
        generated_at=generated_at,
        previous_check_results=previous,
    )


def deep_report_data(
    facts: SubscriberFacts, generated_at: datetime, since: datetime, purchased_at: datetime
) -> DeepReportData:
    """Return the input of one in-depth report. Raises ReportDataError naming an invalid field."""
    return _build(
        DeepReportData,
        "deep report",
        facts=facts,
        generated_at=generated_at,
        since=since,
        purchased_at=purchased_at,
    )
