"""SQS producer for jobs: one message per job, or batches of at most 10."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

MAX_BATCH = 10


class EnqueueError(RuntimeError):
    """SQS rejected some messages of a batch."""


class JobQueue:
    """Sends pydantic job models as JSON to one queue."""

    def __init__(self, queue_url: str, client: Any = None) -> None:
        self._queue_url = queue_url
        self._client = client

    def _sqs(self) -> Any:
        if self._client is None:
            from idsentry.adapters.aws import client

            self._client = client("sqs")
        return self._client

    def send(self, job: BaseModel, delay_seconds: int = 0) -> None:
        """Send one job, hidden from consumers for `delay_seconds` (at most 900, SQS's limit)."""
        request: dict[str, Any] = {
            "QueueUrl": self._queue_url,
            "MessageBody": job.model_dump_json(),
        }
        if delay_seconds:
            request["DelaySeconds"] = delay_seconds
        self._sqs().send_message(**request)

    def send_many(self, jobs: Sequence[BaseModel]) -> None:
        """Send jobs in batches of 10; raises EnqueueError if any message was rejected."""
        for start in range(0, len(jobs), MAX_BATCH):
            chunk = jobs[start : start + MAX_BATCH]
            response = self._sqs().send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "MessageBody": job.model_dump_json()}
                    for index, job in enumerate(chunk)
                ],
            )
            if response.get("Failed"):
                raise EnqueueError(f"{len(response['Failed'])} jobs were not enqueued")
