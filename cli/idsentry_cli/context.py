"""State shared by the commands of one invocation: the chosen stack and the output mode."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click

from idsentry_cli.api import AdminApi
from idsentry_cli.errors import ApiError
from idsentry_cli.output import Output
from idsentry_cli.target import Target, deployed_target, local_target


@dataclass
class CliContext:
    """The global options; the target is resolved on first use, so `--help` needs no stack."""

    state_file: Path
    stack: str | None = None
    region: str | None = None
    profile: str | None = None
    output: Output = field(default_factory=Output)
    _target: Target | None = None
    _api: AdminApi | None = None

    @property
    def resolved_target(self) -> Target | None:
        """The target if a command has resolved it already, else None."""
        return self._target

    def target(self) -> Target:
        """Return the deployed stack named by --stack, else the local stack."""
        if self._target is None:
            if self.stack is not None:
                self._target = deployed_target(self.stack, self.region, self.profile)
            else:
                self._target = local_target(self.state_file)
        return self._target

    def api(self) -> AdminApi:
        """Return a client of the target's admin API."""
        if self._api is None:
            target = self.target()
            self._api = AdminApi(target.api_url, target.api_auth)
        return self._api


def _enable_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    shared = ctx.find_object(CliContext)
    if value and shared is not None:
        shared.output.json_mode = True


def json_option[F: Callable[..., Any]](command: F) -> F:
    """Add `--json` to a command, as well as to the `idsentry` group itself."""
    return click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        callback=_enable_json,
        help="Write the result as one JSON document instead of a table.",
    )(command)


pass_context = click.make_pass_decorator(CliContext)


def raise_input_error(error: ApiError, options: Mapping[str, str]) -> NoReturn:
    """Re-raise an API rejection of one input field as a usage error naming its option."""
    option = options.get(error.field) if error.field is not None else None
    if error.status == 400 and option is not None:
        raise click.BadParameter(error.detail, param_hint=option) from error
    raise error
