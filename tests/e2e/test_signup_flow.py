"""Signup over the local HTTP stack: codes, verification, ownership and e-mail confirmation."""

from __future__ import annotations

import re

import pytest
import requests

from infra.local.service import LocalService
from tests.e2e.conftest import (
    CONSENTS,
    code_from,
    sign_up_and_verify,
    signup_body,
    wait_for_emails,
    wait_for_sms,
)

pytestmark = pytest.mark.e2e


def _item(service: LocalService, pk: str, sk: str) -> dict | None:
    assert service.stack is not None
    table = service.stack.runtime.client("dynamodb")
    response = table.get_item(TableName="idsentry-local", Key={"pk": {"S": pk}, "sk": {"S": sk}})
    return response.get("Item")


def test_signup_verify_and_confirm_email(service: LocalService) -> None:
    body = signup_body()
    created = requests.post(f"{service.base_url}/v1/signups", json=body, timeout=30)

    assert created.status_code == 202
    assert created.json()["status"] == "code_sent"
    assert "验证码正在发送" in created.json()["message"]
    assert body["id_number"] not in created.text

    sms = wait_for_sms(service, body["mobile"])[0]
    assert sms["num_segments"] == 1
    verified = requests.post(
        f"{service.base_url}/v1/signups/{created.json()['signup_id']}/verify",
        json={"code": code_from(sms)},
        timeout=30,
    )
    assert verified.status_code == 200
    subscriber_id = verified.json()["subscriber_id"]
    assert verified.json()["status"] == "pending_payment"
    assert verified.json()["next_step"]["type"] == "payment"
    assert verified.json()["next_step"]["available"] is True
    assert verified.json()["next_step"]["checkout_url"].startswith("http://127.0.0.1:")
    assert "支付链接" in verified.json()["next_step"]["message"]

    email = wait_for_emails(service, 1)[-1]
    assert email["to"] == [body["email"]]
    link = re.search(r'href="([^"]+)"', email["body"])
    assert link is not None
    confirmed = requests.get(link.group(1), timeout=30)
    assert confirmed.status_code == 200
    assert "邮箱已确认" in confirmed.text
    ident = _item(service, f"SUB#{subscriber_id}", "IDENT#email")
    assert ident is not None and ident["confirmed"] == {"BOOL": True}


def test_invalid_fields_listed_in_english(service: LocalService) -> None:
    body = signup_body(
        id_number="110105199002301234", mobile="010 6552 9988", email="张@example.com"
    )
    body["consents"] = {"terms": CONSENTS["terms"]}

    response = requests.post(
        f"{service.base_url}/v1/signups",
        json=body,
        headers={"Accept-Language": "en-US,en;q=0.9"},
        timeout=30,
    )

    assert response.status_code == 422
    fields = {entry["field"]: entry["code"] for entry in response.json()["error"]["fields"]}
    assert fields["id_number"] == "id_number.invalid_birth_date"
    assert fields["mobile"] == "mobile.not_mobile"
    assert fields["email"] == "email.undeliverable_local_part"
    assert fields["consents.sensitive_personal_information"] == "consent.sensitive_required"
    assert fields["consents.cross_border_transfer"] == "consent.cross_border_required"
    assert "The date of birth" in response.text
    assert "110105199002301234" not in response.text


def test_invalid_fields_default_to_chinese(service: LocalService) -> None:
    response = requests.post(
        f"{service.base_url}/v1/signups", json=signup_body(id_number="110105900307123"), timeout=30
    )

    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["code"] == "id_number.legacy_15_digit"
    assert "18 位" in response.json()["error"]["fields"][0]["message"]


def test_under_fourteen_rejected(service: LocalService) -> None:
    response = requests.post(
        f"{service.base_url}/v1/signups",
        json=signup_body(id_number="110104201505053210"),
        timeout=30,
    )

    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["code"] == "id_number.under_minimum_age"


def test_wrong_code_then_lockout(service: LocalService) -> None:
    body = signup_body(
        name="Alice Li",
        id_number="310104198512120023",
        mobile="+8613900139002",
        email="alice.li@example.com",
        locale="en",
    )
    created = requests.post(f"{service.base_url}/v1/signups", json=body, timeout=30)
    signup_id = created.json()["signup_id"]
    right = code_from(wait_for_sms(service, body["mobile"])[0])
    wrong = "000000" if right != "000000" else "111111"
    verify_url = f"{service.base_url}/v1/signups/{signup_id}/verify"

    first = requests.post(verify_url, json={"code": wrong}, timeout=30)
    assert first.status_code == 422
    assert first.json()["error"]["fields"][0]["code"] == "code.incorrect"
    assert "4" in first.json()["error"]["fields"][0]["message"]
    for _ in range(4):
        last = requests.post(verify_url, json={"code": wrong}, timeout=30)
    assert last.json()["error"]["fields"][0]["code"] == "code.locked"

    after = requests.post(verify_url, json={"code": right}, timeout=30)
    assert after.status_code == 422
    assert after.json()["error"]["fields"][0]["code"] == "code.locked"


def test_failed_ownership_changes_nothing(service: LocalService) -> None:
    owner = signup_body(
        name="陈静",
        id_number="320103197506187775",
        mobile="+8613600136006",
        email="chenjing@example.com",
    )
    owner_result = sign_up_and_verify(service, owner)
    impostor = signup_body(
        name="赵六",
        id_number=owner["id_number"],
        mobile="+8615800158005",
        email="zhaoliu@example.com",
    )

    created = requests.post(f"{service.base_url}/v1/signups", json=impostor, timeout=30)
    code = code_from(wait_for_sms(service, impostor["mobile"])[0])
    verified = requests.post(
        f"{service.base_url}/v1/signups/{created.json()['signup_id']}/verify",
        json={"code": code},
        timeout=30,
    )

    assert verified.status_code == 422
    assert verified.json()["error"]["code"] == "identity.verification_failed"
    assert _item(service, f"SUB#{owner_result['subscriber_id']}", "IDENT#id_number") is not None
    signup = _item(service, f"SIGNUP#{created.json()['signup_id']}", "SIGNUP")
    assert signup is not None and signup["status"] == {"S": "pending"}


def test_verified_owner_takes_over_id(service: LocalService) -> None:
    assert service.realname is not None
    old = signup_body(
        name="李娜",
        id_number="440304199208154565",
        mobile="+8613700137003",
        email="li.na@example.cn",
    )
    old_result = sign_up_and_verify(service, old)
    emails_before = len(wait_for_emails(service, 1))
    service.realname.add_identity("李娜", "440304199208154565", "+8618600186004")

    new = dict(old, mobile="+8618600186004", email="lina.new@example.cn")
    new_result = sign_up_and_verify(service, new)

    ids = {"signup_id", "subscriber_id", "next_step", "referral_code"}
    assert {k: v for k, v in new_result.items() if k not in ids} == {
        k: v for k, v in old_result.items() if k not in ids
    }
    # Each account gets its own Checkout Session; everything else about the step is the same.
    assert {k: v for k, v in new_result["next_step"].items() if k != "checkout_url"} == {
        k: v for k, v in old_result["next_step"].items() if k != "checkout_url"
    }
    assert _item(service, f"SUB#{old_result['subscriber_id']}", "IDENT#id_number") is None
    assert _item(service, f"SUB#{new_result['subscriber_id']}", "IDENT#id_number") is not None
    emails = wait_for_emails(service, emails_before + 2)
    notices = [e for e in emails if e["to"] == ["li.na@example.cn"] and "移除" in e["subject"]]
    assert len(notices) == 1
    assert "4403**********4565" in notices[0]["body"]


def test_no_enumeration_at_signup(service: LocalService) -> None:
    registered = signup_body(mobile="+8613800138011", email="again@example.com")
    fresh = signup_body(
        name="周八",
        id_number="110108198801010099",
        mobile="+8613800138012",
        email="zhouba@example.com",
    )

    first = requests.post(f"{service.base_url}/v1/signups", json=registered, timeout=30)
    second = requests.post(f"{service.base_url}/v1/signups", json=fresh, timeout=30)

    assert first.status_code == second.status_code == 202
    strip = lambda data: {k: v for k, v in data.items() if k not in {"signup_id", "verify"}}  # noqa: E731
    assert strip(first.json()) == strip(second.json())


def test_idempotency_key_replays_and_rejects(service: LocalService) -> None:
    body = signup_body(mobile="+8613800138021", email="idem@example.com")
    headers = {"Idempotency-Key": "demo-key-1"}
    url = f"{service.base_url}/v1/signups"

    first = requests.post(url, json=body, headers=headers, timeout=30)
    replay = requests.post(url, json=body, headers=headers, timeout=30)
    different = requests.post(url, json=dict(body, plan="annual"), headers=headers, timeout=30)

    assert first.status_code == replay.status_code == 202
    assert replay.json() == first.json()
    assert different.status_code == 422
    assert different.json()["error"]["fields"][0]["code"] == "idempotency.key_reused"
    assert len(wait_for_sms(service, body["mobile"])) == 1


def test_idempotency_key_not_kept_for_4xx(service: LocalService) -> None:
    headers = {"Idempotency-Key": "demo-key-2"}
    url = f"{service.base_url}/v1/signups"
    bad = signup_body(mobile="+8613800138031", email="fix@example.com", plan="gold")

    rejected = requests.post(url, json=bad, headers=headers, timeout=30)
    corrected = requests.post(url, json=dict(bad, plan="monthly"), headers=headers, timeout=30)

    assert rejected.status_code == 422
    assert corrected.status_code == 202


def test_resend_interval_limits_sms(service: LocalService) -> None:
    body = signup_body(mobile="+8613800138041", email="burst@example.com")
    url = f"{service.base_url}/v1/signups"

    statuses = [requests.post(url, json=body, timeout=30) for _ in range(4)]

    assert statuses[0].status_code == 202
    for response in statuses[1:]:
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "limit.resend_interval"
        assert 0 < int(response.headers["retry-after"]) <= 60
    wait_for_sms(service, body["mobile"])
    assert len([m for m in service.twilio.messages() if m["to"] == body["mobile"]]) == 1  # type: ignore[union-attr]
