"""Human tables on stdout by default, one JSON document with `--json`, progress on stderr."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table


@dataclass
class Output:
    """Output mode of one invocation: tables on stdout, or JSON when `--json` sets `json_mode`."""

    json_mode: bool = False

    def stdout(self) -> Console:
        # Built per call, so that a console never keeps a stream that a test runner replaced.
        return Console(highlight=False, markup=False, soft_wrap=True)

    def stderr(self) -> Console:
        return Console(stderr=True, highlight=False, markup=False)

    def emit(self, document: Any, render: Callable[[Console], None]) -> None:
        """Write `document` as JSON, or call `render` with the stdout console."""
        if self.json_mode:
            click.echo(json.dumps(document, ensure_ascii=False, indent=2, default=str))
            return
        render(self.stdout())

    def say(self, text: str) -> None:
        """Write one line of progress for a person; JSON mode keeps stdout for the document."""
        if not self.json_mode:
            self.stdout().print(text)

    def byte_progress(self) -> Progress:
        """Return a progress bar over bytes (for uploads), drawn on stderr."""
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=self.stderr(),
            disable=self.json_mode,
        )

    def count_progress(self) -> Progress:
        """Return a progress bar over a count (chunks, messages), drawn on stderr."""
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.stderr(),
            disable=self.json_mode,
        )


def table(*columns: str, title: str | None = None) -> Table:
    """Return a table whose id columns wrap instead of being cut short."""
    result = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for column in columns:
        result.add_column(column, overflow="fold")
    return result


def text(value: Any, name: str = "") -> str:
    """Format one cell: empty for None, lists joined by commas, `*_at` epoch seconds in UTC."""
    if value is None:
        return ""
    if name.endswith("_at") and isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(item) for item in value)
    return str(value)
