"""Unit tests for the consent kinds, their versions and when each is required."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from idsentry.consents import CURRENT_VERSIONS, MISSING_CODES, ConsentKind, required_consents
from idsentry.i18n import MESSAGES

pytestmark = pytest.mark.unit


def test_required_without_cross_border() -> None:
    assert required_consents(cross_border=False) == [
        ConsentKind.TERMS,
        ConsentKind.SENSITIVE_PERSONAL_INFORMATION,
    ]


def test_required_with_cross_border() -> None:
    assert required_consents(cross_border=True) == [
        ConsentKind.TERMS,
        ConsentKind.SENSITIVE_PERSONAL_INFORMATION,
        ConsentKind.CROSS_BORDER_TRANSFER,
    ]


@pytest.mark.parametrize("kind", list(ConsentKind))
def test_kind_has_version(kind: ConsentKind) -> None:
    # Versions are dates, so that they sort and show when the text changed.
    assert date.fromisoformat(CURRENT_VERSIONS[kind])
    assert len(CURRENT_VERSIONS[kind]) <= 32


@pytest.mark.parametrize("kind", list(ConsentKind))
def test_kind_has_missing_message(kind: ConsentKind) -> None:
    assert MISSING_CODES[kind] in MESSAGES


def test_missing_codes_distinct() -> None:
    assert len(set(MISSING_CODES.values())) == len(ConsentKind)


CONSENT_FILES = {
    ConsentKind.TERMS: "terms",
    ConsentKind.SENSITIVE_PERSONAL_INFORMATION: "sensitive",
    ConsentKind.CROSS_BORDER_TRANSFER: "cross-border",
}


@pytest.mark.parametrize("kind", list(ConsentKind))
def test_current_version_has_text(kind: ConsentKind) -> None:
    root = Path(__file__).resolve().parents[2] / "docs" / "consents"
    text_file = root / f"{CONSENT_FILES[kind]}-{CURRENT_VERSIONS[kind]}.md"

    text = text_file.read_text(encoding="utf-8")

    assert "## 简体中文" in text
    assert "## English" in text
