"""The `idsentry` command group: global options, the commands, and how failures are reported.

Exit status: 0 success, 1 failure (an unreachable stack, an API or AWS error, a rejected intake
job), 2 invalid usage (an unknown option, a missing file, an input the API rejects by field).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import botocore.exceptions
import click
import requests

from idsentry_cli.commands.deliveries import deliveries
from idsentry_cli.commands.dlq import dlq
from idsentry_cli.commands.dossier import dossier
from idsentry_cli.commands.intake import intake
from idsentry_cli.commands.reconcile import reconcile
from idsentry_cli.commands.reports import reports
from idsentry_cli.commands.reviews import reviews
from idsentry_cli.commands.target import target
from idsentry_cli.context import CliContext
from idsentry_cli.errors import CliError, TargetError
from idsentry_cli.output import Output
from idsentry_cli.target import LOCAL_STATE_FILE

AWS_CONNECTION_ERRORS = (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)
API_CONNECTION_ERRORS = (requests.ConnectionError, requests.Timeout)


class IdsentryGroup(click.Group):
    """A command group that turns connection, credential and AWS errors into one-line errors."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except botocore.exceptions.NoCredentialsError as exc:
            raise TargetError(
                "no AWS credentials found: sign in (for example `aws sso login`), set "
                "AWS_PROFILE or --profile, or pass --local to use the local stack of `make run`"
            ) from exc
        except AWS_CONNECTION_ERRORS as exc:
            url = str(exc.kwargs.get("endpoint_url") or "the AWS endpoint")
            raise TargetError(_unreachable(ctx, url)) from exc
        except API_CONNECTION_ERRORS as exc:
            request = exc.request
            url = str(request.url) if request is not None and request.url else "the admin API"
            raise TargetError(_unreachable(ctx, url)) from exc
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            raise CliError(
                f"AWS {exc.operation_name} failed: {error.get('Code')}: {error.get('Message')}"
            ) from exc


def _unreachable(ctx: click.Context, url: str) -> str:
    shared = ctx.find_object(CliContext)
    resolved = shared.resolved_target if shared is not None else None
    if resolved is None:
        return f"cannot connect to {url}: check the network connection and --region"
    return resolved.unreachable_hint(url)


@click.group(cls=IdsentryGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--local",
    is_flag=True,
    help="Use the local stack of `make run` (the default when no --stack is given).",
)
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=LOCAL_STATE_FILE,
    envvar="IDSENTRY_LOCAL_STATE",
    help="The local stack's state file, which `make run` writes (default .local/stack.json).",
)
@click.option(
    "--stack",
    envvar="IDSENTRY_STACK",
    help="Name of a deployed CloudFormation stack to use (env IDSENTRY_STACK).",
)
@click.option("--region", help="AWS region of --stack (default: AWS_REGION or the profile's).")
@click.option("--profile", help="AWS profile whose credentials to use with --stack.")
@click.option(
    "--json", "json_output", is_flag=True, help="Write results as JSON instead of tables."
)
@click.pass_context
def cli(
    ctx: click.Context,
    local: bool,
    state_file: Path,
    stack: str | None,
    region: str | None,
    profile: str | None,
    json_output: bool,
) -> None:
    """Operate an IDSentry stack: intake, review, DLQs, reconciliations, reports and dossiers."""
    stack_from_environment = (
        ctx.get_parameter_source("stack") == click.core.ParameterSource.ENVIRONMENT
    )
    if local and stack is not None and not stack_from_environment:
        raise click.UsageError("pass either --local or --stack, not both")
    if local:
        stack = None
    if stack is None and (region is not None or profile is not None):
        raise click.UsageError("--region and --profile apply to a deployed stack: add --stack NAME")

    ctx.obj = CliContext(
        state_file=state_file,
        stack=stack,
        region=region,
        profile=profile,
        output=Output(json_mode=json_output),
    )


cli.add_command(target)
cli.add_command(intake)
cli.add_command(reviews)
cli.add_command(dlq)
cli.add_command(deliveries)
cli.add_command(reconcile)
cli.add_command(reports)
cli.add_command(dossier)


def main() -> None:
    """Run the CLI as the `idsentry` console script."""
    cli(prog_name="idsentry")
