"""Decoding untrusted JSON: every invalid document raises ValueError."""

from __future__ import annotations

import pytest

from idsentry import jsontext

pytestmark = pytest.mark.unit


def test_valid_document_decoded() -> None:
    assert jsontext.loads('{"a": [1, "二"]}') == {"a": [1, "二"]}


@pytest.mark.parametrize("opener", ["[", "{"])
def test_deep_nesting_raises_value_error(opener: str) -> None:
    depth = 100_000
    document = "[" * depth + "]" * depth if opener == "[" else '{"a":' * depth + "1" + "}" * depth

    with pytest.raises(ValueError, match="nested too deeply"):
        jsontext.loads(document)


def test_huge_integer_raises_value_error() -> None:
    with pytest.raises(ValueError):
        jsontext.loads("9" * 5000)


def test_options_passed_to_decoder() -> None:
    def reject(name: str) -> None:
        raise ValueError(name)

    with pytest.raises(ValueError, match="NaN"):
        jsontext.loads("[NaN]", parse_constant=reject)
