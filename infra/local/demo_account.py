"""`make demo`'s account actions: sign-in, the alert history, an export and a deletion.

Actions (each takes `signup`, the step that created the subscriber):

- `sign_in`: POST /v1/sign-in with the signup's mobile, read the code from the SMS, verify it
  and keep the access token for the later account steps (the token is never printed). With
  `expect.unauthorized`, first show that an account route returns 401 without a token.
- `account_alerts`: GET /v1/account/alerts and print each alert with its channels.
- `export_account`: POST /v1/account/export, download the JSON file through its short-lived
  link and print its sections with their sizes, never their values.
- `delete_account`: DELETE /v1/account, wait for the deletion job to finish, then scan every
  table, bucket and queue of the local stack for what remains of the subscriber and print it.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from idsentry import identifiers
from idsentry.wiring import main_table
from infra.local.privacy_scan import personal_needles, scan_everything

if TYPE_CHECKING:
    from infra.local.demo import Demo, Lang

# The audit table keeps the subscriber id of the deletion request, by design.
AUDIT_TABLE = "idsentry-local-audit"
DELETION_WAIT_SECONDS = 60.0

ACCOUNT_TEXT: dict[str, dict[Lang, str]] = {
    "no_token": {
        "zh-CN": "不带令牌访问 GET /v1/account → HTTP {status}",
        "en": "GET /v1/account without a token → HTTP {status}",
    },
    "sign_in_request": {
        "zh-CN": "POST /v1/sign-in：手机 {mobile} → HTTP {status}",
        "en": "POST /v1/sign-in: mobile {mobile} → HTTP {status}",
    },
    "sign_in_code": {
        "zh-CN": "登录验证码短信已到达，POST /v1/sign-in/{sign_in_id}/verify → HTTP {status}",
        "en": "The sign-in code arrived by SMS; POST /v1/sign-in/{sign_in_id}/verify → HTTP {status}",
    },
    "token": {
        "zh-CN": "获得访问令牌（{token_type}，{expires_in} 秒内有效；演示不显示令牌本身）",
        "en": "Received an access token ({token_type}, valid {expires_in} s; the demo does not print it)",
    },
    "alerts_header": {
        "zh-CN": "GET /v1/account/alerts → HTTP {status}，{count} 条警报",
        "en": "GET /v1/account/alerts → HTTP {status}, {count} alerts",
    },
    "alert_line": {
        "zh-CN": "· {breach}：{severity} / {confidence}，{status}；渠道 {channels}",
        "en": "· {breach}: {severity} / {confidence}, {status}; channels {channels}",
    },
    "export_created": {
        "zh-CN": "POST /v1/account/export → HTTP {status}，文件 {files}，链接 {expires} 到期",
        "en": "POST /v1/account/export → HTTP {status}, files {files}, links expire {expires}",
    },
    "export_sections": {
        "zh-CN": "下载的 JSON 导出文件（只列出各部分及条目数，不显示内容）：",
        "en": "The downloaded JSON export (its sections and sizes only, not their contents):",
    },
    "export_section": {"zh-CN": "· {name}：{size}", "en": "· {name}: {size}"},
    "deletion_requested": {
        "zh-CN": "DELETE /v1/account → HTTP {status}；删除任务在后台分步运行",
        "en": "DELETE /v1/account → HTTP {status}; the deletion job runs its steps in the background",
    },
    "deletion_done": {
        "zh-CN": "删除任务已完成（用时 {seconds} 秒）；之后 GET /v1/account → HTTP {status}",
        "en": "The deletion job finished ({seconds} s); GET /v1/account now → HTTP {status}",
    },
    "scan_result": {
        "zh-CN": "扫描所有数据表、存储桶和队列，查找 {count} 个属于该订阅者的值（ID、身份证号、手机号、邮箱、指纹、密文）：{found} 处残留（审计表中的订阅者 ID 按设计保留）",
        "en": "Scanned every table, bucket and queue for {count} values of the subscriber (ids, ID number, mobile, e-mail, fingerprints, ciphertexts): {found} found (the subscriber id in the audit table is kept by design)",
    },
    "scan_finding": {"zh-CN": "✗ {store} {where}：{label}", "en": "✗ {store} {where}: {label}"},
    "playbook_header": {
        "zh-CN": "GET /v1/account/alerts/{alert_id}/playbook → HTTP {status}：{breach} 的应对清单，已完成 {done}/{total} 步",
        "en": "GET /v1/account/alerts/{alert_id}/playbook → HTTP {status}: the checklist for {breach}, {done} of {total} steps done",
    },
    "playbook_step": {
        "zh-CN": "{mark} {title}（{services}）",
        "en": "{mark} {title} ({services})",
    },
    "playbook_marked": {
        "zh-CN": 'PUT …/playbook/{step_id} {{"done": true}} → HTTP {status}；再次提交 → HTTP {again}，完成时间不变：{done_at}',
        "en": 'PUT …/playbook/{step_id} {{"done": true}} → HTTP {status}; sent again → HTTP {again}, done time unchanged: {done_at}',
    },
    # Failures.
    "no_account_token": {
        "zh-CN": "{step} 没有访问令牌，请先运行 sign_in 步骤",
        "en": "{step} has no access token: run a sign_in step first",
    },
    "account_status": {
        "zh-CN": "应返回 HTTP {expected}，实际 {actual}",
        "en": "Expected HTTP {expected}, got {actual}",
    },
    "deletion_timeout": {
        "zh-CN": "删除任务在 {seconds} 秒内没有完成",
        "en": "The deletion job did not finish within {seconds} s",
    },
    "playbook_unchanged": {
        "zh-CN": "重复标记改变了完成时间：{first} → {second}",
        "en": "Marking the step again changed its done time: {first} → {second}",
    },
    "no_alert": {
        "zh-CN": "账户中没有 {breach} 的警报",
        "en": "The account has no alert for {breach}",
    },
    "personal_data_left": {
        "zh-CN": "删除后仍有 {count} 处个人数据",
        "en": "{count} pieces of personal data remain after deletion",
    },
}


def _text(demo: Demo, key: str, **params: object) -> str:
    return ACCOUNT_TEXT[key][demo.lang].format(**params)


def _expect_status(demo: Demo, actual: int, expected: int) -> None:
    if actual != expected:
        raise demo.fail("account_status", expected=expected, actual=actual)


def _token(demo: Demo, step: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    record = demo.signup_record(step)
    token = demo.account_tokens.get(record.step_id)
    if token is None:
        raise demo.fail("no_account_token", step=record.step_id)
    return record, {"authorization": f"Bearer {token}"}


def act_sign_in(demo: Demo, step: dict[str, Any]) -> None:
    """Sign a subscriber in with a code by SMS and keep the access token."""
    from infra.local.demo import CODE_PATTERN, mask_mobile

    record = demo.signup_record(step)
    if step.get("expect", {}).get("unauthorized"):
        response = demo.request("GET", "/v1/account")
        demo.write(_text(demo, "no_token", status=response.status), 1)
        _expect_status(demo, response.status, 401)

    mark = len(demo.twilio.messages())
    started = demo.request(
        "POST", "/v1/sign-in", body={"mobile": record.mobile}, locale=record.locale
    )
    demo.write(
        _text(demo, "sign_in_request", mobile=mask_mobile(record.mobile), status=started.status), 1
    )
    _expect_status(demo, started.status, 202)
    sign_in_id = str(started.body["sign_in_id"])

    message = demo.wait_for_sms({record.mobile}, mark, 1)[0]
    match = CODE_PATTERN.search(str(message["body"]))
    if match is None:
        raise demo.fail("no_code")
    verified = demo.request(
        "POST",
        f"/v1/sign-in/{sign_in_id}/verify",
        body={"code": match.group(1)},
        locale=record.locale,
    )
    demo.write(_text(demo, "sign_in_code", sign_in_id=sign_in_id, status=verified.status), 1)
    _expect_status(demo, verified.status, 200)
    demo.write(
        _text(
            demo,
            "token",
            token_type=verified.body["token_type"],
            expires_in=verified.body["expires_in"],
        ),
        2,
    )
    demo.account_tokens[record.step_id] = str(verified.body["access_token"])


def act_account_alerts(demo: Demo, step: dict[str, Any]) -> None:
    """Print the subscriber's alert history as the account route returns it."""
    _, headers = _token(demo, step)
    response = demo.request("GET", "/v1/account/alerts", headers=headers)
    alerts = response.body.get("alerts") or []
    demo.write(_text(demo, "alerts_header", status=response.status, count=len(alerts)), 1)
    for alert in alerts:
        channels = ", ".join(
            f"{channel.get('channel')} {channel.get('state')}"
            + (f" ({channel['delivery']})" if channel.get("delivery") else "")
            for channel in alert.get("channels") or []
        )
        demo.write(
            _text(
                demo,
                "alert_line",
                breach=(alert.get("breach") or {}).get("name"),
                severity=alert.get("severity"),
                confidence=alert.get("confidence"),
                status=alert.get("status"),
                channels=channels or "-",
            ),
            2,
        )
    _expect_status(demo, response.status, 200)
    expected = step.get("expect", {}).get("count")
    if expected is not None:
        demo.check_fields({"count": expected}, {"count": len(alerts)}, "alerts")


def act_playbook_step(demo: Demo, step: dict[str, Any]) -> None:
    """Show one alert's checklist, mark a step done twice, and show the checklist again."""
    _, headers = _token(demo, step)
    breach = str(step["breach"])
    history = demo.request("GET", "/v1/account/alerts", headers=headers)
    _expect_status(demo, history.status, 200)
    alert = next(
        (
            entry
            for entry in history.body.get("alerts") or []
            if (entry.get("breach") or {}).get("name") == breach
        ),
        None,
    )
    if alert is None:
        raise demo.fail("no_alert", breach=breach)
    path = f"/v1/account/alerts/{alert['alert_id']}/playbook"

    before = demo.request("GET", path, headers=headers)
    _write_playbook(demo, before, str(alert["alert_id"]), breach)
    _expect_status(demo, before.status, 200)

    step_id = str(step.get("step") or before.body["steps"][0]["step_id"])
    marked = demo.request("PUT", f"{path}/{step_id}", headers=headers, body={"done": True})
    again = demo.request("PUT", f"{path}/{step_id}", headers=headers, body={"done": True})
    first, second = (_done_at(response.body, step_id) for response in (marked, again))
    demo.write(
        _text(
            demo,
            "playbook_marked",
            step_id=step_id,
            status=marked.status,
            again=again.status,
            done_at=_shanghai_time(first),
        ),
        1,
    )
    _expect_status(demo, marked.status, 200)
    _expect_status(demo, again.status, 200)
    if first is None or first != second:
        raise demo.fail("playbook_unchanged", first=first, second=second)

    after = demo.request("GET", path, headers=headers)
    _write_playbook(demo, after, str(alert["alert_id"]), breach)
    expected = step.get("expect", {}).get("done")
    if expected is not None:
        demo.check_fields({"done": expected}, {"done": after.body.get("done")}, "playbook")


def _write_playbook(demo: Demo, response: Any, alert_id: str, breach: str) -> None:
    body = response.body
    demo.write(
        _text(
            demo,
            "playbook_header",
            alert_id=alert_id,
            status=response.status,
            breach=breach,
            done=body.get("done"),
            total=body.get("total"),
        ),
        1,
    )
    for entry in body.get("steps") or []:
        services = ", ".join(str(service["name"]) for service in entry.get("services") or [])
        demo.write(
            _text(
                demo,
                "playbook_step",
                mark="✓" if entry.get("done") else "·",
                title=entry.get("title"),
                services=services or "-",
            ),
            2,
        )


def _shanghai_time(moment: Any) -> str:
    if not isinstance(moment, int | float):
        return str(moment)
    return datetime.fromtimestamp(moment, ZoneInfo("Asia/Shanghai")).isoformat(timespec="seconds")


def _done_at(body: dict[str, Any], step_id: str) -> Any:
    return next(
        (entry.get("done_at") for entry in body.get("steps") or [] if entry["step_id"] == step_id),
        None,
    )


def act_export_account(demo: Demo, step: dict[str, Any]) -> None:
    """Export the subscriber's data and print the sections of the JSON file."""
    _, headers = _token(demo, step)
    created = demo.request("POST", "/v1/account/export", headers=headers)
    links = created.body.get("links") or {}
    demo.write(
        _text(
            demo,
            "export_created",
            status=created.status,
            files=", ".join(sorted(links)),
            expires=created.body.get("links_expire_at"),
        ),
        1,
    )
    _expect_status(demo, created.status, 201)

    # The link is a presigned URL of the local S3 (moto on 127.0.0.1), as a browser would open it.
    document = json.loads(demo.request_url(str(links["json"])))
    demo.write(_text(demo, "export_sections"), 1)
    for name, value in document.items():
        if isinstance(value, dict | list):
            demo.write(_text(demo, "export_section", name=name, size=len(value)), 2)
    expected = step.get("expect", {}).get("sections", [])
    missing = [name for name in expected if name not in document]
    if missing:
        demo.check_fields({"sections": expected}, {"sections": sorted(document)}, "export")


def act_delete_account(demo: Demo, step: dict[str, Any]) -> None:
    """Delete the account, wait for the job, and check that nothing personal remains."""
    record, headers = _token(demo, step)
    subscriber_id = str(record.subscriber_id)
    details = {
        "name": str(record.body["name"]),
        "id_number": identifiers.canonical_id_number(str(record.body["id_number"])),
        "mobile": record.mobile,
        "email": record.email,
    }
    needles = personal_needles(main_table(), subscriber_id, record.signup_id, details)

    requested = demo.request("DELETE", "/v1/account", headers=headers)
    demo.write(_text(demo, "deletion_requested", status=requested.status), 1)
    _expect_status(demo, requested.status, 202)

    started = time.monotonic()
    while main_table().get(f"SUB#{subscriber_id}", "DELETION") is not None or (
        main_table().get(f"SUB#{subscriber_id}", "PROFILE") is not None
    ):
        if time.monotonic() - started > DELETION_WAIT_SECONDS:
            raise demo.fail("deletion_timeout", seconds=int(DELETION_WAIT_SECONDS))
        time.sleep(0.2)
    after = demo.request("GET", "/v1/account", headers=headers)
    demo.write(
        _text(
            demo,
            "deletion_done",
            seconds=f"{time.monotonic() - started:.1f}",
            status=after.status,
        ),
        1,
    )

    findings = scan_everything(demo.runtime, needles, allowed=[(AUDIT_TABLE, "subscriber id")])
    demo.write(_text(demo, "scan_result", count=len(needles), found=len(findings)), 1)
    for finding in findings:
        demo.write(
            _text(
                demo, "scan_finding", store=finding.store, where=finding.where, label=finding.label
            ),
            2,
        )
    if findings:
        raise demo.fail("personal_data_left", count=len(findings))


ACCOUNT_ACTIONS = {
    "sign_in": act_sign_in,
    "account_alerts": act_account_alerts,
    "playbook_step": act_playbook_step,
    "export_account": act_export_account,
    "delete_account": act_delete_account,
}
