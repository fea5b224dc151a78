"""Breach jobs on SQS: ingestion chunks, daily check pages and checks, HIBP lookups."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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


class HibpJob(BaseModel):
    """Ask HIBP about one subscriber's confirmed e-mail address in run `run`."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    schema_version: Literal[1] = 1
    kind: Literal["hibp_lookup"] = "hibp_lookup"
    job_id: str
    subscriber_id: str
    run: str = Field(pattern=r"^[0-9]{8}$")
