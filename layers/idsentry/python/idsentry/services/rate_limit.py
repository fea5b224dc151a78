"""A token bucket in one main-table item, shared by every worker that calls one provider.

The bucket contains at most `burst` tokens and gains `requests_per_minute` tokens a minute. A
worker takes a token with an UpdateItem conditioned on the item's `version`, so two workers
that read the same state cannot both take its last token: the second update fails and that
worker reads again. Tokens are counted in thousandths and time in milliseconds, so the stored
numbers are integers and rounding only ever loses tokens.

With `burst=1` the requests are spaced `60 / requests_per_minute` seconds apart, so no
60-second window contains more than `requests_per_minute` of them, whichever way the provider
counts its window. A larger burst allows up to `burst - 1` more in one window.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any

from idsentry.adapters.table import MainTable

logger = logging.getLogger(__name__)

SORT_KEY = "BUCKET"
MILLI = 1000
# The item outlives any hold by this long. An item past expires_at has refilled to its burst
# anyway, so reading it before DynamoDB deletes it returns the right result.
TTL_SECONDS = 24 * 3600
DEFAULT_MAX_ATTEMPTS = 8


def _epoch_ms(now: datetime) -> int:
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    return int(now.timestamp() * 1000)


class TokenBucket:
    """The shared bucket stored at `pk=RATE#{name}`, `sk=BUCKET` of the main table."""

    def __init__(
        self,
        table: MainTable,
        name: str,
        requests_per_minute: int,
        *,
        burst: int = 1,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        if not name or "#" in name:
            raise ValueError("name must be non-empty and must not contain '#'")
        if isinstance(requests_per_minute, bool) or requests_per_minute < 1:
            raise ValueError("requests_per_minute must be a positive integer")
        if isinstance(burst, bool) or burst < 1:
            raise ValueError("burst must be a positive integer")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

        self._table = table
        self.pk = f"RATE#{name}"
        self._rate = requests_per_minute
        self._capacity = burst * MILLI
        self._max_attempts = max_attempts

    @property
    def interval_seconds(self) -> float:
        """The time the bucket takes to gain one token."""
        return 60.0 / self._rate

    def try_take(self, now: datetime) -> float:
        """Take one token and return 0.0, or return the seconds until a token should be free.

        `now` must be timezone-aware. When every attempt loses a race with other workers the
        token is not taken and the wait is one refill interval.
        """
        now_ms = _epoch_ms(now)

        for _ in range(self._max_attempts):
            item = self._table.get(self.pk, SORT_KEY)
            if item is None:
                if self._create(now_ms):
                    return 0.0
                continue

            tokens = self._available(item, now_ms)
            refill_from = int(item["refill_from_ms"])
            if tokens < MILLI:
                return self._wait_seconds(tokens, refill_from, now_ms)
            if self._take(int(item["version"]), tokens, max(refill_from, now_ms), now_ms):
                return 0.0

        logger.info(
            "token bucket contended", extra={"bucket": self.pk, "attempts": self._max_attempts}
        )
        return self.interval_seconds

    def hold(self, now: datetime, seconds: float) -> None:
        """Empty the bucket and stop its refill for `seconds`, for every worker.

        A worker calls this when the provider returns 429 with `retry-after` despite the
        bucket, for example because something else uses the same key. A shorter hold never
        shortens a longer one already in place.
        """
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        now_ms = _epoch_ms(now)
        until_ms = now_ms + math.ceil(seconds * 1000)

        self._table.update(
            self.pk,
            SORT_KEY,
            "SET tokens_milli = :zero, refill_from_ms = :until, expires_at = :expires, "
            "version = if_not_exists(version, :zero) + :one",
            values={
                ":zero": 0,
                ":one": 1,
                ":until": until_ms,
                ":expires": until_ms // 1000 + TTL_SECONDS,
            },
            condition="attribute_not_exists(pk) OR refill_from_ms < :until",
        )
        logger.info("token bucket held", extra={"bucket": self.pk, "hold_seconds": seconds})

    def _available(self, item: dict[str, Any], now_ms: int) -> int:
        tokens = int(item["tokens_milli"])
        refill_from = int(item["refill_from_ms"])
        # Thousandths of a token gained per millisecond is requests_per_minute / 60.
        gained = max(0, now_ms - refill_from) * self._rate // 60
        return min(self._capacity, tokens + gained)

    def _wait_seconds(self, tokens: int, refill_from: int, now_ms: int) -> float:
        missing = MILLI - tokens
        wait_ms = math.ceil(missing * 60 / self._rate) + max(0, refill_from - now_ms)
        return wait_ms / 1000

    def _create(self, now_ms: int) -> bool:
        return self._table.put(
            {
                "pk": self.pk,
                "sk": SORT_KEY,
                "tokens_milli": self._capacity - MILLI,
                "refill_from_ms": now_ms,
                "version": 1,
                "expires_at": now_ms // 1000 + TTL_SECONDS,
            },
            condition="attribute_not_exists(pk)",
        )

    def _take(self, version: int, tokens: int, refill_from: int, now_ms: int) -> bool:
        updated = self._table.update(
            self.pk,
            SORT_KEY,
            "SET tokens_milli = :tokens, refill_from_ms = :refill_from, version = :next, "
            "expires_at = :expires",
            values={
                ":tokens": tokens - MILLI,
                ":refill_from": refill_from,
                ":next": version + 1,
                ":version": version,
                ":expires": max(refill_from, now_ms) // 1000 + TTL_SECONDS,
            },
            condition="version = :version",
        )
        return updated is not None
