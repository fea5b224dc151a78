"""`make demo`'s report actions: the monthly run, a report on request with its downloads, a dossier.

Actions:

- `monthly_reports`: fire the monthly report schedule (the 1st at 09:00 China time). Wait until
  the report worker has stored last month's report of every entitled subscriber it queued and
  each report_ready e-mail has arrived, then print each report with the e-mail's subject and
  link. The planner skips a subscriber who signed up after last month ended. `expect.queued`
  checks how many jobs the planner queued, `expect.skipped` how many subscribers it skipped,
  and `expect.emails` the e-mails.
- `request_report`: as a subscriber signed in by an earlier sign_in step (`signup`), POST
  /v1/account/reports for this month so far, wait for the report_ready e-mail and print its
  link, list the account's reports, and download the HTML and the PDF through the 5-minute
  links of GET /v1/account/reports/{report_id}/{format}. Prints each file's size, the PDF's
  pages and a few lines that show masked identifiers. `expect.html_lang` checks the page's
  language and `expect.reports` the number of listed reports.
- `request_dossier`: POST /v1/account/dossier with `audience` and `breach_names`, download
  the PDF and print its reference, size, pages and masked lines.

Every downloaded file must contain the masked ID number and none of the subscriber's raw
identifiers (ID number, mobile in both forms, e-mail address), or the step fails.
"""

from __future__ import annotations

import html.parser
import io
import re
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests

from idsentry import identifiers
from idsentry.services.notify import REPORT_TITLES
from idsentry.templates import render_email
from idsentry.wiring import main_table

if TYPE_CHECKING:
    from infra.local.demo import Demo, Lang, SignupRecord

# The template names the monthly schedule `idsentry-${Stage}-report-planner`, and LocalService
# provisions the stage "local".
MONTHLY_SCHEDULE = "idsentry-local-report-planner"
REPORT_WAIT_SECONDS = 60.0
POLL_SECONDS = 0.2
HTTP_TIMEOUT_SECONDS = 30.0
MASKED_LINES = 3
BEIJING = ZoneInfo("Asia/Shanghai")
# Elements whose text the demo prints as one line: a table cell, a definition, a paragraph.
TEXT_BLOCKS = frozenset({"td", "th", "dt", "dd", "p", "li", "h1", "h2", "h3"})
TITLE_PATTERN = re.compile(r"<title>(.*?)</title>", re.DOTALL)

REPORT_TEXT: dict[str, dict[Lang, str]] = {
    "monthly_fired": {
        "zh-CN": "触发每月报告计划任务 {schedule}：为 {month} 排队 {queued} 个报告任务，跳过 {skipped} 位在该月结束后才注册的订阅者",
        "en": "Fired the monthly report schedule {schedule}: {queued} report jobs queued for {month}, {skipped} subscribers skipped because they signed up after it ended",
    },
    "monthly_report": {
        "zh-CN": "· {name}：报告 {report_id}（{month}，{state}），HTML 和 PDF 已存入报告存储桶",
        "en": "· {name}: report {report_id} ({month}, {state}); the HTML and PDF are in the reports bucket",
    },
    "report_email": {
        "zh-CN": "邮件 → {email}：{subject}；链接 {link}（账户页面，不是文件）",
        "en": "E-mail → {email}: {subject}; link {link} (the account page, not a file)",
    },
    "report_requested": {
        "zh-CN": "POST /v1/account/reports → HTTP {status}：报告 {report_id}（{month}，{state}）",
        "en": "POST /v1/account/reports → HTTP {status}: report {report_id} ({month}, {state})",
    },
    "reports_listed": {
        "zh-CN": "GET /v1/account/reports → HTTP {status}，列表中有 {count} 份报告（{reports}）",
        "en": "GET /v1/account/reports → HTTP {status}, reports in the list: {count} ({reports})",
    },
    "download_link": {
        "zh-CN": "GET /v1/account/reports/{report_id}/{file_format} → HTTP {status}，下载链接 {expires}（北京时间）到期",
        "en": "GET /v1/account/reports/{report_id}/{file_format} → HTTP {status}, download link expires {expires} (Beijing time)",
    },
    "html_file": {
        "zh-CN": "网页版：{size} 字节，语言 {lang}，标题“{title}”；其中显示身份信息的几行：",
        "en": "Web page: {size} bytes, language {lang}, title “{title}”; lines that show identifiers:",
    },
    "pdf_file": {
        "zh-CN": "PDF：{size} 字节，{pages} 页；其中显示身份信息的几行：",
        "en": "PDF: {size} bytes, {pages} pages; lines that show identifiers:",
    },
    "masked_line": {"zh-CN": "│ {line}", "en": "│ {line}"},
    "dossier_created": {
        "zh-CN": "POST /v1/account/dossier（用途 {audience}，泄露事件 {breaches}）→ HTTP {status}：编号 {reference}，链接 {expires}（北京时间）到期",
        "en": "POST /v1/account/dossier (for {audience}, breaches {breaches}) → HTTP {status}: reference {reference}, link expires {expires} (Beijing time)",
    },
    "dossier_file": {
        "zh-CN": "个人信息泄露情况说明材料 PDF：{size} 字节，{pages} 页，含编号 {reference}：{found}；其中显示身份信息的几行：",
        "en": "Incident dossier PDF: {size} bytes, {pages} pages, contains reference {reference}: {found}; lines that show identifiers:",
    },
    "found_yes": {"zh-CN": "是", "en": "yes"},
    "found_no": {"zh-CN": "否", "en": "no"},
    # Failures.
    "reports_timeout": {
        "zh-CN": "{seconds} 秒内只存好了 {done}/{queued} 份 {month} 的月度报告",
        "en": "only {done} of {queued} monthly reports of {month} were stored within {seconds} s",
    },
    "report_status": {
        "zh-CN": "{request} 应返回 HTTP {expected}，实际 HTTP {actual}：{message}",
        "en": "{request} should return HTTP {expected}, got HTTP {actual}: {message}",
    },
    "report_email_count": {
        "zh-CN": "发给 {email} 的邮件《{subject}》应有 1 封，实际 {actual} 封",
        "en": "{email} should get one e-mail “{subject}”, got {actual}",
    },
    "raw_identifier": {
        "zh-CN": "{file} 中出现了未脱敏的{kind}",
        "en": "{file} contains the unmasked {kind}",
    },
    "masked_missing": {
        "zh-CN": "{file} 中没有脱敏的身份证号 {masked}",
        "en": "{file} lacks the masked ID number {masked}",
    },
    "reference_missing": {
        "zh-CN": "个人信息泄露情况说明材料 PDF 中没有编号 {reference}",
        "en": "the incident dossier PDF lacks its reference {reference}",
    },
    "no_report_token": {
        "zh-CN": "{step} 没有访问令牌，请先运行 sign_in 步骤",
        "en": "{step} has no access token: run a sign_in step first",
    },
    "download_host": {
        "zh-CN": "下载链接不指向 127.0.0.1：{host}",
        "en": "the download link does not point to 127.0.0.1: {host}",
    },
}


def _text(demo: Demo, key: str, **params: object) -> str:
    return REPORT_TEXT[key][demo.lang].format(**params)


def _locale(record: SignupRecord) -> Lang:
    return "en" if record.locale == "en" else "zh-CN"


def _subject(record: SignupRecord, report_kind: str) -> str:
    locale = _locale(record)
    # str.format() ignores the variables that a template does not use.
    return render_email(
        "report_ready", locale, title=REPORT_TITLES[report_kind][locale], month="", link=""
    ).subject


def _report_email(demo: Demo, record: SignupRecord, report_kind: str) -> None:
    """Wait for the one report_ready e-mail of `report_kind` and print its subject and link."""
    from infra.local.demo import LINK_PATTERN, html_to_text, mask_email

    subject = _subject(record, report_kind)
    matching = demo.wait_for_email(record.email, subject)
    body = html_to_text(str(matching[0]["body"] or ""))
    links = LINK_PATTERN.findall(body)
    link = links[0][len(demo.service.public_base_url) :] if links else "-"
    demo.write(
        _text(demo, "report_email", email=mask_email(record.email), subject=subject, link=link),
        2,
    )
    if len(matching) != 1:
        raise demo.fail(
            "report_email_count",
            email=mask_email(record.email),
            subject=subject,
            actual=len(matching),
        )


# ---------------------------------------------------------------------------------------------
# The monthly run


def act_monthly_reports(demo: Demo, step: dict[str, Any]) -> None:
    """Fire the monthly schedule and follow every report it queued to its e-mail."""
    results = demo.runtime.fire_schedule(MONTHLY_SCHEDULE)
    planned = results[0] if results and isinstance(results[0], dict) else {}
    month, queued = str(planned.get("month")), int(planned.get("queued") or 0)
    skipped = int(planned.get("skipped") or 0)
    demo.write(
        _text(
            demo,
            "monthly_fired",
            schedule=MONTHLY_SCHEDULE,
            month=month,
            queued=queued,
            skipped=skipped,
        ),
        1,
    )

    # The monthly run returns nothing to a subscriber, so the step reads the REPORT# items it
    # leaves. The downloads of request_report go through the account routes instead.
    # A replayed signup step shares its subscriber with the first one.
    records = list(
        {
            record.subscriber_id: record
            for record in reversed(demo.signups.values())
            if record.subscriber_id
        }.values()
    )[::-1]
    deadline = time.monotonic() + REPORT_WAIT_SECONDS
    while True:
        stored = {
            str(record.subscriber_id): report
            for record in records
            for report in _monthly_reports(str(record.subscriber_id), month)
            if report.get("state") == "announced"
        }
        if len(stored) >= queued or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    if len(stored) < queued:
        raise demo.fail(
            "reports_timeout",
            seconds=int(REPORT_WAIT_SECONDS),
            done=len(stored),
            queued=queued,
            month=month,
        )

    for record in records:
        report = stored.get(str(record.subscriber_id))
        if report is None:
            continue
        demo.write(
            _text(
                demo,
                "monthly_report",
                name=record.body.get("name", "-"),
                report_id=report["report_id"],
                month=report["month"],
                state=report["state"],
            ),
            1,
        )
        _report_email(demo, record, "monthly")

    expect = step.get("expect", {})
    demo.check_fields(
        expect, {"queued": queued, "skipped": skipped, "emails": len(stored)}, "monthly_reports"
    )


def _monthly_reports(subscriber_id: str, month: str) -> list[dict[str, Any]]:
    partition = main_table().get_partition(f"SUB#{subscriber_id}")
    return [
        item
        for sort_key, item in partition.items()
        if sort_key.startswith("REPORT#")
        and item.get("report_kind") == "monthly"
        and item.get("month") == month
    ]


# ---------------------------------------------------------------------------------------------
# A report on request, and a dossier


def _authorized(demo: Demo, step: dict[str, Any]) -> tuple[SignupRecord, dict[str, str]]:
    record = demo.signup_record(step)
    token = demo.account_tokens.get(record.step_id)
    if token is None:
        raise demo.fail("no_report_token", step=record.step_id)
    return record, {"authorization": f"Bearer {token}"}


def _expect_status(demo: Demo, request: str, response: Any, expected: int) -> None:
    if response.status != expected:
        message = response.error.get("message") or response.text[:200]
        raise demo.fail(
            "report_status",
            request=request,
            expected=expected,
            actual=response.status,
            message=message,
        )


def _download(demo: Demo, url: str) -> bytes:
    """GET a presigned link of the local S3, which must be on 127.0.0.1, and return the body."""
    host = urlsplit(url).hostname
    if host != "127.0.0.1":
        raise demo.fail("download_host", host=host)
    session = requests.Session()
    # Proxy settings from the environment must never route a request off 127.0.0.1.
    session.trust_env = False
    with session:
        response = session.get(url, timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False)
    response.raise_for_status()
    return response.content


def _pdf_text(pdf: bytes) -> tuple[int, str]:
    """Return the page count and the extracted text of a PDF."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    return len(reader.pages), "\n".join(page.extract_text() or "" for page in reader.pages)


class _BlockText(html.parser.HTMLParser):
    """The text of each table cell, definition, paragraph and list item of a page, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._open: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in TEXT_BLOCKS:
            self._open.append([])
        elif tag == "br" and self._open:
            self._open[-1].append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in TEXT_BLOCKS and self._open:
            self.blocks.append(" ".join("".join(self._open.pop()).split()))

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1].append(data)


def _html_blocks(page: str) -> list[str]:
    parser = _BlockText()
    parser.feed(page)
    parser.close()
    return parser.blocks


def _masked_lines(lines: list[str]) -> list[str]:
    """Return the first lines that show a masked identifier."""
    masked = [" ".join(line.split()) for line in lines if "*" in line]
    return [line for line in masked if line][:MASKED_LINES]


def _beijing(moment: Any) -> str:
    """Return an ISO 8601 time from the API as Beijing time, or the value as it is."""
    try:
        parsed = datetime.fromisoformat(str(moment))
    except ValueError:
        return str(moment)
    return parsed.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _check_identifiers(demo: Demo, record: SignupRecord, text: str, file_name: str) -> None:
    """Fail when `text` shows a raw identifier of the subscriber or lacks the masked ID number."""
    from infra.local.demo import mask_id_number

    id_number = identifiers.canonical_id_number(str(record.body["id_number"]))
    raw = {
        "ID number": [id_number],
        "mobile": [record.mobile, record.mobile.removeprefix("+86")],
        "e-mail address": [record.email],
    }
    compact = "".join(text.split())
    for kind, values in raw.items():
        if any(value and value in compact for value in values):
            raise demo.fail("raw_identifier", file=file_name, kind=kind)
    masked = mask_id_number(id_number)
    if masked not in compact:
        raise demo.fail("masked_missing", file=file_name, masked=masked)


def _write_lines(demo: Demo, lines: list[str]) -> None:
    for line in lines:
        demo.write(_text(demo, "masked_line", line=line), 3)


def act_request_report(demo: Demo, step: dict[str, Any]) -> None:
    """Ask for this month's report, follow it to the e-mail, list it and download both files."""
    from infra.local.demo import html_to_text

    record, headers = _authorized(demo, step)
    requested = demo.request("POST", "/v1/account/reports", headers=headers, locale=record.locale)
    _expect_status(demo, "POST /v1/account/reports", requested, 202)
    report_id = str(requested.body["report_id"])
    demo.write(
        _text(
            demo,
            "report_requested",
            status=requested.status,
            report_id=report_id,
            month=requested.body.get("month"),
            state=requested.body.get("state"),
        ),
        1,
    )
    _report_email(demo, record, "on_demand")

    listed = demo.request("GET", "/v1/account/reports", headers=headers)
    _expect_status(demo, "GET /v1/account/reports", listed, 200)
    reports = listed.body.get("reports") or []
    demo.write(
        _text(
            demo,
            "reports_listed",
            status=listed.status,
            count=len(reports),
            reports=", ".join(f"{entry['report_kind']} {entry['month']}" for entry in reports),
        ),
        1,
    )

    files: dict[str, bytes] = {}
    for file_format in ("html", "pdf"):
        path = f"/v1/account/reports/{report_id}/{file_format}"
        link = demo.request("GET", path, headers=headers)
        _expect_status(demo, f"GET {path}", link, 200)
        demo.write(
            _text(
                demo,
                "download_link",
                report_id=report_id,
                file_format=file_format,
                status=link.status,
                expires=_beijing(link.body.get("expires_at")),
            ),
            1,
        )
        files[file_format] = _download(demo, str(link.body["url"]))

    page = files["html"].decode("utf-8")
    page_text = html_to_text(page)
    lang = _html_lang(page)
    title = TITLE_PATTERN.search(page)
    demo.write(
        _text(
            demo,
            "html_file",
            size=f"{len(files['html']):,}",
            lang=lang,
            title=" ".join(title.group(1).split()) if title else "-",
        ),
        2,
    )
    _write_lines(demo, _masked_lines(_html_blocks(page)))
    pages, pdf_text = _pdf_text(files["pdf"])
    demo.write(_text(demo, "pdf_file", size=f"{len(files['pdf']):,}", pages=pages), 2)
    _write_lines(demo, _masked_lines(pdf_text.splitlines()))

    _check_identifiers(demo, record, page_text + "\n" + page, "report.html")
    _check_identifiers(demo, record, pdf_text, "report.pdf")
    expect = step.get("expect", {})
    demo.check_fields(expect, {"html_lang": lang, "reports": len(reports)}, "report")


def _html_lang(page: str) -> str:
    marker = '<html lang="'
    start = page.find(marker)
    if start < 0:
        return "-"
    start += len(marker)
    return page[start : page.find('"', start)]


def act_request_dossier(demo: Demo, step: dict[str, Any]) -> None:
    """Create a dossier of named breaches, download the PDF and check its reference and masking."""
    record, headers = _authorized(demo, step)
    body: dict[str, Any] = {"audience": str(step.get("audience", "general"))}
    if step.get("breach_names"):
        body["breach_names"] = list(step["breach_names"])
    created = demo.request(
        "POST", "/v1/account/dossier", headers=headers, body=body, locale=record.locale
    )
    _expect_status(demo, "POST /v1/account/dossier", created, 201)
    reference = str(created.body["reference"])
    demo.write(
        _text(
            demo,
            "dossier_created",
            audience=body["audience"],
            breaches=", ".join(body.get("breach_names", [])) or "-",
            status=created.status,
            reference=reference,
            expires=_beijing(created.body.get("expires_at")),
        ),
        1,
    )

    pdf = _download(demo, str(created.body["url"]))
    pages, pdf_text = _pdf_text(pdf)
    found = reference in "".join(pdf_text.split())
    demo.write(
        _text(
            demo,
            "dossier_file",
            size=f"{len(pdf):,}",
            pages=pages,
            reference=reference,
            found=_text(demo, "found_yes" if found else "found_no"),
        ),
        2,
    )
    _write_lines(demo, _masked_lines(pdf_text.splitlines()))

    if not found:
        raise demo.fail("reference_missing", reference=reference)
    _check_identifiers(demo, record, pdf_text, "dossier.pdf")
    expect = step.get("expect", {})
    demo.check_fields(expect, {"audience": created.body.get("audience")}, "dossier")


REPORT_ACTIONS = {
    "monthly_reports": act_monthly_reports,
    "request_report": act_request_report,
    "request_dossier": act_request_dossier,
}
