"""Fixtures for service tests against moto server and the emulators."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.service import LocalService

IDENTITIES = Path(__file__).resolve().parents[2] / "events" / "demo" / "identities.json"


@dataclass
class MovableClock:
    """A clock the test moves forward instead of sleeping."""

    now: datetime = field(default_factory=lambda: datetime(2026, 12, 4, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="module")
def local_service() -> Iterator[LocalService]:
    """The provisioned local stack, whose queues are polled only when a test calls run_until_idle."""
    with LocalService(port=0, identities_path=IDENTITIES, background=False) as service:
        yield service


def table_item(service: LocalService, pk: str, sk: str) -> dict[str, Any] | None:
    """Read one raw item of the main table."""
    assert service.stack is not None
    response = service.stack.runtime.client("dynamodb").get_item(
        TableName="idsentry-local", Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    )
    item: dict[str, Any] | None = response.get("Item")
    return item
