"""Queue-record entry points of breach intake: manifest notifications and chunk jobs."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import cache
from urllib.parse import unquote_plus

from pydantic import ValidationError

from idsentry.adapters.aws import client
from idsentry.adapters.batch import BatchTable
from idsentry.adapters.objects import IntakeObjects
from idsentry.adapters.queue import JobQueue
from idsentry.clock import utc_now
from idsentry.errors import PoisonMessageError
from idsentry.models.breach_jobs import ChunkJob
from idsentry.services.intake import MANIFEST_NAME, IntakeDeps, ingest_chunk, start_intake
from idsentry.settings import load_settings
from idsentry.settings.breach import BreachIntakeSettings
from idsentry.wiring import main_table, pepper_loader, publisher

logger = logging.getLogger(__name__)


@cache
def intake_deps() -> IntakeDeps:
    """Return the dependencies of intake and ingestion."""
    settings = load_settings(BreachIntakeSettings)
    dynamodb = client("dynamodb")
    return IntakeDeps(
        table=main_table(),
        watchers=BatchTable(settings.table_name, dynamodb),
        index=BatchTable(settings.breach_index_table, dynamodb),
        objects=IntakeObjects(settings.intake_bucket),
        chunks=JobQueue(settings.chunk_queue_url),
        publisher=publisher(),
        pepper=lambda: pepper_loader(settings),
        clock=utc_now,
        chunk_bytes=settings.intake_chunk_megabytes * 1024 * 1024,
        retention_days=settings.breach_index_retention_days,
        match_only=settings.intake_match_only,
    )


def manifest_uploads(body: str) -> list[tuple[str, str | None]]:
    """Return the (key, ETag) of each manifest upload in an S3 event notification.

    Keys are URL-decoded. The ETag is None when the record carries none.
    """
    try:
        notification = json.loads(body)
    except json.JSONDecodeError as exc:
        raise PoisonMessageError("intake notification is not JSON") from exc
    if notification.get("Event") == "s3:TestEvent":
        return []
    uploads: list[tuple[str, str | None]] = []
    for record in notification.get("Records", []):
        stored = record.get("s3", {}).get("object", {})
        key = unquote_plus(stored.get("key", ""))
        etag = stored.get("eTag")
        if key.endswith(MANIFEST_NAME):
            uploads.append((key, str(etag).strip('"') if etag else None))
    return uploads


def manifest_keys(body: str) -> list[str]:
    """Return the manifest keys named by an S3 event notification (URL-decoded)."""
    return [key for key, _ in manifest_uploads(body)]


def process_intake_record(message_id: str, body: str) -> str:
    """Start an intake job for each manifest in one S3 notification."""
    statuses = [
        str(start_intake(intake_deps(), key, etag)["status"])
        for key, etag in manifest_uploads(body)
    ]
    logger.info(
        "intake notification processed", extra={"message_id": message_id, "jobs": len(statuses)}
    )
    return ",".join(statuses) or "ignored"


def process_chunk_record(message_id: str, body: str, should_stop: Callable[[], bool]) -> str:
    """Ingest one chunk job; raises so SQS retries it."""
    try:
        job = ChunkJob.model_validate_json(body)
    except ValidationError as exc:
        logger.error("chunk job invalid", extra={"message_id": message_id})
        raise PoisonMessageError(message_id) from exc
    return ingest_chunk(intake_deps(), job, should_stop)
