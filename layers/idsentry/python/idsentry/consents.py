"""Consent kinds, the current version of each text, and when each is required."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class ConsentKind(StrEnum):
    """Consents a subscriber gives at signup, each recorded with its text version and time."""

    TERMS = "terms"
    # PIPL article 29: sensitive personal information needs a separate consent.
    SENSITIVE_PERSONAL_INFORMATION = "sensitive_personal_information"
    # PIPL article 39: providing personal information abroad needs a separate consent.
    CROSS_BORDER_TRANSFER = "cross_border_transfer"


# The version a consent must name to count. The texts are in docs/consents/; a changed text
# gets a new file and a new version here.
CURRENT_VERSIONS: Final[dict[ConsentKind, str]] = {
    ConsentKind.TERMS: "2026-12-01",
    ConsentKind.SENSITIVE_PERSONAL_INFORMATION: "2026-12-01",
    ConsentKind.CROSS_BORDER_TRANSFER: "2026-12-01",
}

MISSING_CODES: Final[dict[ConsentKind, str]] = {
    ConsentKind.TERMS: "consent.terms_required",
    ConsentKind.SENSITIVE_PERSONAL_INFORMATION: "consent.sensitive_required",
    ConsentKind.CROSS_BORDER_TRANSFER: "consent.cross_border_required",
}


def required_consents(cross_border: bool) -> list[ConsentKind]:
    """Return the consents a signup needs in a deployment that is or is not cross-border."""
    required = [ConsentKind.TERMS, ConsentKind.SENSITIVE_PERSONAL_INFORMATION]
    if cross_border:
        required.append(ConsentKind.CROSS_BORDER_TRANSFER)
    return required
