"""Settings of breach intake, ingestion and the daily check."""

from __future__ import annotations

from idsentry.settings import CoreSettings


class BreachIntakeSettings(CoreSettings):
    """Settings of the breach intake and ingest functions."""

    intake_bucket: str
    chunk_queue_url: str
    breach_index_table: str
    breach_index_retention_days: int = 730
    intake_match_only: bool = False
    # A 16 MiB chunk peaks near 720 MiB and about 13,400 BatchWriteItem calls (make bench).
    intake_chunk_megabytes: int = 16


class BreachCheckSettings(CoreSettings):
    """Settings of the daily check's planner and workers."""

    breach_index_table: str
    check_queue_url: str
    hibp_queue_url: str
    hibp_secret_id: str
    # The HIBP tier's limit, shared by every worker through one token bucket.
    hibp_requests_per_minute: int = 10
    # Local stack only: the HIBP emulator's API base URL. Unset in AWS, where the client's
    # default https://haveibeenpwned.com/api/v3 is used.
    hibp_base_url: str | None = None
