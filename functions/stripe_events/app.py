"""Stripe event jobs from SQS: apply each event's current state once."""

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
from idsentry.routes.billing_jobs import process_stripe_record

logger = Logger()
configure_logging()
processor = BatchProcessor(event_type=EventType.SQS)
freeze_init_objects(load=("stripe",))


def _record_handler(record: SQSRecord) -> str:
    def defer(seconds: int) -> None:
        client("sqs").change_message_visibility(
            QueueUrl=os.environ["STRIPE_EVENTS_QUEUE_URL"],
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=seconds,
        )

    receive_count = int(record.attributes.approximate_receive_count)
    return process_stripe_record(record.message_id, record.body, receive_count, defer)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process a batch and report the records that failed, so only those are retried."""
    return process_partial_response(
        event=event, record_handler=_record_handler, processor=processor, context=context
    )
