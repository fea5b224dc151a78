"""The source address that abuse limits count comes from API Gateway, never from a request header.

Clients can send X-Forwarded-For and its relatives with any value, and API Gateway passes them
on, so a handler that read them would let one client pose as many. Only the local HTTP API may
take the address from X-Forwarded-For, and only when LocalService is started with
`trust_forwarded_for` (tests/integration/test_local_http_api.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from idsentry.http import parse_http_event

pytestmark = pytest.mark.unit

REPOSITORY = Path(__file__).resolve().parents[2]
SAMPLE = REPOSITORY / "events" / "http" / "signup_default_stage.json"
# Header names that carry a client address: a name in quotes for the bare `Forwarded` of RFC 7239,
# because the word alone also occurs in prose.
FORWARDING_HEADERS = re.compile(
    r"x-forwarded-for|x-real-ip|true-client-ip|cf-connecting-ip|x-client-ip|[\"']forwarded[\"']",
    re.IGNORECASE,
)


def test_source_ip_from_request_context() -> None:
    event = json.loads(SAMPLE.read_text(encoding="utf-8"))
    event["requestContext"]["http"]["sourceIp"] = "192.0.2.10"
    event["headers"].update(
        {
            "x-forwarded-for": "198.51.100.1, 198.51.100.2",
            "forwarded": "for=198.51.100.3",
            "x-real-ip": "198.51.100.4",
            "true-client-ip": "198.51.100.5",
        }
    )

    request = parse_http_event(event)

    assert request.source_ip == "192.0.2.10"


def test_deployed_code_reads_no_forwarding_header() -> None:
    sources = [
        *sorted((REPOSITORY / "layers").rglob("*.py")),
        *sorted((REPOSITORY / "functions").rglob("*.py")),
        REPOSITORY / "template.yaml",
    ]
    mentions = [
        f"{path.relative_to(REPOSITORY)}:{number}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if FORWARDING_HEADERS.search(line)
    ]

    assert len(sources) > 10
    assert mentions == [], "deployed code must take the client address from sourceIp only"
