"""The field table of docs/privacy.md, read as data: the fields of each item, and whether the
subscriber's export contains them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PRIVACY_DOC = Path(__file__).resolve().parents[1] / "docs" / "privacy.md"
TABLE_HEADING = "## Subscriber fields and the export"
_CODE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class FieldRow:
    """One row of the table: an item's sort-key pattern, its fields and the export verdict."""

    item: str
    fields: tuple[str, ...]
    exported: bool
    reason: str

    @property
    def prefix(self) -> str:
        """Return the literal start of the item's sort key (`IDENT#` for `IDENT#{kind}`)."""
        return re.split(r"[{…]", self.item, maxsplit=1)[0]

    def matches(self, sort_key: str) -> bool:
        """Return whether a stored item's sort key is of this row's item."""
        if self.prefix == self.item:
            return sort_key == self.item
        return sort_key.startswith(self.prefix)


def field_rows(path: Path = PRIVACY_DOC) -> list[FieldRow]:
    """Read the rows of the field table; raises AssertionError when the table is missing."""
    text = path.read_text(encoding="utf-8")
    assert TABLE_HEADING in text, f"{path} has no section {TABLE_HEADING!r}"
    section = text.split(TABLE_HEADING, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`"):
            continue
        item = _CODE.findall(cells[0])[0]
        fields = tuple(_CODE.findall(cells[1]))
        verdict = cells[-1]
        exported = verdict.startswith("yes")
        reason = verdict.partition("no:")[2].strip() if verdict.startswith("no") else ""
        rows.append(FieldRow(item, fields, exported, reason))
    assert rows, f"the table under {TABLE_HEADING!r} has no rows"
    return rows
