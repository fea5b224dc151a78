"""Intake planning: read a breach file's header once and split the file into chunk byte ranges.

Chunk boundaries fall right after a line feed (0x0A). In every supported encoding that byte
is only ever a line feed, never part of a multi-byte character. Every byte of a multi-byte
UTF-8 sequence is 0x80 or above (RFC 3629, section 3). A GBK or GB18030 lead byte is
0x81-0xFE, a two-byte trail byte 0x40-0xFE, and the second and fourth bytes of a GB18030
four-byte sequence 0x30-0x39 (the byte ranges listed in .NET's GB18030Encoding.cs, code page
54936). So a boundary never splits a character, and it never splits a record unless a quoted
CSV field contains a line break. For such files (``multiline_fields``) the plan is
one range, which a chain of invocations reads with checkpoints.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from idsentry.identifiers import IdentifierKind
from idsentry.models.breach import Encoding, FileFormat, IntakeManifest, normalize_label
from idsentry.services.intake_encoding import (
    ENCODING_SAMPLE_BYTES,
    GB_ENCODINGS,
    UTF8_BOM,
    check_encoding,
)

ReadRange = Callable[[int, int], bytes]
"""Return the bytes from ``start`` (inclusive) to ``end`` (exclusive) of the data file."""

# The chunk size bounds a worker's memory: its set of distinct fingerprints grows with the
# number of rows in the chunk (an estimated 130 bytes per fingerprint in CPython 3.12).
DEFAULT_CHUNK_BYTES: Final = 32 << 20
# Bytes read at a time while looking for the line feed after a boundary.
_PROBE_BYTES: Final = 64 << 10
MAX_HEADER_BYTES: Final = 64 << 10

_DELIMITERS: Final = {"csv": ",", "tsv": "\t"}


class HeaderError(ValueError):
    """The header row of a CSV/TSV file is missing, unreadable or lacks a manifest column.

    Column names in the message come from the manifest, never from data rows.
    """

    field = "columns"


class ByteRange(BaseModel):
    """A half-open byte range [start, end) of the data file, read by one chunk job."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    start: int = Field(ge=0)
    end: int = Field(ge=0)

    @model_validator(mode="after")
    def _check_order(self) -> ByteRange:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self

    @property
    def length(self) -> int:
        return self.end - self.start


class RowLayout(BaseModel):
    """Everything a chunk worker needs to read rows: the format, encoding and columns.

    It contains column positions and JSON keys, never header text or data, so a chunk job can
    carry it on SQS. ``positions`` (CSV/TSV) maps a 0-based column index and ``keys``
    (JSON Lines) a normalized top-level key to the identifier kind it holds.
    """

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    format: FileFormat
    encoding: Encoding
    multiline_fields: bool = False
    data_start: int = Field(ge=0)
    field_count: int | None = Field(default=None, ge=1)
    positions: dict[int, IdentifierKind] = Field(default_factory=dict)
    keys: dict[str, IdentifierKind] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_columns(self) -> RowLayout:
        if self.format == "jsonl":
            if not self.keys or self.positions:
                raise ValueError("a jsonl layout needs keys and no positions")
        elif not self.positions or self.field_count is None:
            raise ValueError("a csv or tsv layout needs positions and field_count")
        elif max(self.positions) >= self.field_count:
            raise ValueError("positions must be smaller than field_count")
        return self

    @property
    def delimiter(self) -> str:
        """The field delimiter of CSV/TSV files."""
        return _DELIMITERS.get(self.format, ",")

    @property
    def codec(self) -> str:
        """The Python codec for bytes after the byte order mark, which the layout skips."""
        return python_codec(self.encoding)


def python_codec(encoding: str) -> str:
    """Return the codec that decodes a file's bytes after its byte order mark."""
    return "utf-8" if encoding == "utf-8-sig" else encoding


class IntakePlan(BaseModel):
    """The row layout and the chunk ranges of one data file."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    size: int = Field(ge=0)
    layout: RowLayout
    ranges: tuple[ByteRange, ...]


def plan_intake(
    size: int,
    read_range: ReadRange,
    manifest: IntakeManifest,
    *,
    target_bytes: int = DEFAULT_CHUNK_BYTES,
) -> IntakePlan:
    """Check the file's encoding, read its header and split it into chunk ranges.

    Raises EncodingMismatchError when the start of the file does not match the declared
    encoding, and HeaderError when a CSV/TSV header lacks a manifest column.
    """
    head = read_range(0, min(size, ENCODING_SAMPLE_BYTES))

    check_encoding(head, manifest.encoding)
    layout = read_layout(head, manifest, at_eof=len(head) >= size)

    ranges = plan_ranges(
        size,
        read_range,
        layout.data_start,
        target_bytes=target_bytes,
        multiline=layout.multiline_fields,
    )
    return IntakePlan(size=size, layout=layout, ranges=tuple(ranges))


def read_layout(head: bytes, manifest: IntakeManifest, *, at_eof: bool) -> RowLayout:
    """Build the row layout from the first bytes of the file.

    For CSV/TSV, the first record is the header and data starts after it. ``at_eof`` tells
    that ``head`` is the whole file, so a header without a final line feed is complete.
    A UTF-8 byte order mark is skipped for both UTF-8 encodings.
    """
    start = (
        len(UTF8_BOM) if head.startswith(UTF8_BOM) and manifest.encoding not in GB_ENCODINGS else 0
    )
    identifier_columns = manifest.identifier_columns

    if manifest.format == "jsonl":
        keys = {normalize_label(column): kind for column, kind in identifier_columns.items()}
        return RowLayout(format="jsonl", encoding=manifest.encoding, data_start=start, keys=keys)

    header, data_start = _read_header(
        head,
        start,
        delimiter=_DELIMITERS[manifest.format],
        encoding=manifest.encoding,
        at_eof=at_eof,
    )
    return RowLayout(
        format=manifest.format,
        encoding=manifest.encoding,
        multiline_fields=manifest.multiline_fields,
        data_start=data_start,
        field_count=len(header),
        positions=_column_positions(header, manifest),
    )


def plan_ranges(
    size: int,
    read_range: ReadRange,
    data_start: int,
    *,
    target_bytes: int = DEFAULT_CHUNK_BYTES,
    multiline: bool = False,
) -> list[ByteRange]:
    """Split [data_start, size) into ranges of about ``target_bytes`` that end after a line feed.

    Each boundary is the first position at or after a multiple of ``target_bytes`` that
    follows a line feed, found by reading a few small ranges around it. With ``multiline``
    the whole data part is one range. Ranges are never empty.
    """
    if target_bytes < 1:
        raise ValueError("target_bytes must be positive")
    if data_start >= size:
        return []
    if multiline:
        return [ByteRange(start=data_start, end=size)]

    ranges = []
    start = data_start
    while size - start > target_bytes:
        boundary = _next_record_start(read_range, start + target_bytes, size)
        ranges.append(ByteRange(start=start, end=boundary))
        start = boundary
    if start < size:
        ranges.append(ByteRange(start=start, end=size))
    return ranges


def _next_record_start(read_range: ReadRange, position: int, size: int) -> int:
    """Return the first offset >= ``position`` that follows a line feed, or ``size``."""
    probe_start = position - 1
    while probe_start < size:
        probe_end = min(size, probe_start + _PROBE_BYTES)
        found = read_range(probe_start, probe_end).find(b"\n")
        if found >= 0:
            return probe_start + found + 1
        probe_start = probe_end
    return size


def _read_header(
    head: bytes, start: int, *, delimiter: str, encoding: str, at_eof: bool
) -> tuple[list[str], int]:
    """Parse the first CSV record of ``head`` and return its fields and the offset after it."""
    codec = python_codec(encoding)
    line_ends: list[int] = []

    def lines() -> Iterator[str]:
        position = start
        limit = min(len(head), start + MAX_HEADER_BYTES)
        while position < limit:
            newline = head.find(b"\n", position, limit)
            if newline < 0 and not (at_eof and limit == len(head)):
                return
            end = limit if newline < 0 else newline + 1
            try:
                text = head[position:end].decode(codec)
            except UnicodeDecodeError:
                raise HeaderError(f"The header row is not valid {encoding} text.") from None
            line_ends.append(end)
            position = end
            yield text

    reader = csv.reader(lines(), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise HeaderError(
            f"The file has no complete header row in its first {MAX_HEADER_BYTES} bytes."
        ) from None
    except csv.Error:
        raise HeaderError("The header row is not valid CSV (check its quotes).") from None
    return header, line_ends[reader.line_num - 1]


def _column_positions(header: list[str], manifest: IntakeManifest) -> dict[int, IdentifierKind]:
    """Map each identifier column of the manifest to its index in ``header``."""
    indexes: dict[str, list[int]] = {}
    for index, name in enumerate(header):
        indexes.setdefault(normalize_label(name), []).append(index)

    missing = [column for column in manifest.columns if normalize_label(column) not in indexes]
    if missing:
        raise HeaderError(
            "The header row has no column named "
            + ", ".join(repr(column) for column in missing)
            + ". Fix the manifest's columns or the file's header."
        )
    repeated = [column for column in manifest.columns if len(indexes[normalize_label(column)]) > 1]
    if repeated:
        raise HeaderError(
            "The header row names these manifest columns more than once: "
            + ", ".join(repr(column) for column in repeated)
            + "."
        )

    return {
        indexes[normalize_label(column)][0]: kind
        for column, kind in manifest.identifier_columns.items()
    }
