"""Account jobs on SQS: an account to delete, a report to render."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AccountDeletionJob(BaseModel):
    """Delete one subscriber's account; the steps already done are recorded on the account."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    schema_version: Literal[1] = 1
    kind: Literal["account_deletion"] = "account_deletion"
    job_id: str
    subscriber_id: str


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
