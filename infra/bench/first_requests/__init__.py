"""The first request of every function in template.yaml, for the cold-start bench."""

from __future__ import annotations

from infra.bench.first_requests.api_routes import (
    AccountAuthorizerRequest,
    AccountRequest,
    AdminReviewsRequest,
    SignInRequest,
    SignupRequest,
    StripeWebhookRequest,
    TwilioStatusRequest,
)
from infra.bench.first_requests.base import ColdStartContext, FirstRequest
from infra.bench.first_requests.queue_jobs import (
    AccountDeletionJobRequest,
    CheckJobRequest,
    ChunkJobRequest,
    CodeJobRequest,
    ExposureEventRequest,
    HibpJobRequest,
    IntakeNotificationRequest,
    ReconciliationJobRequest,
    ReportJobRequest,
    SesEventRequest,
    StripeEventJobRequest,
)
from infra.bench.first_requests.schedules import (
    BillingRemindersRun,
    BreachCheckPlan,
    CheckRemindersRun,
    MonthlyReportsRun,
    NotificationReleaseRun,
    PhoneReconfirmRun,
    ReconciliationPlan,
)


def all_first_requests() -> list[FirstRequest]:
    """Return a new first request of every function, the three detailed ones first.

    Account deletion comes last because it deletes paid subscribers; the functions that only
    read come before the ones that write much.
    """
    return [
        SignupRequest(),
        StripeWebhookRequest(),
        CodeJobRequest(),
        SignInRequest(),
        AccountAuthorizerRequest(),
        AccountRequest(),
        AdminReviewsRequest(),
        TwilioStatusRequest(),
        StripeEventJobRequest(),
        BillingRemindersRun(),
        CheckRemindersRun(),
        PhoneReconfirmRun(),
        NotificationReleaseRun(),
        MonthlyReportsRun(),
        ReportJobRequest(),
        IntakeNotificationRequest(),
        ChunkJobRequest(),
        ExposureEventRequest(),
        BreachCheckPlan(),
        CheckJobRequest(),
        HibpJobRequest(),
        SesEventRequest(),
        ReconciliationPlan(),
        ReconciliationJobRequest(),
        AccountDeletionJobRequest(),
    ]


def first_requests(units: list[str] | None = None) -> list[FirstRequest]:
    """Return the first requests of `units` (function names such as `signup`), or of all.

    Raises ValueError naming every unknown unit.
    """
    everything = all_first_requests()
    if units is None:
        return everything
    known = {request.unit: request for request in everything}
    unknown = [unit for unit in units if unit not in known]
    if unknown:
        raise ValueError(
            f"unknown cold-start functions {', '.join(unknown)}; known: {', '.join(known)}"
        )
    return [request for request in everything if request.unit in units]


__all__ = ["ColdStartContext", "FirstRequest", "all_first_requests", "first_requests"]
