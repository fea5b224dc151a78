"""Unit tests for Idempotency-Key validation and request fingerprints."""

from __future__ import annotations

import re

import pytest

from idsentry.errors import FieldProblem, RequestValidationError
from idsentry.services.idempotency import request_fingerprint, validate_key

pytestmark = pytest.mark.unit

BODY = b'{"plan":"monthly"}'


@pytest.mark.parametrize(
    "key",
    ["a", "!", "~" * 255, "0f8fad5b-d9cb-469f-a165-70867728950e", "key_1.2:3/4=5"],
)
def test_key_accepted(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key",
    ["", " ", "a b", " key", "key\n", "\tkey", "a" * 256, "密钥", "key\x7f", "clé"],
)
def test_key_rejected(key: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        validate_key(key)

    assert caught.value.problems == [FieldProblem("Idempotency-Key", "idempotency.key_invalid")]


def test_fingerprint_stable() -> None:
    first = request_fingerprint("POST", "/v1/signups", BODY)

    assert first == request_fingerprint("POST", "/v1/signups", BODY)
    assert re.fullmatch(r"[0-9a-f]{64}", first)


def test_fingerprint_method_case() -> None:
    assert request_fingerprint("post", "/v1/signups", BODY) == request_fingerprint(
        "POST", "/v1/signups", BODY
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/v1/signups", BODY),
        ("POST", "/v1/signups/", BODY),
        ("POST", "/v1/signups", b'{"plan":"annual"}'),
        ("POST", "/v1/signups", b'{"plan": "monthly"}'),
        ("POST", "/v1/signups", b""),
    ],
)
def test_fingerprint_differs(method: str, path: str, body: bytes) -> None:
    assert request_fingerprint(method, path, body) != request_fingerprint(
        "POST", "/v1/signups", BODY
    )


def test_fingerprint_parts_length_prefixed() -> None:
    # Moving bytes from the path into the body must not give the same fingerprint.
    assert request_fingerprint("POST", "/v1/a", b"bc") != request_fingerprint(
        "POST", "/v1/ab", b"c"
    )
    assert request_fingerprint("POS", "T/v1", b"") != request_fingerprint("POST", "/v1", b"")
