"""Reconciliation jobs from SQS, scheduled and requested: reconcile, store the files, e-mail finance."""

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
from idsentry.routes.reconcile_jobs import WORKER_MODULES, process_reconciliation_record

logger = Logger()
configure_logging()
processor = BatchProcessor(event_type=EventType.SQS)
freeze_init_objects(load=WORKER_MODULES)


def _record_handler(record: SQSRecord) -> str:
    return process_reconciliation_record(record.message_id, record.body)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process a batch and report the records that failed, so only those are retried."""
    return process_partial_response(
        event=event, record_handler=_record_handler, processor=processor, context=context
    )
