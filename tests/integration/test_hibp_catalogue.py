"""The HIBP catalogue sync against moto and the HIBP emulator, and the address-due rule."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from idsentry.adapters.hibp import HibpClient
from idsentry.adapters.table import MainTable
from idsentry.errors import ProviderError
from idsentry.services.hibp_catalogue import (
    STATE_PK,
    STATE_SK,
    InvalidBreachRecordError,
    address_due,
    breach_item,
    latest_added_date,
    load_breach,
    sync_catalogue,
)
from infra.local.emulators.hibp import HibpEmulator
from infra.local.service import LocalService

pytestmark = pytest.mark.integration

API_KEY = "hibp-catalogue-test-key"
NOW = datetime(2026, 12, 5, 1, 30, tzinfo=UTC)


def model(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "Title": f"{name} title",
        "Domain": f"{name.lower()}.com",
        "BreachDate": "2013-10-04",
        "AddedDate": "2013-12-04T00:00:00Z",
        "ModifiedDate": "2022-05-15T23:52:49Z",
        "PwnCount": 152445165,
        "Description": "<p>Described.</p>",
        "DataClasses": ["Email addresses", "Passwords"],
        "IsVerified": True,
        **fields,
    }


class FixedSource:
    """A catalogue source that returns the given models, however malformed."""

    def __init__(self, models: list[Any]) -> None:
        self.models = models

    def breaches(self) -> list[dict[str, Any]]:
        return self.models


class FailingSource:
    def breaches(self) -> list[dict[str, Any]]:
        raise ProviderError("hibp", "breaches: HTTP 503", transient=True)


@pytest.fixture
def table(local_service: LocalService) -> Iterator[MainTable]:
    assert local_service.stack is not None
    main = MainTable("idsentry-local", local_service.stack.runtime.client("dynamodb"))
    # The catalogue state is one item per table, so each test starts without it.
    main.delete(STATE_PK, STATE_SK)
    yield main
    main.delete(STATE_PK, STATE_SK)


@pytest.fixture
def prefix() -> str:
    # Breach names unique to the test, because the module shares one table.
    return "T" + uuid.uuid4().hex[:10]


@pytest.fixture
def emulator() -> Iterator[HibpEmulator]:
    with HibpEmulator(API_KEY) as running:
        yield running


def client_for(emulator: HibpEmulator) -> HibpClient:
    return HibpClient(API_KEY, base_url=f"{emulator.base_url}/api/v3")


def test_sync_writes_breaches(table: MainTable, emulator: HibpEmulator, prefix: str) -> None:
    emulator.load_catalogue(
        [
            model(f"{prefix}Adobe"),
            model(f"{prefix}Spam", IsSpamList=True, IsVerified=False, DataClasses=[]),
        ]
    )

    summary = sync_catalogue(client_for(emulator), table, NOW)

    item = table.get(f"BREACH#{prefix}Adobe", "BREACH")
    spam = table.get(f"BREACH#{prefix}Spam", "BREACH")
    assert summary.fetched == 2
    assert summary.written == 2
    assert item == {
        "pk": f"BREACH#{prefix}Adobe",
        "sk": "BREACH",
        "name": f"{prefix}Adobe",
        "title": f"{prefix}Adobe title",
        "domain": f"{prefix.lower()}adobe.com",
        "breach_date": "2013-10-04",
        "description": "<p>Described.</p>",
        "logo_path": "",
        "added_date": "2013-12-04T00:00:00Z",
        "modified_date": "2022-05-15T23:52:49Z",
        "pwn_count": 152445165,
        "data_classes": ["Email addresses", "Passwords"],
        "is_verified": True,
        "is_fabricated": False,
        "is_sensitive": False,
        "is_retired": False,
        "is_spam_list": False,
        "is_malware": False,
        "is_stealer_log": False,
        "source": "hibp",
        "synced_at": "2026-12-05T01:30:00Z",
    }
    assert spam is not None
    assert spam["is_spam_list"] is True
    assert spam["data_classes"] == []


def test_sync_is_idempotent(table: MainTable, emulator: HibpEmulator, prefix: str) -> None:
    emulator.load_catalogue([model(f"{prefix}A"), model(f"{prefix}B")])
    client = client_for(emulator)
    sync_catalogue(client, table, NOW)

    again = sync_catalogue(client, table, NOW + timedelta(days=1))

    item = table.get(f"BREACH#{prefix}A", "BREACH")
    assert again.written == 0
    assert again.unchanged == 2
    assert item is not None
    assert item["synced_at"] == "2026-12-05T01:30:00Z"


def test_sync_rewrites_changed(table: MainTable, emulator: HibpEmulator, prefix: str) -> None:
    emulator.load_catalogue([model(f"{prefix}A"), model(f"{prefix}B")])
    client = client_for(emulator)
    sync_catalogue(client, table, NOW)
    emulator.add_breach(
        model(f"{prefix}A", PwnCount=7, IsVerified=False, ModifiedDate="2026-12-01T00:00:00Z")
    )

    summary = sync_catalogue(client, table, NOW + timedelta(days=1))

    item = table.get(f"BREACH#{prefix}A", "BREACH")
    assert summary.written == 1
    assert summary.unchanged == 1
    assert item is not None
    assert item["pwn_count"] == 7
    assert item["is_verified"] is False
    assert item["synced_at"] == "2026-12-06T01:30:00Z"


def test_sync_keeps_other_source(table: MainTable, emulator: HibpEmulator, prefix: str) -> None:
    name = f"{prefix}Leak"
    table.put({"pk": f"BREACH#{name}", "sk": "BREACH", "name": name, "source": "dataset"})
    emulator.load_catalogue([model(name)])

    summary = sync_catalogue(client_for(emulator), table, NOW)

    item = table.get(f"BREACH#{name}", "BREACH")
    assert summary.other_source == 1
    assert summary.written == 0
    assert item == {"pk": f"BREACH#{name}", "sk": "BREACH", "name": name, "source": "dataset"}


def test_sync_skips_invalid_entries(table: MainTable, prefix: str) -> None:
    source = FixedSource(
        [
            model(f"{prefix}Good"),
            model(f"{prefix}NoDate", AddedDate="last week"),
            model(f"{prefix}Negative", PwnCount=-5),
            {"Title": "no name"},
            "not an object",
        ]
    )

    summary = sync_catalogue(source, table, NOW)

    assert summary.fetched == 5
    assert summary.written == 1
    assert summary.invalid == 4
    assert table.get(f"BREACH#{prefix}NoDate", "BREACH") is None


def test_sync_records_latest_added(table: MainTable, emulator: HibpEmulator, prefix: str) -> None:
    emulator.load_catalogue(
        [
            model(f"{prefix}Old", AddedDate="2013-12-04T00:00:00Z"),
            model(f"{prefix}New", AddedDate="2026-12-04T08:15:00+08:00"),
        ]
    )

    summary = sync_catalogue(client_for(emulator), table, NOW)

    state = table.get(STATE_PK, STATE_SK)
    expected = datetime(2026, 12, 4, 0, 15, tzinfo=UTC)
    assert summary.latest_added_date == expected
    assert latest_added_date(table) == expected
    assert state is not None
    assert state["latest_added_date"] == "2026-12-04T00:15:00Z"
    assert state["breach_count"] == 2


def test_latest_added_never_moves_back(
    table: MainTable, emulator: HibpEmulator, prefix: str
) -> None:
    emulator.load_catalogue([model(f"{prefix}New", AddedDate="2026-12-04T00:00:00Z")])
    client = client_for(emulator)
    sync_catalogue(client, table, NOW)
    emulator.load_catalogue([model(f"{prefix}Old", AddedDate="2020-01-01T00:00:00Z")])

    sync_catalogue(client, table, NOW + timedelta(days=1))

    assert latest_added_date(table) == datetime(2026, 12, 4, tzinfo=UTC)


def test_latest_added_before_first_sync(table: MainTable) -> None:
    assert latest_added_date(table) is None


def test_sync_outage_writes_nothing(table: MainTable) -> None:
    with pytest.raises(ProviderError):
        sync_catalogue(FailingSource(), table, NOW)

    assert table.get(STATE_PK, STATE_SK) is None


def test_sync_through_fault(table: MainTable, emulator: HibpEmulator, prefix: str) -> None:
    emulator.load_catalogue([model(f"{prefix}A")])
    emulator.fail_next(1, 503)

    with pytest.raises(ProviderError) as raised:
        sync_catalogue(client_for(emulator), table, NOW)
    summary = sync_catalogue(client_for(emulator), table, NOW)

    assert raised.value.transient is True
    assert summary.written == 1


def test_sync_pages_batch_reads(table: MainTable, emulator: HibpEmulator, prefix: str) -> None:
    emulator.load_catalogue([model(f"{prefix}N{index:03d}") for index in range(130)])
    client = client_for(emulator)

    first = sync_catalogue(client, table, NOW)
    second = sync_catalogue(client, table, NOW)

    assert first.written == 130
    assert second.unchanged == 130


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"Name": ""}, "Name"),
        ({"Name": "A#B"}, "Name"),
        ({"Title": None}, "Title"),
        ({"BreachDate": "2013-13-01"}, "BreachDate"),
        ({"AddedDate": None}, "AddedDate"),
        ({"ModifiedDate": "soon"}, "ModifiedDate"),
        ({"PwnCount": -1}, "PwnCount"),
        ({"PwnCount": "many"}, "PwnCount"),
        ({"DataClasses": "Passwords"}, "DataClasses"),
        ({"IsFabricated": "maybe"}, "IsFabricated"),
        ({"IsVerified": None}, "IsVerified"),
    ],
)
def test_breach_item_names_bad_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidBreachRecordError) as raised:
        breach_item(model("Adobe", **fields))

    assert raised.value.field == field


def test_breach_item_defaults_new_flags() -> None:
    item = breach_item(model("Adobe"))

    assert item["is_malware"] is False
    assert item["is_stealer_log"] is False
    assert item["is_verified"] is True


def test_breach_item_needs_verified_flag() -> None:
    legacy = model("Adobe")
    legacy.pop("IsVerified")

    with pytest.raises(InvalidBreachRecordError) as raised:
        breach_item(legacy)

    assert raised.value.field == "IsVerified"


def test_breach_item_rejects_non_object() -> None:
    with pytest.raises(InvalidBreachRecordError) as raised:
        breach_item(["Adobe"])

    assert raised.value.field == "breach"


def test_stored_breach_loads_as_model(
    table: MainTable, emulator: HibpEmulator, prefix: str
) -> None:
    emulator.load_catalogue(
        [model(f"{prefix}Spam", IsSpamList=True, DataClasses=["Email addresses", "Names"])]
    )
    sync_catalogue(client_for(emulator), table, NOW)

    breach = load_breach(table, f"{prefix}Spam")

    assert breach is not None
    assert breach.source == "hibp"
    assert breach.alertable is False
    assert breach.added_date == datetime(2013, 12, 4, tzinfo=UTC)
    assert {kind.value for kind in breach.kinds} == {"email", "name"}
    assert load_breach(table, f"{prefix}Missing") is None


CONFIRMED = datetime(2026, 11, 1, tzinfo=UTC)
CHECKED = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last_checked_at", "confirmed_at", "latest_added", "due"),
    [
        (None, None, None, False),
        (CHECKED, None, CHECKED + timedelta(days=1), False),
        (None, CONFIRMED, None, True),
        (None, CONFIRMED, CONFIRMED - timedelta(days=30), True),
        (CONFIRMED - timedelta(days=1), CONFIRMED, CONFIRMED - timedelta(days=30), True),
        (CHECKED, CONFIRMED, None, False),
        (CHECKED, CONFIRMED, CHECKED - timedelta(seconds=1), False),
        (CHECKED, CONFIRMED, CHECKED, False),
        (CHECKED, CONFIRMED, CHECKED + timedelta(seconds=1), True),
    ],
    ids=[
        "unconfirmed",
        "unconfirmed-new-breach",
        "never-checked",
        "never-checked-old-catalogue",
        "checked-before-confirmation",
        "no-catalogue",
        "nothing-new",
        "added-at-check",
        "breach-added-since",
    ],
)
def test_address_due(
    last_checked_at: datetime | None,
    confirmed_at: datetime | None,
    latest_added: datetime | None,
    due: bool,
) -> None:
    assert address_due(last_checked_at, confirmed_at, latest_added) is due


def test_address_due_needs_aware_times() -> None:
    with pytest.raises(ValueError, match="latest_added"):
        address_due(CHECKED, CONFIRMED, datetime(2026, 12, 1))
