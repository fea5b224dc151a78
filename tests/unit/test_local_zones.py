"""The zones the demo and tests pick to land on a local hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from infra.local.zones import daytime_zone, night_zone, zone_at_hour

pytestmark = pytest.mark.unit

START = datetime(2026, 12, 5, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize("hours", range(24))
@pytest.mark.parametrize("target", [2, 14, 23])
def test_zone_shows_the_hour_asked_for(hours: int, target: int) -> None:
    now = START + timedelta(hours=hours)

    zone = zone_at_hour(target, now)

    assert now.astimezone(ZoneInfo(zone)).hour == target


def test_shanghai_preferred_when_it_fits() -> None:
    six_utc = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)

    assert daytime_zone(six_utc) == "Asia/Shanghai"
    assert night_zone(six_utc) != "Asia/Shanghai"
