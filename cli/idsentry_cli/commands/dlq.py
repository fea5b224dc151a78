"""`idsentry dlq`: depths of the dead-letter queues, and moving messages back to their source."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from idsentry_cli import dlq as dlq_logic
from idsentry_cli.context import CliContext, json_option, pass_context
from idsentry_cli.errors import CliError
from idsentry_cli.output import table, text


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


@click.group()
def dlq() -> None:
    """Inspect and replay the stack's dead-letter queues."""


@dlq.command(name="list")
@json_option
@pass_context
def list_queues(shared: CliContext) -> None:
    """List every dead-letter queue with its depth and the queue that feeds it."""
    resolved = shared.target()
    sqs = resolved.client("sqs")
    queues = dlq_logic.dead_letter_queues(resolved.outputs)
    if not queues:
        raise CliError(f"{resolved.description} lists no dead-letter queue in its outputs")

    listed = []
    for queue in queues:
        depth = dlq_logic.queue_depth(sqs, queue.url)
        sources = dlq_logic.source_queues(sqs, queue.url)
        listed.append(
            {
                "name": queue.name,
                "logical_id": queue.logical_id,
                "url": queue.url,
                "messages": depth.messages,
                "in_flight": depth.in_flight,
                "sources": [_queue_name(url) for url in sources],
            }
        )
    shared.output.emit({"queues": listed}, lambda console: _render_queues(console, listed))


@dlq.command()
@click.argument("queue")
@click.option(
    "--max",
    "max_messages",
    type=click.IntRange(min=1),
    help="Move at most this many messages (default: the depth when the command starts).",
)
@click.option("--to", "source_name", help="Source queue to move to, if several feed the DLQ.")
@click.option("--dry-run", is_flag=True, help="Show what would move; receive nothing.")
@json_option
@pass_context
def replay(
    shared: CliContext,
    queue: str,
    max_messages: int | None,
    source_name: str | None,
    dry_run: bool,
) -> None:
    """Move messages of dead-letter queue QUEUE back to its source queue.

    QUEUE is a queue name or logical id from `idsentry dlq list`. Messages are moved one batch
    at a time (receive, send, delete); only their ids and counts are shown.
    """
    resolved = shared.target()
    sqs = resolved.client("sqs")
    try:
        found = dlq_logic.find_dead_letter_queue(
            dlq_logic.dead_letter_queues(resolved.outputs), queue
        )
    except dlq_logic.QueueNotFoundError as exc:
        raise click.BadParameter(str(exc), param_hint="QUEUE") from exc
    try:
        source = dlq_logic.choose_source(
            found, dlq_logic.source_queues(sqs, found.url), source_name
        )
    except dlq_logic.ReplayError as exc:
        raise CliError(str(exc)) from exc

    depth = dlq_logic.queue_depth(sqs, found.url)
    limit = max_messages if max_messages is not None else depth.messages
    document: dict[str, Any] = {
        "queue": found.name,
        "source": _queue_name(source),
        "messages": depth.messages,
        "limit": limit,
        "dry_run": dry_run,
    }
    output = shared.output
    if dry_run:
        output.emit(
            document,
            lambda console: console.print(
                f"would move up to {min(limit, depth.messages)} of {depth.messages} messages "
                f"from {found.name} to {_queue_name(source)}"
            ),
        )
        return

    if limit == 0:
        document.update(
            {
                "moved": 0,
                "moved_message_ids": [],
                "not_sent_message_ids": [],
                "not_deleted_message_ids": [],
            }
        )
        output.emit(
            document, lambda console: console.print(f"{found.name} is empty: nothing to move")
        )
        return

    with output.count_progress() as progress:
        task = progress.add_task(f"moving to {_queue_name(source)}", total=limit)
        result = dlq_logic.replay_messages(
            sqs, found.url, source, limit, on_moved=lambda moved: progress.advance(task, moved)
        )
    document.update(
        {
            "moved": len(result.moved),
            "moved_message_ids": result.moved,
            "not_sent_message_ids": result.not_sent,
            "not_deleted_message_ids": result.not_deleted,
        }
    )
    output.emit(document, lambda console: _render_replay(console, document))
    if result.not_sent or result.not_deleted:
        raise click.exceptions.Exit(1)


def _render_queues(console: Console, listed: list[dict[str, Any]]) -> None:
    rows = table("Queue", "Messages", "In flight", "Source queues")
    for queue in listed:
        rows.add_row(
            queue["name"], text(queue["messages"]), text(queue["in_flight"]), text(queue["sources"])
        )
    console.print(rows)


def _render_replay(console: Console, document: dict[str, Any]) -> None:
    console.print(
        f"moved {document['moved']} messages from {document['queue']} to {document['source']}"
    )
    if document["not_sent_message_ids"]:
        console.print(
            f"{len(document['not_sent_message_ids'])} messages could not be sent and stay in "
            f"{document['queue']}: " + ", ".join(document["not_sent_message_ids"])
        )
    if document["not_deleted_message_ids"]:
        console.print(
            f"{len(document['not_deleted_message_ids'])} messages were sent but not deleted, so "
            f"they are in both queues: " + ", ".join(document["not_deleted_message_ids"])
        )
