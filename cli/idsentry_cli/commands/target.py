"""`idsentry target`: which stack the CLI talks to, and whether it responds."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from idsentry_cli.context import CliContext, json_option, pass_context
from idsentry_cli.dlq import dead_letter_queues


@click.command()
@json_option
@pass_context
def target(shared: CliContext) -> None:
    """Show the stack, its API and AWS identity, and check that both respond."""
    resolved = shared.target()
    identity = resolved.client("sts").get_caller_identity()
    api_status = shared.api().probe()

    document: dict[str, Any] = {
        "kind": resolved.kind,
        "description": resolved.description,
        "stack_name": resolved.stack_name,
        "stack_status": resolved.stack_status,
        "state_file": str(resolved.state_file) if resolved.state_file else None,
        "region": resolved.region,
        "account": identity.get("Account"),
        "caller_arn": identity.get("Arn"),
        "api_url": resolved.api_url,
        "api_status": api_status,
        "aws_endpoint_url": resolved.endpoint_url,
        "intake_bucket": resolved.outputs.get("IntakeBucketName"),
        "dead_letter_queues": len(dead_letter_queues(resolved.outputs)),
    }

    def render(console: Console) -> None:
        console.print(f"Target: {resolved.description}")
        if resolved.stack_status:
            console.print(f"Stack status: {resolved.stack_status}")
        console.print(f"Account: {document['account']} as {document['caller_arn']}")
        console.print(f"Admin API: {resolved.api_url} (responded with HTTP {api_status})")
        if resolved.endpoint_url:
            console.print(f"AWS endpoint: {resolved.endpoint_url}")
        console.print(f"Intake bucket: {document['intake_bucket'] or 'not in the outputs'}")
        console.print(f"Dead-letter queues: {document['dead_letter_queues']}")

    shared.output.emit(document, render)
