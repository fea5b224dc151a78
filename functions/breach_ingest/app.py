"""Chunk jobs of breach intake from SQS: fingerprint, index and match one byte range each."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from idsentry.instance import freeze_init_objects
from idsentry.logs import configure_logging
from idsentry.routes.breach_jobs import process_chunk_record

logger = Logger()
configure_logging()
processor = BatchProcessor(event_type=EventType.SQS)
# Time left for writing the index and the exposures after the last records are read.
RESERVE_MILLISECONDS = 120_000
freeze_init_objects()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process a batch and report the records that failed, so only those are retried."""

    def should_stop() -> bool:
        return bool(context.get_remaining_time_in_millis() < RESERVE_MILLISECONDS)

    def record_handler(record: SQSRecord) -> str:
        return process_chunk_record(record.message_id, record.body, should_stop)

    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
