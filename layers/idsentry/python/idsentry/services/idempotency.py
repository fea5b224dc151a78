"""Idempotency-Key handling for POST routes: replay, reject a reused key, report work in progress."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from idsentry.adapters.table import MainTable
from idsentry.errors import ConflictError, FieldProblem, RequestValidationError

RECORD_TTL_SECONDS = 24 * 3600
# A request in progress holds the key this long; after that a crashed attempt no longer blocks.
LOCK_SECONDS = 60
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    """A response worth replaying: status code, headers and body as sent."""

    status: int
    headers: dict[str, str]
    body: str
    # An index partition that lists the stored record, so that account deletion can find it.
    index_key: str | None = None


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """Return the SHA-256 of what makes two requests the same: method, path and exact body."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def validate_key(raw: str) -> str:
    """Check that a key is 1 to 255 visible ASCII characters."""
    if not 0 < len(raw) <= MAX_KEY_LENGTH or not all(33 <= ord(ch) <= 126 for ch in raw):
        raise RequestValidationError([FieldProblem("Idempotency-Key", "idempotency.key_invalid")])
    return raw


class IdempotencyGuard:
    """Runs a request once per (route, key) and replays its successful response.

    A crashed attempt holds the key for LOCK_SECONDS; after that a retry may run it again.
    """

    def __init__(self, table: MainTable, now_epoch: Callable[[], int]) -> None:
        self._table = table
        self._now = now_epoch

    def run(
        self,
        scope: str,
        idempotency_key: str,
        fingerprint: str,
        handle: Callable[[], StoredResponse],
    ) -> StoredResponse:
        """Run `handle` unless this key already produced a response.

        The same key with the same request replays the first 2xx response. With a different
        request it is a 422, and while the first is still running it is a 409. Error responses
        are not kept, so a corrected retry with the same key runs again.
        """
        pk = f"IDEMP#{scope}#{hashlib.sha256(idempotency_key.encode()).hexdigest()}"
        now = self._now()

        claimed = self._claim(pk, fingerprint, now)
        if not claimed:
            return self._existing(pk, fingerprint, now)

        try:
            response = handle()
        except BaseException:
            # Nothing is kept for a failed attempt, so a retry with the same key runs again.
            self._table.delete(pk, "IDEMP")
            raise

        if 200 <= response.status < 300:
            index = ""
            values: dict[str, Any] = {
                ":done": "done",
                ":status": response.status,
                ":headers": json.dumps(response.headers),
                ":body": response.body,
            }
            if response.index_key is not None:
                index = ", gsi1pk = :index_key, gsi1sk = :index_sk"
                values.update({":index_key": response.index_key, ":index_sk": pk})
            self._table.update(
                pk,
                "IDEMP",
                "SET #state = :done, status_code = :status, response_headers = :headers, "
                f"response_body = :body{index} REMOVE locked_until",
                values=values,
                names={"#state": "state"},
            )
        else:
            self._table.delete(pk, "IDEMP")
        return response

    def _claim(self, pk: str, fingerprint: str, now: int) -> bool:
        return self._table.put(
            {
                "pk": pk,
                "sk": "IDEMP",
                "state": "in_progress",
                "fingerprint": fingerprint,
                "locked_until": now + LOCK_SECONDS,
                "expires_at": now + RECORD_TTL_SECONDS,
            },
            condition="attribute_not_exists(pk) OR expires_at < :now OR "
            "(#state = :in_progress AND locked_until < :now)",
            values={":now": now, ":in_progress": "in_progress"},
            names={"#state": "state"},
        )

    def _existing(self, pk: str, fingerprint: str, now: int) -> StoredResponse:
        record: dict[str, Any] | None = self._table.get(pk, "IDEMP")
        if record is None:
            # The other attempt ended in an error and released the key just now.
            raise ConflictError("idempotency.in_progress")
        if record["fingerprint"] != fingerprint:
            raise RequestValidationError(
                [FieldProblem("Idempotency-Key", "idempotency.key_reused")]
            )
        if record["state"] != "done":
            raise ConflictError("idempotency.in_progress")
        return StoredResponse(
            status=int(record["status_code"]),
            headers=json.loads(record["response_headers"]),
            body=str(record["response_body"]),
        )
