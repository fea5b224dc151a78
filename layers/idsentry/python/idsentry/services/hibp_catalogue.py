"""HIBP catalogue sync into the main table, and the rule for when an address is due a lookup.

Each HIBP breach is validated as an `idsentry.models.breach.Breach` and stored at
`pk=BREACH#{Name}`, `sk=BREACH` with the model's snake_case fields and `source: "hibp"`. The latest `AddedDate` of the catalogue is kept at `pk=HIBP#CATALOGUE`,
`sk=STATE`, so the check worker can tell whether a breach was added after an address's last
lookup. A sync writes only the breaches that are new or changed, so running it twice writes
nothing the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from idsentry.adapters.table import MainTable
from idsentry.item_keys import BREACH_SORT_KEY

if TYPE_CHECKING:
    from idsentry.models.breach import Breach

logger = logging.getLogger(__name__)

SOURCE = "hibp"
STATE_PK = "HIBP#CATALOGUE"
STATE_SK = "STATE"
BATCH_GET_LIMIT = 100

# Set by the sync itself, so left out when deciding whether a stored breach changed.
SYNC_ATTRIBUTES = ("synced_at",)


class CatalogueSource(Protocol):
    """Returns HIBP's catalogue as PascalCase breach models (`HibpClient.breaches`)."""

    def breaches(self) -> list[dict[str, Any]]: ...


class InvalidBreachRecordError(ValueError):
    """A catalogue entry is missing a field or has a malformed one. `field` is HIBP's name."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field


@dataclass(frozen=True)
class CatalogueSyncSummary:
    """Counts of one sync run and the catalogue's latest AddedDate after it."""

    fetched: int
    written: int
    unchanged: int
    invalid: int
    other_source: int
    latest_added_date: datetime | None


def parse_timestamp(value: Any, field: str) -> datetime:
    """Parse an ISO 8601 date-time such as `2013-12-04T00:00:00Z`. No offset means UTC."""
    if not isinstance(value, str):
        raise InvalidBreachRecordError(field, "must be an ISO 8601 date-time string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidBreachRecordError(field, "must be an ISO 8601 date-time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """Format a UTC instant as HIBP does, `2013-12-04T00:00:00Z`, which sorts as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def breach_item(model: Any) -> dict[str, Any]:
    """Validate one HIBP breach model as a Breach and return its main-table item.

    Raises InvalidBreachRecordError naming the first invalid HIBP field. Timestamps are
    stored in UTC as `2013-12-04T00:00:00Z`, so they sort as text.
    """
    # Imported here, like in load_breach, because most runs of the functions that import this
    # module validate no breach, and the model is costly to import in every cold start.
    from idsentry.models.breach import Breach

    if not isinstance(model, Mapping):
        raise InvalidBreachRecordError("breach", "must be a JSON object")
    try:
        breach = Breach.from_hibp(model)
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        field = ".".join(str(part) for part in error["loc"]) or "breach"
        raise InvalidBreachRecordError(field, error["msg"]) from None

    # A manifest may leave the dates out, but every HIBP breach has them.
    if breach.added_date is None:
        raise InvalidBreachRecordError("AddedDate", "is missing")
    if breach.modified_date is None:
        raise InvalidBreachRecordError("ModifiedDate", "is missing")
    breach = breach.model_copy(
        update={
            "added_date": breach.added_date.astimezone(UTC),
            "modified_date": breach.modified_date.astimezone(UTC),
        }
    )

    fields = breach.model_dump(mode="json", by_alias=False, exclude_none=True)
    return {"pk": f"BREACH#{breach.name}", "sk": BREACH_SORT_KEY, **fields}


def load_breach(table: MainTable, name: str) -> Breach | None:
    """Read one catalogue breach by its Name, or None when it is not stored."""
    from idsentry.models.breach import Breach

    item = table.get(f"BREACH#{name}", BREACH_SORT_KEY)
    if item is None:
        return None
    return Breach.model_validate(item)


def latest_added_date(table: MainTable) -> datetime | None:
    """Return the catalogue's latest AddedDate from the last sync, or None before the first."""
    state = table.get(STATE_PK, STATE_SK)
    if state is None or "latest_added_date" not in state:
        return None
    return parse_timestamp(state["latest_added_date"], "latest_added_date")


def sync_catalogue(
    source: CatalogueSource, table: MainTable, now: datetime
) -> CatalogueSyncSummary:
    """Fetch HIBP's catalogue and write each new or changed breach, then the catalogue state.

    Invalid entries are counted and skipped. A breach whose Name is already stored by another
    source (a dataset intake) is left alone. The stored latest AddedDate never moves back.
    Raises ProviderError when the catalogue cannot be fetched, before anything is written.
    """
    models = source.breaches()

    items: dict[str, dict[str, Any]] = {}
    invalid = 0
    for index, model in enumerate(models):
        try:
            item = breach_item(model)
        except InvalidBreachRecordError as exc:
            invalid += 1
            logger.warning(
                "hibp catalogue entry skipped", extra={"index": index, "field": exc.field}
            )
            continue
        items[item["pk"]] = item

    stored = _stored_breaches(table, list(items))
    written = unchanged = other_source = 0
    for pk, item in items.items():
        existing = stored.get(pk)
        if existing is not None and existing.get("source") != SOURCE:
            other_source += 1
            logger.warning(
                "hibp breach name taken by another source", extra={"breach_name": item["name"]}
            )
            continue
        if existing is not None and _same(existing, item):
            unchanged += 1
            continue
        if _write_breach(table, item, now):
            written += 1
        else:
            other_source += 1
            logger.warning(
                "hibp breach name taken by another source", extra={"breach_name": item["name"]}
            )

    latest = _store_state(table, items.values(), now)
    summary = CatalogueSyncSummary(
        fetched=len(models),
        written=written,
        unchanged=unchanged,
        invalid=invalid,
        other_source=other_source,
        latest_added_date=latest,
    )
    logger.info(
        "hibp catalogue synced",
        extra={
            "fetched": summary.fetched,
            "written": summary.written,
            "unchanged": summary.unchanged,
            "invalid": summary.invalid,
            "other_source": summary.other_source,
            "latest_added_date": format_timestamp(latest) if latest else None,
        },
    )
    return summary


def address_due(
    last_checked_at: datetime | None,
    confirmed_at: datetime | None,
    latest_added: datetime | None,
) -> bool:
    """Return whether a confirmed address should be looked up at HIBP on this run.

    An unconfirmed address never is. A confirmed one is due when it has not been looked up
    since it was confirmed, or when the catalogue has a breach added after its last lookup.
    Without a synced catalogue (`latest_added` None) only the first lookup is due. Every
    argument that is given must be timezone-aware.
    """
    for name, value in (
        ("last_checked_at", last_checked_at),
        ("confirmed_at", confirmed_at),
        ("latest_added", latest_added),
    ):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{name} must be a timezone-aware datetime")

    if confirmed_at is None:
        return False
    if last_checked_at is None or last_checked_at < confirmed_at:
        return True
    if latest_added is None:
        return False
    return latest_added > last_checked_at


def _stored_breaches(table: MainTable, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    stored: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        batch = [(pk, BREACH_SORT_KEY) for pk in keys[start : start + BATCH_GET_LIMIT]]
        for (pk, _), item in table.get_many(batch).items():
            stored[pk] = item
    return stored


def _same(existing: Mapping[str, Any], item: Mapping[str, Any]) -> bool:
    kept = {name: value for name, value in existing.items() if name not in SYNC_ATTRIBUTES}
    return kept == dict(item)


def _write_breach(table: MainTable, item: dict[str, Any], now: datetime) -> bool:
    # The condition repeats the source check, because an intake may create the Name between
    # the read above and this write.
    return table.put(
        {**item, "synced_at": format_timestamp(now)},
        condition="attribute_not_exists(pk) OR #source = :source",
        values={":source": SOURCE},
        names={"#source": "source"},
    )


def _store_state(
    table: MainTable, items: Iterable[Mapping[str, Any]], now: datetime
) -> datetime | None:
    added = [parse_timestamp(item["added_date"], "added_date") for item in items]
    previous = latest_added_date(table)
    candidates = [*added, *([previous] if previous else [])]
    latest = max(candidates) if candidates else None

    state: dict[str, Any] = {
        "pk": STATE_PK,
        "sk": STATE_SK,
        "synced_at": format_timestamp(now),
        "breach_count": len(added),
    }
    if latest is not None:
        state["latest_added_date"] = format_timestamp(latest)
    table.put(state)
    return latest
