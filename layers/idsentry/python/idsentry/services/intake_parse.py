"""Dataset intake without AWS: encoding check, chunk planning, row parsing and fingerprinting.

The intake function calls plan_intake() once per data file and sends one chunk job per
range. A chunk worker streams its range into ingest_records(), which returns the distinct
fingerprints and the counts. Raw values never leave this module: results contain
fingerprints, counts and reason codes only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from idsentry.crypto import Pepper
from idsentry.identifiers import IdentifierKind
from idsentry.services.intake_chunks import (
    DEFAULT_CHUNK_BYTES,
    ByteRange,
    HeaderError,
    IntakePlan,
    ReadRange,
    RowLayout,
    plan_intake,
    plan_ranges,
    read_layout,
)
from idsentry.services.intake_encoding import (
    ENCODING_SAMPLE_BYTES,
    EncodingMismatchError,
    check_encoding,
    describe_bytes,
)
from idsentry.services.intake_normalize import (
    LeakedValueNormalizer,
    Rejected,
    leaked_bank_card,
    leaked_email,
    leaked_mobile,
)
from idsentry.services.intake_rows import (
    READ_BLOCK_BYTES,
    BinaryReader,
    Record,
    iter_records,
)

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "ENCODING_SAMPLE_BYTES",
    "BinaryReader",
    "ByteRange",
    "ChunkResult",
    "EncodingMismatchError",
    "HeaderError",
    "IntakePlan",
    "LeakedValueNormalizer",
    "ReadRange",
    "Record",
    "Rejected",
    "RowLayout",
    "check_encoding",
    "describe_bytes",
    "fingerprint_function",
    "ingest_records",
    "iter_records",
    "leaked_bank_card",
    "leaked_email",
    "leaked_mobile",
    "plan_intake",
    "plan_ranges",
    "read_layout",
]

logger = logging.getLogger(__name__)

NO_VALID_IDENTIFIER: Final = "no_valid_identifier"
LEGACY_ID_NUMBER: Final = "id_number.legacy_15_digit"

# How many records pass between calls to should_stop.
_STOP_CHECK_INTERVAL: Final = 1024
_CHINA_TIME_ZONE: Final = ZoneInfo("Asia/Shanghai")


@dataclass
class ChunkResult:
    """Result of one ingest_records call: distinct fingerprints and counts by reason.

    Fingerprints are hex HMAC-SHA256 values under ``pepper_version``, grouped by kind.
    ``end_offset`` is the absolute offset after the last record processed. ``complete`` is
    False when should_stop ended the call early, and the next call resumes at
    ``end_offset``.
    """

    pepper_version: str
    start_offset: int
    end_offset: int
    complete: bool = False
    fingerprints: dict[IdentifierKind, set[str]] = field(
        default_factory=lambda: {kind: set() for kind in IdentifierKind}
    )
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: Counter[str] = field(default_factory=Counter)
    values_accepted: Counter[str] = field(default_factory=Counter)
    values_rejected: Counter[str] = field(default_factory=Counter)
    values_converted: Counter[str] = field(default_factory=Counter)

    @property
    def next_offset(self) -> int | None:
        """The offset where the next invocation resumes, or None when the range is done."""
        return None if self.complete else self.end_offset

    @property
    def distinct_fingerprints(self) -> int:
        return sum(len(values) for values in self.fingerprints.values())

    def entries(self) -> Iterator[tuple[IdentifierKind, str, str]]:
        """Yield each distinct (kind, pepper version, fingerprint) entry."""
        for kind, values in self.fingerprints.items():
            for value in values:
                yield kind, self.pepper_version, value

    def summary(self) -> dict[str, Any]:
        """Return the counts as plain JSON types, for a log line or the intake job record."""
        return {
            "start_offset": self.start_offset,
            "end_offset": self.end_offset,
            "complete": self.complete,
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_rejected": dict(self.rows_rejected),
            "values_accepted": dict(self.values_accepted),
            "values_rejected": dict(self.values_rejected),
            "values_converted": dict(self.values_converted),
            "distinct_fingerprints": {
                str(kind): len(values) for kind, values in self.fingerprints.items()
            },
        }


def ingest_records(
    source: bytes | BinaryReader,
    layout: RowLayout,
    pepper: Pepper,
    *,
    start_offset: int,
    should_stop: Callable[[], bool] | None = None,
    today: date | None = None,
) -> ChunkResult:
    """Normalize and fingerprint every identifier in one chunk of a breach file.

    ``source`` is the chunk's bytes or a stream of them (an S3 ranged GET body), starting at
    ``start_offset`` of the data file, which must be a chunk range start or an earlier
    result's ``end_offset``. Malformed records and invalid values are counted by reason and
    skipped. ``should_stop`` is called every 1,024 records. When it returns True, the call
    returns with ``complete`` False and the caller resumes from ``end_offset`` (a stop after
    the last record leaves nothing to resume, and that call returns at once). ``today``
    (default: the current date in Asia/Shanghai) bounds birth dates in ID numbers.

    Raises EncodingMismatchError when the first 1 MiB of the chunk does not match the
    layout's encoding.
    """
    read = _checked_reader(source, layout)
    normalizer = LeakedValueNormalizer(today or datetime.now(_CHINA_TIME_ZONE).date())
    result = ChunkResult(
        pepper_version=pepper.current, start_offset=start_offset, end_offset=start_offset
    )
    # Per kind: the normalizer, the fingerprint function and the set that collects results.
    steps = {
        kind: (
            normalizer.for_kind(kind),
            fingerprint_function(pepper, kind),
            result.fingerprints[kind].add,
        )
        for kind in IdentifierKind
    }
    values_accepted = result.values_accepted
    values_rejected = result.values_rejected
    rows_rejected = result.rows_rejected
    rows_read = rows_accepted = 0
    end_offset = start_offset

    next_stop_check = _STOP_CHECK_INTERVAL
    for record_end, values, rejected, problem in iter_records(
        read, layout, start_offset=start_offset
    ):
        rows_read += 1
        end_offset = record_end
        if problem is not None:
            rows_rejected[problem] += 1
        else:
            for kind, reason in rejected:
                values_rejected[f"{kind}.{reason}"] += 1
            accepted = False
            for kind, raw in values:
                normalize, fingerprint, collect = steps[kind]
                canonical = normalize(raw)
                if isinstance(canonical, str):
                    collect(fingerprint(canonical))
                    values_accepted[kind] += 1
                    accepted = True
                else:
                    values_rejected[canonical.reason] += 1
            if accepted:
                rows_accepted += 1
            else:
                rows_rejected[NO_VALID_IDENTIFIER] += 1

        if rows_read == next_stop_check:
            next_stop_check += _STOP_CHECK_INTERVAL
            if should_stop is not None and should_stop():
                break
    else:
        result.complete = True

    result.rows_read = rows_read
    result.rows_accepted = rows_accepted
    result.end_offset = end_offset
    if normalizer.legacy_id_numbers:
        result.values_converted[LEGACY_ID_NUMBER] = normalizer.legacy_id_numbers
    logger.info(
        "Chunk ingested",
        extra={
            "start_offset": start_offset,
            "end_offset": result.end_offset,
            "complete": result.complete,
            "rows_read": result.rows_read,
            "rows_accepted": result.rows_accepted,
        },
    )
    return result


def fingerprint_function(pepper: Pepper, kind: IdentifierKind) -> Callable[[str], str]:
    """Return a function equal to ``pepper.fingerprint(kind, canonical).value`` (current version)."""
    return pepper.fingerprinter(kind)


def _checked_reader(source: bytes | BinaryReader, layout: RowLayout) -> BinaryReader | bytes:
    """Check the encoding of the chunk's first block and return a source that replays it."""
    if isinstance(source, bytes | bytearray | memoryview):
        check_encoding(bytes(source[:READ_BLOCK_BYTES]), layout.encoding)
        return bytes(source)

    first = source.read(READ_BLOCK_BYTES)
    check_encoding(first, layout.encoding)
    return _ReplayReader(first, source)


class _ReplayReader:
    """A stream that returns ``first`` before reading on from ``rest``."""

    def __init__(self, first: bytes, rest: BinaryReader) -> None:
        self._first: bytes | None = first
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        if self._first:
            first, self._first = self._first, None
            return first
        return self._rest.read(size)
