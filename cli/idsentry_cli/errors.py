"""Errors the CLI reports as one line on stderr, with the exit status they map to."""

from __future__ import annotations

import click

EXIT_FAILURE = 1


class CliError(click.ClickException):
    """A failure the operator can act on: click prints `Error: <message>` and exits with 1."""

    exit_code = EXIT_FAILURE


class TargetError(CliError):
    """The stack to talk to is not configured, not found or not reachable."""


class ApiError(CliError):
    """The admin API responded with an error status.

    `detail` is the API's own message and `field` names the invalid input, if the API named one.
    """

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        detail: str,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
