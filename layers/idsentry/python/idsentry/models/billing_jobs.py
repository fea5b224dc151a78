"""Billing jobs on SQS: a Stripe event to apply, a reconciliation to run."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StripeEventJob(BaseModel):
    """Apply one Stripe event, fetched again from Stripe by its id; the body is never trusted."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    schema_version: Literal[1] = 1
    kind: Literal["stripe_event"] = "stripe_event"
    event_id: str


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
