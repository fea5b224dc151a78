"""Unit tests for prefixed, time-ordered identifiers."""

from __future__ import annotations

import re

import pytest

from idsentry.ids import new_id

pytestmark = pytest.mark.unit

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MILLISECONDS = 1_800_000_000_123


def decode(text: str) -> int:
    value = 0
    for character in text:
        value = value * 32 + CROCKFORD.index(character)
    return value


def fixed_clock(monkeypatch: pytest.MonkeyPatch, milliseconds: int, random: bytes) -> None:
    monkeypatch.setattr("idsentry.ids.time.time_ns", lambda: milliseconds * 1_000_000 + 999_999)
    monkeypatch.setattr("idsentry.ids.os.urandom", lambda size: random[:size])


def test_id_shape() -> None:
    value = new_id("sgn")

    assert re.fullmatch(r"sgn_[0-9A-HJKMNP-TV-Z]{26}", value)


def test_id_prefixes() -> None:
    assert new_id("sub").startswith("sub_")
    assert new_id("code").startswith("code_")


def test_id_encodes_time_and_random(monkeypatch: pytest.MonkeyPatch) -> None:
    random = bytes(range(1, 11))
    fixed_clock(monkeypatch, MILLISECONDS, random)

    body = new_id("sgn").removeprefix("sgn_")

    assert decode(body[:10]) == MILLISECONDS
    assert decode(body[10:]) == int.from_bytes(random, "big")


def test_ids_sort_by_time(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed_clock(monkeypatch, MILLISECONDS, b"\xff" * 10)
    earlier = new_id("sgn")
    fixed_clock(monkeypatch, MILLISECONDS + 1, b"\x00" * 10)
    later = new_id("sgn")

    assert earlier < later


def test_ids_same_millisecond_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("idsentry.ids.time.time_ns", lambda: MILLISECONDS * 1_000_000)

    values = {new_id("sgn") for _ in range(100)}

    assert len(values) == 100
    assert len({value[4:14] for value in values}) == 1
