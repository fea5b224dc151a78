"""Quarterly re-checks with the official services: the results subscribers record, and reminders.

The official lookups (一证通查, 云闪付 一键查卡, the credit report) only answer when the person
asks, so nobody can watch them for a subscriber. Once a quarter a schedule reminds every
entitled subscriber to run them again, and the subscriber records the counts they saw.

A result is one item `CHECK#{check}#{yyyy}q{n}` per check and quarter (China time). Recording
the same check again in a quarter corrects that quarter's result, so a repeated request
changes nothing. A result is flagged `changed_from_last` when a count differs from the
latest earlier quarter's result of the same check.

The reminder run queues one CheckReminderJob per entitled subscriber through
`entitled_runs.run_over_entitled`, with the checkpoint `CHECKREMINDER#{quarter}`, so a retried
run continues after the last finished page and a finished run queues nothing more that quarter.
Job ids and the notifier's ledger key stop a page that was queued twice from sending twice.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import MainTable
from idsentry.clock import SHANGHAI
from idsentry.errors import (
    AccountNotFoundError,
    FieldProblem,
    RequestValidationError,
    pydantic_problems,
)
from idsentry.i18n import Locale
from idsentry.models.jobs import CheckReminderJob
from idsentry.services.entitled_runs import PAGE_SIZE, run_over_entitled
from idsentry.templates import Email

logger = logging.getLogger(__name__)

# The playbook catalogue, the request models and the account service are imported by the
# functions that record and show results, so the quarterly planner, which only queues jobs,
# does not load them in its cold start.

CHECK_PREFIX = "CHECK#"
# No one holds this many phone cards, bank cards or accounts; a larger number is a typing error.
# The check.count_invalid message states this number.
MAX_COUNT = 10_000


def quarter_of(moment: datetime) -> str:
    """Return the quarter of `moment` in China time, as `yyyyqn` (for example 2027q1)."""
    local = moment.astimezone(SHANGHAI)
    return f"{local.year}q{(local.month - 1) // 3 + 1}"


# --- recording a result ---------------------------------------------------------------------


class CheckResultBody(BaseModel):
    """The JSON body of POST /v1/account/checks."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    check: str = Field(max_length=32)
    counts: dict[str, StrictInt]


@dataclass(frozen=True)
class CheckResult:
    """A validated result: which check, and the count of each thing the subscriber saw."""

    check: str
    counts: dict[str, int]


def parse_check_result(payload: dict[str, Any]) -> CheckResult:
    """Validate a check result. Raises RequestValidationError listing every invalid field."""
    from idsentry.services.playbooks import load_config

    try:
        body = CheckResultBody.model_validate(payload)
    except ValidationError as exc:
        raise RequestValidationError(pydantic_problems(exc)) from None

    checks = load_config().checks
    check = checks.get(body.check)
    if check is None:
        raise RequestValidationError([FieldProblem("check", "check.unknown")])

    problems = []
    for name, value in body.counts.items():
        if name not in check.counts:
            problems.append(FieldProblem(f"counts.{name}", "check.count_unknown"))
        elif not 0 <= value <= MAX_COUNT:
            problems.append(FieldProblem(f"counts.{name}", "check.count_invalid"))
    if not body.counts:
        problems.append(FieldProblem("counts", "check.counts_missing"))
    if problems:
        raise RequestValidationError(problems)
    return CheckResult(body.check, dict(body.counts))


def _sk(check: str, quarter: str) -> str:
    return f"{CHECK_PREFIX}{check}#{quarter}"


def record_check(
    table: MainTable, subscriber_id: str, result: CheckResult, now: datetime, locale: Locale
) -> dict[str, Any]:
    """Store this quarter's result of one check and return it with the change from last time."""
    quarter = quarter_of(now)
    profile = table.get(f"SUB#{subscriber_id}", "PROFILE")
    if profile is None or profile.get("deletion_requested_at"):
        # Nothing new goes into an account that is gone or being deleted.
        raise AccountNotFoundError()
    table.put(
        {
            "pk": f"SUB#{subscriber_id}",
            "sk": _sk(result.check, quarter),
            "check": result.check,
            "quarter": quarter,
            "counts": result.counts,
            "recorded_at": int(now.timestamp()),
        }
    )
    logger.info(
        "check result recorded",
        extra={"subscriber_id": subscriber_id, "check": result.check, "quarter": quarter},
    )
    history = check_history(table, subscriber_id, locale)
    return next(
        entry
        for entry in history["results"]
        if entry["check"] == result.check and entry["quarter"] == quarter
    )


def _changes(previous: dict[str, Any] | None, counts: dict[str, Any]) -> dict[str, Any]:
    """Return each count that differs from `previous`, with both values."""
    if previous is None:
        return {}
    before = previous.get("counts") or {}
    return {
        name: {"previous": int(before[name]), "current": int(value)}
        for name, value in counts.items()
        if name in before and int(before[name]) != int(value)
    }


def check_history(table: MainTable, subscriber_id: str, locale: Locale) -> dict[str, Any]:
    """Return every recorded result, newest quarter first, each flagged when it changed.

    `changed_from_last` is None for a check's first result, because nothing came before it.
    """
    from idsentry.services.playbooks import load_config

    items = table.get_partition(f"SUB#{subscriber_id}")
    by_check: dict[str, list[dict[str, Any]]] = {}
    for sk, item in sorted(items.items()):
        if sk.startswith(CHECK_PREFIX):
            by_check.setdefault(str(item["check"]), []).append(item)

    config = load_config()
    results = []
    for check, records in by_check.items():
        previous = None
        for record in records:  # oldest first: quarters sort as text (2026q4 < 2027q1)
            counts = {name: int(value) for name, value in (record.get("counts") or {}).items()}
            changes = _changes(previous, counts)
            results.append(
                {
                    "check": check,
                    "title": config.checks[check].title.get(locale)
                    if check in config.checks
                    else check,
                    "quarter": record["quarter"],
                    "counts": counts,
                    "recorded_at": int(record["recorded_at"]),
                    "changed_from_last": None if previous is None else bool(changes),
                    "changes": changes,
                }
            )
            previous = record
    results.sort(key=lambda entry: (entry["quarter"], entry["check"]), reverse=True)
    return {"results": results, "checks": checks_view(locale)}


def checks_view(locale: Locale) -> list[dict[str, Any]]:
    """Return the checks a subscriber can record, with their count fields and services."""
    from idsentry.services.playbooks import load_config, service_view

    return [
        {
            "check": check_id,
            "title": check.title.get(locale),
            "counts": {name: label.get(locale) for name, label in check.counts.items()},
            "services": [service_view(name, locale) for name in check.services],
        }
        for check_id, check in load_config().checks.items()
    ]


# --- the quarterly reminder -----------------------------------------------------------------


def reminder_job(subscriber_id: str, quarter: str) -> CheckReminderJob:
    """Return the reminder job of one subscriber and quarter; its id is the same on every run."""
    return CheckReminderJob(
        job_id=f"check_reminder_{quarter}_{subscriber_id}",
        subscriber_id=subscriber_id,
        quarter=quarter,
    )


def plan_reminders(
    table: MainTable, jobs: JobQueue, now: datetime, page_size: int = PAGE_SIZE
) -> dict[str, Any]:
    """Queue one reminder job per entitled subscriber for the quarter of `now`.

    Continues after the checkpoint of an earlier attempt, and queues nothing when the
    quarter's run already finished.
    """
    quarter = quarter_of(now)

    def queue_page(subscribers: list[str]) -> None:
        jobs.send_many([reminder_job(subscriber, quarter) for subscriber in subscribers])

    outcome = run_over_entitled(
        table, f"CHECKREMINDER#{quarter}", queue_page, page_size, {"quarter": quarter}
    )
    if outcome.already_finished:
        logger.info("check reminders already queued", extra={"quarter": quarter})
    else:
        logger.info(
            "check reminders queued", extra={"quarter": quarter, "queued": outcome.handed_out}
        )
    return {
        "quarter": quarter,
        "queued": outcome.handed_out,
        "already_finished": outcome.already_finished,
    }


# Fixed wording of the reminder e-mail.
_REMINDER_WORDS: dict[Locale, dict[str, str]] = {
    "zh-CN": {
        "subject": "季度自查提醒：重新查询名下手机卡、银行卡和信用报告 - 身份哨兵",
        "intro": "您好，\n\n新的季度开始了。下面这些官方查询只能由您本人发起，我们无法代您查询。"
        "请重新查一次，并在身份哨兵账户中记录查到的数量，我们会标出与上次不同的地方。",
        "last": "上次记录（{quarter}）：",
        "never": "您还没有记录过这项查询。",
        "separator": "：",
        "list_separator": "，",
        "closing": "如有疑问，请直接回复本邮件。\n\n身份哨兵",
        "stop": "不想再收到季度提醒和月度报告邮件：",
    },
    "en": {
        "subject": "Quarterly check: look up your phone cards, bank cards and credit report again - IDSentry",
        "intro": "Hello,\n\nA new quarter has started. Only you can run the official lookups below, so we "
        "cannot run them for you. Run them again and record the numbers in your IDSentry "
        "account, and we will flag what changed since last time.",
        "last": "Last recorded ({quarter}): ",
        "never": "You have not recorded this check yet.",
        "separator": ": ",
        "list_separator": ", ",
        "closing": "If you have questions, reply to this e-mail.\n\nIDSentry",
        "stop": "Stop quarterly reminders and monthly report e-mails: ",
    },
}


def latest_results(items: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return the latest recorded result per check from a subscriber's partition items."""
    latest: dict[str, dict[str, Any]] = {}
    for sk in sorted(items):
        if sk.startswith(CHECK_PREFIX):
            latest[str(items[sk]["check"])] = items[sk]
    return latest


def render_check_reminder(
    locale: Locale, latest: dict[str, dict[str, Any]], stop_url: str
) -> Email:
    """Render the reminder e-mail: each check, its official services and the last counts."""
    words = _REMINDER_WORDS[locale]
    separator = words["separator"]
    text_blocks = [words["intro"]]
    html_parts = [_paragraphs(words["intro"])]

    for check in checks_view(locale):
        lines = [check["title"]]
        links_html = []
        for service in check["services"]:
            where = service["url"] or service["access"]
            lines.append(f"- {service['name']}{separator}{where}")
            if service["url"]:
                link = f'<a href="{html.escape(service["url"])}">{html.escape(service["url"])}</a>'
            else:
                link = html.escape(service["access"])
            links_html.append(
                f"<li>{html.escape(service['name'])}{html.escape(separator)}{link}</li>"
            )

        record = latest.get(check["check"])
        if record is None:
            last = words["never"]
        else:
            counts = words["list_separator"].join(
                f"{check['counts'].get(name, name)} {int(value)}"
                for name, value in (record.get("counts") or {}).items()
            )
            last = words["last"].format(quarter=record["quarter"]) + counts
        lines.append(last)
        text_blocks.append("\n".join(lines))
        html_parts.append(
            f"<h3>{html.escape(check['title'])}</h3><ul>{''.join(links_html)}</ul>"
            f"<p>{html.escape(last)}</p>"
        )

    text_blocks.append(words["closing"])
    text_blocks.append(f"{words['stop']}{stop_url}")
    html_parts.append(_paragraphs(words["closing"]))
    html_parts.append(
        f'<p><small>{html.escape(words["stop"])}<a href="{html.escape(stop_url)}">'
        f"{html.escape(stop_url)}</a></small></p>"
    )
    subject = words["subject"]
    page = (
        f'<!doctype html><html lang="{locale}"><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head><body>{''.join(html_parts)}</body></html>"
    )
    return Email(subject=subject, text="\n\n".join(text_blocks) + "\n", html=page)


def _paragraphs(text: str) -> str:
    return "".join(
        f"<p>{html.escape(part).replace(chr(10), '<br>')}</p>" for part in text.split("\n\n")
    )
