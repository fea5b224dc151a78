"""Dead-letter queues of a stack: which exist, how deep they are, and moving messages back.

Every DLQ is a stack output whose name ends in `DLQUrl` (a unit test checks template.yaml for
that). The source queue of a DLQ is the queue whose redrive policy names it, found with
ListDeadLetterSourceQueues, so the outputs need not list source queues.

Replay receives, sends and deletes each message itself rather than starting an SQS message
move task, because moto 5.2.5 does not implement StartMessageMoveTask, so tests could not run
that path. docs/decisions.md has the other reasons. This module returns message ids and
counts, never a message body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DLQ_OUTPUT_SUFFIX = "DLQUrl"
MAX_BATCH = 10
# A received message stays hidden this long. If the CLI stops between receiving and deleting
# it, the message shows up in the DLQ again after this time instead of being lost.
REPLAY_VISIBILITY_SECONDS = 120
# Long polling for up to this long finds messages that a short poll of a few SQS servers misses.
RECEIVE_WAIT_SECONDS = 1


class QueueNotFoundError(LookupError):
    """No DLQ output matches the queue the operator named."""


class ReplayError(RuntimeError):
    """Messages of this DLQ cannot be moved back (no or several source queues, or FIFO)."""


@dataclass(frozen=True)
class DeadLetterQueue:
    """One DLQ of the stack, from its output."""

    output: str
    url: str

    @property
    def name(self) -> str:
        """The SQS queue name, the last segment of the queue URL."""
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def logical_id(self) -> str:
        """The template's logical id of the queue, for example NotificationDLQ."""
        return self.output.removesuffix("Url")


@dataclass(frozen=True)
class QueueDepth:
    """Approximate message counts of a queue: waiting, and received but not deleted."""

    messages: int
    in_flight: int


@dataclass
class ReplayResult:
    """Outcome of a replay: moved message ids, and ids of those that stay in the DLQ."""

    moved: list[str] = field(default_factory=list)
    not_sent: list[str] = field(default_factory=list)
    not_deleted: list[str] = field(default_factory=list)


def dead_letter_queues(outputs: Mapping[str, str]) -> list[DeadLetterQueue]:
    """Return every DLQ named in the outputs, ordered by queue name."""
    queues = [
        DeadLetterQueue(output=name, url=url)
        for name, url in outputs.items()
        if name.endswith(DLQ_OUTPUT_SUFFIX)
    ]
    return sorted(queues, key=lambda queue: queue.name)


def find_dead_letter_queue(queues: Sequence[DeadLetterQueue], reference: str) -> DeadLetterQueue:
    """Find a DLQ by queue name, logical id or output name; raise QueueNotFoundError."""
    for queue in queues:
        if reference in (queue.name, queue.logical_id, queue.output):
            return queue
    known = ", ".join(queue.name for queue in queues) or "none"
    raise QueueNotFoundError(
        f"no dead-letter queue {reference!r}: expected one of {known} (see `idsentry dlq list`)"
    )


def queue_depth(sqs: Any, url: str) -> QueueDepth:
    """Read a queue's approximate depth."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return QueueDepth(
        messages=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )


def source_queues(sqs: Any, url: str) -> list[str]:
    """Return the URLs of the queues whose redrive policy sends failures to this DLQ."""
    urls: list[str] = []
    for page in sqs.get_paginator("list_dead_letter_source_queues").paginate(QueueUrl=url):
        urls.extend(page.get("queueUrls", []))
    return sorted(urls)


def choose_source(dlq: DeadLetterQueue, sources: Sequence[str], requested: str | None) -> str:
    """Return the source queue to move messages to; `requested` picks one by name or URL."""
    if dlq.url.endswith(".fifo"):
        # Every IDSentry queue is a standard queue. A FIFO DLQ would need each message's
        # group id and deduplication id carried over, and replay does not do that.
        raise ReplayError(f"{dlq.name} is a FIFO queue; replay moves standard queues only")
    if requested is not None:
        for url in sources:
            if requested in (url, url.rsplit("/", 1)[-1]):
                return url
        raise ReplayError(
            f"{requested} does not send failures to {dlq.name}; its source queues: "
            + (", ".join(url.rsplit("/", 1)[-1] for url in sources) or "none")
        )
    if len(sources) == 1:
        return sources[0]
    if not sources:
        raise ReplayError(f"no queue names {dlq.name} as its dead-letter queue")
    names = ", ".join(url.rsplit("/", 1)[-1] for url in sources)
    raise ReplayError(f"{dlq.name} receives failures of {names}: pick one with --to")


def replay_messages(
    sqs: Any,
    dlq_url: str,
    source_url: str,
    limit: int,
    on_moved: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Move up to `limit` messages from the DLQ to the source queue, ten at a time.

    Each message is sent to the source queue before it is deleted from the DLQ. So a failure
    in between leaves a copy in both queues rather than none, which the idempotent consumers
    accept. The run stops at the first batch with a failed send or delete, or when the DLQ is
    empty.
    """
    result = ReplayResult()
    while len(result.moved) < limit:
        received = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=min(MAX_BATCH, limit - len(result.moved)),
            VisibilityTimeout=REPLAY_VISIBILITY_SECONDS,
            WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return result

        batch_moved = _move_batch(sqs, dlq_url, source_url, received, result)
        if on_moved is not None and batch_moved:
            on_moved(batch_moved)
        if result.not_sent or result.not_deleted:
            return result
    return result


def _move_batch(
    sqs: Any, dlq_url: str, source_url: str, messages: list[dict[str, Any]], result: ReplayResult
) -> int:
    by_entry = {str(index): message for index, message in enumerate(messages)}
    sent = sqs.send_message_batch(
        QueueUrl=source_url,
        Entries=[_send_entry(entry_id, message) for entry_id, message in by_entry.items()],
    )
    result.not_sent.extend(
        by_entry[failure["Id"]]["MessageId"] for failure in sent.get("Failed", [])
    )

    sent_ids = [success["Id"] for success in sent.get("Successful", [])]
    if not sent_ids:
        return 0
    deleted = sqs.delete_message_batch(
        QueueUrl=dlq_url,
        Entries=[
            {"Id": entry_id, "ReceiptHandle": by_entry[entry_id]["ReceiptHandle"]}
            for entry_id in sent_ids
        ],
    )
    not_deleted = {failure["Id"] for failure in deleted.get("Failed", [])}
    result.not_deleted.extend(by_entry[entry_id]["MessageId"] for entry_id in sorted(not_deleted))
    moved = [
        by_entry[entry_id]["MessageId"] for entry_id in sent_ids if entry_id not in not_deleted
    ]
    result.moved.extend(moved)
    return len(moved)


def _send_entry(entry_id: str, message: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message["Body"]}
    attributes = {
        name: {key: value for key, value in attribute.items() if not key.endswith("ListValues")}
        for name, attribute in (message.get("MessageAttributes") or {}).items()
    }
    if attributes:
        entry["MessageAttributes"] = attributes
    return entry
