"""HIBP jobs from SQS: look one confirmed address up at Have I Been Pwned, within the shared rate."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from idsentry.adapters.aws import client
from idsentry.instance import freeze_init_objects
from idsentry.logs import configure_logging
from idsentry.routes.check_jobs import process_hibp_record
from idsentry.services.breach_check import CheckDeferredError

logger = Logger()
configure_logging()
processor = BatchProcessor(event_type=EventType.SQS)
# SQS allows at most 12 hours of visibility; a deferral never needs that much.
MAX_DEFER_SECONDS = 900
freeze_init_objects(load=("requests",))


def _record_handler(record: SQSRecord) -> str:
    try:
        return process_hibp_record(record.message_id, record.body)
    except CheckDeferredError as exc:
        # The shared HIBP bucket is empty: come back when a token should be free.
        client("sqs").change_message_visibility(
            QueueUrl=os.environ["HIBP_QUEUE_URL"],
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=min(MAX_DEFER_SECONDS, max(1, int(exc.seconds) + 1)),
        )
        raise


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process a batch and report the records that failed, so only those are retried."""
    return process_partial_response(
        event=event, record_handler=_record_handler, processor=processor, context=context
    )
