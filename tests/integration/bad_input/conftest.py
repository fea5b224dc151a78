"""One local stack for every bad-input scenario, polled only when a test drains its queues."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.local.service import LocalService
from tests.integration.bad_input.support import StackProbe
from tests.integration.conftest import IDENTITIES


@pytest.fixture(scope="package")
def input_service() -> Iterator[LocalService]:
    """The provisioned local stack, shared by the bad-input modules to start it once."""
    with LocalService(port=0, identities_path=IDENTITIES, background=False) as service:
        yield service


@pytest.fixture(scope="package")
def probe(input_service: LocalService) -> StackProbe:
    """Snapshots of the shared stack's tables, queues and buckets."""
    return StackProbe(input_service)
