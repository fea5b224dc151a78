"""Bodies over the HTTP API's 10 MiB payload limit, sent over HTTP to the local stack.

API Gateway rejects such a request with 413 before any function runs, and the local HTTP API
does the same. The response is the gateway's own (`{"message": ...}`), so it names no field.
Each example checks that the request got 413 and that nothing was stored or queued.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.local.http_api import MAX_BODY_BYTES
from infra.local.service import LocalService
from tests.hypothesis_profiles import examples
from tests.integration.bad_input.support import ShortRepr, StackProbe, Tally, compare

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

PATHS = (
    "/v1/signups",
    "/v1/signups/sgn_01M91B4ABG36G2R8D4PV2HM6CG/verify",
    "/v1/webhooks/stripe",
    "/v1/webhooks/twilio/status",
    "/v1/webhooks/twilio/inbound",
)


@dataclass(repr=False)
class Oversized(ShortRepr):
    """One oversized request: where it goes, how far over the limit, and its framing."""

    path: str
    excess: int
    filler: bytes
    content_type: str
    chunked: bool


oversized = st.builds(
    Oversized,
    path=st.sampled_from(PATHS),
    excess=st.integers(min_value=1, max_value=256 * 1024),
    filler=st.sampled_from([b"a", b'{"name": "', "张".encode(), b"\xff"]),
    content_type=st.sampled_from(
        ["application/json", "application/x-www-form-urlencoded", "text/plain"]
    ),
    chunked=st.booleans(),
)


def test_oversized_bodies(input_service: LocalService, probe: StackProbe) -> None:
    tally = Tally("input.oversized_bodies", "Bodies over the HTTP API's 10 MiB limit, over HTTP")

    @settings(max_examples=examples(fast=3, full=10))
    @given(case=oversized)
    def check(case: Oversized) -> None:
        size = MAX_BODY_BYTES + case.excess
        body = (case.filler * (size // len(case.filler) + 1))[:size]
        headers = {"content-type": case.content_type}
        before = probe.state()
        data = iter([body[: size // 2], body[size // 2 :]]) if case.chunked else body
        response = requests.post(
            input_service.base_url + case.path, data=data, headers=headers, timeout=60
        )
        change = compare(before, probe.state())
        tally.count(response.status_code)
        assert response.status_code == 413, response.text[:200]
        assert response.json() == {"message": "Request Entity Too Large"}
        if not change.empty:
            tally.stray_writes += 1
        assert change.empty, change.describe()

    try:
        check()
    finally:
        tally.record()
    tally.check_totals()
