"""Integration tests of the real-name verification emulator over HTTP."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.local.emulators.realname import InvalidIdentityError, RealNameEmulator

pytestmark = pytest.mark.integration

API_KEY = "realname-test-key"
TIMEOUT_SECONDS = 10.0
# Synthetic identities with valid check digits; the first is the GB 11643 example number.
ZHANG = {"name": "张三", "id_number": "11010519491231002X", "mobile": "+8613800138000"}
LI = {"name": "李四", "id_number": "440308199901010012", "mobile": "+8613900139000"}
UNKNOWN = {"name": "王五", "id_number": "310101198001010018", "mobile": "+8613700137000"}


@pytest.fixture
def identities_file(tmp_path: Path) -> Path:
    path = tmp_path / "identities.json"
    path.write_text(json.dumps([ZHANG], ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def emulator(identities_file: Path) -> Iterator[RealNameEmulator]:
    with RealNameEmulator(API_KEY, identities_path=identities_file) as running:
        yield running


def verify(
    emulator: RealNameEmulator, payload: Any, api_key: str | None = API_KEY
) -> requests.Response:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key is not None else {}
    return requests.post(
        f"{emulator.base_url}/v1/identity/verify",
        json=payload,
        headers=headers,
        timeout=TIMEOUT_SECONDS,
    )


def test_verify_match(emulator: RealNameEmulator) -> None:
    response = verify(emulator, ZHANG)

    body = response.json()
    assert response.status_code == 200
    assert body["result"] == "match"
    assert uuid.UUID(body["request_id"]).version == 4
    assert set(body) == {"request_id", "result"}


@pytest.mark.parametrize(
    "changes",
    [{"name": "张四"}, {"mobile": "+8613800138001"}, {"name": "李四", "mobile": LI["mobile"]}],
)
def test_verify_mismatch(emulator: RealNameEmulator, changes: dict[str, str]) -> None:
    response = verify(emulator, {**ZHANG, **changes})

    assert response.status_code == 200
    assert response.json()["result"] == "mismatch"


def test_verify_not_found(emulator: RealNameEmulator) -> None:
    response = verify(emulator, UNKNOWN)

    assert response.status_code == 200
    assert response.json()["result"] == "not_found"


def test_verify_compares_exactly(emulator: RealNameEmulator) -> None:
    lower_x = {**ZHANG, "id_number": ZHANG["id_number"].lower()}

    response = verify(emulator, lower_x)

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "field": "id_number"}


def test_add_identity_method(emulator: RealNameEmulator) -> None:
    before = verify(emulator, LI).json()["result"]

    emulator.add_identity(**LI)
    after = verify(emulator, LI).json()["result"]

    assert before == "not_found"
    assert after == "match"


def test_add_identities_endpoint(emulator: RealNameEmulator) -> None:
    added = requests.post(
        f"{emulator.base_url}/_emulator/identities", json=[LI, UNKNOWN], timeout=TIMEOUT_SECONDS
    )

    assert added.status_code == 201
    assert added.json() == {"added": 2}
    assert verify(emulator, LI).json()["result"] == "match"
    assert verify(emulator, UNKNOWN).json()["result"] == "match"


def test_add_identity_replaces(emulator: RealNameEmulator) -> None:
    emulator.add_identity(ZHANG["name"], ZHANG["id_number"], "+8613600136000")

    assert verify(emulator, ZHANG).json()["result"] == "mismatch"


def test_add_identity_rejects_bad_field(emulator: RealNameEmulator) -> None:
    with pytest.raises(InvalidIdentityError) as caught:
        emulator.add_identity("赵六", "12345", "+8613500135000")
    response = requests.post(
        f"{emulator.base_url}/_emulator/identities",
        json={**LI, "mobile": "13900139000"},
        timeout=TIMEOUT_SECONDS,
    )

    assert caught.value.field == "id_number"
    assert "12345" not in str(caught.value)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "field": "mobile"}


@pytest.mark.parametrize("api_key", [None, "wrong-key", ""])
def test_verify_rejects_bad_key(emulator: RealNameEmulator, api_key: str | None) -> None:
    response = verify(emulator, ZHANG, api_key=api_key)

    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized"}


def test_verify_rejects_basic_scheme(emulator: RealNameEmulator) -> None:
    response = requests.post(
        f"{emulator.base_url}/v1/identity/verify",
        json=ZHANG,
        auth=("user", API_KEY),
        timeout=TIMEOUT_SECONDS,
    )

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"id_number": ZHANG["id_number"], "mobile": ZHANG["mobile"]}, "name"),
        ({**ZHANG, "name": 12}, "name"),
        ({**ZHANG, "name": "  "}, "name"),
        ({**ZHANG, "id_number": None}, "id_number"),
        ({**ZHANG, "id_number": 110105194912310020}, "id_number"),
        ({**ZHANG, "id_number": "110105491231002"}, "id_number"),
        ({"name": ZHANG["name"], "id_number": ZHANG["id_number"]}, "mobile"),
        ({**ZHANG, "mobile": "13800138000"}, "mobile"),
        ([ZHANG], "body"),
        ("not an object", "body"),
    ],
)
def test_verify_rejects_bad_input(emulator: RealNameEmulator, payload: Any, field: str) -> None:
    response = verify(emulator, payload)

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "field": field}


def test_verify_rejects_invalid_json(emulator: RealNameEmulator) -> None:
    response = requests.post(
        f"{emulator.base_url}/v1/identity/verify",
        data=b"{not json",
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        timeout=TIMEOUT_SECONDS,
    )

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "field": "body"}


def test_fail_next_answers_503(emulator: RealNameEmulator) -> None:
    emulator.fail_next(2)

    first = verify(emulator, ZHANG)
    second = verify(emulator, ZHANG)
    third = verify(emulator, ZHANG)

    assert first.status_code == 503
    assert first.json() == {"error": "service_unavailable"}
    assert second.status_code == 503
    assert third.status_code == 200
    assert third.json()["result"] == "match"


def test_faults_endpoint(emulator: RealNameEmulator) -> None:
    configured = requests.post(
        f"{emulator.base_url}/_emulator/faults", json={"count": 1}, timeout=TIMEOUT_SECONDS
    )
    rejected = requests.post(
        f"{emulator.base_url}/_emulator/faults", json={"count": "1"}, timeout=TIMEOUT_SECONDS
    )

    assert configured.status_code == 200
    assert rejected.status_code == 400
    assert rejected.json() == {"error": "invalid_request", "field": "count"}
    assert verify(emulator, ZHANG).status_code == 503
    assert verify(emulator, ZHANG).status_code == 200


def test_requests_summary(emulator: RealNameEmulator) -> None:
    matched = verify(emulator, ZHANG).json()
    verify(emulator, {**ZHANG, "name": "张四"})
    verify(emulator, UNKNOWN)
    verify(emulator, UNKNOWN)
    verify(emulator, ZHANG, api_key="wrong-key")
    verify(emulator, {**ZHANG, "mobile": 1})

    response = requests.get(f"{emulator.base_url}/_emulator/requests", timeout=TIMEOUT_SECONDS)
    summary = response.json()

    assert summary["count"] == 4
    assert summary["results"] == {"match": 1, "mismatch": 1, "not_found": 2}
    assert summary["rejected"] == {"unauthorized": 1, "invalid_request": 1}
    assert summary["requests"][0] == matched
    assert summary == emulator.requests()
    for value in (*ZHANG.values(), *UNKNOWN.values()):
        assert value not in response.text


def test_reset_restores_file_population(emulator: RealNameEmulator) -> None:
    emulator.add_identity(**LI)
    emulator.fail_next(5)
    verify(emulator, ZHANG)

    reset = requests.post(f"{emulator.base_url}/_emulator/reset", timeout=TIMEOUT_SECONDS)

    assert reset.status_code == 200
    assert emulator.requests()["count"] == 0
    assert emulator.requests()["rejected"] == {}
    assert verify(emulator, ZHANG).json()["result"] == "match"
    assert verify(emulator, LI).json()["result"] == "not_found"


def test_file_entry_rejected(tmp_path: Path) -> None:
    path = tmp_path / "identities.json"
    path.write_text(json.dumps([ZHANG, {**LI, "mobile": None}]), encoding="utf-8")

    with pytest.raises(ValueError, match="entry 1: mobile"):
        RealNameEmulator(API_KEY, identities_path=path)


def test_without_file_starts_empty() -> None:
    with RealNameEmulator(API_KEY) as emulator:
        assert verify(emulator, ZHANG).json()["result"] == "not_found"


def test_unknown_route_404(emulator: RealNameEmulator) -> None:
    response = requests.get(f"{emulator.base_url}/v1/identity/verify", timeout=TIMEOUT_SECONDS)

    assert response.status_code == 404


def test_logs_contain_no_personal_data(
    emulator: RealNameEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="urllib3")
    caplog.set_level(logging.DEBUG)

    emulator.add_identity(**LI)
    verify(emulator, ZHANG)
    verify(emulator, {**LI, "name": "李五"})
    verify(emulator, UNKNOWN)
    verify(emulator, {**UNKNOWN, "mobile": "13700137000"})
    verify(emulator, LI, api_key="wrong-key")
    requests.post(
        f"{emulator.base_url}/_emulator/identities", json=UNKNOWN, timeout=TIMEOUT_SECONDS
    )
    emulator.fail_next(1)
    verify(emulator, LI)
    requests.get(f"{emulator.base_url}/_emulator/requests", timeout=TIMEOUT_SECONDS)
    requests.get(f"{emulator.base_url}/v1/identity/{ZHANG['id_number']}", timeout=TIMEOUT_SECONDS)
    emulator.reset()

    personal = [*ZHANG.values(), *LI.values(), *UNKNOWN.values(), "李五", "13700137000"]
    emulator_records = [r for r in caplog.records if r.name.startswith("infra.local.emulators")]
    assert len(emulator_records) > 5
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        for value in personal:
            assert value not in text, f"{record.name}: {record.msg}"
