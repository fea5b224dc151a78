"""`make demo`'s alert actions: the alerts subscribers receive, analyst review, opt-outs, quiet hours.

Actions (each takes `signup`, the step that created the subscriber, unless stated otherwise):

- `check_alert`: read the alert of `breach` and check its `status`, `severity` and
  `confidence` against `expect`.
- `receive_alert_sms`: wait for the alert SMS about `breach` (the breach's title in the text)
  and print it as the phone shows it, with the signature carriers add for +86 numbers; check it
  has no link and at most two segments. With `expect.count` 0, check that none was sent.
- `receive_alert_email`: wait for the alert e-mail about `breach` and print it as an inbox shows
  it: sender, masked recipient, subject, the one-click unsubscribe headers and the text.
- `review_breach`: as an analyst, list the review queue through the admin API, read the
  evidence of `breach` and post the `decision` ("confirm" or "dismiss") with its `reason`.
- `open_preference_link`: open the link `link` ("sms_off" or "email_off") of the alert e-mail
  that `email_step` received, print the page, and with `click` press its button.
- `one_click_unsubscribe`: POST `List-Unsubscribe=One-Click` to the List-Unsubscribe URL of the
  e-mail that `email_step` received, as a mail client's unsubscribe button does (RFC 8058).
- `check_preferences`: check a subscriber's `sms_alerts`, `sms_state` and `email_lists_off`.
- `check_deferred`: check that the alert SMS about `breach` waits for the end of quiet hours:
  the deferred job, its release time on the subscriber's clock, and no SMS yet.

The `check_*` actions read the service's table directly, because no account API exists yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from idsentry.alert_templates import CARRIER_SIGNATURE
from idsentry.item_keys import DEFER_SK, deferral_pk
from idsentry.services.alerts import alert_id_for
from idsentry.services.preferences import load_preferences
from idsentry.wiring import main_table

if TYPE_CHECKING:
    from infra.local.demo import Demo, Lang

# The notifier names the alert job after the alert: `job_{alert_id}` (the AlertConfirmedRule's
# input template), and logs this message with job_id and outcome once per processed job.
ALERT_JOB_PREFIX = "job_"
NOTIFICATION_MESSAGE = "notification job processed"
PREFERENCE_LINK = re.compile(r"https?://\S+/v1/preferences/[A-Za-z0-9._~-]+")
LINK_LABELS = ("sms_off", "email_off")

ALERT_TEXT: dict[str, dict[Lang, str]] = {
    "alert_state": {
        "zh-CN": "警报 {breach}：状态 {status}，风险等级 {severity}，可信度 {confidence}",
        "en": "Alert {breach}: status {status}, severity {severity}, confidence {confidence}",
    },
    "phone_header": {
        "zh-CN": "手机 {mobile} 上显示的短信（{segments} 段，Twilio 状态 {status}）：",
        "en": "The SMS as phone {mobile} shows it ({segments} segments, Twilio status {status}):",
    },
    "no_alert_sms": {
        "zh-CN": "没有关于 {breach} 的警报短信发往 {mobile}，符合预期",
        "en": "No alert SMS about {breach} went to {mobile}, as expected",
    },
    "inbox_header": {
        "zh-CN": "收件箱中的邮件：",
        "en": "The e-mail as the inbox shows it:",
    },
    "inbox_from": {"zh-CN": "发件人：{sender}", "en": "From: {sender}"},
    "inbox_to": {"zh-CN": "收件人：{email}", "en": "To: {email}"},
    "inbox_subject": {"zh-CN": "主题：{subject}", "en": "Subject: {subject}"},
    "inbox_header_line": {"zh-CN": "{name}: {value}", "en": "{name}: {value}"},
    "review_queue": {
        "zh-CN": "待复核队列（GET /v1/admin/reviews）：{count} 个泄露事件",
        "en": "Review queue (GET /v1/admin/reviews): {count} breaches",
    },
    "review_group": {
        "zh-CN": "· {breach}：{count} 条待复核",
        "en": "· {breach}: {count} pending",
    },
    "review_evidence": {
        "zh-CN": "证据（GET /v1/admin/reviews/{breach}）：",
        "en": "Evidence (GET /v1/admin/reviews/{breach}):",
    },
    "review_exposure": {
        "zh-CN": "· {subscriber_id}：匹配 {kinds}（{masked}），风险等级 {severity}，可信度 {confidence}",
        "en": "· {subscriber_id}: matched {kinds} ({masked}), severity {severity}, confidence {confidence}",
    },
    "review_decision": {
        "zh-CN": "决定（POST /v1/admin/reviews/{breach}/decision）：{decision}，理由：{reason}",
        "en": "Decision (POST /v1/admin/reviews/{breach}/decision): {decision}, reason: {reason}",
    },
    "review_result": {
        "zh-CN": "→ HTTP {status}：已决定 {decided} 条；每次查看和决定都写入了审计记录",
        "en": "→ HTTP {status}: {decided} decided; every view and decision wrote an audit record",
    },
    "open_preference": {
        "zh-CN": "打开邮件中的链接（{label}）：GET {path}",
        "en": "Opening the e-mail's link ({label}): GET {path}",
    },
    "press_button": {
        "zh-CN": "点击页面上的按钮：POST {path}",
        "en": "Pressing the page's button: POST {path}",
    },
    "one_click": {
        "zh-CN": "邮件客户端的“退订”按钮（RFC 8058 一键退订）：POST {path}，正文 List-Unsubscribe=One-Click",
        "en": "The mail client's unsubscribe button (RFC 8058 one-click): POST {path}, body List-Unsubscribe=One-Click",
    },
    "preferences": {
        "zh-CN": "偏好设置：警报短信 {sms_alerts}，短信状态 {sms_state}，已退订的邮件 {lists}",
        "en": "Preferences: alert SMS {sms_alerts}, SMS state {sms_state}, e-mail lists left {lists}",
    },
    "deferred": {
        "zh-CN": "警报短信已推迟到安静时段结束：{local}（订阅者时区 {zone}），即北京时间 {beijing}；邮件已立即发送",
        "en": "The alert SMS waits for the end of quiet hours: {local} (subscriber's zone {zone}), {beijing} in Beijing; the e-mail went at once",
    },
    "zones_chosen": {
        "zh-CN": "注意：为了让演示在任何时刻结果都一样，演示按当前时间为订阅者选择时区：白天 {day}，深夜 {night}。",
        "en": "Note: so that the demo plays the same at any hour, it picks subscribers' time zones by the current time: daytime {day}, night {night}.",
    },
    # Failures.
    "alert_missing": {
        "zh-CN": "没有找到 {breach} 的警报",
        "en": "No alert for {breach} was found",
    },
    "alert_sms_count": {
        "zh-CN": "关于 {breach} 的警报短信应有 {expected} 条，实际 {actual} 条",
        "en": "Expected {expected} alert SMS about {breach}, got {actual}",
    },
    "alert_sms_too_long": {
        "zh-CN": "警报短信占 {segments} 段，超过 2 段",
        "en": "The alert SMS takes {segments} segments, more than 2",
    },
    "no_unsubscribe_header": {
        "zh-CN": "邮件没有一键退订（List-Unsubscribe）邮件头",
        "en": "The e-mail has no one-click unsubscribe (List-Unsubscribe) header",
    },
    "no_preference_link": {
        "zh-CN": "邮件中没有 {label} 链接",
        "en": "The e-mail has no {label} link",
    },
    "not_deferred": {
        "zh-CN": "{breach} 的警报短信没有被推迟",
        "en": "The alert SMS about {breach} was not deferred",
    },
    "unexpected_status": {
        "zh-CN": "应返回 HTTP {expected}，实际 {actual}",
        "en": "Expected HTTP {expected}, got {actual}",
    },
}


@dataclass
class AlertEmail:
    """An alert e-mail as received: the text its reader sees and its top-level headers."""

    subject: str
    text: str
    headers: dict[str, str]


def resolve_timezone_token(value: Any) -> Any:
    """Turn the story's "$daytime" and "$night" into zones showing that local hour now."""
    from infra.local.zones import daytime_zone, night_zone

    if value == "$daytime":
        return daytime_zone()
    if value == "$night":
        return night_zone()
    return value


def _subscriber(demo: Demo, step: dict[str, Any]) -> tuple[Any, str]:
    record = demo.signup_record(step)
    if record.subscriber_id is None:
        raise demo.fail("not_verified", step=record.step_id)
    return record, record.subscriber_id


def _breach(step: dict[str, Any]) -> str:
    from infra.local.demo import StoryError

    breach = step.get("breach")
    if not isinstance(breach, str) or not breach:
        raise StoryError(f"step {step['id']}: breach must name a breach")
    return breach


def _breach_title(breach: str) -> str:
    item = main_table().get(f"BREACH#{breach}", "BREACH") or {}
    return str(item.get("title") or breach)


def act_check_alert(demo: Demo, step: dict[str, Any]) -> None:
    """Print a subscriber's alert of one breach and check its status and scores."""
    _, subscriber_id = _subscriber(demo, step)
    breach = _breach(step)

    alert = main_table().get(f"SUB#{subscriber_id}", f"ALERT#{breach}")
    if alert is None:
        raise demo.fail("alert_missing", breach=breach)
    observed = {key: alert.get(key) for key in ("status", "severity", "confidence")}
    demo.say("alert_state", indent=1, breach=breach, **observed)

    demo.check_fields(step.get("expect", {}), observed, f"ALERT#{breach}")


def act_receive_alert_sms(demo: Demo, step: dict[str, Any]) -> None:
    """Print the alert SMS about a breach as the subscriber's phone shows it."""
    from infra.local.demo import LINK_PATTERN, mask_mobile

    record, subscriber_id = _subscriber(demo, step)
    breach = _breach(step)
    title = _breach_title(breach)
    expected = int(step.get("expect", {}).get("count", 1))
    job_id = ALERT_JOB_PREFIX + alert_id_for(subscriber_id, breach)

    def about_breach() -> list[dict[str, Any]]:
        return [
            message
            for message in demo.twilio.messages()[record.sms_mark :]
            if message["to"] == record.mobile and title in str(message["body"])
        ]

    if expected == 0:
        # The e-mail goes before the SMS in the same job: wait until the whole job is done.
        _wait_for_job(demo, job_id)
        found = about_breach()
        if found:
            raise demo.fail("alert_sms_count", breach=breach, expected=0, actual=len(found))
        demo.say("no_alert_sms", indent=1, breach=breach, mobile=mask_mobile(record.mobile))
        return

    demo.wait_for_count(lambda: len(about_breach()), expected)
    messages = about_breach()
    if len(messages) != expected:
        raise demo.fail("alert_sms_count", breach=breach, expected=expected, actual=len(messages))
    message = messages[-1]
    demo.say(
        "phone_header",
        indent=1,
        mobile=mask_mobile(record.mobile),
        segments=message["num_segments"],
        status=message["status"],
    )
    # Carriers in mainland China put the registered signature in front of the text.
    shown = CARRIER_SIGNATURE + str(message["body"])
    demo.write("┌" + "─" * 30, 2)
    for line in shown.split("\n"):
        demo.write(f"│ {line}", 2)
    demo.write("└" + "─" * 30, 2)

    link = LINK_PATTERN.search(str(message["body"]))
    if link:
        raise demo.fail("sms_has_link", link=link.group(0))
    if int(message["num_segments"]) > 2:
        raise demo.fail("alert_sms_too_long", segments=message["num_segments"])


def _wait_for_job(demo: Demo, job_id: str) -> None:
    def processed() -> int:
        return sum(
            entry["job_id"] == job_id for entry in demo.service_logs.records(NOTIFICATION_MESSAGE)
        )

    demo.wait_for_count(processed, 1)


def act_receive_alert_email(demo: Demo, step: dict[str, Any]) -> None:
    """Print the alert e-mail about a breach as an inbox shows it, headers included."""
    from infra.local.demo import html_to_text, mask_email

    record, _ = _subscriber(demo, step)
    title = _breach_title(_breach(step))

    def matching() -> list[dict[str, Any]]:
        return [
            email
            for email in demo.service.sent_emails()
            if email["to"] == [record.email] and title in str(email["subject"])
        ]

    demo.wait_for_count(lambda: len(matching()), 1)
    found = matching()
    if len(found) != 1:
        raise demo.fail(
            "email_count", email=mask_email(record.email), subject=title, actual=len(found)
        )
    email = found[0]
    headers = dict(email.get("headers") or {})
    text = str(email.get("text") or html_to_text(str(email["body"] or "")))

    demo.say("inbox_header", indent=1)
    demo.write("┌" + "─" * 30, 2)
    demo.write("│ " + _text(demo, "inbox_from", sender=headers.get("from", "-")), 2)
    demo.write("│ " + _text(demo, "inbox_to", email=mask_email(record.email)), 2)
    demo.write("│ " + _text(demo, "inbox_subject", subject=email["subject"]), 2)
    for name in ("list-unsubscribe", "list-unsubscribe-post"):
        if name in headers:
            shown = _mask_tokens(headers[name])
            demo.write("│ " + _text(demo, "inbox_header_line", name=name, value=shown), 2)
    demo.write("│", 2)
    for line in text.rstrip().split("\n"):
        demo.write(f"│ {_mask_tokens(line)}", 2)
    demo.write("└" + "─" * 30, 2)

    if "list-unsubscribe" not in headers:
        raise demo.fail("no_unsubscribe_header")
    demo.alert_emails[step["id"]] = AlertEmail(str(email["subject"]), text, headers)


def _mask_tokens(line: str) -> str:
    # The signed tokens are long and mean nothing to a reader: show their start only.
    return re.sub(r"(/v1/preferences/)([A-Za-z0-9._~-]{8})[A-Za-z0-9._~-]+", r"\1\2…", line)


def _text(demo: Demo, key: str, **params: object) -> str:
    return ALERT_TEXT[key][demo.lang].format(**params)


def act_review_breach(demo: Demo, step: dict[str, Any]) -> None:
    """List the review queue, read one breach's evidence and decide it, as an analyst."""
    from infra.local.demo import StoryError

    breach = _breach(step)
    decision = step.get("decision")
    reason = step.get("reason")
    if decision not in ("confirm", "dismiss") or not isinstance(reason, str):
        raise StoryError(f"step {step['id']}: decision must be confirm or dismiss, with a reason")

    queue = demo.request("GET", "/v1/admin/reviews", admin=True)
    groups = queue.body.get("groups") or []
    demo.say("review_queue", indent=1, count=len(groups))
    for group in groups:
        demo.say("review_group", indent=2, breach=group["breach_name"], count=group["count"])

    evidence = demo.request("GET", f"/v1/admin/reviews/{breach}", admin=True)
    demo.say("review_evidence", indent=1, breach=breach)
    for group in evidence.body.get("groups") or []:
        for exposure in group.get("exposures", []):
            masked = ", ".join(f"{k} {v}" for k, v in (exposure.get("masked") or {}).items())
            demo.say(
                "review_exposure",
                indent=2,
                subscriber_id=exposure.get("subscriber_id"),
                kinds=", ".join(exposure.get("matched_kinds") or ()),
                masked=masked or "-",
                severity=exposure.get("severity"),
                confidence=exposure.get("confidence"),
            )

    demo.say("review_decision", indent=1, breach=breach, decision=decision, reason=reason)
    response = demo.request(
        "POST",
        f"/v1/admin/reviews/{breach}/decision",
        body={"decision": decision, "reason": reason},
        admin=True,
    )
    demo.say(
        "review_result", indent=2, status=response.status, decided=response.body.get("decided")
    )

    expect = step.get("expect", {})
    if response.status != expect.get("status", 200):
        raise demo.fail(
            "unexpected_status", expected=expect.get("status", 200), actual=response.status
        )
    if "decided" in expect:
        demo.check_fields(
            {"decided": expect["decided"]}, {"decided": response.body.get("decided")}, "decision"
        )


def _alert_email(demo: Demo, step: dict[str, Any]) -> AlertEmail:
    from infra.local.demo import StoryError

    email = demo.alert_emails.get(str(step.get("email_step")))
    if email is None:
        raise StoryError(
            f"step {step['id']}: email_step must name an earlier receive_alert_email step"
        )
    return email


def act_open_preference_link(demo: Demo, step: dict[str, Any]) -> None:
    """Open a preference link of an alert e-mail, print the page and optionally press its button."""
    from infra.local.demo import StoryError, html_to_text

    email = _alert_email(demo, step)
    label = step.get("link")
    if label not in LINK_LABELS:
        raise StoryError(f"step {step['id']}: link must be one of {LINK_LABELS}")
    links = PREFERENCE_LINK.findall(email.text)
    if len(links) != len(LINK_LABELS):
        raise demo.fail("no_preference_link", label=label)
    path = links[LINK_LABELS.index(label)][len(demo.service.public_base_url) :]

    demo.say("open_preference", indent=1, label=label, path=_mask_tokens(path))
    page = demo.request("GET", path)
    _print_page(demo, html_to_text(page.text))
    if not step.get("click"):
        return

    demo.say("press_button", indent=1, path=_mask_tokens(path))
    response = demo.request("POST", path, form={"List-Unsubscribe": "One-Click"})
    _print_page(demo, html_to_text(response.text))
    if response.status != 200:
        raise demo.fail("unexpected_status", expected=200, actual=response.status)


def act_one_click_unsubscribe(demo: Demo, step: dict[str, Any]) -> None:
    """Send what a mail client's unsubscribe button sends for the e-mail's List-Unsubscribe URL."""
    from infra.local.demo import html_to_text

    email = _alert_email(demo, step)
    header = email.headers.get("list-unsubscribe", "")
    match = re.search(r"<(https?://[^>]+)>", header)
    if match is None:
        raise demo.fail("no_unsubscribe_header")
    path = match.group(1)[len(demo.service.public_base_url) :]

    demo.say("one_click", indent=1, path=_mask_tokens(path))
    response = demo.request("POST", path, form={"List-Unsubscribe": "One-Click"})
    _print_page(demo, html_to_text(response.text))
    if response.status != 200:
        raise demo.fail("unexpected_status", expected=200, actual=response.status)


def _print_page(demo: Demo, page: str) -> None:
    for line in page.strip().split("\n"):
        demo.write(f"│ {line}", 2)


def act_check_preferences(demo: Demo, step: dict[str, Any]) -> None:
    """Print and check a subscriber's contact preferences."""
    _, subscriber_id = _subscriber(demo, step)
    preferences = load_preferences(main_table(), subscriber_id)
    observed = {
        "sms_alerts": preferences.sms_alerts,
        "sms_state": preferences.sms_state,
        "email_lists_off": sorted(preferences.email_lists_off),
    }
    demo.say(
        "preferences",
        indent=1,
        sms_alerts=observed["sms_alerts"],
        sms_state=observed["sms_state"],
        lists=", ".join(observed["email_lists_off"]) or "-",
    )
    demo.check_fields(step.get("expect", {}), observed, "PREFS")


def act_check_deferred(demo: Demo, step: dict[str, Any]) -> None:
    """Check that the alert SMS about a breach is deferred to the end of quiet hours."""
    from infra.local.demo import BEIJING

    _, subscriber_id = _subscriber(demo, step)
    breach = _breach(step)
    job_id = ALERT_JOB_PREFIX + alert_id_for(subscriber_id, breach)
    _wait_for_job(demo, job_id)

    deferred = main_table().get(deferral_pk(job_id), DEFER_SK)
    if deferred is None:
        raise demo.fail("not_deferred", breach=breach)
    zone = load_preferences(main_table(), subscriber_id).timezone
    release = datetime.fromtimestamp(int(deferred["release_at"]), UTC)
    demo.say(
        "deferred",
        indent=1,
        local=f"{release.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}",
        zone=zone,
        beijing=f"{release.astimezone(BEIJING):%Y-%m-%d %H:%M}",
    )
    act_receive_alert_sms(demo, {**step, "expect": {"count": 0}})


ALERT_ACTIONS = {
    "check_alert": act_check_alert,
    "receive_alert_sms": act_receive_alert_sms,
    "receive_alert_email": act_receive_alert_email,
    "review_breach": act_review_breach,
    "open_preference_link": act_open_preference_link,
    "one_click_unsubscribe": act_one_click_unsubscribe,
    "check_preferences": act_check_preferences,
    "check_deferred": act_check_deferred,
}
