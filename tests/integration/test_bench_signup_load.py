"""The bench's signup load section on a tiny run: counts and checks, never timings."""

from __future__ import annotations

import pytest

from infra.bench.signup_load import (
    TRIVIAL_PATH,
    LoadRun,
    RequestTiming,
    SignupLoadResult,
    run_clients,
    run_signup_load_bench,
    signup_load_section,
)

pytestmark = pytest.mark.integration

CLIENTS = 4
REQUESTS = 8
SEQUENTIAL = 2
WARMUP = 1


@pytest.fixture(scope="module")
def result() -> SignupLoadResult:
    return run_signup_load_bench(
        CLIENTS, REQUESTS, 300.0, sequential_requests=SEQUENTIAL, warmup_requests=WARMUP
    )


def test_every_signup_accepted(result: SignupLoadResult) -> None:
    assert result.concurrent.completed == REQUESTS
    assert result.concurrent.errors == {}
    assert result.sequential.completed == SEQUENTIAL
    assert result.sequential.errors == {}


def test_trivial_route_baseline(result: SignupLoadResult) -> None:
    assert result.trivial.completed == REQUESTS
    assert result.trivial.clients == CLIENTS
    assert result.trivial.errors == {}


def test_end_state_matches(result: SignupLoadResult) -> None:
    planned = WARMUP + SEQUENTIAL + REQUESTS

    assert result.limits == {"SignupsPerIpPerHour": planned, "SmsOtpDailyBudget": planned}
    assert result.accepted == planned
    assert result.lost == 0
    assert result.stored_after_error == 0
    assert result.jobs_after_error == 0
    assert result.duplicate_jobs == 0
    assert result.over_limit == "429 limit.ip"


def test_section_names_figures(result: SignupLoadResult) -> None:
    section = signup_load_section(result)

    assert section.startswith("## Signups under concurrent clients")
    assert f"signups per second, {CLIENTS} clients vs one client" in section
    assert f"`GET {TRIVIAL_PATH}`" in section
    assert "`SignupsPerIpPerHour` 11" in section
    assert "p99 latency" in section
    assert "Little's law" in section


def test_deadline_stops_new_requests() -> None:
    # Past its deadline at the start, the run never connects to this address.
    run = run_clients(
        "http://127.0.0.1:9",
        [("GET", TRIVIAL_PATH, None)] * 5,
        2,
        0.0,
        label="past its deadline",
        expected_status=200,
    )

    assert run.completed == 0
    assert run.deadline_hit


def test_errors_counted_by_status() -> None:
    run = LoadRun(
        "made up",
        2,
        4,
        202,
        [
            RequestTiming(0.0, 0.1, 202),
            RequestTiming(0.0, 0.2, 429, "limit.ip"),
            RequestTiming(0.1, 0.3, 0, "no_response"),
            RequestTiming(0.2, 0.4, 202),
        ],
        deadline_hit=False,
    )

    assert run.errors == {"429 limit.ip": 1, "0 no_response": 1}
    assert run.mean_latency_s == pytest.approx(0.25)
    assert run.percentile(0.5) == 0.2
    assert run.percentile(1.0) == 0.4
    assert run.span_s == pytest.approx(0.6)
    assert run.throughput == pytest.approx(4 / 0.6)
