"""The account routes behind their Lambda authorizer, over the local HTTP API against moto.

Two subscribers: A (王小明) has no alerts, B (Alice Li) has alerts delivered by e-mail and SMS
and changed settings. Every account route is called with A's token and must show nothing of B.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from idsentry.adapters.exports import ExportObjects
from idsentry.adapters.token_keys import KmsTokenSigner
from idsentry.models.jobs import AlertJob
from idsentry.services import notify, subscriber_reports
from idsentry.services.alerts import AlertDeps, alert_id_for, review_exposure
from idsentry.services.deferrals import defer_alert_sms
from idsentry.services.delivery import StatusCallback, record_status
from idsentry.services.exposures import record_exposure
from idsentry.services.hibp_catalogue import breach_item
from idsentry.services.preferences import set_email_list
from idsentry.services.risk import load_rules
from idsentry.services.tokens import issue_access_token
from infra.local.http_api import extract_routes
from infra.local.service import LocalService
from infra.local.template import load_template
from tests.integration.conftest import MovableClock
from tests.integration.test_breach_intake import BREACH
from tests.integration.test_sign_in import SignInHarness
from tests.integration.test_signup_service import _clear_table

pytestmark = pytest.mark.integration

DATES = {"AddedDate": "2026-11-20T00:00:00Z", "ModifiedDate": "2026-11-20T00:00:00Z"}
SECOND_BREACH = {**BREACH, "Name": "ExampleForum2026", "Title": "Example Forum"}
# Every account route, in the order the cross-account test calls them with A's token: reads,
# then changes, then what ends A's data (consent withdrawal, deletion) last.
CROSS_ACCOUNT_ORDER = (
    "GET /v1/account",
    "GET /v1/account/alerts",
    "GET /v1/account/preferences",
    "PUT /v1/account/preferences",
    "GET /v1/account/alerts/{alert_id}/playbook",
    "PUT /v1/account/alerts/{alert_id}/playbook/{step_id}",
    "GET /v1/account/checks",
    "POST /v1/account/checks",
    "GET /v1/account/reports",
    "GET /v1/account/reports/{report_id}/{format}",
    "POST /v1/account/reports",
    "POST /v1/account/dossier",
    "POST /v1/account/deep-report",
    "POST /v1/account/export",
    "GET /v1/account/export/{export_id}",
    "POST /v1/account/consents/sensitive_personal_information/withdraw",
    "DELETE /v1/account",
)
ROUTE_BODIES: dict[str, Any] = {
    "PUT /v1/account/preferences": {"locale": "zh-CN"},
    "PUT /v1/account/alerts/{alert_id}/playbook/{step_id}": {"done": True},
    "POST /v1/account/checks": {"check": "bank_cards", "counts": {"bank_cards": 2}},
}
PLACEHOLDER_EXPORT_ID = "exp_01M91B4ABG36G2R8D4PV2HM6CG"


class NoEvents:
    """Takes the events these tests do not follow."""

    def publish(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Accounts:
    """Two subscribers with their tokens, and what identifies B's data in a response."""

    service: LocalService
    harness: SignInHarness
    a: str
    b: str
    a_token: str
    b_token: str
    b_alert_ids: list[str]
    b_markers: list[str]
    b_report_id: str

    def get(self, path: str, token: str | None, **headers: str) -> requests.Response:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.get(f"{self.service.base_url}{path}", headers=headers, timeout=30)

    def put(self, path: str, token: str | None, body: Any, **headers: str) -> requests.Response:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.put(
            f"{self.service.base_url}{path}", json=body, headers=headers, timeout=30
        )


def _token(harness: SignInHarness, subscriber_id: str, issued_at: int | None = None) -> str:
    signer = KmsTokenSigner(harness.key_arn, harness.kms)
    now = int(time.time()) if issued_at is None else issued_at
    issued = issue_access_token(
        signer, harness.sign_in_settings.public_base_url, subscriber_id, now, 900
    )
    return issued.access_token


def _alert(harness: SignInHarness, subscriber_id: str, breach: dict[str, Any]) -> str:
    """Record an exposure in `breach` and let risk review confirm its alert."""
    harness.table.put(breach_item({**breach, **DATES}))
    now = int(harness.clock().timestamp())
    record_exposure(
        harness.table, NoEvents(), subscriber_id, breach["Name"], ["id_number"], "dataset", now
    )  # type: ignore[arg-type]
    deps = AlertDeps(harness.table, NoEvents(), load_rules(), harness.clock)  # type: ignore[arg-type]
    assert review_exposure(deps, subscriber_id, breach["Name"]) == "confirmed"
    return alert_id_for(subscriber_id, breach["Name"])


@pytest.fixture(scope="module")
def accounts(local_service: LocalService) -> Iterator[Accounts]:
    harness = SignInHarness(local_service, MovableClock())
    a = harness.subscriber("wang")
    b = harness.subscriber("alice")

    # B's first alert goes out by e-mail and SMS now, and Twilio reports the SMS delivered.
    first = _alert(harness, b, BREACH)
    job = AlertJob(
        job_id=f"job_{first}", subscriber_id=b, alert_id=first, breach_name=BREACH["Name"]
    )
    assert notify.process_job(harness.notifier, job) == "sent"
    record = harness.table.get(f"NOTIFY#alert:{first}", "sms")
    assert record is not None
    now = int(harness.clock().timestamp())
    callback = StatusCallback(message_sid=record["provider_id"], status="delivered")
    record_status(harness.table, callback, lambda: harness.pepper, now)

    # B's second alert has its SMS held back until quiet hours end.
    second = _alert(harness, b, SECOND_BREACH)
    held = AlertJob(
        job_id=f"job_{second}", subscriber_id=b, alert_id=second, breach_name=SECOND_BREACH["Name"]
    )
    defer_alert_sms(harness.table, held, now + 8 * 3600, now)
    set_email_list(harness.table, b, "reports", False, now)

    # B signed up before the month of B's report, or the worker would not render it.
    harness.table.update(
        f"SUB#{b}",
        "PROFILE",
        "SET created_at = :when",
        values={":when": int(datetime(2026, 9, 1, tzinfo=UTC).timestamp())},
    )
    report_job = subscriber_reports.monthly_job(b, "2026-11")
    environment = local_service.stack.runtime.environment  # type: ignore[union-attr]
    report_deps = subscriber_reports.ReportDeps(
        table=harness.table,
        objects=ExportObjects(
            environment["REPORTS_BUCKET"],
            environment["DATA_KEY_ARN"],
            local_service.stack.runtime.client("s3"),  # type: ignore[union-attr]
        ),
        publisher=NoEvents(),  # type: ignore[arg-type]
        clock=harness.clock,
    )
    assert subscriber_reports.generate_report(report_deps, report_job) == "generated"
    b_report_id = subscriber_reports.job_report_id(report_job)

    b_items = harness.table.get_partition(f"SUB#{b}")
    markers = [b, first, second, BREACH["Name"], SECOND_BREACH["Name"], b_report_id]
    markers += [
        str(b_items[f"IDENT#{kind}"]["masked"]) for kind in ("id_number", "mobile", "email")
    ]
    yield Accounts(
        service=local_service,
        harness=harness,
        a=a,
        b=b,
        a_token=_token(harness, a),
        b_token=_token(harness, b),
        b_alert_ids=[first, second],
        b_markers=markers,
        b_report_id=b_report_id,
    )
    _clear_table(local_service)


def account_routes() -> list[str]:
    """Every route of the template behind the account authorizer."""
    return sorted(
        route.route_key
        for route in extract_routes(load_template("template.yaml"))
        if route.authorizer == "AccountTokenAuthorizer"
    )


def _call(
    accounts: Accounts,
    route_key: str,
    token: str | None,
    export_id: str = PLACEHOLDER_EXPORT_ID,
) -> requests.Response:
    method, path = route_key.split(" ", 1)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body = ROUTE_BODIES.get(route_key)
    return requests.request(
        method,
        f"{accounts.service.base_url}{_fill(path, accounts, export_id)}",
        json=body if body is not None or method in ("GET", "DELETE") else {},
        headers=headers,
        timeout=30,
    )


def _fill(path: str, accounts: Accounts, export_id: str) -> str:
    """Fill a route's path parameters with B's export and first alert."""
    path = path.replace("{export_id}", export_id).replace("{alert_id}", accounts.b_alert_ids[0])
    path = path.replace("{report_id}", accounts.b_report_id).replace("{format}", "pdf")
    return path.replace("{step_id}", "check_phone_cards_and_accounts")


def test_every_account_route_checked() -> None:
    # A new account route must join the cross-account test at the end of this module.
    assert sorted(account_routes()) == sorted(CROSS_ACCOUNT_ORDER)


@pytest.mark.parametrize("route_key", account_routes())
def test_route_without_token_is_401(accounts: Accounts, route_key: str) -> None:
    response = _call(accounts, route_key, None)

    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


@pytest.mark.parametrize("route_key", account_routes())
def test_route_with_forged_token_is_403(accounts: Accounts, route_key: str) -> None:
    class OtherKey:
        key_id = KmsTokenSigner(accounts.harness.key_arn).key_id
        private_key = ec.generate_private_key(ec.SECP256R1())

        def sign(self, message: bytes) -> bytes:
            return self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))

    forged = issue_access_token(
        OtherKey(),
        accounts.harness.sign_in_settings.public_base_url,
        accounts.b,
        int(time.time()),
        900,
    ).access_token

    response = _call(accounts, route_key, forged)

    assert response.status_code == 403
    assert accounts.b not in response.text


@pytest.mark.parametrize("route_key", account_routes())
def test_route_with_expired_token_is_403(accounts: Accounts, route_key: str) -> None:
    expired = _token(accounts.harness, accounts.b, issued_at=int(time.time()) - 7200)

    assert _call(accounts, route_key, expired).status_code == 403


def test_query_cannot_choose_account(accounts: Accounts) -> None:
    response = accounts.get(f"/v1/account/alerts?subscriber_id={accounts.b}", accounts.a_token)

    assert response.status_code == 200
    assert response.json() == {"alerts": []}


def test_account_shows_own_data(accounts: Accounts) -> None:
    response = accounts.get("/v1/account", accounts.a_token)

    body = response.json()
    assert body["subscriber_id"] == accounts.a
    assert body["status"] == "pending_payment"
    assert body["plan"] == "monthly"
    assert body["email_confirmed"] is False
    kinds = {entry["kind"]: entry for entry in body["identifiers"]}
    assert kinds["id_number"]["masked"] == "1101**********1239"
    assert kinds["mobile"]["masked"] == "138****8001"
    assert kinds["email"] == {**kinds["email"], "masked": "w***@example.com", "watched": False}
    # No clear identifier leaves the account routes.
    assert "110105199003071239" not in response.text
    assert "13800138001" not in response.text


def test_b_alert_history(accounts: Accounts) -> None:
    response = accounts.get("/v1/account/alerts", accounts.b_token)

    alerts = {alert["alert_id"]: alert for alert in response.json()["alerts"]}
    first, second = accounts.b_alert_ids
    assert sorted(alerts) == sorted([first, second])
    sent = alerts[first]
    assert sent["breach"]["name"] == BREACH["Name"]
    assert sent["breach"]["title"] == "Example Shop"
    assert sent["status"] == "confirmed"
    assert sent["why"]["confirmed_by"] == "rules"
    assert sent["why"]["severity_rule"]
    assert sent["why"]["confidence_rule"]
    assert sent["matched"] == [{"kind": "id_number", "masked": "3101**********0023"}]
    assert sent["found_by"] == "dataset"
    channels = {channel["channel"]: channel for channel in sent["channels"]}
    assert channels["email"]["state"] == "sent"
    assert channels["sms"]["state"] == "sent"
    assert channels["sms"]["delivery"] == "delivered"
    held = {channel["channel"]: channel for channel in alerts[second]["channels"]}
    assert held["sms"]["state"] == "deferred"
    assert held["sms"]["release_at"]
    assert held["email"]["state"] == "not_sent"


def test_alert_severity_from_rules(accounts: Accounts) -> None:
    item = accounts.harness.table.get(f"SUB#{accounts.b}", f"ALERT#{BREACH['Name']}")
    assert item is not None

    (shown,) = [
        alert
        for alert in accounts.get("/v1/account/alerts", accounts.b_token).json()["alerts"]
        if alert["alert_id"] == accounts.b_alert_ids[0]
    ]

    assert shown["severity"] == item["severity"]
    assert shown["confidence"] == item["confidence"]
    assert shown["why"]["severity_rule"] == item["severity_rule"]


def test_a_changes_only_own_preferences(accounts: Accounts) -> None:
    before = accounts.get("/v1/account/preferences", accounts.b_token).json()

    changed = accounts.put(
        "/v1/account/preferences",
        accounts.a_token,
        {"sms_alerts": False, "email_lists": {"alerts": False}, "timezone": "Europe/Berlin"},
        **{"Accept-Language": "en"},
    )

    assert changed.status_code == 200
    assert changed.json()["sms_alerts"] is False
    assert changed.json()["email_lists"] == {"alerts": False, "reports": True}
    assert changed.json()["timezone"] == "Europe/Berlin"
    assert changed.json()["message"] == "Your settings are saved."
    assert accounts.get("/v1/account/preferences", accounts.b_token).json() == before
    stored = accounts.harness.table.get(f"SUB#{accounts.a}", "PREFS")
    assert stored is not None and stored["sms_alerts_source"] == "account"


def test_body_cannot_name_account(accounts: Accounts) -> None:
    response = accounts.put(
        "/v1/account/preferences",
        accounts.a_token,
        {"subscriber_id": accounts.b, "sms_alerts": False},
    )

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [
        {"field": "subscriber_id", "code": "field.unknown", "message": "不支持该字段。"}
    ]
    assert accounts.get("/v1/account/preferences", accounts.b_token).json()["sms_alerts"] is True


def test_b_sees_own_preferences(accounts: Accounts) -> None:
    body = accounts.get("/v1/account/preferences", accounts.b_token).json()

    assert body["email_lists"] == {"alerts": True, "reports": False}
    assert body["sms_state"] == "ok"


def test_invalid_preferences_named_in_english(accounts: Accounts) -> None:
    response = accounts.put(
        "/v1/account/preferences",
        accounts.a_token,
        {"timezone": "Mars/Base", "locale": "fr"},
        **{"Accept-Language": "en"},
    )

    assert response.status_code == 422
    fields = {field["field"]: field["message"] for field in response.json()["error"]["fields"]}
    assert fields == {
        "timezone": "The time zone is not recognised: use an IANA time zone name such as "
        "Asia/Shanghai.",
        "locale": "The locale must be zh-CN or en.",
    }


def test_locale_change_confirms_in_new_language(accounts: Accounts) -> None:
    response = accounts.put("/v1/account/preferences", accounts.a_token, {"locale": "en"})

    assert response.json()["locale"] == "en"
    assert response.json()["message"] == "Your settings are saved."
    profile = accounts.harness.table.get(f"SUB#{accounts.a}", "PROFILE")
    assert profile is not None and profile["locale"] == "en"


def test_errors_in_account_language(accounts: Accounts) -> None:
    # A's account chose English above; the request names no language.
    response = accounts.put("/v1/account/preferences", accounts.a_token, {"timezone": "Mars/Base"})

    assert response.status_code == 422
    fields = {field["field"]: field["message"] for field in response.json()["error"]["fields"]}
    assert fields["timezone"].startswith("The time zone is not recognised")


def test_deleted_account_is_404(accounts: Accounts) -> None:
    ghost = "sbr_01M91B4ABG36G2R8D4PV2HM6CZ"

    response = accounts.get("/v1/account", _token(accounts.harness, ghost))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "account.not_found"


def _b_state(accounts: Accounts) -> dict[str, Any]:
    """What B's account contains, read through B's own token and from the table."""
    items = accounts.harness.table.get_partition(f"SUB#{accounts.b}")
    return {
        "account": accounts.get("/v1/account", accounts.b_token).json(),
        "alerts": accounts.get("/v1/account/alerts", accounts.b_token).json(),
        "preferences": accounts.get("/v1/account/preferences", accounts.b_token).json(),
        "items": sorted(items),
    }


@pytest.fixture(scope="module")
def b_export_id(accounts: Accounts) -> str:
    created = _call(accounts, "POST /v1/account/export", accounts.b_token)
    assert created.status_code == 201, created.text
    return str(created.json()["export_id"])


# Runs last: the final routes withdraw A's consent and delete A's account.
@pytest.mark.parametrize("route_key", CROSS_ACCOUNT_ORDER)
def test_a_reaches_nothing_of_b(accounts: Accounts, b_export_id: str, route_key: str) -> None:
    before = _b_state(accounts)

    response = _call(accounts, route_key, accounts.a_token, export_id=b_export_id)

    assert response.status_code < 500, response.text
    for marker in [*accounts.b_markers, b_export_id]:
        assert marker not in response.text, f"{route_key} shows B's {marker}"
    if route_key.endswith("{export_id}") or "{alert_id}" in route_key or "{report_id}" in route_key:
        # B's export, alert and report exist, but not in A's account.
        assert response.status_code == 404
    elif route_key == "POST /v1/account/deep-report":
        # A has not paid yet, so A gets no purchase link. A link always names the caller,
        # which test_deep_report_purchase checks.
        assert response.status_code == 409, response.text
    else:
        assert response.status_code in (200, 201, 202), response.text
    assert _b_state(accounts) == before
