"""SMS segment counter: picks GSM-7 or UCS-2 and counts the parts a text is sent in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

SmsEncoding = Literal["GSM-7", "UCS-2"]

# GSM 7-bit default alphabet (3GPP TS 23.038), without the escape code 0x1B. Code 0x09 is the
# capital Ç as the 23.038 table prints it (Unicode's GSM0338.TXT maps it to the small ç), so ç
# counts as non-GSM here and forces UCS-2.
GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table (3GPP TS 23.038): each character is sent as the escape
# septet followed by its own septet, so it costs two septets.
GSM7_EXTENSION: Final = frozenset("\f^{}\\[]~|€")

# Capacity per segment. A multipart message loses room to the concatenation header (UDH).
GSM7_SINGLE: Final = 160
GSM7_PART: Final = 153
UCS2_SINGLE: Final = 70
UCS2_PART: Final = 67


@dataclass(frozen=True)
class SegmentCount:
    """The encoding of a text and the segments it takes.

    ``units`` are septets for GSM-7 and UTF-16 code units for UCS-2. ``per_segment`` is the
    capacity that applied: 160 or 70 for a single message, 153 or 67 per part otherwise.
    """

    encoding: SmsEncoding
    units: int
    segments: int
    per_segment: int


def count_segments(text: str, signature: str = "") -> SegmentCount:
    """Count the segments of ``text`` sent with the carrier's ``signature`` in front of it.

    The signature (for example 【身份哨兵】, which carriers add for +86 numbers) counts against
    the budget, and a non-GSM character anywhere forces UCS-2 for the whole message.
    Raises ValueError when both ``text`` and ``signature`` are empty.
    """
    # NOTE: the signature counts once. A carrier that repeated it in every part would need more room.
    message = signature + text
    if not message:
        raise ValueError("text must not be empty: an SMS needs at least one character")

    if all(character in GSM7_BASIC or character in GSM7_EXTENSION for character in message):
        costs = [2 if character in GSM7_EXTENSION else 1 for character in message]
        return _count("GSM-7", costs, GSM7_SINGLE, GSM7_PART)

    # A character outside the Basic Multilingual Plane takes a surrogate pair (2 code units).
    costs = [2 if ord(character) > 0xFFFF else 1 for character in message]
    return _count("UCS-2", costs, UCS2_SINGLE, UCS2_PART)


def _count(encoding: SmsEncoding, costs: list[int], single: int, part: int) -> SegmentCount:
    units = sum(costs)
    if units <= single:
        return SegmentCount(encoding=encoding, units=units, segments=1, per_segment=single)

    # Each character goes whole into one part: an escape sequence or a surrogate pair that
    # would straddle a boundary moves to the next part, so a part can carry fewer units.
    segments = 1
    used = 0
    for cost in costs:
        if used + cost > part:
            segments += 1
            used = 0
        used += cost
    return SegmentCount(encoding=encoding, units=units, segments=segments, per_segment=part)
