"""Idempotency-Key records against moto: replay, reuse, work in progress and lock expiry."""

from __future__ import annotations

import pytest

from idsentry.adapters.table import MainTable
from idsentry.errors import ConflictError, RequestValidationError
from idsentry.services.idempotency import LOCK_SECONDS, IdempotencyGuard, StoredResponse
from infra.local.service import LocalService

pytestmark = pytest.mark.integration


def _table(service: LocalService) -> MainTable:
    assert service.stack is not None
    return MainTable("idsentry-local", service.stack.runtime.client("dynamodb"))


def _created(body: str = '{"ok": true}') -> StoredResponse:
    return StoredResponse(202, {"content-type": "application/json"}, body)


def test_same_request_replays(local_service: LocalService) -> None:
    guard = IdempotencyGuard(_table(local_service), lambda: 1_000)
    calls: list[int] = []

    def handle() -> StoredResponse:
        calls.append(1)
        return _created()

    first = guard.run("POST /v1/signups", "key-replay", "fp-1", handle)
    second = guard.run("POST /v1/signups", "key-replay", "fp-1", handle)

    assert first == second
    assert len(calls) == 1


def test_other_request_rejected(local_service: LocalService) -> None:
    guard = IdempotencyGuard(_table(local_service), lambda: 1_000)
    guard.run("POST /v1/signups", "key-reuse", "fp-1", _created)

    with pytest.raises(RequestValidationError) as raised:
        guard.run("POST /v1/signups", "key-reuse", "fp-2", _created)

    assert raised.value.problems[0].code == "idempotency.key_reused"


def test_request_in_progress_conflicts(local_service: LocalService) -> None:
    guard = IdempotencyGuard(_table(local_service), lambda: 1_000)
    outcomes: list[str] = []

    def handle() -> StoredResponse:
        try:
            guard.run("POST /v1/signups", "key-busy", "fp-1", _created)
        except ConflictError as error:
            outcomes.append(error.code)
        return _created()

    guard.run("POST /v1/signups", "key-busy", "fp-1", handle)

    assert outcomes == ["idempotency.in_progress"]


def test_stale_lock_taken_over(local_service: LocalService) -> None:
    now = [1_000]
    guard = IdempotencyGuard(_table(local_service), lambda: now[0])
    outcomes: list[int] = []

    def crash_midway() -> StoredResponse:
        # A crashed attempt leaves its lock; simulate it by running the retry after the lock ends.
        now[0] += LOCK_SECONDS + 1
        outcomes.append(guard.run("POST /v1/signups", "key-stale", "fp-1", _created).status)
        return _created()

    guard.run("POST /v1/signups", "key-stale", "fp-1", crash_midway)

    assert outcomes == [202]


def test_error_response_not_kept(local_service: LocalService) -> None:
    guard = IdempotencyGuard(_table(local_service), lambda: 1_000)
    rejected = guard.run(
        "POST /v1/signups", "key-4xx", "fp-1", lambda: StoredResponse(422, {}, "{}")
    )

    corrected = guard.run("POST /v1/signups", "key-4xx", "fp-2", _created)

    assert rejected.status == 422
    assert corrected.status == 202
