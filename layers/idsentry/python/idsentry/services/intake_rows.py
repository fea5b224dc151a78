"""Stream the records of one chunk of a breach file, with the byte offset after each record.

A malformed record (wrong field count, bad quoting, bad JSON, a line over 1 MiB) comes out
with a problem code instead of values, so the caller counts it and goes on. CSV/TSV lines
without a quote character are split on the delimiter byte before decoding, which is safe
because the delimiter, the quote and the line feed never occur inside a multi-byte character
of the supported encodings. Only the identifier fields are decoded.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from typing import Final, NamedTuple, Protocol

from idsentry import jsontext
from idsentry.identifiers import IdentifierKind
from idsentry.models.breach import normalize_label
from idsentry.services.intake_chunks import RowLayout

# Row problems, counted by the caller.
BLANK_LINE: Final = "blank_line"
WRONG_FIELD_COUNT: Final = "wrong_field_count"
INVALID_QUOTING: Final = "invalid_quoting"
TRUNCATED_RECORD: Final = "truncated_record"
LINE_TOO_LONG: Final = "line_too_long"
UNDECODABLE: Final = "undecodable"
INVALID_JSON: Final = "invalid_json"
NOT_AN_OBJECT: Final = "not_an_object"

# Value problems, counted as "<kind>.<problem>".
VALUE_UNDECODABLE: Final = "undecodable"
VALUE_INVALID_TYPE: Final = "invalid_type"

READ_BLOCK_BYTES: Final = 1 << 20
MAX_LINE_BYTES: Final = 1 << 20

# Lone surrogates that the "surrogateescape" error handler puts in place of undecodable bytes.
_ESCAPED_BYTES: Final = re.compile("[\udc80-\udcff]")
_QUOTE: Final = b'"'


class BinaryReader(Protocol):
    """A binary stream, such as an open file or botocore's StreamingBody."""

    def read(self, size: int = ..., /) -> bytes: ...


class Record(NamedTuple):
    """One record: its identifier values, or the problem that made it unreadable.

    ``end_offset`` is the absolute byte offset right after the record, where a later
    invocation can resume. ``values`` contains decoded text ("" for an empty or missing value),
    and ``rejected`` the values that could not be decoded, as (kind, problem) pairs.
    """

    end_offset: int
    values: list[tuple[IdentifierKind, str]]
    rejected: list[tuple[IdentifierKind, str]]
    problem: str | None


def iter_records(
    source: bytes | BinaryReader, layout: RowLayout, *, start_offset: int
) -> Iterator[Record]:
    """Yield the records of ``source``, which starts at ``start_offset`` of the data file.

    ``start_offset`` must be the start of a record: a chunk range's start or an
    ``end_offset`` from an earlier record. It makes the offsets in the records absolute.
    """
    lines = iter_lines(_read_function(source), start_offset)
    if layout.format == "jsonl":
        return _json_records(lines, layout)
    if layout.multiline_fields:
        return _multiline_records(lines, layout)
    return _delimited_records(lines, layout)


def iter_lines(
    read: Callable[[int], bytes], start_offset: int
) -> Iterator[tuple[bytes | None, int]]:
    """Yield each line without its line feed, and the absolute offset after the line.

    A line over MAX_LINE_BYTES is skipped and yields None, so one runaway line cannot
    exhaust memory. The last line may lack a line feed.
    """
    offset = start_offset
    pending = b""
    skipping = False

    while block := read(READ_BLOCK_BYTES):
        if skipping:
            newline = block.find(b"\n")
            if newline < 0:
                offset += len(block)
                continue
            offset += newline + 1
            skipping = False
            yield None, offset
            block = block[newline + 1 :]

        lines = (pending + block if pending else block).split(b"\n")
        pending = lines.pop()
        for line in lines:
            offset += len(line) + 1
            yield (line if len(line) <= MAX_LINE_BYTES else None), offset

        if len(pending) > MAX_LINE_BYTES:
            offset += len(pending)
            pending = b""
            skipping = True

    if skipping:
        yield None, offset
    elif pending:
        yield pending, offset + len(pending)


def _read_function(source: bytes | BinaryReader) -> Callable[[int], bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(source).read
    return source.read


def _delimited_records(
    lines: Iterator[tuple[bytes | None, int]], layout: RowLayout
) -> Iterator[Record]:
    """Records of a CSV/TSV chunk whose fields contain no line breaks: one line each."""
    delimiter = layout.delimiter
    delimiter_byte = delimiter.encode("ascii")
    codec = layout.codec
    field_count = layout.field_count or 0
    positions = sorted(layout.positions.items())

    for line, end in lines:
        if line is None:
            yield Record(end, [], [], LINE_TOO_LONG)
            continue
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            yield Record(end, [], [], BLANK_LINE)
            continue

        if _QUOTE in line:
            yield _quoted_line_record(line, end, layout, positions)
            continue

        fields = line.split(delimiter_byte)
        if len(fields) != field_count and not _has_empty_extra_fields(fields, field_count):
            yield Record(end, [], [], WRONG_FIELD_COUNT)
            continue

        values: list[tuple[IdentifierKind, str]] = []
        rejected: list[tuple[IdentifierKind, str]] = []
        for position, kind in positions:
            raw = fields[position]
            if raw.isascii():
                values.append((kind, raw.decode("ascii")))
                continue
            try:
                values.append((kind, raw.decode(codec)))
            except UnicodeDecodeError:
                rejected.append((kind, VALUE_UNDECODABLE))
        yield Record(end, values, rejected, None)


def _quoted_line_record(
    line: bytes, end: int, layout: RowLayout, positions: list[tuple[int, IdentifierKind]]
) -> Record:
    """Parse one line that contains a quote character with the csv module."""
    text = line.decode(layout.codec, "surrogateescape")
    reader = csv.reader([text], delimiter=layout.delimiter, strict=True)
    try:
        fields = next(reader)
    except csv.Error:
        return Record(end, [], [], INVALID_QUOTING)
    return _record_from_fields(fields, end, layout.field_count or 0, positions)


def _multiline_records(
    lines: Iterator[tuple[bytes | None, int]], layout: RowLayout
) -> Iterator[Record]:
    """Records of a CSV/TSV chunk whose quoted fields may contain line breaks.

    One csv reader pulls decoded lines, so the csv module decides where a record ends.
    Its ``line_num`` counts the lines that each record used, which gives the offset after it.
    The csv module's field size limit (131,072 characters by default) ends a runaway
    quoted field.
    """
    positions = sorted(layout.positions.items())
    field_count = layout.field_count or 0
    codec = layout.codec
    line_ends: list[int] = []
    too_long_lines: set[int] = set()
    exhausted = False

    def text_lines() -> Iterator[str]:
        nonlocal exhausted
        for number, (line, end) in enumerate(lines, start=1):
            line_ends.append(end)
            if line is None:
                too_long_lines.add(number)
                yield "\n"
            else:
                yield line.decode(codec, "surrogateescape") + "\n"
        exhausted = True

    reader = csv.reader(text_lines(), delimiter=layout.delimiter, strict=True)
    lines_used = 0
    while True:
        try:
            fields: list[str] | None = next(reader)
            problem = None
        except StopIteration:
            return
        except csv.Error:
            fields = None
            problem = TRUNCATED_RECORD if exhausted else INVALID_QUOTING

        # The reader pulls a line only when the record needs it, so every line pulled so far
        # belongs to this record.
        first_line = lines_used + 1
        lines_used = reader.line_num
        end = line_ends[-1]
        line_ends.clear()
        if too_long_lines and any(first_line <= number <= lines_used for number in too_long_lines):
            too_long_lines.clear()
            problem = LINE_TOO_LONG

        if problem is not None or fields is None:
            yield Record(end, [], [], problem)
        elif not fields:
            yield Record(end, [], [], BLANK_LINE)
        else:
            yield _record_from_fields(fields, end, field_count, positions)


def _record_from_fields(
    fields: list[str], end: int, field_count: int, positions: list[tuple[int, IdentifierKind]]
) -> Record:
    if len(fields) != field_count and not _has_empty_extra_fields(fields, field_count):
        return Record(end, [], [], WRONG_FIELD_COUNT)

    values: list[tuple[IdentifierKind, str]] = []
    rejected: list[tuple[IdentifierKind, str]] = []
    for position, kind in positions:
        raw = fields[position]
        if raw.isascii() or not _ESCAPED_BYTES.search(raw):
            values.append((kind, raw))
        else:
            rejected.append((kind, VALUE_UNDECODABLE))
    return Record(end, values, rejected, None)


def _has_empty_extra_fields(fields: list[bytes] | list[str], field_count: int) -> bool:
    """Return whether the fields past ``field_count`` are all empty, as a trailing delimiter leaves."""
    return len(fields) > field_count and not any(fields[field_count:])


def _json_records(lines: Iterator[tuple[bytes | None, int]], layout: RowLayout) -> Iterator[Record]:
    """Records of a JSON Lines chunk: one object per line, identifiers under top-level keys."""
    codec = layout.codec
    key_kinds = layout.keys
    # JSON key → (normalized key, kind), or None when the key has no identifier, so that
    # each distinct key is normalized once.
    # NOTE: only top-level keys are read, so identifiers inside nested objects are missed.
    key_columns: dict[str, tuple[str, IdentifierKind] | None] = {}

    for line, end in lines:
        if line is None:
            yield Record(end, [], [], LINE_TOO_LONG)
            continue
        line = line.strip()
        if not line:
            yield Record(end, [], [], BLANK_LINE)
            continue
        try:
            document = jsontext.loads(line.decode(codec))
        except UnicodeDecodeError:
            yield Record(end, [], [], UNDECODABLE)
            continue
        except ValueError:
            yield Record(end, [], [], INVALID_JSON)
            continue
        if not isinstance(document, dict):
            yield Record(end, [], [], NOT_AN_OBJECT)
            continue

        values: list[tuple[IdentifierKind, str]] = []
        rejected: list[tuple[IdentifierKind, str]] = []
        found: set[str] = set()
        for key, value in document.items():
            if key in key_columns:
                column = key_columns[key]
            else:
                label = normalize_label(key)
                column = (label, key_kinds[label]) if label in key_kinds else None
                if len(key_columns) < 10_000:
                    key_columns[key] = column
            if column is None:
                continue
            label, kind = column
            found.add(label)
            if isinstance(value, str):
                values.append((kind, value))
            elif value is None:
                values.append((kind, ""))
            elif isinstance(value, int) and not isinstance(value, bool):
                values.append((kind, str(value)))
            else:
                rejected.append((kind, VALUE_INVALID_TYPE))

        for label, kind in key_kinds.items():
            if label not in found:
                values.append((kind, ""))
        yield Record(end, values, rejected, None)
