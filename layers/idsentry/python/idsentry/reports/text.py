"""Fixed wording of reports and dossiers in 简体中文 and English, and date formats per locale.

Parameters use str.format names. A key ending in `.one` is the English singular of the key
without it, used when the count is 1. Its Chinese text equals the plural one. The bundled
PDF font must contain every character of this catalogue (a unit test checks it), so a new
character here may need `infra/tools/subset_font.py` to be run again.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final

from idsentry.i18n import Locale

TEXT: Final[dict[str, dict[Locale, str]]] = {
    # --- the monthly report -------------------------------------------------------------------
    "report.title": {"zh-CN": "身份哨兵月度安全报告", "en": "IDSentry monthly security report"},
    "report.generated": {
        "zh-CN": "生成时间：{time}",
        "en": "Generated {time}",
    },
    "report.period": {
        "zh-CN": "报告期：{start} 至 {end}",
        "en": "Period: {start} to {end}",
    },
    "report.time_zone": {
        "zh-CN": "本报告中的日期和时间均按您的时区 {timezone} 显示，身份信息只显示部分字符。",
        "en": "Dates and times in this report are in your time zone, {timezone}. "
        "Identifiers are shown masked.",
    },
    "report.footer": {
        "zh-CN": "本报告由身份哨兵根据截至 {end} 的记录生成。如有疑问，请登录身份哨兵账户页面"
        "查看最新的警报、处理清单和报告，或联系身份哨兵客服。",
        "en": "IDSentry generated this report from its records up to {end}. If you have "
        "questions, sign in to your IDSentry account page for your latest alerts, checklists "
        "and reports, or contact IDSentry support.",
    },
    "watched.heading": {"zh-CN": "监控中的身份信息", "en": "Identifiers we watch"},
    "watched.none": {"zh-CN": "没有监控中的身份信息。", "en": "No identifiers are watched."},
    "summary.heading": {"zh-CN": "本期概况", "en": "This period at a glance"},
    "summary.confirmed": {
        "zh-CN": "已确认的泄露记录（截至期末）",
        "en": "Confirmed exposures (to the end of the period)",
    },
    "summary.new": {"zh-CN": "本期新发现", "en": "Found in this period"},
    "summary.under_review": {"zh-CN": "正在核实的疑似记录", "en": "Possible matches under review"},
    "summary.steps": {"zh-CN": "已完成的建议步骤", "en": "Recommended steps done"},
    "summary.steps_value": {"zh-CN": "{done} / {total}", "en": "{done} of {total}"},
    # --- risk level ---------------------------------------------------------------------------
    "risk.heading": {"zh-CN": "总体风险等级", "en": "Overall risk level"},
    "risk.reasons": {"zh-CN": "依据", "en": "Why"},
    "level.critical": {"zh-CN": "严重", "en": "Critical"},
    "level.high": {"zh-CN": "高", "en": "High"},
    "level.medium": {"zh-CN": "中", "en": "Medium"},
    "level.low": {"zh-CN": "低", "en": "Low"},
    "level.summary.critical": {
        "zh-CN": "您的身份信息面临严重风险，请尽快完成下面建议的步骤。",
        "en": "Your identity is at serious risk. Do the recommended steps below as soon as you can.",
    },
    "level.summary.high": {
        "zh-CN": "风险较高，建议在一周内完成下面建议的步骤。",
        "en": "The risk is high. Do the recommended steps below within a week.",
    },
    "level.summary.medium": {
        "zh-CN": "存在一定风险，请在方便时完成剩余的步骤。",
        "en": "There is some risk. Do the remaining steps when you can.",
    },
    "level.summary.low": {
        "zh-CN": "目前风险较低，请继续保持良好的安全习惯。",
        "en": "The risk is low at the moment. Keep up your good security habits.",
    },
    "reason.no_exposures": {
        "zh-CN": "截至期末没有已确认的泄露记录。",
        "en": "There are no confirmed exposures up to the end of the period.",
    },
    "reason.open": {
        "zh-CN": "{count} 条严重程度为“{severity}”的泄露记录还有建议步骤没有完成。",
        "en": "{count} exposures of {severity} severity still have steps to do.",
    },
    "reason.open.one": {
        "zh-CN": "{count} 条严重程度为“{severity}”的泄露记录还有建议步骤没有完成。",
        "en": "{count} exposure of {severity} severity still has steps to do.",
    },
    "reason.id_number": {
        "zh-CN": "未处理完的泄露中包含身份证号，可能被用来冒名办卡、注册账号或贷款。",
        "en": "An exposure with steps left includes an ID number, which can be used to open "
        "cards, accounts or loans in your name.",
    },
    "reason.recent": {
        "zh-CN": "{count} 条未处理完的记录是近 {days} 天内发现的，请尽快处理。",
        "en": "{count} exposures with steps left were found in the last {days} days. Act on "
        "them soon.",
    },
    "reason.recent.one": {
        "zh-CN": "{count} 条未处理完的记录是近 {days} 天内发现的，请尽快处理。",
        "en": "{count} exposure with steps left was found in the last {days} days. Act on it soon.",
    },
    "reason.many_serious": {
        "zh-CN": "同时有 {count} 条高风险记录没有处理完，总体风险上调一级。",
        "en": "{count} high-risk exposures are open at the same time, so the overall level is "
        "one step higher.",
    },
    "reason.steps_done": {
        "zh-CN": "{count} 条记录的建议步骤已全部完成，风险相应降低。",
        "en": "You did every recommended step for {count} exposures, which lowers their weight.",
    },
    "reason.steps_done.one": {
        "zh-CN": "{count} 条记录的建议步骤已全部完成，风险相应降低。",
        "en": "You did every recommended step for {count} exposure, which lowers its weight.",
    },
    "reason.unverified": {
        "zh-CN": "{count} 条记录来自尚未核实的泄露事件，风险相应降低。",
        "en": "{count} exposures come from breaches that are not verified, which lowers their "
        "weight.",
    },
    "reason.unverified.one": {
        "zh-CN": "{count} 条记录来自尚未核实的泄露事件，风险相应降低。",
        "en": "{count} exposure comes from a breach that is not verified, which lowers its weight.",
    },
    "reason.old": {
        "zh-CN": "{count} 条记录发现于 {days} 天以前，风险相应降低。",
        "en": "{count} exposures were found more than {days} days ago, which lowers their weight.",
    },
    "reason.old.one": {
        "zh-CN": "{count} 条记录发现于 {days} 天以前，风险相应降低。",
        "en": "{count} exposure was found more than {days} days ago, which lowers its weight.",
    },
    "reason.under_review": {
        "zh-CN": "另有 {count} 条疑似记录正在人工核实，核实前不计入风险等级。",
        "en": "{count} more possible matches are being checked by an analyst and do not count "
        "until they are confirmed.",
    },
    "reason.under_review.one": {
        "zh-CN": "另有 {count} 条疑似记录正在人工核实，核实前不计入风险等级。",
        "en": "{count} more possible match is being checked by an analyst and does not count "
        "until it is confirmed.",
    },
    # --- chart --------------------------------------------------------------------------------
    "chart.heading": {
        "zh-CN": "近 12 个月发现的泄露记录",
        "en": "Exposures found in the last 12 months",
    },
    "chart.description": {
        "zh-CN": "柱状图：{first} 至 {last} 每月新发现的已确认泄露记录，按严重程度分色，共 {total} 条。",
        "en": "Bar chart of the confirmed exposures found each month from {first} to {last}, "
        "coloured by severity: {total} in total.",
    },
    "chart.month_total": {"zh-CN": "{month}：共 {total} 条", "en": "{month}: {total} in total"},
    "chart.data": {"zh-CN": "图表数据", "en": "Chart data"},
    "chart.month": {"zh-CN": "月份", "en": "Month"},
    "chart.total": {"zh-CN": "合计", "en": "Total"},
    "chart.axis": {"zh-CN": "条数", "en": "Count"},
    # --- exposures ----------------------------------------------------------------------------
    "exposures.heading": {"zh-CN": "泄露记录", "en": "Exposures"},
    "exposures.none": {
        "zh-CN": "截至期末没有已确认的泄露记录。",
        "en": "There are no confirmed exposures up to the end of the period.",
    },
    "column.identifier": {"zh-CN": "泄露的身份信息", "en": "Identifier"},
    "column.breach": {"zh-CN": "泄露事件", "en": "Breach"},
    "column.breach_date": {"zh-CN": "泄露日期", "en": "Breach date"},
    "column.known_date": {"zh-CN": "发现日期", "en": "Date known"},
    "column.verified": {"zh-CN": "核实情况", "en": "Verified"},
    "column.severity": {"zh-CN": "严重程度", "en": "Severity"},
    "column.status": {"zh-CN": "处理状态", "en": "Status"},
    "column.steps": {"zh-CN": "已完成步骤", "en": "Steps done"},
    "column.channel": {"zh-CN": "渠道", "en": "Channel"},
    "column.result": {"zh-CN": "结果", "en": "Result"},
    "column.time": {"zh-CN": "时间", "en": "Time"},
    "column.date": {"zh-CN": "日期", "en": "Date"},
    "column.event": {"zh-CN": "事件", "en": "Event"},
    "column.step": {"zh-CN": "步骤", "en": "Step"},
    "verified.yes": {"zh-CN": "已核实", "en": "Verified"},
    "verified.no": {"zh-CN": "未核实", "en": "Not verified"},
    "verified.unknown": {"zh-CN": "未收录", "en": "Not catalogued"},
    "progress.todo": {"zh-CN": "待处理", "en": "To do"},
    "progress.started": {"zh-CN": "处理中", "en": "In progress"},
    "progress.done": {"zh-CN": "已处理", "en": "Done"},
    "steps.count": {"zh-CN": "{done}/{total}", "en": "{done} of {total}"},
    "date.unknown": {"zh-CN": "不详", "en": "Unknown"},
    "identifier.removed": {"zh-CN": "（已移除）", "en": "(removed)"},
    "kind.id_number": {"zh-CN": "身份证号", "en": "ID number"},
    "kind.mobile": {"zh-CN": "手机号", "en": "Mobile"},
    "kind.email": {"zh-CN": "电子邮箱", "en": "E-mail"},
    "kind.bank_card": {"zh-CN": "银行卡", "en": "Bank card"},
    "kind_word.id_number": {"zh-CN": "身份证号", "en": "ID number"},
    "kind_word.mobile": {"zh-CN": "手机号", "en": "mobile number"},
    "kind_word.email": {"zh-CN": "电子邮箱", "en": "e-mail address"},
    "kind_word.bank_card": {"zh-CN": "银行卡", "en": "bank card"},
    "kind.password": {"zh-CN": "密码", "en": "Passwords"},
    "kind.name": {"zh-CN": "姓名", "en": "Names"},
    "kind.address": {"zh-CN": "地址", "en": "Addresses"},
    "severity.critical": {"zh-CN": "严重", "en": "Critical"},
    "severity.high": {"zh-CN": "高", "en": "High"},
    "severity.medium": {"zh-CN": "中", "en": "Medium"},
    "severity.low": {"zh-CN": "低", "en": "Low"},
    "severity_word.critical": {"zh-CN": "严重", "en": "critical"},
    "severity_word.high": {"zh-CN": "高", "en": "high"},
    "severity_word.medium": {"zh-CN": "中", "en": "medium"},
    "severity_word.low": {"zh-CN": "低", "en": "low"},
    "confidence.high": {"zh-CN": "高", "en": "High"},
    "confidence.medium": {"zh-CN": "中", "en": "Medium"},
    "confidence.low": {"zh-CN": "低", "en": "Low"},
    # --- alert deliveries ---------------------------------------------------------------------
    "alerts.heading": {"zh-CN": "本期提醒发送记录", "en": "Alerts sent in this period"},
    "alerts.none": {"zh-CN": "本期没有发送提醒。", "en": "No alerts were sent in this period."},
    "channel.sms": {"zh-CN": "短信", "en": "SMS"},
    "channel.email": {"zh-CN": "电子邮件", "en": "E-mail"},
    "delivery.delivered": {"zh-CN": "已送达", "en": "Delivered"},
    "delivery.sent": {"zh-CN": "已发送", "en": "Sent"},
    "delivery.undelivered": {"zh-CN": "未送达", "en": "Not delivered"},
    "delivery.bounced": {"zh-CN": "被退回", "en": "Bounced"},
    "delivery.complained": {"zh-CN": "被标记为垃圾邮件", "en": "Marked as spam"},
    "delivery.failed": {"zh-CN": "发送失败", "en": "Failed"},
    "delivery.unknown": {"zh-CN": "结果未知", "en": "Outcome unknown"},
    "delivery.sending": {"zh-CN": "发送中", "en": "Sending"},
    "delivery.deferred": {"zh-CN": "免打扰时段结束后发送", "en": "Held until quiet hours end"},
    # --- next steps ---------------------------------------------------------------------------
    "next.heading": {"zh-CN": "建议下一步", "en": "Recommended next steps"},
    "next.none": {
        "zh-CN": "所有建议步骤都已完成。",
        "en": "You have done every recommended step.",
    },
    "next.for": {"zh-CN": "涉及：{breaches}", "en": "For: {breaches}"},
    "next.service_separator": {"zh-CN": "：", "en": ": "},
    "next.quarterly": {
        "zh-CN": "本季度还没有记录“{title}”的结果。请重新查询一次，并在账户中记录查到的数量。",
        "en": "You have not recorded “{title}” this quarter. Run it again and record the "
        "numbers in your account.",
    },
    # --- check results and steps --------------------------------------------------------------
    "changes.heading": {
        "zh-CN": "自查结果的变化",
        "en": "Your check results since the last report",
    },
    "changes.none": {
        "zh-CN": "您还没有记录过自查结果。",
        "en": "You have not recorded any check results yet.",
    },
    "changes.changed": {"zh-CN": "{title}：{changes}", "en": "{title}: {changes}"},
    "changes.change": {
        "zh-CN": "{label}从 {previous} 变为 {current}",
        "en": "{label} from {previous} to {current}",
    },
    "changes.same": {
        "zh-CN": "{title}：与上次相同（{counts}）",
        "en": "{title}: the same as last time ({counts})",
    },
    "changes.new": {
        "zh-CN": "{title}：首次记录（{counts}）",
        "en": "{title}: first result ({counts})",
    },
    "changes.not_updated": {
        "zh-CN": "{title}：上次报告以来没有新的记录（{counts}）",
        "en": "{title}: nothing new since the last report ({counts})",
    },
    "changes.count": {"zh-CN": "{label} {value}", "en": "{label} {value}"},
    "changes.recorded": {"zh-CN": "{quarter} 记录", "en": "recorded for {quarter}"},
    "steps.heading": {"zh-CN": "本期完成的步骤", "en": "Steps done in this period"},
    "steps.none": {"zh-CN": "本期没有完成新的步骤。", "en": "No steps were done in this period."},
    # --- the in-depth report -------------------------------------------------------------------
    "deep.title": {"zh-CN": "身份哨兵深度安全报告", "en": "IDSentry in-depth security report"},
    "deep.subtitle": {"zh-CN": "截至 {date}", "en": "As of {date}"},
    "deep.period": {
        "zh-CN": "覆盖范围：{start} 至 {end}，自开通服务以来的全部记录",
        "en": "Covers {start} to {end}: everything since you signed up",
    },
    "deep.purchased": {"zh-CN": "购买时间：{time}", "en": "Bought {time}"},
    "deep.footer": {
        "zh-CN": "这是您购买的深度安全报告，由身份哨兵根据截至 {end} 的全部记录生成。"
        "如有疑问，请登录身份哨兵账户页面查看最新的警报、处理清单和报告，或联系身份哨兵客服。",
        "en": "This is the in-depth security report you bought. IDSentry generated it from all "
        "its records up to {end}. If you have questions, sign in to your IDSentry account page "
        "for your latest alerts, checklists and reports, or contact IDSentry support.",
    },
    "deep.summary.heading": {"zh-CN": "全部记录概况", "en": "Your record at a glance"},
    "deep.summary.watched": {"zh-CN": "监控中的身份信息", "en": "Identifiers watched"},
    "deep.summary.confirmed": {"zh-CN": "已确认的泄露记录", "en": "Confirmed exposures"},
    "deep.summary.open": {
        "zh-CN": "还有步骤没有完成的泄露记录",
        "en": "Confirmed exposures with steps left",
    },
    "deep.summary.dismissed": {
        "zh-CN": "核实后排除的疑似记录",
        "en": "Possible matches ruled out",
    },
    "deep.summary.alerts": {"zh-CN": "已发送的提醒", "en": "Alert messages sent"},
    "deep.summary.undelivered": {
        "zh-CN": "其中没有送达的提醒",
        "en": "Of those, not delivered",
    },
    "plan.heading": {"zh-CN": "行动计划（按紧急程度排列）", "en": "Action plan, most urgent first"},
    "plan.none": {
        "zh-CN": "目前没有需要完成的步骤或自查。",
        "en": "Nothing is left to do at the moment.",
    },
    "plan.title": {"zh-CN": "【{priority}】{step}", "en": "{priority}: {step}"},
    "plan.why": {
        "zh-CN": "涉及 {count} 起泄露事件，其中最高风险为“{level}”，自 {since} 起待完成。",
        "en": "Open for {count} breaches, the most serious at {level} risk, since {since}.",
    },
    "plan.why.one": {
        "zh-CN": "涉及 {count} 起泄露事件，风险为“{level}”，自 {since} 起待完成。",
        "en": "Open for {count} breach at {level} risk since {since}.",
    },
    "priority.now": {"zh-CN": "立即处理", "en": "Do now"},
    "priority.week": {"zh-CN": "一周内完成", "en": "Within a week"},
    "priority.month": {"zh-CN": "一个月内完成", "en": "Within a month"},
    "priority.quarter": {"zh-CN": "本季度内完成", "en": "This quarter"},
    "deep.chart.heading": {
        "zh-CN": "自开通服务以来每月发现的泄露记录",
        "en": "Exposures found each month since you signed up",
    },
    "deep.identifiers.heading": {
        "zh-CN": "每项身份信息的泄露情况",
        "en": "Exposures by identifier",
    },
    "deep.identifier.breaches": {"zh-CN": "涉及的泄露事件", "en": "Breaches"},
    "deep.identifier.count": {"zh-CN": "{count} 起", "en": "{count} breaches"},
    "deep.identifier.count.one": {"zh-CN": "{count} 起", "en": "{count} breach"},
    "deep.identifier.data": {"zh-CN": "这些事件泄露的数据类型", "en": "Data those breaches leaked"},
    "deep.identifier.first": {"zh-CN": "首次发现", "en": "First found"},
    "deep.identifier.last": {"zh-CN": "最近一次发现", "en": "Last found"},
    "deep.identifier.none": {
        "zh-CN": "已确认的泄露记录中没有这项身份信息。",
        "en": "This identifier is in no confirmed exposure.",
    },
    "deep.breaches.heading": {"zh-CN": "泄露事件详情", "en": "Breach details"},
    "deep.breaches.none": {
        "zh-CN": "没有已确认的泄露记录。",
        "en": "There are no confirmed exposures.",
    },
    "deep.steps.none": {
        "zh-CN": "这起泄露事件没有需要完成的步骤。",
        "en": "This breach needs no steps.",
    },
    "step.done": {"zh-CN": "已完成", "en": "Done"},
    "step.open": {"zh-CN": "待完成", "en": "To do"},
    "step.done_on": {"zh-CN": "{date} 完成", "en": "Done on {date}"},
    "step.open_since": {
        "zh-CN": "自 {date} 起，已 {count} 天",
        "en": "Open since {date}, {count} days",
    },
    "step.open_since.one": {
        "zh-CN": "自 {date} 起，已 {count} 天",
        "en": "Open since {date}, {count} day",
    },
    "deep.history.heading": {"zh-CN": "全部泄露记录", "en": "Every exposure found"},
    "deep.history.none": {
        "zh-CN": "开通服务以来没有发现泄露记录。",
        "en": "No exposures were found since you signed up.",
    },
    "column.found_by": {"zh-CN": "发现方式", "en": "How found"},
    "status.confirmed": {"zh-CN": "已确认", "en": "Confirmed"},
    "status.pending_review": {"zh-CN": "正在核实", "en": "Under review"},
    "status.not_scored": {"zh-CN": "正在评估", "en": "Being scored"},
    "status.dismissed": {"zh-CN": "已排除", "en": "Ruled out"},
    "found_by_short.dataset": {"zh-CN": "泄露数据集比对", "en": "Dataset match"},
    "found_by_short.index": {"zh-CN": "每日检查", "en": "Daily check"},
    "found_by_short.hibp": {"zh-CN": "HIBP 查询", "en": "HIBP lookup"},
    "value.none": {"zh-CN": "—", "en": "—"},
    "deep.alerts.heading": {"zh-CN": "提醒发送记录", "en": "Alert delivery history"},
    "deep.alerts.none": {"zh-CN": "还没有发送过提醒。", "en": "No alerts have been sent."},
    "deep.checks.heading": {"zh-CN": "自查记录", "en": "Your check results"},
    "column.quarter": {"zh-CN": "季度", "en": "Quarter"},
    "column.check": {"zh-CN": "自查项目", "en": "Check"},
    "column.counts": {"zh-CN": "查到的数量", "en": "Counts"},
    # --- the incident dossier -----------------------------------------------------------------
    "dossier.title": {"zh-CN": "个人信息泄露情况说明材料", "en": "Incident dossier"},
    "dossier.audience.police": {
        "zh-CN": "供向公安机关报案使用",
        "en": "For a report to the police",
    },
    "dossier.audience.bank": {"zh-CN": "供向银行说明情况使用", "en": "For your bank"},
    "dossier.audience.carrier": {
        "zh-CN": "供向电信运营商说明情况使用",
        "en": "For your mobile carrier",
    },
    "dossier.audience.general": {
        "zh-CN": "供向有关机构说明情况使用",
        "en": "For any organisation that needs it",
    },
    "dossier.intro": {
        "zh-CN": "本材料由身份哨兵根据系统记录生成，列出在泄露数据中发现的您的身份信息、发现时间、"
        "泄露事件的证据，以及您已采取的措施。身份信息只显示部分字符。",
        "en": "IDSentry generated this dossier from its records. It lists where your identifiers "
        "were found in breached data, when we found them, the evidence about each breach, and "
        "the steps you took. Identifiers are shown masked.",
    },
    "dossier.reference": {"zh-CN": "材料编号", "en": "Reference"},
    "dossier.account": {"zh-CN": "账户编号", "en": "Account id"},
    "dossier.generated": {"zh-CN": "生成时间", "en": "Generated"},
    "dossier.time_zone": {"zh-CN": "时区", "en": "Time zone"},
    "dossier.summary": {
        "zh-CN": "共 {count} 起泄露事件，最早于 {first} 发现，最近一次于 {last} 发现。",
        "en": "{count} breaches, the first found on {first} and the latest on {last}.",
    },
    "dossier.summary.one": {
        "zh-CN": "共 {count} 起泄露事件，于 {first} 发现。",
        "en": "{count} breach, found on {first}.",
    },
    "dossier.none": {
        "zh-CN": "没有可以列入材料的已确认泄露记录。",
        "en": "There are no confirmed exposures to include.",
    },
    "dossier.timeline": {"zh-CN": "时间线", "en": "Timeline"},
    "dossier.evidence": {"zh-CN": "泄露事件证据", "en": "Breach evidence"},
    "dossier.steps": {"zh-CN": "已采取的措施", "en": "Steps taken"},
    "dossier.steps_none": {
        "zh-CN": "还没有记录已采取的措施。",
        "en": "No steps have been recorded yet.",
    },
    "dossier.declaration": {
        "zh-CN": "以上内容依据身份哨兵的系统记录整理，时间按 {timezone} 时区显示。身份哨兵不保存泄露数据原文，"
        "只保存用于比对的加密指纹。",
        "en": "This content comes from IDSentry's records, with times in {timezone}. IDSentry "
        "keeps no copy of breached data, only the keyed fingerprints it matches against.",
    },
    "event.breach_occurred": {
        "zh-CN": "{breach} 发生数据泄露",
        "en": "Data breach at {breach}",
    },
    "event.breach_catalogued": {
        "zh-CN": "{breach} 的泄露事件被收录进泄露数据库",
        "en": "The {breach} breach was added to the breach catalogue",
    },
    "event.exposure_found": {
        "zh-CN": "在 {breach} 的泄露数据中发现您的{identifiers}",
        "en": "Your {identifiers} found in the {breach} breach data",
    },
    "event.alert_confirmed.rules": {
        "zh-CN": "系统规则确认泄露（严重程度：{severity}）",
        "en": "Exposure confirmed by the rules (severity: {severity})",
    },
    "event.alert_confirmed.analyst": {
        "zh-CN": "分析人员人工核实并确认泄露（严重程度：{severity}）",
        "en": "Exposure confirmed by an analyst (severity: {severity})",
    },
    "event.alert_sent": {
        "zh-CN": "通过{channel}发送提醒：{result}",
        "en": "Alert by {channel}: {result}",
    },
    "event.step_done": {"zh-CN": "完成步骤：{step}", "en": "Step done: {step}"},
    "evidence.breach": {"zh-CN": "事件名称", "en": "Breach"},
    "evidence.domain": {"zh-CN": "网站", "en": "Website"},
    "evidence.breach_date": {"zh-CN": "泄露日期", "en": "Breach date"},
    "evidence.catalogued": {"zh-CN": "收录日期", "en": "Catalogued"},
    "evidence.accounts": {"zh-CN": "涉及账户数", "en": "Accounts affected"},
    "evidence.data": {"zh-CN": "泄露的数据类型", "en": "Data exposed"},
    "evidence.verified": {"zh-CN": "核实情况", "en": "Verified"},
    "evidence.source": {"zh-CN": "来源", "en": "Source"},
    "evidence.found_by": {"zh-CN": "发现方式", "en": "How we found it"},
    "evidence.found_at": {"zh-CN": "发现时间", "en": "Found"},
    "evidence.identifiers": {"zh-CN": "涉及的身份信息", "en": "Your identifiers in it"},
    "evidence.severity": {"zh-CN": "严重程度", "en": "Severity"},
    "evidence.confidence": {"zh-CN": "可信度", "en": "Confidence"},
    "evidence.confirmed": {"zh-CN": "确认方式", "en": "Confirmed by"},
    "source.hibp": {
        "zh-CN": "Have I Been Pwned 泄露数据库",
        "en": "Have I Been Pwned breach catalogue",
    },
    "source.dataset": {
        "zh-CN": "身份哨兵收录的泄露数据集",
        "en": "A breach dataset that IDSentry ingested",
    },
    "found_by.dataset": {
        "zh-CN": "收录新的泄露数据时比对发现",
        "en": "Matched when the breach data was ingested",
    },
    "found_by.index": {
        "zh-CN": "每日比对泄露数据索引时发现",
        "en": "The daily check against the breach index",
    },
    "found_by.hibp": {"zh-CN": "查询 Have I Been Pwned 时发现", "en": "A Have I Been Pwned lookup"},
    "confirmed_by.rules": {"zh-CN": "系统规则自动确认", "en": "The automatic rules"},
    "confirmed_by.analyst": {"zh-CN": "分析人员人工核实", "en": "An analyst"},
    # --- shared -------------------------------------------------------------------------------
    "list.separator": {"zh-CN": "、", "en": ", "},
    "page": {"zh-CN": "第 {page} 页，共 {pages} 页", "en": "Page {page} of {pages}"},
}

_EN_MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# Month labels of the chart's axis. The Chinese ones are written out here so that the font
# test checks every character they use.
_SHORT_MONTHS: Final[dict[Locale, tuple[str, ...]]] = {
    "zh-CN": (
        "1月",
        "2月",
        "3月",
        "4月",
        "5月",
        "6月",
        "7月",
        "8月",
        "9月",
        "10月",
        "11月",
        "12月",
    ),
    "en": tuple(name[:3] for name in _EN_MONTHS),
}
_MONTH_FORMAT: Final[dict[Locale, str]] = {"zh-CN": "{year}年{month}月", "en": "{name} {year}"}


def text(locale: Locale, key: str, **params: object) -> str:
    """Return the text of `key` in `locale` with `params` filled in. Raises KeyError for a typo."""
    return TEXT[key][locale].format(**params)


def counted(locale: Locale, key: str, count: int, **params: object) -> str:
    """Return the text of `key` for `count` things, with the singular form when count is 1."""
    singular = f"{key}.one"
    chosen = singular if count == 1 and singular in TEXT else key
    return text(locale, chosen, count=count, **params)


def join(locale: Locale, parts: list[str] | tuple[str, ...]) -> str:
    """Join list entries with the locale's separator (、 in Chinese)."""
    return text(locale, "list.separator").join(parts)


def month_name(locale: Locale, year: int, month: int) -> str:
    """Return a month as a heading shows it: 2026年5月, or May 2026."""
    return _MONTH_FORMAT[locale].format(year=year, month=month, name=_EN_MONTHS[month - 1])


def short_month(locale: Locale, month: int) -> str:
    """Return a month as the chart's axis shows it: 5月, or May."""
    return _SHORT_MONTHS[locale][month - 1]


def format_date(day: date | None, locale: Locale) -> str:
    """Return a date as 2026-05-03 in both locales, which tables on a phone keep narrow."""
    if day is None:
        return text(locale, "date.unknown")
    return day.isoformat()


def format_time(moment: datetime) -> str:
    """Return a local time as 2026-05-03 14:05. The caller converts it to the subscriber's zone."""
    return moment.strftime("%Y-%m-%d %H:%M")


def fixed_characters() -> set[str]:
    """Return every character that fixed text can put on a page, for the font coverage test."""
    characters: set[str] = set()
    for entry in TEXT.values():
        for value in entry.values():
            characters.update(value)
    for labels in _SHORT_MONTHS.values():
        for label in labels:
            characters.update(label)
    for pattern in _MONTH_FORMAT.values():
        characters.update(pattern)
    for name in _EN_MONTHS:
        characters.update(name)
    characters.update("0123456789-:/ ")
    return characters
