"""The shared token bucket against moto: refill, burst, hold and two workers racing."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from idsentry.adapters.table import MainTable
from idsentry.services.rate_limit import SORT_KEY, TokenBucket
from infra.local.service import LocalService

pytestmark = pytest.mark.integration

START = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)


def _table(service: LocalService) -> MainTable:
    assert service.stack is not None
    return MainTable("idsentry-local", service.stack.runtime.client("dynamodb"))


def _name() -> str:
    # Every test gets its own bucket item, because the module shares one table.
    return f"hibp-test-{uuid.uuid4().hex[:12]}"


def test_first_take_creates_bucket(local_service: LocalService) -> None:
    table = _table(local_service)
    bucket = TokenBucket(table, _name(), requests_per_minute=10)

    wait = bucket.try_take(START)

    item = table.get(bucket.pk, SORT_KEY)
    assert wait == 0.0
    assert item is not None
    assert item["tokens_milli"] == 0
    assert item["version"] == 1
    assert item["expires_at"] > int(START.timestamp())


def test_empty_bucket_reports_wait(local_service: LocalService) -> None:
    bucket = TokenBucket(_table(local_service), _name(), requests_per_minute=10)
    bucket.try_take(START)

    immediately = bucket.try_take(START)
    later = bucket.try_take(START + timedelta(seconds=2))

    assert immediately == 6.0
    # Refill is counted in whole thousandths of a token, rounded down, so waits round up.
    assert 4.0 <= later <= 4.01


def test_refill_spaces_requests(local_service: LocalService) -> None:
    bucket = TokenBucket(_table(local_service), _name(), requests_per_minute=10)

    taken = [
        bucket.try_take(START + timedelta(seconds=second)) == 0.0 for second in range(0, 61, 3)
    ]

    # At 10 a minute with burst 1, a token is free every 6 s: at 0, 6, ..., 60 s.
    assert taken == [second % 6 == 0 for second in range(0, 61, 3)]
    assert sum(taken) == 11


def test_no_window_exceeds_limit(local_service: LocalService) -> None:
    rate = 10
    bucket = TokenBucket(_table(local_service), _name(), requests_per_minute=rate)

    takes = []
    for step in range(0, 600):
        moment = START + timedelta(milliseconds=500 * step)
        if bucket.try_take(moment) == 0.0:
            takes.append(moment)

    for index, first in enumerate(takes):
        in_window = [moment for moment in takes[index:] if moment < first + timedelta(seconds=60)]
        assert len(in_window) <= rate


def test_burst_allows_several(local_service: LocalService) -> None:
    bucket = TokenBucket(_table(local_service), _name(), requests_per_minute=60, burst=3)

    waits = [bucket.try_take(START) for _ in range(4)]

    assert waits == [0.0, 0.0, 0.0, 1.0]


def test_refill_capped_at_burst(local_service: LocalService) -> None:
    bucket = TokenBucket(_table(local_service), _name(), requests_per_minute=60, burst=2)
    bucket.try_take(START)

    later = START + timedelta(hours=1)
    waits = [bucket.try_take(later) for _ in range(3)]

    assert waits == [0.0, 0.0, 1.0]


def test_hold_stops_every_worker(local_service: LocalService) -> None:
    name = _name()
    first = TokenBucket(_table(local_service), name, requests_per_minute=60, burst=5)
    second = TokenBucket(_table(local_service), name, requests_per_minute=60, burst=5)
    first.try_take(START)

    first.hold(START, 30)
    shorter = START + timedelta(seconds=1)
    second.hold(shorter, 5)

    assert second.try_take(START + timedelta(seconds=10)) == 21.0
    assert second.try_take(START + timedelta(seconds=31)) == 0.0


def test_hold_creates_missing_bucket(local_service: LocalService) -> None:
    bucket = TokenBucket(_table(local_service), _name(), requests_per_minute=60)

    bucket.hold(START, 2)

    assert bucket.try_take(START) == 3.0


def test_clock_behind_still_takes(local_service: LocalService) -> None:
    name = _name()
    ahead = TokenBucket(_table(local_service), name, requests_per_minute=60, burst=2)
    behind = TokenBucket(_table(local_service), name, requests_per_minute=60, burst=2)
    ahead.try_take(START)

    result = behind.try_take(START - timedelta(milliseconds=200))

    assert result == 0.0
    assert behind.try_take(START - timedelta(milliseconds=200)) > 0


def test_two_workers_racing(local_service: LocalService) -> None:
    assert local_service.stack is not None
    name = _name()
    burst = 5
    attempts_each = 20
    barrier = threading.Barrier(2)
    taken: list[int] = [0, 0]
    errors: list[BaseException] = []

    def worker(index: int, moment: datetime) -> None:
        # Each worker has its own DynamoDB client, as separate Lambda instances do.
        assert local_service.stack is not None
        table = MainTable("idsentry-local", local_service.stack.runtime.client("dynamodb"))
        bucket = TokenBucket(table, name, requests_per_minute=10, burst=burst, max_attempts=50)
        try:
            barrier.wait()
            for _ in range(attempts_each):
                if bucket.try_take(moment) == 0.0:
                    taken[index] += 1
        except BaseException as exc:
            errors.append(exc)

    def race(moment: datetime) -> int:
        taken[:] = [0, 0]
        threads = [threading.Thread(target=worker, args=(index, moment)) for index in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        return sum(taken)

    # The bucket exists before the race, so the workers race on its versioned update only.
    # The local stack serialises DynamoDB requests, as DynamoDB applies each write atomically.
    setup = MainTable("idsentry-local", local_service.stack.runtime.client("dynamodb"))
    assert TokenBucket(setup, name, requests_per_minute=10, burst=burst).try_take(START) == 0.0
    assert race(START) == burst - 1
    # At 10 a minute one token comes back every 6 s.
    assert race(START + timedelta(seconds=6)) == 1
    assert race(START + timedelta(seconds=18)) == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": ""}, "name"),
        ({"name": "a#b"}, "name"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"burst": 0}, "burst"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_bad_settings_rejected(
    local_service: LocalService, options: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"name": "hibp", "requests_per_minute": 10, **options}

    with pytest.raises(ValueError, match=message):
        TokenBucket(_table(local_service), **arguments)  # type: ignore[arg-type]


def test_naive_time_rejected(local_service: LocalService) -> None:
    bucket = TokenBucket(_table(local_service), _name(), requests_per_minute=10)

    with pytest.raises(ValueError, match="now"):
        bucket.try_take(datetime(2026, 12, 5, 2, 0))
