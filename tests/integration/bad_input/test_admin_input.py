"""Property-based staff requests: review decisions, reconciliations, the ledger and lookups.

Each example sends one IAM-authorized request to the admin function in-process, with odd path
parameters, query strings and bodies. A 400 names the one invalid field, and a rejected
request changes nothing. An accepted request writes only what it should: an audit record
for the routes that are audited, and for a new reconciliation its run items and one job.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from idsentry.adapters.table import MainTable
from idsentry.services.hibp_catalogue import breach_item
from infra.local.service import LocalService
from tests.hypothesis_profiles import examples
from tests.integration.bad_input import strategies as bad
from tests.integration.bad_input.support import (
    ADMIN_ARN,
    ShortRepr,
    StackProbe,
    StateChange,
    Tally,
    check_field_rejection,
    compare,
    http_event,
    response_json,
)

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

BREACH = "BadInputShop2026"
DECISION = "POST /v1/admin/reviews/{breach}/decision"
REVIEWS = "GET /v1/admin/reviews"
BREACH_REVIEWS = "GET /v1/admin/reviews/{breach}"
RECONCILE = "POST /v1/admin/reconciliations"
RECONCILIATION = "GET /v1/admin/reconciliations/{reconciliation_id}"
LEDGER = "GET /v1/admin/ledger/{day}"
INTAKE_JOB = "GET /v1/admin/intake-jobs/{job_id}"
BREACH_RECORD = "GET /v1/admin/breaches/{name}"
# Fields the staff routes name in a 400; an unknown body field is counted as "other".
FIELDS = frozenset(
    {"body", "breach", "cursor", "limit", "day", "reconciliation_id", "Idempotency-Key"}
    | {"decision", "reason", "alert_ids", "from", "to", "repair", "locale"}
)
# Routes whose successful responses write one audit record each.
AUDITED = (DECISION, REVIEWS, BREACH_REVIEWS, RECONCILE, RECONCILIATION)


@dataclass(repr=False)
class AdminCase(ShortRepr):
    """One drawn staff request."""

    route: str
    path_parameters: dict[str, str]
    query: dict[str, str]
    body: bytes | None
    headers: dict[str, str]


def _cursor(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


path_texts = st.one_of(bad.odd_text.filter(bool), bad.huge_text)
limits = st.one_of(
    st.integers(min_value=-5, max_value=300).map(str),
    st.sampled_from(
        ["", "²", "１０", "١٢", "1e3", "0x10", " 5", "5 ", "+5", "9" * 400, "9" * 5000]
    ),
    bad.odd_text,
)
cursors = st.one_of(
    bad.odd_text,
    st.builds(_cursor, bad.json_values),
    st.builds(
        _cursor, st.lists(st.one_of(bad.odd_text, st.just("REVIEW")), min_size=4, max_size=4)
    ),
    st.sampled_from([_cursor(["LEDGER#20261204", "x", "y", "z"]), "=" * 8, "%%%"]),
    st.sampled_from([2_000, 50_000]).map(
        lambda depth: base64.urlsafe_b64encode(bad.nested(depth, "[").encode()).decode()
    ),
)


@st.composite
def queries(draw: st.DrawFn) -> dict[str, str]:
    query: dict[str, str] = {}
    if draw(st.booleans()):
        query["limit"] = draw(limits)
    if draw(st.booleans()):
        query["cursor"] = draw(cursors)
    if draw(st.booleans()):
        query[draw(bad.odd_text)] = draw(bad.odd_text)
    return query


@st.composite
def decision_bodies(draw: st.DrawFn) -> bytes:
    body: dict[str, Any] = {
        "decision": draw(st.sampled_from(["confirm", "dismiss"])),
        "reason": "Only a shared mobile number matched, in an unverified breach.",
    }
    if draw(st.booleans()):
        body["alert_ids"] = draw(
            st.lists(st.from_regex(r"\Aalt_[0-9a-f]{26}\Z"), min_size=1, max_size=3)
        )
    change = draw(
        st.sampled_from(["none", "drop", "extra", "decision", "reason", "alert_ids", "broken"])
    )
    if change == "broken":
        return draw(bad.broken_bodies)
    if change == "drop":
        body.pop(draw(st.sampled_from(["decision", "reason"])))
    elif change == "extra":
        body[draw(st.from_regex(r"\A[a-z_]{1,12}\Z"))] = draw(bad.json_values)
    elif change == "decision":
        body["decision"] = draw(
            st.one_of(bad.json_values, st.sampled_from(["CONFIRM", "confirm "]))
        )
    elif change == "reason":
        body["reason"] = draw(st.one_of(bad.json_values, bad.huge_text, st.just("   ")))
    elif change == "alert_ids":
        body["alert_ids"] = draw(
            st.one_of(
                bad.json_values,
                st.lists(bad.odd_text, max_size=3),
                st.just([f"alt_{index:026x}" for index in range(501)]),
            )
        )
    return json.dumps(body).encode()


@st.composite
def reconciliation_bodies(draw: st.DrawFn) -> bytes:
    first = draw(st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 4)))
    last = first + timedelta(days=draw(st.integers(min_value=0, max_value=30)))
    body: dict[str, Any] = {
        "from": first.isoformat(),
        "to": min(last, date(2026, 12, 4)).isoformat(),
        "repair": draw(st.booleans()),
        "locale": draw(st.sampled_from(["zh-CN", "en"])),
    }
    change = draw(st.sampled_from(["none", "none", "drop", "extra", "field", "broken"]))
    if change == "broken":
        return draw(bad.broken_bodies)
    if change == "drop":
        body.pop(draw(st.sampled_from(sorted(body))))
    elif change == "extra":
        body[draw(st.from_regex(r"\A[a-z_]{1,12}\Z"))] = draw(bad.json_values)
    elif change == "field":
        name = draw(st.sampled_from(sorted(body)))
        body[name] = draw(
            st.one_of(
                bad.json_values,
                st.sampled_from(
                    ["2026-02-30", "20261204", "2026-W49-5", "2099-01-01", "1999-01-01"]
                ),
            )
        )
    return json.dumps(body).encode()


@st.composite
def admin_cases(draw: st.DrawFn) -> AdminCase:
    """A staff request to one of the admin routes, with odd paths, queries and bodies."""
    route = draw(
        st.sampled_from(
            [
                DECISION,
                DECISION,
                RECONCILE,
                RECONCILE,
                LEDGER,
                REVIEWS,
                BREACH_REVIEWS,
                RECONCILIATION,
                INTAKE_JOB,
                BREACH_RECORD,
            ]
        )
    )
    breach = draw(st.one_of(st.just(BREACH), st.just("NoSuchBreach"), path_texts))
    headers = {"content-type": "application/json"}
    parameters: dict[str, str] = {}
    body = None
    query: dict[str, str] = {}
    if route == DECISION:
        parameters = {"breach": breach}
        body = draw(decision_bodies())
    elif route == BREACH_REVIEWS:
        parameters = {"breach": breach}
        query = draw(queries())
    elif route == REVIEWS:
        query = draw(queries())
    elif route == RECONCILE:
        body = draw(reconciliation_bodies())
        if draw(st.booleans()):
            headers["idempotency-key"] = draw(bad.idempotency_keys)
    elif route == RECONCILIATION:
        parameters = {
            "reconciliation_id": draw(
                st.one_of(
                    st.just("rcn_day_20261204"), st.from_regex(r"\Arcn_[0-9A-Z]{26}\Z"), path_texts
                )
            )
        }
    elif route == LEDGER:
        day = st.one_of(
            st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31)).map(
                lambda day: day.strftime("%Y%m%d")
            ),
            st.sampled_from(["20260230", "２０２６１２０４", "2026-12-04", "²⁰²⁶¹²⁰⁴"]),
            path_texts,
        )
        parameters = {"day": draw(day)}
        query = draw(queries())
    elif route == INTAKE_JOB:
        parameters = {
            "job_id": draw(st.one_of(st.from_regex(r"\Aijob_[0-9a-f]{26}\Z"), path_texts))
        }
    else:
        parameters = {"name": draw(st.one_of(st.just(BREACH), path_texts))}
    return AdminCase(route, parameters, query, body, headers)


def _path(route: str, parameters: dict[str, str]) -> str:
    path = route.split(" ", 1)[1]
    for name, value in parameters.items():
        path = path.replace("{" + name + "}", value)
    return path


def _expected_writes(
    case: AdminCase, change: StateChange, response: dict[str, Any], tables: dict[str, str]
) -> tuple[list[str], int, int]:
    """Return the stray writes of an accepted request, and what it lost and doubled."""
    audits = change.added_in(tables["audit"])
    expected_audits = 1 if case.route in AUDITED else 0
    lost = max(expected_audits - len(audits), 0)
    duplicated = max(len(audits) - expected_audits, 0)

    touched = [key for (table, key) in [*change.added, *change.changed] if table == tables["main"]]
    jobs = change.messages.get(tables["reconciliation_queue"], 0)
    created = case.route == RECONCILE and bool(response_json(response).get("created"))
    allowed = ("RECON#", "RECONREQ#", "RECONKEY#") if created else ()
    stray = [key for key in touched if not key.startswith(allowed)] if allowed else touched
    if created:
        run_id = response_json(response)["reconciliation_id"]
        lost += (f"RECON#{run_id}|RUN" not in touched) + max(1 - jobs, 0)
        duplicated += max(jobs - 1, 0)
    else:
        stray += [f"{tables['reconciliation_queue']} +{jobs}"] * bool(jobs)
    stray += [str(key) for key in change.removed]
    stray += [key for (table, key) in change.added if table not in tables.values()]
    return stray, lost, duplicated


def test_admin_requests(input_service: LocalService, probe: StackProbe) -> None:
    tally = Tally(
        "input.admin_requests",
        "Staff routes: review decisions, reconciliations, ledger, lookups",
    )
    assert input_service.stack is not None
    runtime = input_service.stack.runtime
    environment = runtime.environment
    tables = {
        "main": environment["TABLE_NAME"],
        "audit": environment["AUDIT_TABLE_NAME"],
        "reconciliation_queue": environment["RECONCILIATION_QUEUE_URL"],
    }
    catalogue = breach_item(
        {
            "Name": BREACH,
            "Title": "Bad input shop",
            "Domain": "shop.example.com",
            "BreachDate": "2026-10-01",
            "AddedDate": "2026-11-01T00:00:00Z",
            "ModifiedDate": "2026-11-01T00:00:00Z",
            "PwnCount": 10,
            "DataClasses": ["Phone numbers"],
            "IsVerified": False,
        }
    )
    probe.clear_tables()
    MainTable(tables["main"], runtime.client("dynamodb")).put(catalogue)
    start = probe.state()
    explained: set[tuple[str, str]] = set()
    jobs_sent = 0
    scope = {
        "tables": [tables["main"], tables["audit"]],
        "queues": [tables["reconciliation_queue"]],
        "buckets": [],
    }

    @settings(max_examples=examples(fast=25, full=300))
    @given(case=admin_cases())
    # A limit of superscript digits: str.isdigit() accepts them and int() does not.
    @example(case=AdminCase(LEDGER, {"day": "20261204"}, {"limit": "²"}, None, {}))
    @example(case=AdminCase(REVIEWS, {}, {"limit": "²"}, None, {}))
    # A limit of 5,000 digits, over int()'s 4,300-digit limit.
    @example(case=AdminCase(LEDGER, {"day": "20261204"}, {"limit": "9" * 5000}, None, {}))
    # A cursor that decodes to JSON nested past the decoder's limit.
    @example(
        case=AdminCase(
            LEDGER,
            {"day": "20261204"},
            {"cursor": base64.urlsafe_b64encode(bad.nested(5_000, "[").encode()).decode()},
            None,
            {},
        )
    )
    def check(case: AdminCase) -> None:
        nonlocal jobs_sent
        event = http_event(
            case.route,
            _path(case.route, case.path_parameters),
            body=case.body,
            headers=case.headers,
            path_parameters=case.path_parameters,
            query=case.query,
            caller_arn=ADMIN_ARN,
        )
        before = probe.state(**scope)
        response = runtime.invoke("AdminApiFunction", event)
        change = compare(before, probe.state(**scope))
        status = response["statusCode"]
        tally.count(status)
        assert status < 500, response["body"]

        if status >= 400:
            assert status in (400, 404), response["body"]
            if status == 400:
                named = check_field_rejection(response)
                tally.extra[f"named_{named if named in FIELDS else 'other'}"] += 1
            else:
                assert response_json(response)["error"]["code"] == "not_found"
            if not change.empty:
                tally.stray_writes += 1
            assert change.empty, change.describe()
            return

        stray, lost, duplicated = _expected_writes(case, change, response, tables)
        tally.stray_writes += len(stray)
        tally.lost += lost
        tally.duplicated += duplicated
        explained.update(change.added)
        explained.update(change.changed)
        jobs_sent += change.messages.get(tables["reconciliation_queue"], 0)
        assert not stray, change.describe()
        assert not lost, change.describe()
        assert not duplicated, change.describe()

    try:
        check()
        end = compare(start, probe.state())
        unexplained = [key for key in [*end.added, *end.changed] if key not in explained]
        other_queues = [url for url in end.messages if url != tables["reconciliation_queue"]]
        tally.stray_writes += len(unexplained) + len(end.removed)
        tally.stray_writes += len(other_queues) + len(end.objects)
        assert end.messages.get(tables["reconciliation_queue"], 0) == jobs_sent
    finally:
        tally.record()
    tally.check_totals()
