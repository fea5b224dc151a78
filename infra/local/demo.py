"""`make demo`: play the story in events/demo/story.json on the local stack and check each step.

The story file lists steps in order. Each step has an `id`, a `stage`, a `scene`, a `title` in
zh-CN and en, and an `action` with that action's fields. The stage names the part of the product
that the step exercises, such as "signup", and later stages add their own steps and actions. The
scene is a key of the file's `scenes`, whose title is printed when the scene changes. Actions:

- `signup`: POST /v1/signups with `body` (laid over `defaults.signup`), optional `source_ip`
  (sent as X-Forwarded-For) and `idempotency_key`, or `replay_of` (a signup step to resend).
  A body's `"referral_code": {"from_step": "<verify step>"}` sends the referral code that the
  verify step returned.
- `signup_burst`: the same body sent `count` times, or once per entry of `mobiles`.
- `receive_sms`: wait for the code SMS of a signup step and read the code from it, or with
  `kind` (an SMS template of idsentry.templates, such as "payment_failed") wait for exactly one
  SMS of that template to the signup's mobile.
- `verify`: POST .../verify with the code from the SMS (`"code": "from_sms"`) or a wrong one
  (`"code": "wrong"`).
- `receive_email`: wait for the e-mail of `kind` (a template of idsentry.templates) to the
  address of a signup step.
- `open_email_link`: open the link in the e-mail that the step named by `email_step` received.
- `open_billing_link`: open the billing link of such an e-mail, check that it redirects to the
  Stripe shim's Customer Portal and print the portal page.
- `register_identity`: change the real-name verification emulator's registry.
- `check_account`: read whether a verified signup's account still has its ID number.
- `open_checkout`: open the Checkout page whose URL the verify step of a signup returned.
- `pay_checkout`: pay that Checkout Session with a test card (`payment_method`, default
  "pm_card_visa"), optionally with every webhook sent twice and in random order
  (`"webhooks": {"duplicate": true, "shuffle": true}`), and wait until the Stripe shim has sent
  the payment's webhooks. The billing actions below take the same `webhooks` option.
- `set_card`: make a test card (`payment_method`) the default payment method of a paid
  signup's Stripe customer, through the Stripe shim's control.
- `renew`: renew a paid signup's subscription now through the Stripe shim's control, as Stripe
  does at the end of a billing period, and keep the renewal invoice.
- `pay_invoice`: pay that renewal invoice again through the Stripe API
  (POST /v1/invoices/{id}/pay).
- `refund`: refund the only charge of a paid signup's Stripe customer through the Stripe API.
- `open_dispute`, `close_dispute`: open a dispute of that charge, or close it as won or lost
  (`won`), through the Stripe shim's controls.
- `check_subscription`: wait until the paid subscriber's profile shows the expected status,
  then check that each Stripe event of the steps since the last check was applied once.
- `check_dunning`: wait until the renewal invoice's dunning item shows the expected `resolved`.
- `check_ledger`: check that the subscriber's ledger contains exactly the expected entries.
- `check_referral`: wait until the referee's referral is settled and check its status and
  credit.
- `check_balance`: read the referrer's Stripe customer balance and its balance transactions.
- `generate_breach`: write a breach file with the generator (infra.tools.breach_generator):
  `rows`, `seed`, `encoding`, `name` (the breach Name), and `plant`, a list of
  {"signup": <signup step>, "kinds": [...]} that puts the name, ID number and mobile that
  events/demo/identities.json lists for that signup's ID number, and its e-mail address, into
  the file. `kinds` limits the planted identifiers (default all of id_number, mobile, email).
- `upload_breach`: upload a generated file and its manifest to `prefix` in the intake bucket,
  optionally changed by `manifest` ({"remove": [fields]} or {"set": {field: value}}), and
  follow the intake job through the admin API until it is done or rejected.
- `check_exposures`: print a signup's EXPOSURE items and check them against
  `expect.exposures` (every breach, none missing or extra) and `expect.hibp_status`.
- `hibp_account`: record the e-mail address of a signup in `breaches` at the HIBP emulator.
- `breach_check`: fire the daily breach check schedule and wait until its check jobs finish.
- `summary`: print and check the counts of the whole run.

The `check_*` actions read the service's table directly, because no account API exists yet.
The generated breach files and their manifests are never printed, only counts and the
manifest's catalogue and provenance fields.

`expect` states what the step must observe. In replay mode (`Demo(..., replay=Replay(...))`,
used by `python -m infra.chaos.replay`) every delivery is made twice. The expected counts of
webhook deliveries (`webhook_deliveries`, `duplicate_deliveries`, `webhook_duplicates`) are not
checked there, and a breach check counts each distinct check job once however often it was
delivered. Everything else is checked as usual. The demo exits 0 when every step met its
expectations, 1 at the first step that did not (naming the step and what was expected), 2 for
an invalid story file and 130 on Ctrl-C or SIGTERM. It stops the local stack it started in
each of these cases, though not when the process is killed with SIGKILL.
"""

from __future__ import annotations

import argparse
import contextlib
import html.parser
import json
import logging
import re
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, Literal, TextIO, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import phonenumbers
import requests
import stripe

from idsentry import identifiers
from idsentry.adapters.stripe_gateway import API_VERSION
from idsentry.identifiers import IdentifierKind
from idsentry.money import format_money, parse_stripe_amount
from idsentry.services.intake import MANIFEST_NAME, intake_job_id
from idsentry.templates import SMS_TEMPLATES, render_email
from idsentry.wiring import main_table
from infra.local.demo_account import ACCOUNT_ACTIONS, ACCOUNT_TEXT
from infra.local.demo_alerts import (
    ALERT_ACTIONS,
    ALERT_TEXT,
    NOTIFICATION_MESSAGE,
    AlertEmail,
    resolve_timezone_token,
)
from infra.local.demo_finance import FINANCE_ACTIONS, FINANCE_TEXT
from infra.local.demo_reports import REPORT_ACTIONS, REPORT_TEXT
from infra.local.emulators.hibp import HibpEmulator, InvalidBreachError, load_catalogue
from infra.local.emulators.realname import RealNameEmulator
from infra.local.emulators.stripe import TEST_API_KEY
from infra.local.emulators.stripe_api import StripeApiError
from infra.local.emulators.stripe_charges import TEST_CARDS
from infra.local.emulators.stripe_shim import StripeShim, WebhookDelivery, card_label
from infra.local.emulators.twilio import TwilioEmulator
from infra.local.replay import Replay
from infra.local.runtime import LocalRuntime
from infra.local.service import ADMIN_TOKEN_HEADER, HIBP_CATALOGUE, LocalService
from infra.local.stack import DEFAULT_TEMPLATE, REPOSITORY_ROOT
from infra.local.template import load_template
from infra.local.zones import daytime_zone, night_zone
from infra.tools.breach_generator import DATA_FILE_NAMES, EXPECTED_FILE_NAME, MANIFEST_FILE_NAME

LOG = logging.getLogger(__name__)
Result = TypeVar("Result")

Lang = Literal["zh-CN", "en"]
LANGS: tuple[Lang, ...] = ("zh-CN", "en")
DEFAULT_STORY = REPOSITORY_ROOT / "events" / "demo" / "story.json"
LOG_FILE = REPOSITORY_ROOT / ".local" / "demo.log"
# Upper bound for each wait on an SMS or e-mail. In local runs the notifier sends within a second.
WAIT_SECONDS = 15.0
# Upper bound for the Stripe shim to send a payment's webhooks, and then for the billing consumer
# to apply them. Locally both take a few seconds, because localstripe sends its events about one
# second after creating them.
BILLING_WAIT_SECONDS = 30.0
POLL_SECONDS = 0.1
HTTP_TIMEOUT_SECONDS = 30.0
# The billing consumer logs this message on this logger, with the field event_id, each time it
# applies a Stripe event (or ignores an unhandled type), and nothing for a duplicate.
BILLING_LOGGER = "idsentry.services.billing"
EVENT_PROCESSED_MESSAGE = "stripe event processed"
# The function that applies Stripe events, whose queue the demo watches.
STRIPE_EVENTS_FUNCTION = "StripeEventsFunction"
FINAL_SMS_STATUSES = frozenset({"delivered", "undelivered", "failed"})
# Expected counts of webhook deliveries, which replay mode doubles, so it does not check them.
DELIVERY_COUNTS = frozenset({"webhook_deliveries", "duplicate_deliveries", "webhook_duplicates"})
CODE_PATTERN = re.compile(r"(?<!\d)(\d{6})(?!\d)")
LINK_PATTERN = re.compile(r"https?://\S+")
DEFAULT_TEST_CARD = "pm_card_visa"
# Dates in the service's notices are Beijing dates, so the demo prints its dates the same way.
BEIJING = ZoneInfo("Asia/Shanghai")
# Upper bound for an intake job to end, and for the jobs of one breach check run to finish.
# Locally the story's 3000-row file takes a few seconds.
BREACH_WAIT_SECONDS = 30.0
# Pause between reads of an intake job through the admin API, each of which invokes a handler.
ADMIN_POLL_SECONDS = 0.2
GENERATOR_TIMEOUT_SECONDS = 60.0
GENERATOR_MODULE = "infra.tools.breach_generator"
PLANT_KINDS = ("id_number", "mobile", "email")
# The template names the daily check `idsentry-${Stage}-breach-check`, and LocalService
# provisions the stage "local".
BREACH_CHECK_SCHEDULE = "idsentry-local-breach-check"
CHECK_WORKER_FUNCTION = "BreachCheckWorkerFunction"
# record_exposure() logs this message once per announced (subscriber, breach), with the fields
# subscriber_id, breach_name and found_by. The check worker logs the second message once per
# finished check job, with job_id, status and hibp.
EXPOSURES_LOGGER = "idsentry.services.exposures"
EXPOSURE_MESSAGE = "exposure detected"
CHECK_LOGGER = "idsentry.routes.check_jobs"
PLANNER_LOGGER = "idsentry.services.breach_check"
CHECK_MESSAGE = "subscriber checked"
# Logged by each page job of a check run, with the number of check jobs it queued.
PAGE_MESSAGE = "check page planned"
# Logged by the HIBP worker after each lookup job.
HIBP_MESSAGE = "hibp lookup done"
HIBP_WORKER_FUNCTION = "BreachHibpWorkerFunction"

EXIT_OK = 0
EXIT_STEP_FAILED = 1
EXIT_INVALID_STORY = 2
EXIT_INTERRUPTED = 130

# Text the demo prints itself. API responses, SMS and e-mails keep the subscriber's locale.
UI_TEXT: dict[str, dict[Lang, str]] = {
    "banner": {"zh-CN": "身份哨兵 IDSentry 本地演示", "en": "IDSentry local demo"},
    "starting": {
        "zh-CN": "正在启动本地服务（moto、Twilio 模拟器、实名核验模拟器、HIBP 模拟器、本地 Stripe（localstripe 与 Stripe shim）、HTTP API）……",
        "en": "Starting the local service (moto, the Twilio, real-name verification and HIBP emulators, local Stripe (localstripe behind the Stripe shim), the HTTP API)...",
    },
    "started": {"zh-CN": "本地服务已启动：{base_url}", "en": "Local service started at {base_url}"},
    "parameter": {
        "zh-CN": "注意：本次演示把模板参数 {name} 调为 {value}（模板默认 {default}），以便演示该限制。",
        "en": "Note: this demo sets the template parameter {name} to {value} (template default {default}) to show that limit.",
    },
    "forwarded": {
        "zh-CN": "注意：演示让本地 HTTP API 信任 X-Forwarded-For 请求头，由演示为每个请求指定来源 IP（文档保留地址），代表不同网络的用户和来自同一地址的批量请求。",
        "en": "Note: the demo makes the local HTTP API trust the X-Forwarded-For header and sets each request's source IP (documentation addresses) to stand for users on different networks and a burst from one address.",
    },
    "logs": {
        "zh-CN": "服务自身的日志写入 {path}。",
        "en": "The service's own log lines go to {path}.",
    },
    "masked": {
        "zh-CN": "演示输出中的身份证号、手机号和邮箱地址均已脱敏。",
        "en": "ID numbers, mobile numbers and e-mail addresses in this output are masked.",
    },
    "step": {"zh-CN": "[{stage}] {step_id}：{title}", "en": "[{stage}] {step_id}: {title}"},
    "signup_request": {
        "zh-CN": "POST /v1/signups：姓名 {name}，身份证号 {id_number}，手机 {mobile}，邮箱 {email}，语言 {locale}，来源 IP {source_ip}",
        "en": "POST /v1/signups: name {name}, ID number {id_number}, mobile {mobile}, e-mail {email}, locale {locale}, source IP {source_ip}",
    },
    "consents_sent": {
        "zh-CN": "同意项：{consents}",
        "en": "Consents: {consents}",
    },
    "no_consents": {"zh-CN": "（无）", "en": "(none)"},
    "referral_code_sent": {"zh-CN": "邀请码：{code}", "en": "Referral code: {code}"},
    "idempotency_key": {"zh-CN": "Idempotency-Key：{key}", "en": "Idempotency-Key: {key}"},
    "response": {"zh-CN": "→ HTTP {status} {code}", "en": "→ HTTP {status} {code}"},
    "field_problem": {"zh-CN": "· {field}：{message}", "en": "· {field}: {message}"},
    "retry_after": {"zh-CN": "Retry-After：{seconds} 秒", "en": "Retry-After: {seconds} s"},
    "signup_id": {"zh-CN": "signup_id：{signup_id}", "en": "signup_id: {signup_id}"},
    "subscriber_id": {
        "zh-CN": "subscriber_id：{subscriber_id}，状态 {status}，下一步 {next_step}",
        "en": "subscriber_id: {subscriber_id}, status {status}, next step {next_step}",
    },
    "own_referral_code": {
        "zh-CN": "本人的邀请码：{code}",
        "en": "Own referral code: {code}",
    },
    "same_signup": {
        "zh-CN": "与 {step} 的 signup_id 相同，服务返回了保存的响应",
        "en": "Same signup_id as {step}: the service returned the stored response",
    },
    "sms_header": {
        "zh-CN": "短信 → {mobile}（Twilio 状态 {status}，{segments} 段）",
        "en": "SMS → {mobile} (Twilio status {status}, {segments} segment(s))",
    },
    "email_header": {"zh-CN": "邮件 → {email}", "en": "E-mail → {email}"},
    "email_subject": {"zh-CN": "主题：{subject}", "en": "Subject: {subject}"},
    "verify_request": {
        "zh-CN": "POST /v1/signups/{signup_id}/verify：验证码 {code}",
        "en": "POST /v1/signups/{signup_id}/verify: code {code}",
    },
    "wrong_code": {
        "zh-CN": "（故意输错一位，短信里的是 {right}）",
        "en": "(one digit mistyped on purpose; the SMS says {right})",
    },
    "verification": {
        "zh-CN": "实名核验模拟器的结果：{result}",
        "en": "Real-name verification emulator result: {result}",
    },
    "open_link": {"zh-CN": "GET {path}", "en": "GET {path}"},
    "page": {"zh-CN": "页面内容：", "en": "Page text:"},
    "identity_registered": {
        "zh-CN": "实名核验模拟器登记：{name}，身份证号 {id_number}，手机 {mobile}",
        "en": "Real-name verification emulator now registers: {name}, ID number {id_number}, mobile {mobile}",
    },
    "account_held": {
        "zh-CN": "账户 {subscriber_id} 持有身份证号 {masked}。账户通知：{notices} 条",
        "en": "Account {subscriber_id} holds ID number {masked}. Account notices: {notices}",
    },
    "account_removed": {
        "zh-CN": "账户 {subscriber_id} 的身份证号 {masked} 已移除，由账户 {taken_by} 接管。账户通知：{notices} 条",
        "en": "Account {subscriber_id} no longer holds ID number {masked}, because account {taken_by} took it over. Account notices: {notices}",
    },
    "account_missing": {
        "zh-CN": "账户 {subscriber_id} 没有身份证号记录。账户通知：{notices} 条",
        "en": "Account {subscriber_id} has no ID number record. Account notices: {notices}",
    },
    "burst_request": {
        "zh-CN": "请求 {index}：手机 {mobile} → HTTP {status} {detail}",
        "en": "Request {index}: mobile {mobile} → HTTP {status} {detail}",
    },
    "burst_sms": {
        "zh-CN": "Twilio 模拟器为这些号码收到的短信：{count} 条",
        "en": "SMS the Twilio emulator received for these numbers: {count}",
    },
    "checkout_local": {
        "zh-CN": "支付链接指向本地 Stripe shim（127.0.0.1，不连接真实的 Stripe）：{path}",
        "en": "The payment link points to the local Stripe shim (127.0.0.1, not the real Stripe): {path}",
    },
    "page_title": {"zh-CN": "页面标题：{title}", "en": "Page title: {title}"},
    "webhooks_duplicated": {
        "zh-CN": "注意：演示让 Stripe shim 把本步骤的每个 webhook 发送两次，并打乱发送顺序。",
        "en": "Note: the demo makes the Stripe shim send each webhook of this step twice, in random order.",
    },
    "pay_request": {
        "zh-CN": "POST {path}（Accept: application/json，测试卡 {card}）",
        "en": "POST {path} (Accept: application/json, test card {card})",
    },
    "checkout_paid": {
        "zh-CN": "Checkout Session {session_id}：状态 {status}，付款状态 {payment_status}，订阅 {subscription_id}",
        "en": "Checkout Session {session_id}: status {status}, payment status {payment_status}, subscription {subscription_id}",
    },
    "checkout_event": {
        "zh-CN": "Stripe 事件 checkout.session.completed：{event_id}",
        "en": "Stripe event checkout.session.completed: {event_id}",
    },
    "webhook_deliveries": {
        "zh-CN": "Stripe shim 发往 POST /v1/webhooks/stripe 的 webhook：{count} 次投递，{events} 个事件，重复投递 {duplicates} 次。按发送顺序：",
        "en": "Webhooks the Stripe shim sent to POST /v1/webhooks/stripe: {count} delivery(ies) of {events} event(s), {duplicates} of them duplicates. In the order sent:",
    },
    "webhook_delivery": {
        "zh-CN": "{index}. {event_type} {event_id}（第 {attempt} 次尝试）→ HTTP {status}",
        "en": "{index}. {event_type} {event_id} (attempt {attempt}) → HTTP {status}",
    },
    "waiting_profile": {
        "zh-CN": "等待计费消费者更新账户 {subscriber_id}（最长 {seconds} 秒）",
        "en": "Waiting for the billing consumer to update account {subscriber_id} (at most {seconds} s)",
    },
    "profile_state": {
        "zh-CN": "账户 {subscriber_id}：status {status}，monitored {monitored}，订阅 {subscription_id}（用时 {elapsed} 秒）",
        "en": "Account {subscriber_id}: status {status}, monitored {monitored}, subscription {subscription_id} (after {elapsed} s)",
    },
    "events_applied": {
        "zh-CN": "计费消费者完成了 {jobs} 个任务；{events} 个 Stripe 事件各处理一次，各有 1 个 STRIPE_EVENT#…/APPLIED 标记",
        "en": "The billing consumer finished {jobs} job(s). Each Stripe event ({events} in all) was applied once and has 1 STRIPE_EVENT#…/APPLIED marker",
    },
    "duplicates_recognised": {
        "zh-CN": "其余 {duplicates} 个任务来自重复投递，都被识别为重复，没有再次处理",
        "en": "The other {duplicates} job(s) came from duplicate deliveries and were recognised as duplicates, so nothing was applied twice",
    },
    "no_duplicates": {
        "zh-CN": "没有重复投递",
        "en": "No delivery was a duplicate",
    },
    "card_set": {
        "zh-CN": "Stripe shim 控制接口：客户 {customer_id} 的默认付款方式改为测试卡 {card}（{payment_method_id}）",
        "en": "Stripe shim control: the default payment method of customer {customer_id} is now the test card {card} ({payment_method_id})",
    },
    "renew_request": {
        "zh-CN": "Stripe shim 控制接口：像计费周期结束时一样，立即续订订阅 {subscription_id}",
        "en": "Stripe shim control: renew subscription {subscription_id} now, as at the end of its billing period",
    },
    "pay_invoice_request": {
        "zh-CN": "POST /v1/invoices/{invoice_id}/pay（Stripe API，用客户的默认付款方式再次扣款）",
        "en": "POST /v1/invoices/{invoice_id}/pay (Stripe API, charges the customer's default payment method again)",
    },
    "invoice_state": {
        "zh-CN": "发票 {invoice_id}（{billing_reason}）：状态 {status}，应付 {amount_due}，已付 {amount_paid}，扣款尝试 {attempt_count} 次",
        "en": "Invoice {invoice_id} ({billing_reason}): status {status}, amount due {amount_due}, amount paid {amount_paid}, {attempt_count} payment attempt(s)",
    },
    "charge_found": {
        "zh-CN": "GET /v1/charges?customer={customer_id}：付款 {charge_id}，{amount}，状态 {status}",
        "en": "GET /v1/charges?customer={customer_id}: charge {charge_id}, {amount}, status {status}",
    },
    "refund_request": {
        "zh-CN": "POST /v1/refunds（Stripe API）：charge {charge_id}，reason {reason}",
        "en": "POST /v1/refunds (Stripe API): charge {charge_id}, reason {reason}",
    },
    "refund_state": {
        "zh-CN": "退款 {refund_id}：{amount}，状态 {status}",
        "en": "Refund {refund_id}: {amount}, status {status}",
    },
    "dispute_open_request": {
        "zh-CN": "Stripe shim 控制接口：持卡人对付款 {charge_id} 提出争议（reason {reason}）",
        "en": "Stripe shim control: the cardholder disputes charge {charge_id} (reason {reason})",
    },
    "dispute_close_request": {
        "zh-CN": "Stripe shim 控制接口：争议 {dispute_id} 结案，商户{outcome}",
        "en": "Stripe shim control: dispute {dispute_id} closes and the merchant {outcome} it",
    },
    "dispute_won": {"zh-CN": "胜诉", "en": "wins"},
    "dispute_lost": {"zh-CN": "败诉", "en": "loses"},
    "dispute_state": {
        "zh-CN": "争议 {dispute_id}：状态 {status}，金额 {amount}。Stripe 余额变动：",
        "en": "Dispute {dispute_id}: status {status}, amount {amount}. Stripe balance movements:",
    },
    "dispute_movement": {
        "zh-CN": "· {transaction_id}（{category}）：{amount}，手续费 {fee}",
        "en": "· {transaction_id} ({category}): {amount}, fee {fee}",
    },
    "billing_link_redirect": {
        "zh-CN": "→ HTTP {status}，Location：{location}",
        "en": "→ HTTP {status}, Location: {location}",
    },
    "portal_local": {
        "zh-CN": "Location 指向本地 Stripe shim 的客户门户（127.0.0.1，不连接真实的 Stripe）",
        "en": "The Location is the local Stripe shim's Customer Portal (127.0.0.1, not the real Stripe)",
    },
    "sms_no_link": {
        "zh-CN": "短信中没有链接，付款链接只在邮件中",
        "en": "The SMS contains no link, because the payment link is in the e-mail only",
    },
    "dunning_state": {
        "zh-CN": "催缴记录 DUNNING#{invoice_id}：应付 {amount}，扣款尝试 {attempt_count} 次，宽限期内监控到 {until}（北京时间），resolved {resolved}",
        "en": "Dunning item DUNNING#{invoice_id}: amount due {amount}, {attempt_count} payment attempt(s), monitoring kept in the grace period until {until} (Beijing time), resolved {resolved}",
    },
    "ledger_header": {
        "zh-CN": "账户 {subscriber_id} 的账本（LEDGER#… 项）共 {count} 条：",
        "en": "Ledger of account {subscriber_id}, {count} LEDGER#… item(s):",
    },
    "ledger_entry": {
        "zh-CN": "· {time} {kind} {amount}（{minor} {currency}）{objects}",
        "en": "· {time} {kind} {amount} ({minor} {currency}) {objects}",
    },
    "ledger_fee": {"zh-CN": "手续费 {fee}", "en": "fee {fee}"},
    "ledger_matches": {
        "zh-CN": "账本与预期一致，每笔资金变动只记一次",
        "en": "The ledger is as expected, with each money movement recorded once",
    },
    "referral_state": {
        "zh-CN": "邀请记录 REFERRED_BY：邀请人 {referrer_id}，邀请码 {code}，状态 {status}，奖励 {credit}，余额交易 {balance_transaction_id}",
        "en": "Referral item REFERRED_BY: referrer {referrer_id}, code {code}, status {status}, credit {credit}, balance transaction {balance_transaction_id}",
    },
    "balance_state": {
        "zh-CN": "GET /v1/customers/{customer_id}（Stripe API）：余额 {balance}（{minor} {currency}，负数是抵扣以后账单的余额）",
        "en": "GET /v1/customers/{customer_id} (Stripe API): balance {balance} ({minor} {currency}, a negative balance is credit toward later invoices)",
    },
    "balance_transaction": {
        "zh-CN": "· 余额交易 {transaction_id}：{amount}，{description}",
        "en": "· Balance transaction {transaction_id}: {amount}, {description}",
    },
    "separator": {"zh-CN": "，", "en": ", "},
    "generator_command": {
        "zh-CN": "运行泄露文件生成器：{command}",
        "en": "Running the breach file generator: {command}",
    },
    "breach_file": {
        "zh-CN": "生成的 {file}：{rows} 行数据，{size} 字节，编码 {encoding}，随机种子 {seed}（在临时目录中，演示结束时删除）",
        "en": "Generated {file}: {rows} data lines, {size} bytes, encoding {encoding}, seed {seed} (in a temporary directory that the demo removes when it ends)",
    },
    "breach_planted": {
        "zh-CN": "文件中植入的订阅者：{count} 位",
        "en": "Subscribers planted in the file: {count}",
    },
    "breach_plant": {"zh-CN": "· {name}：{values}", "en": "· {name}: {values}"},
    "plant_id_number": {"zh-CN": "身份证号 {value}", "en": "ID number {value}"},
    "plant_mobile": {"zh-CN": "手机 {value}", "en": "mobile {value}"},
    "plant_email": {"zh-CN": "邮箱 {value}", "en": "e-mail {value}"},
    "breach_catalogue": {
        "zh-CN": "manifest.json 的泄露目录字段：Name {name}，Title {title}，Domain {domain}，BreachDate {breach_date}，IsVerified {verified}",
        "en": "Catalogue fields of manifest.json: Name {name}, Title {title}, Domain {domain}, BreachDate {breach_date}, IsVerified {verified}",
    },
    "breach_data_classes": {"zh-CN": "DataClasses：{classes}", "en": "DataClasses: {classes}"},
    "breach_provenance": {
        "zh-CN": "manifest.json 的来源说明（provenance）：",
        "en": "Provenance in manifest.json:",
    },
    "breach_field": {"zh-CN": "· {name}：{value}", "en": "· {name}: {value}"},
    "breach_expected": {
        "zh-CN": "expected.json（生成器按自己的规则算出的入库结果）：读取 {rows_read} 行，接受 {rows_accepted} 行，拒绝 {rows_rejected} 行，转换 15 位旧身份证号 {legacy} 个",
        "en": "expected.json (the intake counts by the generator's own rules): {rows_read} rows read, {rows_accepted} accepted, {rows_rejected} rejected, {legacy} legacy 15-digit ID numbers converted",
    },
    "upload_object": {
        "zh-CN": "上传 s3://{bucket}/{key}（{size} 字节）",
        "en": "Upload s3://{bucket}/{key} ({size} bytes)",
    },
    "manifest_removed": {
        "zh-CN": "这份 manifest.json 去掉了字段 {field}",
        "en": "This manifest.json leaves out the field {field}",
    },
    "manifest_set": {
        "zh-CN": "这份 manifest.json 把 {field} 改为 {value}",
        "en": "This manifest.json sets {field} to {value}",
    },
    "waiting_intake": {
        "zh-CN": "通过管理 API 查询入库任务，直到任务结束（最长 {seconds} 秒）：GET {path}（本地用 {header} 请求头代替 IAM 签名）",
        "en": "Following the intake job through the admin API until it ends (at most {seconds} s): GET {path} (locally the {header} header stands in for IAM signing)",
    },
    "intake_done": {
        "zh-CN": "入库任务 {job_id}：状态 {status}，分块 {chunks_done}/{chunks_total}（用时 {elapsed} 秒）",
        "en": "Intake job {job_id}: status {status}, chunks {chunks_done}/{chunks_total} (after {elapsed} s)",
    },
    "intake_rows": {
        "zh-CN": "读取 {rows_read} 行：接受 {rows_accepted} 行，拒绝 {rows_rejected} 行。拒绝原因：",
        "en": "Rows read: {rows_read}, accepted {rows_accepted}, rejected {rows_rejected}. Rejected by reason:",
    },
    "intake_values": {
        "zh-CN": "无效的标识符值（同一行中的其他有效值照常入库）：",
        "en": "Invalid identifier values (the row's other valid values are still ingested):",
    },
    "intake_converted": {
        "zh-CN": "15 位旧身份证号转换为 18 位：{count} 个",
        "en": "Legacy 15-digit ID numbers converted to 18 digits: {count}",
    },
    "intake_index": {
        "zh-CN": "写入泄露索引的条目：{entries}。新的泄露记录（EXPOSURE#… 项）：{exposures}",
        "en": "Breach index entries written: {entries}. New exposures (EXPOSURE#… items): {exposures}",
    },
    "intake_matches_expected": {
        "zh-CN": "行数、各拒绝原因的行数和值的统计都与 expected.json 一致",
        "en": "The row counts, rejections by reason and value counts match expected.json",
    },
    "intake_rejected": {
        "zh-CN": "入库任务 {job_id}：状态 {status}，原因 {reason}（用时 {elapsed} 秒）",
        "en": "Intake job {job_id}: status {status}, reason {reason} (after {elapsed} s)",
    },
    "intake_fields": {"zh-CN": "出错的字段：{fields}", "en": "Fields in error: {fields}"},
    "intake_detail": {"zh-CN": "说明：{detail}", "en": "Detail: {detail}"},
    "files_deleted": {
        "zh-CN": "桶中 {prefix}/ 下剩余文件：{count} 个（任务完成后，入库流程删除原始文件）",
        "en": "Files left under {prefix}/ in the bucket: {count} (intake deletes the raw files when the job is done)",
    },
    "files_kept": {
        "zh-CN": "桶中 {prefix}/ 下剩余文件：{count} 个（被拒绝的上传留在桶中，直到存储桶的生命周期规则使其过期）",
        "en": "Files left under {prefix}/ in the bucket: {count} (a rejected upload stays until the bucket's lifecycle rule expires it)",
    },
    "exposures_header": {
        "zh-CN": "账户 {subscriber_id}（{name}）的泄露记录（EXPOSURE#… 项）共 {count} 条：",
        "en": "Exposures of account {subscriber_id} ({name}), {count} EXPOSURE#… item(s):",
    },
    "exposure_item": {
        "zh-CN": "· {breach}：found_by {found_by}，matched_kinds {kinds}，announced {announced}，Exposure.Detected 事件发送 {events} 次，发现于 {found_at}（北京时间）",
        "en": "· {breach}: found_by {found_by}, matched_kinds {kinds}, announced {announced}, Exposure.Detected sent {events} time(s), found {found_at} (Beijing time)",
    },
    "email_state": {
        "zh-CN": "邮箱 {email}：confirmed {confirmed}，hibp_status {status}，hibp_checked_at {checked_at}（北京时间）",
        "en": "E-mail {email}: confirmed {confirmed}, hibp_status {status}, hibp_checked_at {checked_at} (Beijing time)",
    },
    "hibp_account": {
        "zh-CN": "HIBP 模拟器控制接口：邮箱 {email} 出现在以下泄露中：",
        "en": "HIBP emulator control: the e-mail address {email} is now in these breaches:",
    },
    "hibp_breach": {
        "zh-CN": "· {name}（{title}）：IsVerified {verified}，IsSpamList {spam_list}",
        "en": "· {name} ({title}): IsVerified {verified}, IsSpamList {spam_list}",
    },
    "schedule_fired": {
        "zh-CN": "立即触发定时任务 {schedule}（平时每天北京时间 02:00 运行）",
        "en": "Firing the schedule {schedule} now (it runs daily at 02:00 Beijing time)",
    },
    "planner_result": {
        "zh-CN": "计划器同步了 HIBP 泄露目录，并排入 {jobs} 个检查任务（每位受监控的订阅者一个）。检查结果：",
        "en": "The planner synced the HIBP catalogue and queued {jobs} check job(s), one per monitored subscriber. Results:",
    },
    "check_result": {
        "zh-CN": "· {name}（{subscriber_id}）：{status}，HIBP {hibp}",
        "en": "· {name} ({subscriber_id}): {status}, HIBP {hibp}",
    },
    "hibp_requests": {
        "zh-CN": "HIBP 模拟器收到的请求：GET /api/v3/breaches {catalogue} 次，breachedaccount {lookups} 次（HTTP 状态 {statuses}）",
        "en": "Requests the HIBP emulator received: GET /api/v3/breaches {catalogue}, breachedaccount {lookups} (HTTP status {statuses})",
    },
    "new_exposures": {
        "zh-CN": "本次检查新发现的泄露记录：{count} 条",
        "en": "New exposures from this run: {count}",
    },
    "new_exposure": {
        "zh-CN": "· {name}：{breach}（found_by {found_by}）",
        "en": "· {name}: {breach} (found_by {found_by})",
    },
    "summary_created": {"zh-CN": "创建的注册申请：{count}", "en": "Signups created: {count}"},
    "summary_verified": {"zh-CN": "验证通过：{count}", "en": "Signups verified: {count}"},
    "summary_rejected": {
        "zh-CN": "被拒绝的请求：{count}（按原因，一个请求可能有多个原因）",
        "en": "Requests rejected: {count} (by reason; one request can have several)",
    },
    "summary_reason": {"zh-CN": "· {reason}：{count}", "en": "· {reason}: {count}"},
    "summary_sms": {
        "zh-CN": "Twilio 模拟器收到的短信：{count}",
        "en": "SMS received by the Twilio emulator: {count}",
    },
    "summary_emails": {
        "zh-CN": "SES 接受的邮件：{count}",
        "en": "E-mails accepted by SES: {count}",
    },
    "summary_paid": {
        "zh-CN": "通过 Checkout 付款：{count}",
        "en": "Checkouts paid: {count}",
    },
    "summary_active": {
        "zh-CN": "订阅生效（active）并开始监控的账户：{count}",
        "en": "Accounts active and monitored: {count}",
    },
    "summary_webhooks": {
        "zh-CN": "Stripe webhook 投递：{count} 次（{events} 个事件，重复投递 {duplicates} 次）",
        "en": "Stripe webhook deliveries: {count} ({events} events, {duplicates} duplicates)",
    },
    "summary_ledger": {
        "zh-CN": "账本记录：{count} 条",
        "en": "Ledger entries: {count}",
    },
    "summary_referrals": {
        "zh-CN": "已发放的邀请奖励：{count}",
        "en": "Referral credits granted: {count}",
    },
    "summary_intake": {
        "zh-CN": "泄露文件入库任务：完成 {done} 个，拒绝 {rejected} 个",
        "en": "Breach intake jobs: {done} done, {rejected} rejected",
    },
    "summary_exposures": {
        "zh-CN": "泄露记录：{count} 条（数据集入库发现 {dataset} 条，泄露索引 {index} 条，HIBP {hibp} 条），Exposure.Detected 事件 {events} 次",
        "en": "Exposures: {count} ({dataset} found by dataset intake, {index} by the breach index, {hibp} by HIBP), Exposure.Detected sent {events} time(s)",
    },
    "summary_hibp": {
        "zh-CN": "HIBP breachedaccount 查询：{count} 次",
        "en": "HIBP breachedaccount lookups: {count}",
    },
    "passed": {
        "zh-CN": "全部 {count} 个步骤都符合预期。",
        "en": "All {count} steps behaved as expected.",
    },
    "stopped": {"zh-CN": "本地服务已停止。", "en": "Local service stopped."},
    "failed": {
        "zh-CN": "✗ 步骤 {step_id} 失败：{detail}",
        "en": "✗ Step {step_id} failed: {detail}",
    },
    "interrupted": {
        "zh-CN": "已中断，本地服务已停止。",
        "en": "Interrupted. The local service is stopped.",
    },
    "service_failed": {
        "zh-CN": "✗ 本地服务出错：{error_type}：{error}",
        "en": "✗ The local service failed: {error_type}: {error}",
    },
    # Failure details: what the step expected and what it observed.
    "expected_status": {
        "zh-CN": "期望 HTTP {expected}，实际 HTTP {actual}（{code}）",
        "en": "expected HTTP {expected}, got HTTP {actual} ({code})",
    },
    "expected_error": {
        "zh-CN": "期望错误码 {expected}，实际 {actual}",
        "en": "expected error code {expected}, got {actual}",
    },
    "expected_fields": {
        "zh-CN": "期望字段错误 {expected}，实际 {actual}",
        "en": "expected field errors {expected}, got {actual}",
    },
    "expected_body": {
        "zh-CN": "期望响应中 {path} 为 {expected}，实际 {actual}",
        "en": "expected {path} = {expected} in the response, got {actual}",
    },
    "missing_retry_after": {
        "zh-CN": "期望 429 响应带正整数的 Retry-After 头，实际为 {actual}",
        "en": "expected a positive integer Retry-After header on the 429, got {actual}",
    },
    "expected_same_signup": {
        "zh-CN": "期望与 {step} 相同的 signup_id，实际是 {actual}",
        "en": "expected the signup_id of {step}, got {actual}",
    },
    "sms_timeout": {
        "zh-CN": "{seconds} 秒内没有收到发给 {mobile} 的短信（期望 {expected} 条，已有 {actual} 条）",
        "en": "no SMS to {mobile} within {seconds} s (expected {expected}, got {actual})",
    },
    "sms_not_delivered": {
        "zh-CN": "期望短信状态 delivered，实际 {status}（错误码 {error_code}）",
        "en": "expected SMS status delivered, got {status} (error code {error_code})",
    },
    "sms_count": {
        "zh-CN": "期望 Twilio 模拟器收到 {expected} 条短信，实际 {actual} 条",
        "en": "expected {expected} SMS at the Twilio emulator, got {actual}",
    },
    "no_code": {
        "zh-CN": "短信中没有 6 位验证码",
        "en": "the SMS contains no 6-digit code",
    },
    "no_sms_code": {
        "zh-CN": "{step} 还没有读到短信验证码，先加一个 receive_sms 步骤",
        "en": "no SMS code was read for {step}; add a receive_sms step before this one",
    },
    "email_timeout": {
        "zh-CN": "{seconds} 秒内没有收到发给 {email} 的邮件《{subject}》",
        "en": "no e-mail “{subject}” to {email} within {seconds} s",
    },
    "email_count": {
        "zh-CN": "期望 1 封发给 {email} 的邮件《{subject}》，实际 {actual} 封",
        "en": "expected 1 e-mail “{subject}” to {email}, got {actual}",
    },
    "no_link": {
        "zh-CN": "邮件中没有指向本地服务 {base_url} 的链接",
        "en": "the e-mail has no link to the local service at {base_url}",
    },
    "page_missing_text": {
        "zh-CN": "页面中没有“{text}”",
        "en": "the page does not contain “{text}”",
    },
    "expected_verification": {
        "zh-CN": "期望实名核验结果 {expected}，实际 {actual}",
        "en": "expected identity verification result {expected}, got {actual}",
    },
    "burst_order": {
        "zh-CN": "期望各请求依次返回 {expected}，实际为 {actual}",
        "en": "expected the requests to return {expected} in this order, got {actual}",
    },
    "not_verified": {
        "zh-CN": "{step} 没有得到 subscriber_id，无法检查账户",
        "en": "{step} has no subscriber_id, so there is no account to check",
    },
    "account_state": {
        "zh-CN": "期望身份证号状态 {expected}，实际 {actual}",
        "en": "expected ID number state {expected}, got {actual}",
    },
    "notice_count": {
        "zh-CN": "期望账户通知 {expected} 条，实际 {actual} 条",
        "en": "expected {expected} account notice(s), got {actual}",
    },
    "no_checkout_url": {
        "zh-CN": "{step} 的验证响应中没有 next_step.checkout_url",
        "en": "the verify response of {step} has no next_step.checkout_url",
    },
    "checkout_not_local": {
        "zh-CN": "支付链接 {url} 不在本地 Stripe shim {base_url} 上",
        "en": "the payment link {url} is not on the local Stripe shim at {base_url}",
    },
    "page_title_missing": {
        "zh-CN": "期望页面标题“{expected}”，实际“{actual}”",
        "en": "expected the page title “{expected}”, got “{actual}”",
    },
    "webhook_timeout": {
        "zh-CN": "Stripe shim 在 {seconds} 秒内没有发完 webhook：{error}",
        "en": "the Stripe shim did not finish sending webhooks within {seconds} s: {error}",
    },
    "expected_deliveries": {
        "zh-CN": "期望 {name} 为 {expected}，实际 {actual}",
        "en": "expected {name} = {expected}, got {actual}",
    },
    "event_not_delivered": {
        "zh-CN": "Stripe shim 没有投递 checkout.session.completed 事件 {event_id}",
        "en": "the Stripe shim did not deliver the checkout.session.completed event {event_id}",
    },
    "subscription_mismatch": {
        "zh-CN": "期望账户记录付款的订阅 {expected}，实际为 {actual}",
        "en": "expected the account to record the paid subscription {expected}, got {actual}",
    },
    "not_paid": {
        "zh-CN": "{step} 还没有付款，先加一个 pay_checkout 步骤",
        "en": "{step} has not paid; add a pay_checkout step before this one",
    },
    "profile_timeout": {
        "zh-CN": "{seconds} 秒内账户 {subscriber_id} 没有变为 status {expected_status}、monitored {expected_monitored}（实际 status {status}，monitored {monitored}）",
        "en": "account {subscriber_id} did not reach status {expected_status} with monitored {expected_monitored} within {seconds} s (status {status}, monitored {monitored})",
    },
    "markers_missing": {
        "zh-CN": "{seconds} 秒内这些 Stripe 事件没有 APPLIED 标记：{event_ids}",
        "en": "no APPLIED marker within {seconds} s for these Stripe events: {event_ids}",
    },
    "applied_count": {
        "zh-CN": "事件 {event_id} 被接受 {deliveries} 次，期望只处理 1 次，实际处理 {applications} 次",
        "en": "event {event_id} was accepted {deliveries} times: expected 1 application, got {applications}",
    },
    "jobs_pending": {
        "zh-CN": "{seconds} 秒后 Stripe 事件队列中仍有 {count} 个任务未完成（详见 .local/demo.log）",
        "en": "{count} Stripe event jobs were still unfinished after {seconds} s (see .local/demo.log)",
    },
    "summary_count": {
        "zh-CN": "期望 {name} 为 {expected}，实际 {actual}",
        "en": "expected {name} = {expected}, got {actual}",
    },
    "no_referral_code": {
        "zh-CN": "{step} 的验证响应中没有邀请码 referral_code",
        "en": "the verify response of {step} has no referral_code",
    },
    "stripe_error": {
        "zh-CN": "Stripe 请求失败：HTTP {status}，{code}：{message}",
        "en": "the Stripe request failed with HTTP {status}, {code}: {message}",
    },
    "expected_value": {
        "zh-CN": "期望 {path} 为 {expected}，实际 {actual}",
        "en": "expected {path} = {expected}, got {actual}",
    },
    "no_renewal": {
        "zh-CN": "{step} 还没有续订发票，先加一个 renew 步骤",
        "en": "{step} has no renewal invoice; add a renew step before this one",
    },
    "no_dispute": {
        "zh-CN": "{step} 还没有争议，先加一个 open_dispute 步骤",
        "en": "{step} has no dispute; add an open_dispute step before this one",
    },
    "charge_count": {
        "zh-CN": "期望客户 {customer_id} 恰好有 1 笔成功的付款，实际 {count} 笔",
        "en": "expected exactly 1 succeeded charge of customer {customer_id}, found {count}",
    },
    "sms_kind_count": {
        "zh-CN": "期望 1 条 {kind} 短信发给 {mobile}，实际 {actual} 条",
        "en": "expected 1 {kind} SMS to {mobile}, got {actual}",
    },
    "sms_has_link": {
        "zh-CN": "期望短信中没有链接，实际有 {link}",
        "en": "expected no link in the SMS, found {link}",
    },
    "no_billing_link": {
        "zh-CN": "邮件中没有指向本地服务 {base_url}/v1/billing/ 的链接",
        "en": "the e-mail has no link to {base_url}/v1/billing/ on the local service",
    },
    "redirect_not_portal": {
        "zh-CN": "期望 Location 指向本地 Stripe shim 的客户门户 {base_url}/portal/…，实际 {location}",
        "en": "expected a Location on the local Stripe shim's Customer Portal at {base_url}/portal/..., got {location}",
    },
    "dunning_timeout": {
        "zh-CN": "{seconds} 秒内发票 {invoice_id} 的催缴记录没有变为 resolved {expected}（实际 {actual}）",
        "en": "the dunning item of invoice {invoice_id} did not reach resolved {expected} within {seconds} s (got {actual})",
    },
    "ledger_mismatch": {
        "zh-CN": "期望账本为 {expected}，实际 {actual}",
        "en": "expected the ledger entries {expected}, got {actual}",
    },
    "referral_missing": {
        "zh-CN": "账户 {subscriber_id} 没有邀请记录 REFERRED_BY",
        "en": "account {subscriber_id} has no REFERRED_BY referral item",
    },
    "referral_timeout": {
        "zh-CN": "{seconds} 秒内邀请记录没有结算（状态仍为 {status}）",
        "en": "the referral was not settled within {seconds} s (status still {status})",
    },
    "balance_transaction_missing": {
        "zh-CN": "邀请奖励的余额交易 {transaction_id} 不在客户 {customer_id} 的余额交易中",
        "en": "the referral credit's balance transaction {transaction_id} is not among the balance transactions of customer {customer_id}",
    },
    "generator_failed": {
        "zh-CN": "泄露文件生成器以状态 {status} 退出：{error}",
        "en": "the breach file generator exited with status {status}: {error}",
    },
    "planted_count": {
        "zh-CN": "期望 expected.json 记录植入 {expected} 位，实际 {actual} 位",
        "en": "expected expected.json to count {expected} planted identities, got {actual}",
    },
    "intake_timeout": {
        "zh-CN": "{seconds} 秒内入库任务 {job_id} 没有结束（最后一次查询：HTTP {http_status}，状态 {status}，分块 {chunks_done}/{chunks_total}，详见 .local/demo.log）",
        "en": "intake job {job_id} did not end within {seconds} s (last read: HTTP {http_status}, status {status}, chunks {chunks_done}/{chunks_total}; see .local/demo.log)",
    },
    "intake_count_mismatch": {
        "zh-CN": "{name} 与 expected.json 不一致：期望 {expected}，实际 {actual}",
        "en": "{name} does not match expected.json: expected {expected}, got {actual}",
    },
    "exposure_set": {
        "zh-CN": "期望账户的泄露记录为 {expected}，实际 {actual}",
        "en": "expected the account's exposures to be {expected}, got {actual}",
    },
    "announcement_count": {
        "zh-CN": "期望 {breach} 的 Exposure.Detected 事件只发送 1 次，实际 {actual} 次",
        "en": "expected Exposure.Detected for {breach} to be sent once, got {actual}",
    },
    "hibp_control_failed": {
        "zh-CN": "HIBP 模拟器拒绝了这项设置：{error}",
        "en": "the HIBP emulator rejected the control: {error}",
    },
    "checks_timeout": {
        "zh-CN": "{seconds} 秒内检查任务没有全部完成（完成 {done}/{jobs} 个，队列中还有 {backlog} 个，详见 .local/demo.log）",
        "en": "the check jobs did not all finish within {seconds} s ({done} of {jobs} done, {backlog} still queued; see .local/demo.log)",
    },
    "unexpected_error": {
        "zh-CN": "意外错误 {error_type}：{error}（详见 {path}）",
        "en": "unexpected error {error_type}: {error} (see {path})",
    },
}


def text(key: str, lang: Lang, /, **params: object) -> str:
    """Return the demo's own text for `key` in `lang`, with parameters filled in."""
    return UI_TEXT[key][lang].format(**params)


class StoryError(ValueError):
    """The story file is malformed or a step refers to a step that did not run."""


class StepFailedError(Exception):
    """A step observed something other than what its `expect` states."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# ---------------------------------------------------------------------------- masking


def _mask_middle(value: str, keep_start: int, keep_end: int) -> str:
    if len(value) <= keep_start + keep_end:
        return "*" * len(value)
    return value[:keep_start] + "*" * (len(value) - keep_start - keep_end) + value[-keep_end:]


def mask_id_number(raw: str) -> str:
    """Return the masked form of an ID number, also for input that is not a valid one."""
    try:
        return identifiers.mask(IdentifierKind.ID_NUMBER, identifiers.canonical_id_number(raw))
    except identifiers.IdentifierError:
        return _mask_middle(raw.strip(), 4, 4)


def mask_mobile(raw: str) -> str:
    """Return the masked form of a mobile number, also for input that is not a valid one."""
    try:
        canonical = identifiers.canonical_mobile(
            raw, allowed_regions=phonenumbers.SUPPORTED_REGIONS
        )
    except identifiers.IdentifierError:
        return _mask_middle(re.sub(r"[^0-9+]", "", raw), 3, 4)
    return identifiers.mask(IdentifierKind.MOBILE, canonical)


def mask_email(raw: str) -> str:
    """Return the masked form of an e-mail address, also for input that is not a valid one."""
    try:
        return identifiers.mask(IdentifierKind.EMAIL, identifiers.canonical_email(raw))
    except identifiers.IdentifierError:
        local_part, at_sign, domain = raw.strip().rpartition("@")
        if not at_sign:
            return "***"
        return f"{local_part[:1]}***@{domain}"


def canonical_mobile(raw: str) -> str:
    """Return a mobile in E.164 form, the form the Twilio emulator records as `to`."""
    return identifiers.canonical_mobile(raw, allowed_regions=phonenumbers.SUPPORTED_REGIONS)


# ---------------------------------------------------------------------------- story file


@dataclass(frozen=True)
class Story:
    """A parsed story file: stack settings, signup defaults, scene titles and steps."""

    path: Path
    identities_path: Path
    parameters: dict[str, Any]
    trust_forwarded_for: bool
    signup_defaults: dict[str, Any]
    scenes: dict[str, dict[str, str]]
    steps: list[dict[str, Any]]


def _titles(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or any(
        not isinstance(value.get(lang), str) or not value[lang] for lang in LANGS
    ):
        raise StoryError(f"{where} must be an object with non-empty zh-CN and en strings")
    return {lang: value[lang] for lang in LANGS}


def load_story(path: Path) -> Story:
    """Read and check a story file; raise StoryError naming the first invalid entry."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoryError(f"{path} is not a readable JSON file ({type(exc).__name__})") from exc
    if not isinstance(payload, dict):
        raise StoryError(f"{path}: the top level must be a JSON object")
    if payload.get("format_version") != 1:
        raise StoryError(f"{path}: format_version must be 1")

    scenes_raw = payload.get("scenes")
    if not isinstance(scenes_raw, dict):
        raise StoryError(f"{path}: scenes must be an object of scene id to titles")
    scenes = {name: _titles(value, f"scene {name}") for name, value in scenes_raw.items()}

    steps = payload.get("steps")
    if not isinstance(steps, list) or not steps:
        raise StoryError(f"{path}: steps must be a non-empty list")
    seen: set[str] = set()
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            raise StoryError(f"{path}: step {index} must be an object")
        step_id = step.get("id")
        if not isinstance(step_id, str) or not step_id or step_id in seen:
            raise StoryError(f"{path}: step {index} needs a unique non-empty string id")
        seen.add(step_id)
        if not isinstance(step.get("stage"), str) or not step["stage"]:
            raise StoryError(f"step {step_id}: stage must be a non-empty string")
        if step.get("scene") not in scenes:
            raise StoryError(f"step {step_id}: scene must be one of {sorted(scenes)}")
        _titles(step.get("title"), f"step {step_id}: title")
        if step.get("action") not in ACTIONS:
            raise StoryError(f"step {step_id}: action must be one of {sorted(ACTIONS)}")

    parameters = payload.get("parameters", {})
    defaults = payload.get("defaults", {})
    if not isinstance(parameters, dict) or not isinstance(defaults, dict):
        raise StoryError(f"{path}: parameters and defaults must be objects")
    signup_defaults = defaults.get("signup", {})
    if not isinstance(signup_defaults, dict):
        raise StoryError(f"{path}: defaults.signup must be an object")

    identities = payload.get("identities")
    if not isinstance(identities, str):
        raise StoryError(f"{path}: identities must name the identities file next to the story")
    return Story(
        path=path,
        identities_path=path.parent / identities,
        parameters=parameters,
        trust_forwarded_for=payload.get("trust_forwarded_for") is True,
        signup_defaults=signup_defaults,
        scenes=scenes,
        steps=steps,
    )


# ---------------------------------------------------------------------------- observations


@dataclass
class ApiResponse:
    """One HTTP response of the local API, with the JSON body when there is one."""

    status: int
    headers: dict[str, str]
    text: str
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def error(self) -> dict[str, Any]:
        """The `error` object of an error response, or an empty dict."""
        error = self.body.get("error")
        return error if isinstance(error, dict) else {}

    @property
    def code(self) -> str:
        """The error code, or the `status` field of a success body."""
        return str(self.error.get("code") or self.body.get("status") or "")

    def fields(self) -> dict[str, str]:
        """Map each invalid field to its problem code."""
        return {entry["field"]: entry["code"] for entry in self.error.get("fields", [])}


@dataclass
class PaymentRecord:
    """The Stripe objects of a paid Checkout Session and of the billing steps that followed it.

    `deliveries` lists the webhook deliveries of every billing step of the signup, and the
    first `checked` of them were already checked by a `check_*` step.
    """

    customer_id: str
    subscription_id: str | None
    invoice_id: str | None
    deliveries: list[WebhookDelivery]
    checked: int = 0
    renewal_invoice_id: str | None = None
    dispute_id: str | None = None


@dataclass
class SignupRecord:
    """State of one accepted signup that later steps use: ids, canonical contacts and the code."""

    step_id: str
    body: dict[str, Any]
    source_ip: str | None
    idempotency_key: str | None
    signup_id: str
    mobile: str
    email: str
    locale: str
    sms_mark: int
    code: str | None = None
    subscriber_id: str | None = None
    checkout_url: str | None = None
    payment: PaymentRecord | None = None


@dataclass
class EmailRecord:
    """A received e-mail as its reader sees it."""

    subject: str
    text: str


@dataclass
class Tally:
    """Counts for the summary."""

    signup_ids: set[str] = field(default_factory=set)
    verified: int = 0
    paid: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def record_rejection(self, response: ApiResponse) -> None:
        """Count one rejected request under each reason it gives."""
        self.rejected += 1
        codes = list(response.fields().values()) or [response.code or f"http.{response.status}"]
        self.reasons.update(codes)


class EventApplications(logging.Handler):
    """Log handler that counts how often the billing consumer applied each Stripe event."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self._counts_lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == EVENT_PROCESSED_MESSAGE:
            with self._counts_lock:
                self._counts[str(getattr(record, "event_id", ""))] += 1

    def count(self, event_id: str) -> int:
        """Return how often `event_id` was applied (or ignored as an unhandled type) so far."""
        with self._counts_lock:
            return self._counts[event_id]


class ServiceLogRecords(logging.Handler):
    """Log handler that keeps chosen fields of the service's records with chosen messages.

    `fields` maps each message to the names of the `extra` fields to keep. The service logs
    ids there, never personal data.
    """

    def __init__(self, fields: dict[str, tuple[str, ...]]) -> None:
        super().__init__(logging.INFO)
        self._fields = fields
        self._records_lock = threading.Lock()
        self._records: dict[str, list[dict[str, str]]] = {message: [] for message in fields}

    def emit(self, record: logging.LogRecord) -> None:
        names = self._fields.get(str(record.msg))
        if names is None:
            return
        values = {name: str(getattr(record, name, "")) for name in names}
        with self._records_lock:
            self._records[str(record.msg)].append(values)

    def records(self, message: str, after: int = 0) -> list[dict[str, str]]:
        """Return the kept records of `message`, oldest first, from position `after` on."""
        with self._records_lock:
            return list(self._records[message][after:])

    def count(self, message: str) -> int:
        """Return how many records of `message` were kept so far."""
        with self._records_lock:
            return len(self._records[message])


@dataclass
class BreachFileRecord:
    """A breach file that a `generate_breach` step wrote, with its manifest and expected counts."""

    data_path: Path
    manifest: dict[str, Any]
    expected: dict[str, Any]


class _HtmlText(html.parser.HTMLParser):
    """Parser that extracts the visible text of an HTML page or e-mail, keeping paragraphs."""

    _HIDDEN = frozenset({"head", "title", "style", "script"})
    _BLOCKS = frozenset({"p", "h1", "h2", "h3", "div", "li"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self._hidden_depth = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth += 1
            self._in_title = tag == "title"
        elif tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth = max(self._hidden_depth - 1, 0)
            self._in_title = False
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._hidden_depth:
            self.parts.append(data)


def html_to_text(document: str) -> str:
    """Return the text a reader sees in an HTML document."""
    parser = _HtmlText()
    parser.feed(document)
    parser.close()
    return re.sub(r"\n{3,}", "\n\n", "".join(parser.parts)).strip()


def html_title(document: str) -> str:
    """Return the `<title>` of an HTML document, or an empty string."""
    parser = _HtmlText()
    parser.feed(document)
    parser.close()
    return "".join(parser.title_parts).strip()


def duplicate_deliveries(deliveries: list[WebhookDelivery]) -> int:
    """Count the successful deliveries of an event after its first successful one.

    A retry after a failed attempt is not a duplicate, because the endpoint never accepted the
    failed attempt.
    """
    accepted = Counter(
        delivery.event_id
        for delivery in deliveries
        if delivery.status is not None and 200 <= delivery.status < 300
    )
    return sum(count - 1 for count in accepted.values())


def header_value(response: ApiResponse, name: str) -> str:
    """Return a header of a response, whatever its case, or an empty string."""
    for header, value in response.headers.items():
        if header.lower() == name.lower():
            return value
    return ""


def retry_after(response: ApiResponse) -> str:
    """Return the Retry-After header of a response, or an empty string."""
    return header_value(response, "retry-after")


def template_pattern(template: str) -> re.Pattern[str]:
    """Return a pattern that finds a text rendered from `template`, whatever its variables."""
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name is not None:
            parts.append(".+?")
    return re.compile("".join(parts))


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _subset_mismatch(expected: Any, actual: Any, path: str) -> tuple[str, Any, Any] | None:
    """Return the first (path, expected, actual) where `actual` does not contain `expected`."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return path, expected, actual
        for name, value in expected.items():
            mismatch = _subset_mismatch(value, actual.get(name), f"{path}.{name}")
            if mismatch:
                return mismatch
        return None
    return None if expected == actual else (path, expected, actual)


# ---------------------------------------------------------------------------- the run


class Demo:
    """Story player: runs each step on a LocalService and prints each response, SMS and e-mail.

    With `replay`, the local service delivers every webhook, bus event and queue message twice
    and shuffled, and the steps skip their expected delivery counts (DELIVERY_COUNTS).
    """

    def __init__(
        self, story: Story, lang: Lang, out: TextIO, *, replay: Replay | None = None
    ) -> None:
        self.story = story
        self.lang = lang
        self.out = out
        self.replay = replay
        self.tally = Tally()
        self._service: LocalService | None = None
        # Accepted signups, received e-mails and the referral codes that verify steps returned,
        # by the id of the step that produced them.
        self.signups: dict[str, SignupRecord] = {}
        self.emails: dict[str, EmailRecord] = {}
        self.referral_codes: dict[str, str] = {}
        self._stripe: stripe.StripeClient | None = None
        self._http = requests.Session()
        # Proxy settings from the environment must never route a request off 127.0.0.1.
        self._http.trust_env = False
        self.applications = EventApplications()
        self.service_logs = ServiceLogRecords(
            {
                EXPOSURE_MESSAGE: ("subscriber_id", "breach_name", "found_by"),
                CHECK_MESSAGE: ("job_id", "status", "hibp"),
                PAGE_MESSAGE: ("run", "jobs", "more"),
                HIBP_MESSAGE: ("job_id", "outcome"),
                NOTIFICATION_MESSAGE: ("job_id", "outcome"),
            }
        )
        # Generated breach files and the results of intake jobs, by the id of their step.
        # The files live in a temporary directory that run() removes.
        self.breach_files: dict[str, BreachFileRecord] = {}
        self.intake_jobs: dict[str, dict[str, Any]] = {}
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self.alert_emails: dict[str, AlertEmail] = {}
        # Access tokens of signed-in subscribers, by their signup step; never printed.
        self.account_tokens: dict[str, str] = {}

    # Output.

    def say(self, key: str, /, indent: int = 0, **params: object) -> None:
        """Print one line of the demo's own text."""
        self.write(text(key, self.lang, **params), indent)

    def write(self, line: str, indent: int = 0) -> None:
        """Print `line` (possibly several lines) indented by `indent` levels."""
        prefix = "  " * indent
        for part in line.split("\n"):
            self.out.write(f"{prefix}{part}".rstrip() + "\n")
        self.out.flush()

    def fail(self, key: str, /, **params: object) -> StepFailedError:
        """Return the failure of the current step, described in the demo's language."""
        return StepFailedError(text(key, self.lang, **params))

    # Components of the running service.

    @property
    def service(self) -> LocalService:
        """The running local service."""
        if self._service is None:
            raise RuntimeError("the local service is not started")
        return self._service

    @property
    def twilio(self) -> TwilioEmulator:
        """The running Twilio emulator."""
        if self.service.twilio is None:
            raise RuntimeError("the Twilio emulator is not started")
        return self.service.twilio

    @property
    def realname(self) -> RealNameEmulator:
        """The running real-name verification emulator."""
        if self.service.realname is None:
            raise RuntimeError("the real-name verification emulator is not started")
        return self.service.realname

    @property
    def hibp(self) -> HibpEmulator:
        """The running HIBP emulator."""
        if self.service.hibp is None:
            raise RuntimeError("the HIBP emulator is not started")
        return self.service.hibp

    @property
    def workdir(self) -> Path:
        """A temporary directory for generated breach files, removed when the run ends."""
        if self._workdir is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="idsentry-demo-")
        return Path(self._workdir.name)

    @property
    def stripe_shim(self) -> StripeShim:
        """The running Stripe shim in front of localstripe."""
        if self.service.stripe_shim is None:
            raise RuntimeError("the Stripe shim is not started")
        return self.service.stripe_shim

    # Run.

    def run(self, inspect: Callable[[Demo], None] | None = None) -> int:
        """Start the local service, play every step and stop it. Returns the exit status.

        `inspect` is called after the last step, while the service still runs, when every step
        behaved as expected.
        """
        self.say("banner")
        self.say("starting")
        watched = [
            (logging.getLogger(BILLING_LOGGER), self.applications),
            (logging.getLogger(EXPOSURES_LOGGER), self.service_logs),
            (logging.getLogger(CHECK_LOGGER), self.service_logs),
            (logging.getLogger(PLANNER_LOGGER), self.service_logs),
        ]
        previous_levels = [logger.level for logger, _ in watched]
        for logger, handler in watched:
            logger.setLevel(logging.INFO)
            logger.addHandler(handler)
        try:
            with LocalService(
                port=0,
                identities_path=self.story.identities_path,
                parameters=self.story.parameters,
                trust_forwarded_for=self.story.trust_forwarded_for,
                replay=self.replay,
            ) as service:
                self._service = service
                self._print_setup()
                status = self._play()
                if status == EXIT_OK and inspect is not None:
                    inspect(self)
                self._service = None
        finally:
            for (logger, handler), level in zip(watched, previous_levels, strict=True):
                logger.removeHandler(handler)
                logger.setLevel(level)
            if self._workdir is not None:
                self._workdir.cleanup()
                self._workdir = None
        self.say("stopped")
        return status

    def _print_setup(self) -> None:
        self.say("started", base_url=self.service.base_url)
        defaults = load_template(DEFAULT_TEMPLATE).get("Parameters", {})
        for name, value in self.story.parameters.items():
            default = defaults.get(name, {}).get("Default", "-")
            self.say("parameter", name=name, value=value, default=default)
        if self.story.trust_forwarded_for:
            self.say("forwarded")
        self.say("zones_chosen", day=daytime_zone(), night=night_zone())
        self.say("logs", path=LOG_FILE.relative_to(REPOSITORY_ROOT))
        self.say("masked")

    def _play(self) -> int:
        scene = None
        for step in self.story.steps:
            if step["scene"] != scene:
                scene = step["scene"]
                self.write("")
                self.write(f"== {self.story.scenes[scene][self.lang]} ==")
            self.say(
                "step", stage=step["stage"], step_id=step["id"], title=step["title"][self.lang]
            )

            try:
                ACTIONS[step["action"]](self, step)
            except StepFailedError as exc:
                self.say("failed", indent=1, step_id=step["id"], detail=exc.detail)
                return EXIT_STEP_FAILED
            except StoryError as exc:
                self.say("failed", indent=1, step_id=step["id"], detail=str(exc))
                return EXIT_STEP_FAILED
            except Exception as exc:
                LOG.exception("demo step raised", extra={"step_id": step["id"]})
                detail = text(
                    "unexpected_error",
                    self.lang,
                    error_type=type(exc).__name__,
                    error=exc,
                    path=LOG_FILE.relative_to(REPOSITORY_ROOT),
                )
                self.say("failed", indent=1, step_id=step["id"], detail=detail)
                return EXIT_STEP_FAILED

        self.write("")
        self.say("passed", count=len(self.story.steps))
        return EXIT_OK

    # HTTP.

    def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        source_ip: str | None = None,
        idempotency_key: str | None = None,
        locale: str | None = None,
        accept: str | None = None,
        base_url: str | None = None,
        admin: bool = False,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        """Send one request to the local API, or to the local server at `base_url`.

        `admin` sends this run's admin token, which the local HTTP API accepts in place of the
        IAM signature that the admin routes need. `form` sends a URL-encoded form body instead
        of JSON. Returns the response's status, headers and
        JSON body.
        """
        headers = dict(headers or {})
        if admin:
            headers[ADMIN_TOKEN_HEADER] = self.service.admin_token
        if source_ip:
            headers["X-Forwarded-For"] = source_ip
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if locale:
            headers["Accept-Language"] = locale
        if accept:
            headers["Accept"] = accept

        response = self._http.request(
            method,
            (base_url or self.service.base_url) + path,
            json=body,
            data=form,
            headers=headers,
            timeout=HTTP_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
        parsed = ApiResponse(response.status_code, dict(response.headers), response.text)
        if response.headers.get("content-type", "").startswith("application/json"):
            payload = response.json()
            if isinstance(payload, dict):
                parsed.body = payload
        return parsed

    def request_url(self, url: str) -> str:
        """GET a loopback URL that the service handed out (a presigned link) and return its text."""
        if urlsplit(url).hostname != "127.0.0.1":
            raise self.fail("no_link", base_url=url)
        response = self._http.get(url, timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False)
        response.raise_for_status()
        return str(response.text)

    def print_response(self, response: ApiResponse, indent: int = 1) -> None:
        """Print the status, the localized message and every field problem of a response."""
        self.say("response", indent=indent, status=response.status, code=response.code)
        message = response.error.get("message") or response.body.get("message")
        if message:
            self.write(str(message), indent + 1)
        for entry in response.error.get("fields", []):
            self.say(
                "field_problem", indent=indent + 1, field=entry["field"], message=entry["message"]
            )
        if retry_after(response):
            self.say("retry_after", indent=indent + 1, seconds=retry_after(response))

    def check_response(self, expect: dict[str, Any], response: ApiResponse) -> None:
        """Raise StepFailedError unless the response matches `expect`."""
        if "status" in expect and response.status != expect["status"]:
            raise self.fail(
                "expected_status",
                expected=expect["status"],
                actual=response.status,
                code=response.code or "-",
            )
        if "error" in expect and response.error.get("code") != expect["error"]:
            raise self.fail(
                "expected_error", expected=expect["error"], actual=response.error.get("code")
            )
        if "fields" in expect and response.fields() != expect["fields"]:
            raise self.fail(
                "expected_fields",
                expected=_compact(expect["fields"]),
                actual=_compact(response.fields()),
            )
        if "body" in expect:
            mismatch = _subset_mismatch(expect["body"], response.body, "body")
            if mismatch:
                path, expected_value, actual_value = mismatch
                raise self.fail(
                    "expected_body",
                    path=path,
                    expected=_compact(expected_value),
                    actual=_compact(actual_value),
                )
        if response.status == 429:
            seconds = retry_after(response)
            if not seconds.isdigit() or int(seconds) < 1:
                raise self.fail("missing_retry_after", actual=seconds or "-")

    def record_outcome(self, response: ApiResponse) -> None:
        """Count a response for the summary."""
        if response.status >= 400:
            self.tally.record_rejection(response)

    # Waiting for what the notifier sends.

    def wait_for_sms(self, mobiles: set[str], after: int, count: int) -> list[dict[str, Any]]:
        """Wait until `count` SMS to `mobiles`, created after message `after`, are final."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            messages = [m for m in self.twilio.messages()[after:] if m["to"] in mobiles]
            settled = [m for m in messages if m["status"] in FINAL_SMS_STATUSES]
            if len(settled) >= count:
                return messages
            if time.monotonic() >= deadline:
                raise self.fail(
                    "sms_timeout",
                    seconds=int(WAIT_SECONDS),
                    mobile=", ".join(sorted(mask_mobile(mobile) for mobile in mobiles)),
                    expected=count,
                    actual=len(settled),
                )
            time.sleep(POLL_SECONDS)

    def wait_for_template_sms(self, record: SignupRecord, kind: str) -> dict[str, Any]:
        """Wait until an SMS of template `kind` to a signup's mobile is final and return it.

        Raises StepFailedError when there is more than one, because each notice is sent once.
        """
        locale: Lang = "en" if record.locale == "en" else "zh-CN"
        pattern = template_pattern(SMS_TEMPLATES[kind][locale])
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            matching = [
                message
                for message in self.twilio.messages()[record.sms_mark :]
                if message["to"] == record.mobile and pattern.search(str(message["body"]))
            ]
            settled = [m for m in matching if m["status"] in FINAL_SMS_STATUSES]
            if settled:
                break
            if time.monotonic() >= deadline:
                raise self.fail(
                    "sms_timeout",
                    seconds=int(WAIT_SECONDS),
                    mobile=mask_mobile(record.mobile),
                    expected=1,
                    actual=0,
                )
            time.sleep(POLL_SECONDS)
        if len(matching) != 1:
            raise self.fail(
                "sms_kind_count", kind=kind, mobile=mask_mobile(record.mobile), actual=len(matching)
            )
        return settled[0]

    def wait_for_email(self, address: str, subject: str) -> list[dict[str, Any]]:
        """Wait until at least one e-mail with `subject` to `address` was accepted by SES."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            matching = [
                email
                for email in self.service.sent_emails()
                if email["to"] == [address] and email["subject"] == subject
            ]
            if matching:
                return matching
            if time.monotonic() >= deadline:
                raise self.fail(
                    "email_timeout",
                    seconds=int(WAIT_SECONDS),
                    email=mask_email(address),
                    subject=subject,
                )
            time.sleep(POLL_SECONDS)

    def wait_for_count(self, read: Callable[[], int], expected: int | None) -> int:
        """Return read() once it reaches `expected`, or its value when the wait runs out."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            value = read()
            if expected is None or value >= expected or time.monotonic() >= deadline:
                return value
            time.sleep(POLL_SECONDS)

    # Shared lookups.

    @property
    def runtime(self) -> LocalRuntime:
        """The running local Lambda runtime, which also creates boto3 clients for moto."""
        stack = self.service.stack
        if stack is None:
            raise RuntimeError("the local stack is not started")
        return stack.runtime

    def signup_record(self, step: dict[str, Any], name: str = "signup") -> SignupRecord:
        """Return the accepted signup that `step[name]` refers to."""
        reference = step.get(name)
        record = self.signups.get(str(reference))
        if record is None:
            raise StoryError(
                f"step {step['id']}: {name} must name an earlier signup step that returned 202, "
                f"got {reference!r}"
            )
        return record

    def stripe_events_backlog(self) -> int:
        """Return the number of Stripe event jobs that are queued, in flight or delayed."""
        return self.queue_backlog(STRIPE_EVENTS_FUNCTION)

    def queue_backlog(self, function_logical_id: str) -> int:
        """Return the number of jobs of a function's queue that are queued, in flight or delayed."""
        runtime = self.runtime
        queue_url = next(
            mapping.queue_url
            for mapping in runtime.mappings
            if mapping.function_logical_id == function_logical_id
        )
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        attributes = runtime.client("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=names
        )["Attributes"]
        return sum(int(attributes.get(name, 0)) for name in names)

    def checkout_path(self, record: SignupRecord) -> str:
        """Return the path of a signup's Checkout URL after checking that the Stripe shim serves it."""
        url = record.checkout_url
        if url is None:
            raise self.fail("no_checkout_url", step=record.step_id)
        base = self.stripe_shim.base_url
        if not url.startswith(base + "/checkout/") or urlsplit(url).hostname != "127.0.0.1":
            raise self.fail("checkout_not_local", url=url, base_url=base)
        return urlsplit(url).path

    def signup_body(self, step: dict[str, Any]) -> dict[str, Any]:
        """Return the step's signup body laid over the story's signup defaults.

        A `referral_code` of the form {"from_step": "<verify step>"} becomes the referral code
        that the verify step returned.
        """
        body = step.get("body")
        if not isinstance(body, dict):
            raise StoryError(f"step {step['id']}: body must be an object")
        body = {**self.story.signup_defaults, **body}
        if "timezone" in body:
            body["timezone"] = resolve_timezone_token(body["timezone"])

        code = body.get("referral_code")
        if isinstance(code, dict):
            source = code.get("from_step")
            if source not in self.referral_codes:
                raise StoryError(
                    f"step {step['id']}: referral_code.from_step must name an earlier verify "
                    f"step that returned 200, got {source!r}"
                )
            if not self.referral_codes[source]:
                raise self.fail("no_referral_code", step=source)
            body["referral_code"] = self.referral_codes[source]
        return body

    def print_signup_request(self, body: dict[str, Any], source_ip: str | None) -> None:
        """Print a signup request with its identifiers masked."""
        self.say(
            "signup_request",
            indent=1,
            name=body.get("name", "-"),
            id_number=mask_id_number(str(body.get("id_number", ""))),
            mobile=mask_mobile(str(body.get("mobile", ""))),
            email=mask_email(str(body.get("email", ""))),
            locale=body.get("locale", "-"),
            source_ip=source_ip or "127.0.0.1",
        )
        consents = body.get("consents") or {}
        accepted = [kind for kind, given in consents.items() if given.get("accepted")]
        self.say(
            "consents_sent",
            indent=2,
            consents=", ".join(accepted) or text("no_consents", self.lang),
        )
        if body.get("referral_code"):
            self.say("referral_code_sent", indent=2, code=body["referral_code"])

    # Billing.

    def stripe_client(self) -> stripe.StripeClient:
        """Return a Stripe SDK client of the running Stripe shim, as support staff would use it.

        It sends its requests through the demo's HTTP session, which ignores proxy settings.
        """
        if self._stripe is None:
            self._stripe = stripe.StripeClient(
                TEST_API_KEY,
                base_addresses={"api": self.stripe_shim.base_url},
                stripe_version=API_VERSION,
                max_network_retries=0,
                http_client=stripe.RequestsClient(session=self._http),
            )
        return self._stripe

    def stripe_call(self, call: Callable[[], Result]) -> Result:
        """Run one Stripe API request or Stripe shim control. A Stripe error fails the step."""
        try:
            return call()
        except stripe.StripeError as exc:
            raise self.fail(
                "stripe_error",
                status=exc.http_status or "-",
                code=exc.code or "-",
                message=exc.user_message or str(exc),
            ) from exc
        except StripeApiError as exc:
            raise self.fail(
                "stripe_error", status=exc.status, code=exc.code or "-", message=exc.message
            ) from exc

    def with_webhooks(
        self, step: dict[str, Any], call: Callable[[], Result]
    ) -> tuple[Result, list[WebhookDelivery]]:
        """Run `call` with the step's `webhooks` options and wait until its webhooks are sent.

        Returns what `call` returned and the webhook deliveries made since it started.
        """
        options = _delivery_options(step)
        shim = self.stripe_shim
        mark = len(shim.deliveries())
        if any(options.values()):
            self.say("webhooks_duplicated", indent=1)

        shim.set_delivery(**options)
        try:
            result = call()
            # flush() also waits for the events that localstripe created for this step, and it
            # releases the deliveries held for shuffling.
            shim.flush(timeout=BILLING_WAIT_SECONDS)
        except TimeoutError as exc:
            raise self.fail(
                "webhook_timeout", seconds=int(BILLING_WAIT_SECONDS), error=exc
            ) from exc
        finally:
            shim.set_delivery()
        return result, shim.deliveries()[mark:]

    def print_deliveries(self, deliveries: list[WebhookDelivery]) -> None:
        """Print the webhook deliveries of a step in the order sent."""
        self.say(
            "webhook_deliveries",
            indent=1,
            count=len(deliveries),
            events=len({delivery.event_id for delivery in deliveries}),
            duplicates=duplicate_deliveries(deliveries),
        )
        for index, delivery in enumerate(deliveries, start=1):
            self.say(
                "webhook_delivery",
                indent=2,
                index=index,
                event_type=delivery.event_type,
                event_id=delivery.event_id,
                attempt=delivery.attempt,
                status=delivery.status or "-",
            )

    def check_deliveries(self, expect: dict[str, Any], deliveries: list[WebhookDelivery]) -> None:
        """Raise StepFailedError unless the delivery counts match `expect`."""
        observed = {
            "webhook_deliveries": len(deliveries),
            "duplicate_deliveries": duplicate_deliveries(deliveries),
        }
        for name, actual in observed.items():
            if self.replay is not None and name in DELIVERY_COUNTS:
                continue
            if name in expect and actual != expect[name]:
                raise self.fail(
                    "expected_deliveries", name=name, expected=expect[name], actual=actual
                )

    def check_fields(self, expect: dict[str, Any], found: dict[str, Any], name: str) -> None:
        """Raise StepFailedError unless `found` contains every field of `expect`."""
        mismatch = _subset_mismatch(expect, found, name)
        if mismatch:
            path, expected_value, actual_value = mismatch
            raise self.fail(
                "expected_value",
                path=path,
                expected=_compact(expected_value),
                actual=_compact(actual_value),
            )

    def paid_signup(self, step: dict[str, Any]) -> tuple[SignupRecord, str, PaymentRecord]:
        """Return the step's verified and paid signup, its subscriber id and its payment."""
        record = self.signup_record(step)
        if record.subscriber_id is None:
            raise self.fail("not_verified", step=record.step_id)
        if record.payment is None:
            raise self.fail("not_paid", step=record.step_id)
        return record, record.subscriber_id, record.payment

    def money(self, amount: Any, currency: Any) -> str:
        """Format an amount in minor units for the demo's language, such as "¥18.00", or "-"."""
        if isinstance(amount, bool) or not isinstance(amount, int) or not isinstance(currency, str):
            return "-"
        return format_money(parse_stripe_amount(amount, currency), self.lang)

    def wait_until_applied(self, payment: PaymentRecord, deadline: float) -> None:
        """Check that the billing consumer applied each event of the unchecked deliveries once.

        Waits until every such event has its APPLIED marker and the billing consumer's queue is
        empty, so that every job of those deliveries finished.
        """
        deliveries = payment.deliveries[payment.checked :]
        table = main_table()

        # Each accepted delivery enqueued one job, and the profile can change before the last
        # job ran. An empty queue means that every job finished, because a failed job returns
        # to it.
        accepted = Counter(
            delivery.event_id
            for delivery in deliveries
            if delivery.status is not None and 200 <= delivery.status < 300
        )
        event_ids = list(dict.fromkeys(delivery.event_id for delivery in deliveries))
        keys = [(f"STRIPE_EVENT#{event_id}", "APPLIED") for event_id in event_ids]
        while True:
            markers = table.get_many(keys) if keys else {}
            backlog = self.stripe_events_backlog()
            if (len(markers) == len(keys) and backlog == 0) or time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
        missing = [pk.removeprefix("STRIPE_EVENT#") for pk, sk in keys if (pk, sk) not in markers]
        if missing:
            raise self.fail(
                "markers_missing", seconds=int(BILLING_WAIT_SECONDS), event_ids=", ".join(missing)
            )
        if backlog:
            raise self.fail("jobs_pending", seconds=int(BILLING_WAIT_SECONDS), count=backlog)

        # apply_event() logs each application and returns early, without a log line, for a
        # duplicate. So the jobs of an event that were not logged recognised it as a duplicate.
        for event_id, count in accepted.items():
            applications = self.applications.count(event_id)
            if applications != 1:
                raise self.fail(
                    "applied_count", event_id=event_id, deliveries=count, applications=applications
                )
        payment.checked = len(payment.deliveries)
        if not deliveries:
            return
        jobs = sum(accepted.values())
        self.say("events_applied", indent=1, events=len(keys), jobs=jobs)
        duplicates = jobs - len(accepted)
        if duplicates:
            self.say("duplicates_recognised", indent=1, duplicates=duplicates)
        else:
            self.say("no_duplicates", indent=1)


# ---------------------------------------------------------------------------- actions


def act_signup(demo: Demo, step: dict[str, Any]) -> None:
    """POST /v1/signups with the step's body, or resend an earlier signup step's request."""
    replay_of = step.get("replay_of")
    if replay_of is not None:
        original = demo.signup_record(step, "replay_of")
        body, source_ip, key = original.body, original.source_ip, original.idempotency_key
    else:
        body = demo.signup_body(step)
        source_ip, key = step.get("source_ip"), step.get("idempotency_key")

    demo.print_signup_request(body, source_ip)
    if key:
        demo.say("idempotency_key", indent=2, key=key)
    sms_mark = len(demo.twilio.messages())
    response = demo.request(
        "POST",
        "/v1/signups",
        body=body,
        source_ip=source_ip,
        idempotency_key=key,
        locale=body.get("locale"),
    )
    demo.print_response(response)
    if response.status == 202:
        demo.say("signup_id", indent=2, signup_id=response.body.get("signup_id"))

    expect = step.get("expect", {})
    demo.check_response(expect, response)
    if "same_signup_as" in expect:
        same = demo.signups.get(expect["same_signup_as"])
        if same is None or response.body.get("signup_id") != same.signup_id:
            raise demo.fail(
                "expected_same_signup",
                step=expect["same_signup_as"],
                actual=response.body.get("signup_id"),
            )
        demo.say("same_signup", indent=2, step=expect["same_signup_as"])

    demo.record_outcome(response)
    signup_id = response.body.get("signup_id")
    if response.status != 202 or not isinstance(signup_id, str):
        return
    if signup_id in demo.tally.signup_ids:
        return
    demo.tally.signup_ids.add(signup_id)
    demo.signups[step["id"]] = SignupRecord(
        step_id=step["id"],
        body=body,
        source_ip=source_ip,
        idempotency_key=key,
        signup_id=signup_id,
        mobile=canonical_mobile(body["mobile"]),
        email=identifiers.canonical_email(body["email"]),
        locale=str(body.get("locale") or "zh-CN"),
        sms_mark=sms_mark,
    )


def act_signup_burst(demo: Demo, step: dict[str, Any]) -> None:
    """Send one signup body repeatedly, or once per mobile, and check which were rate-limited."""
    body = demo.signup_body(step)
    mobiles = step.get("mobiles")
    if mobiles is None:
        count = step.get("count")
        if not isinstance(count, int) or count < 1:
            raise StoryError(f"step {step['id']}: needs count (a positive integer) or mobiles")
        bodies = [body] * count
    elif isinstance(mobiles, list) and mobiles:
        bodies = [{**body, "mobile": mobile} for mobile in mobiles]
    else:
        raise StoryError(f"step {step['id']}: mobiles must be a non-empty list")
    source_ip = step.get("source_ip")

    demo.print_signup_request(bodies[0], source_ip)
    sms_mark = len(demo.twilio.messages())
    responses = []
    for index, request_body in enumerate(bodies, start=1):
        response = demo.request(
            "POST",
            "/v1/signups",
            body=request_body,
            source_ip=source_ip,
            locale=request_body.get("locale"),
        )
        responses.append(response)
        detail = response.code
        if response.status == 429:
            detail += " · " + text("retry_after", demo.lang, seconds=retry_after(response))
        demo.say(
            "burst_request",
            indent=2,
            index=index,
            mobile=mask_mobile(request_body["mobile"]),
            status=response.status,
            detail=detail,
        )
        demo.record_outcome(response)
        signup_id = response.body.get("signup_id")
        if response.status == 202 and isinstance(signup_id, str):
            demo.tally.signup_ids.add(signup_id)
    first_rejection = next((r for r in responses if r.status >= 400), None)
    if first_rejection is not None and first_rejection.error.get("message"):
        demo.write(str(first_rejection.error["message"]), 3)

    expect = step.get("expect", {})
    rejected = expect.get("rejected", {})
    rejection = f"{rejected.get('status')} {rejected.get('error')}"
    expected_order = ["202"] * int(expect.get("accepted", 0))
    expected_order += [rejection] * int(rejected.get("count", 0))
    actual_order = [
        "202" if r.status == 202 else f"{r.status} {r.error.get('code')}" for r in responses
    ]
    # NOTE: the per-IP counter counts per clock hour, so a burst that straddles the hour
    # boundary gets more 202 responses than the limit and fails here. Run the demo again.
    if actual_order != expected_order:
        raise demo.fail(
            "burst_order", expected=", ".join(expected_order), actual=", ".join(actual_order)
        )
    for response in responses:
        demo.check_response({}, response)

    if "sms" in expect:
        numbers = {canonical_mobile(b["mobile"]) for b in bodies}
        expected_sms = int(expect["sms"])
        if expected_sms:
            demo.wait_for_sms(numbers, sms_mark, expected_sms)
        messages = [m for m in demo.twilio.messages()[sms_mark:] if m["to"] in numbers]
        demo.say("burst_sms", indent=2, count=len(messages))
        if len(messages) != expected_sms:
            raise demo.fail("sms_count", expected=expected_sms, actual=len(messages))


def act_receive_sms(demo: Demo, step: dict[str, Any]) -> None:
    """Wait for the code SMS of a signup, print it as the phone shows it and keep the code.

    With `kind`, wait for the one SMS of that template instead and check that it has no link.
    """
    record = demo.signup_record(step)
    kind = step.get("kind", "otp")
    if kind not in SMS_TEMPLATES:
        raise StoryError(
            f"step {step['id']}: kind must be one of {sorted(SMS_TEMPLATES)}, got {kind!r}"
        )
    if kind == "otp":
        message = demo.wait_for_sms({record.mobile}, record.sms_mark, 1)[0]
    else:
        message = demo.wait_for_template_sms(record, str(kind))
    demo.say(
        "sms_header",
        indent=1,
        mobile=mask_mobile(record.mobile),
        status=message["status"],
        segments=message["num_segments"],
    )
    for line in str(message["body"]).split("\n"):
        demo.write(f"│ {line}", 2)

    if message["status"] != "delivered":
        raise demo.fail(
            "sms_not_delivered", status=message["status"], error_code=message["error_code"]
        )
    if kind != "otp":
        link = LINK_PATTERN.search(str(message["body"]))
        if link:
            raise demo.fail("sms_has_link", link=link.group(0))
        demo.say("sms_no_link", indent=2)
        return
    match = CODE_PATTERN.search(str(message["body"]))
    if match is None:
        raise demo.fail("no_code")
    record.code = match.group(1)


def act_verify(demo: Demo, step: dict[str, Any]) -> None:
    """POST the code from the SMS, or a mistyped one, to the signup's verify route."""
    record = demo.signup_record(step)
    if record.code is None:
        raise demo.fail("no_sms_code", step=record.step_id)
    mode = step.get("code", "from_sms")
    if mode == "from_sms":
        code = record.code
    elif mode == "wrong":
        # Change only the last digit, like a typing slip.
        code = record.code[:-1] + str((int(record.code[-1]) + 1) % 10)
    else:
        raise StoryError(f"step {step['id']}: code must be from_sms or wrong")

    demo.say("verify_request", indent=1, signup_id=record.signup_id, code=code)
    if mode == "wrong":
        demo.say("wrong_code", indent=2, right=record.code)
    checks_before = demo.realname.requests()["count"]
    response = demo.request(
        "POST",
        f"/v1/signups/{record.signup_id}/verify",
        body={"code": code},
        locale=record.locale,
    )
    demo.print_response(response)
    if response.status == 200:
        demo.say(
            "subscriber_id",
            indent=2,
            subscriber_id=response.body.get("subscriber_id"),
            status=response.body.get("status"),
            next_step=_compact(response.body.get("next_step")),
        )
        if response.body.get("referral_code"):
            demo.say("own_referral_code", indent=2, code=response.body["referral_code"])
    checks = demo.realname.requests()
    result = checks["requests"][-1]["result"] if checks["count"] > checks_before else "none"
    if result != "none":
        demo.say("verification", indent=2, result=result)

    expect = step.get("expect", {})
    demo.check_response(expect, response)
    if "verification" in expect and result != expect["verification"]:
        raise demo.fail("expected_verification", expected=expect["verification"], actual=result)

    demo.record_outcome(response)
    if response.status == 200:
        demo.tally.verified += 1
        record.subscriber_id = str(response.body["subscriber_id"])
        next_step = response.body.get("next_step") or {}
        checkout_url = next_step.get("checkout_url") if isinstance(next_step, dict) else None
        record.checkout_url = checkout_url if isinstance(checkout_url, str) else None
        referral_code = response.body.get("referral_code")
        demo.referral_codes[step["id"]] = referral_code if isinstance(referral_code, str) else ""


def act_receive_email(demo: Demo, step: dict[str, Any]) -> None:
    """Wait for the e-mail of `kind` to a signup's address and print it as the reader sees it."""
    record = demo.signup_record(step)
    kind = step.get("kind")
    locale: Literal["zh-CN", "en"] = "en" if record.locale == "en" else "zh-CN"
    try:
        # str.format() ignores the variables that a template does not use.
        subject = render_email(
            str(kind),
            locale,
            masked_email="",
            masked_identifier="",
            link="",
            amount="",
            until="",
            attempt="",
        ).subject
    except KeyError as exc:
        raise StoryError(f"step {step['id']}: unknown e-mail kind {kind!r}") from exc

    matching = demo.wait_for_email(record.email, subject)
    email = matching[0]
    body = html_to_text(str(email["body"] or ""))
    demo.say("email_header", indent=1, email=mask_email(record.email))
    demo.write("│ " + text("email_subject", demo.lang, subject=email["subject"]), 2)
    demo.write("│", 2)
    for line in body.split("\n"):
        demo.write(f"│ {line}", 2)

    if len(matching) != 1:
        raise demo.fail(
            "email_count", email=mask_email(record.email), subject=subject, actual=len(matching)
        )
    demo.emails[step["id"]] = EmailRecord(subject=str(email["subject"]), text=body)


def act_open_email_link(demo: Demo, step: dict[str, Any]) -> None:
    """Open the link of a received e-mail, as its reader would, and print the page text."""
    email = demo.emails.get(str(step.get("email_step")))
    if email is None:
        raise StoryError(f"step {step['id']}: email_step must name an earlier receive_email step")
    base = demo.service.public_base_url
    links = [link for link in LINK_PATTERN.findall(email.text) if link.startswith(base + "/")]
    if not links or urlsplit(links[0]).hostname != "127.0.0.1":
        raise demo.fail("no_link", base_url=base)

    path = links[0][len(base) :]
    demo.say("open_link", indent=1, path=path)
    response = demo.request("GET", path)
    demo.say("response", indent=1, status=response.status, code="")
    page = html_to_text(response.text)
    demo.say("page", indent=2)
    for line in page.split("\n"):
        demo.write(f"│ {line}", 2)

    expect = step.get("expect", {})
    demo.check_response({key: expect[key] for key in ("status",) if key in expect}, response)
    expected_text = expect.get("page_contains")
    if expected_text and expected_text not in page:
        raise demo.fail("page_missing_text", text=expected_text)


def act_register_identity(demo: Demo, step: dict[str, Any]) -> None:
    """Register one person (name, ID number, mobile) with the real-name verification emulator."""
    identity = step.get("identity")
    if not isinstance(identity, dict):
        raise StoryError(f"step {step['id']}: identity must be an object")
    demo.realname.add_identity(identity["name"], identity["id_number"], identity["mobile"])
    demo.say(
        "identity_registered",
        indent=1,
        name=identity["name"],
        id_number=mask_id_number(identity["id_number"]),
        mobile=mask_mobile(identity["mobile"]),
    )


def act_check_account(demo: Demo, step: dict[str, Any]) -> None:
    """Check whether a verified signup's account still has its ID number, and count its notices."""
    record = demo.signup_record(step)
    if record.subscriber_id is None:
        raise demo.fail("not_verified", step=record.step_id)

    # NOTE: reads the table directly because no account API exists yet. Use the account status
    # route once it does.
    table = main_table()
    partition = f"SUB#{record.subscriber_id}"
    identifier = table.get(partition, "IDENT#id_number")
    removed = table.get(partition, "IDENT_REMOVED#id_number")
    profile = table.get(partition, "PROFILE") or {}
    notices = len(profile.get("notices") or [])

    if identifier is not None:
        state = "held"
        demo.say(
            "account_held",
            indent=1,
            subscriber_id=record.subscriber_id,
            masked=identifier.get("masked"),
            notices=notices,
        )
    elif removed is not None:
        state = "removed"
        demo.say(
            "account_removed",
            indent=1,
            subscriber_id=record.subscriber_id,
            masked=removed.get("masked"),
            taken_by=removed.get("taken_by"),
            notices=notices,
        )
    else:
        state = "missing"
        demo.say("account_missing", indent=1, subscriber_id=record.subscriber_id, notices=notices)

    expect = step.get("expect", {})
    if "id_number" in expect and state != expect["id_number"]:
        raise demo.fail("account_state", expected=expect["id_number"], actual=state)
    if "notices" in expect and notices != expect["notices"]:
        raise demo.fail("notice_count", expected=expect["notices"], actual=notices)


def act_summary(demo: Demo, step: dict[str, Any]) -> None:
    """Print the run's counts and check them against the step's `expect`."""
    expect = step.get("expect", {})
    sms_sent = demo.wait_for_count(lambda: len(demo.twilio.messages()), expect.get("sms_sent"))
    emails_sent = demo.wait_for_count(
        lambda: len(demo.service.sent_emails()), expect.get("emails_sent")
    )
    table = main_table()
    subscriber_ids = {r.subscriber_id for r in demo.signups.values() if r.subscriber_id}
    profiles = [
        table.get(f"SUB#{subscriber_id}", "PROFILE") or {} for subscriber_id in subscriber_ids
    ]
    referrals = [
        table.get(f"SUB#{subscriber_id}", "REFERRED_BY") or {} for subscriber_id in subscriber_ids
    ]
    ledger_entries = sum(
        len(_ledger_entries(table, subscriber_id)) for subscriber_id in subscriber_ids
    )
    exposures_found_by = Counter(
        str(item.get("found_by"))
        for subscriber_id in subscriber_ids
        for sort_key, item in table.get_partition(f"SUB#{subscriber_id}").items()
        if sort_key.startswith("EXPOSURE#")
    )
    intake_statuses = Counter(str(job.get("status")) for job in demo.intake_jobs.values())
    deliveries = demo.stripe_shim.deliveries()
    counts = {
        "signups_created": len(demo.tally.signup_ids),
        "verified": demo.tally.verified,
        "rejected": demo.tally.rejected,
        "sms_sent": sms_sent,
        "emails_sent": emails_sent,
        "paid": demo.tally.paid,
        "subscribers_active": sum(
            1
            for profile in profiles
            if profile.get("status") == "active" and profile.get("monitored") is True
        ),
        "webhook_deliveries": len(deliveries),
        "webhook_duplicates": duplicate_deliveries(deliveries),
        "ledger_entries": ledger_entries,
        "referrals_credited": sum(
            1 for referral in referrals if referral.get("status") == "credited"
        ),
        "intake_jobs_done": intake_statuses["done"],
        "intake_jobs_rejected": intake_statuses["rejected"],
        "exposures_dataset": exposures_found_by["dataset"],
        "exposures_index": exposures_found_by["index"],
        "exposures_hibp": exposures_found_by["hibp"],
        "exposure_events": demo.service_logs.count(EXPOSURE_MESSAGE),
        "hibp_lookups": sum(
            1
            for entry in demo.hibp.requests()["requests"]
            if entry["endpoint"] == "breachedaccount"
        ),
    }

    demo.say("summary_created", indent=1, count=counts["signups_created"])
    demo.say("summary_verified", indent=1, count=counts["verified"])
    demo.say("summary_rejected", indent=1, count=counts["rejected"])
    for reason, count in sorted(demo.tally.reasons.items(), key=lambda item: (-item[1], item[0])):
        demo.say("summary_reason", indent=2, reason=reason, count=count)
    demo.say("summary_sms", indent=1, count=counts["sms_sent"])
    demo.say("summary_emails", indent=1, count=counts["emails_sent"])
    demo.say("summary_paid", indent=1, count=counts["paid"])
    demo.say("summary_active", indent=1, count=counts["subscribers_active"])
    demo.say(
        "summary_webhooks",
        indent=1,
        count=counts["webhook_deliveries"],
        events=len({delivery.event_id for delivery in deliveries}),
        duplicates=counts["webhook_duplicates"],
    )
    demo.say("summary_ledger", indent=1, count=counts["ledger_entries"])
    demo.say("summary_referrals", indent=1, count=counts["referrals_credited"])
    demo.say(
        "summary_intake",
        indent=1,
        done=counts["intake_jobs_done"],
        rejected=counts["intake_jobs_rejected"],
    )
    demo.say(
        "summary_exposures",
        indent=1,
        count=sum(exposures_found_by.values()),
        dataset=counts["exposures_dataset"],
        index=counts["exposures_index"],
        hibp=counts["exposures_hibp"],
        events=counts["exposure_events"],
    )
    demo.say("summary_hibp", indent=1, count=counts["hibp_lookups"])

    for name, expected in expect.items():
        if name not in counts:
            raise StoryError(f"step {step['id']}: expect has no count named {name!r}")
        if demo.replay is not None and name in DELIVERY_COUNTS:
            continue
        if counts[name] != expected:
            raise demo.fail("summary_count", name=name, expected=expected, actual=counts[name])


def act_open_checkout(demo: Demo, step: dict[str, Any]) -> None:
    """Open the Checkout page of a verified signup, as its browser would, and print it."""
    record = demo.signup_record(step)
    path = demo.checkout_path(record)
    demo.say("checkout_local", indent=1, path=path)

    demo.say("open_link", indent=1, path=path)
    response = demo.request("GET", path, base_url=demo.stripe_shim.base_url)
    demo.say("response", indent=1, status=response.status, code="")
    title = html_title(response.text)
    demo.say("page_title", indent=2, title=title)
    demo.say("page", indent=2)
    for line in html_to_text(response.text).split("\n"):
        demo.write(f"│ {line}", 2)

    expect = step.get("expect", {})
    demo.check_response({key: expect[key] for key in ("status",) if key in expect}, response)
    if "title" in expect and title != expect["title"]:
        raise demo.fail("page_title_missing", expected=expect["title"], actual=title)
    expected_text = expect.get("page_contains")
    if expected_text and expected_text not in html_to_text(response.text):
        raise demo.fail("page_missing_text", text=expected_text)


def _delivery_options(step: dict[str, Any]) -> dict[str, bool]:
    """Return the step's `webhooks` options for StripeShim.set_delivery()."""
    options = step.get("webhooks", {})
    if not isinstance(options, dict) or not set(options) <= {"duplicate", "shuffle"}:
        raise StoryError(f"step {step['id']}: webhooks may only set duplicate and shuffle")
    if not all(isinstance(value, bool) for value in options.values()):
        raise StoryError(f"step {step['id']}: webhooks.duplicate and webhooks.shuffle are booleans")
    return {str(name): bool(value) for name, value in options.items()}


def act_pay_checkout(demo: Demo, step: dict[str, Any]) -> None:
    """Pay a signup's Checkout Session with a test card and wait until its webhooks are sent."""
    record = demo.signup_record(step)
    path = demo.checkout_path(record) + "/pay"
    payment_method = _test_card(step, default=DEFAULT_TEST_CARD)
    shim = demo.stripe_shim

    demo.say("pay_request", indent=1, path=path, card=card_label(payment_method, demo.lang))
    body = None if payment_method == DEFAULT_TEST_CARD else {"payment_method": payment_method}
    response, deliveries = demo.with_webhooks(
        step,
        lambda: demo.request(
            "POST", path, body=body, accept="application/json", base_url=shim.base_url
        ),
    )
    demo.print_response(response)

    session = response.body.get("checkout_session")
    session = session if isinstance(session, dict) else {}
    event_id = str(response.body.get("event_id") or "")
    if response.status == 200:
        demo.say(
            "checkout_paid",
            indent=2,
            session_id=session.get("id"),
            status=session.get("status"),
            payment_status=session.get("payment_status"),
            subscription_id=session.get("subscription") or "-",
        )
        demo.say("checkout_event", indent=2, event_id=event_id)
    demo.print_deliveries(deliveries)

    expect = step.get("expect", {})
    demo.check_response({key: expect[key] for key in ("status", "body") if key in expect}, response)
    if response.status == 200 and event_id not in {delivery.event_id for delivery in deliveries}:
        raise demo.fail("event_not_delivered", event_id=event_id or "-")
    demo.check_deliveries(expect, deliveries)

    demo.record_outcome(response)
    if response.status == 200:
        demo.tally.paid += 1
        subscription_id = session.get("subscription")
        invoice_id = session.get("invoice")
        record.payment = PaymentRecord(
            customer_id=str(session["customer"]),
            subscription_id=str(subscription_id) if subscription_id else None,
            invoice_id=str(invoice_id) if invoice_id else None,
            deliveries=deliveries,
        )


def act_check_subscription(demo: Demo, step: dict[str, Any]) -> None:
    """Wait until a paid subscriber's profile shows the expected status and monitoring.

    Then wait until the billing consumer has finished every job of the webhooks sent since the
    last check. Each of their events must have its APPLIED marker and must have been applied
    exactly once, so every other delivery of it was recognised as a duplicate.
    """
    _, subscriber_id, payment = demo.paid_signup(step)
    expect = step.get("expect", {})
    expected_status = expect.get("status", "active")
    expected_monitored = expect.get("monitored", True)

    # NOTE: reads the table directly because no account API exists yet. Use the account status
    # route once it does.
    table = main_table()
    partition = f"SUB#{subscriber_id}"
    demo.say(
        "waiting_profile",
        indent=1,
        subscriber_id=subscriber_id,
        seconds=int(BILLING_WAIT_SECONDS),
    )
    started = time.monotonic()
    deadline = started + BILLING_WAIT_SECONDS
    while True:
        profile = table.get(partition, "PROFILE") or {}
        reached = (
            profile.get("status") == expected_status
            and profile.get("monitored") is expected_monitored
        )
        if reached or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    demo.say(
        "profile_state",
        indent=1,
        subscriber_id=subscriber_id,
        status=profile.get("status"),
        monitored=_compact(profile.get("monitored")),
        subscription_id=profile.get("subscription_id") or "-",
        elapsed=f"{time.monotonic() - started:.1f}",
    )
    if not reached:
        raise demo.fail(
            "profile_timeout",
            seconds=int(BILLING_WAIT_SECONDS),
            subscriber_id=subscriber_id,
            expected_status=expected_status,
            expected_monitored=_compact(expected_monitored),
            status=profile.get("status"),
            monitored=_compact(profile.get("monitored")),
        )
    if profile.get("subscription_id") != payment.subscription_id:
        raise demo.fail(
            "subscription_mismatch",
            expected=payment.subscription_id or "-",
            actual=profile.get("subscription_id") or "-",
        )

    demo.wait_until_applied(payment, deadline)


def _test_card(step: dict[str, Any], default: str | None = None) -> str:
    """Return the step's `payment_method`, one of the Stripe test ids that the Stripe shim accepts."""
    payment_method = step.get("payment_method", default)
    if payment_method not in TEST_CARDS:
        raise StoryError(
            f"step {step['id']}: payment_method must be one of {sorted(TEST_CARDS)}, "
            f"got {payment_method!r}"
        )
    return str(payment_method)


def _beijing_time(epoch_seconds: Any) -> str:
    """Return a Unix time as Beijing date and time, such as "2026-12-01 09:30"."""
    if not isinstance(epoch_seconds, int):
        return "-"
    return datetime.fromtimestamp(epoch_seconds, BEIJING).strftime("%Y-%m-%d %H:%M")


def _print_invoice(demo: Demo, invoice: dict[str, Any]) -> None:
    currency = invoice.get("currency")
    demo.say(
        "invoice_state",
        indent=1,
        invoice_id=invoice.get("id"),
        billing_reason=invoice.get("billing_reason") or "-",
        status=invoice.get("status"),
        amount_due=demo.money(invoice.get("amount_due"), currency),
        amount_paid=demo.money(invoice.get("amount_paid"), currency),
        attempt_count=invoice.get("attempt_count"),
    )


def _print_dispute(demo: Demo, dispute: dict[str, Any]) -> None:
    demo.say(
        "dispute_state",
        indent=1,
        dispute_id=dispute.get("id"),
        status=dispute.get("status"),
        amount=demo.money(dispute.get("amount"), dispute.get("currency")),
    )
    for movement in dispute.get("balance_transactions") or []:
        demo.say(
            "dispute_movement",
            indent=2,
            transaction_id=movement.get("id"),
            category=movement.get("reporting_category"),
            amount=demo.money(movement.get("amount"), movement.get("currency")),
            fee=demo.money(movement.get("fee"), movement.get("currency")),
        )


def _only_charge(demo: Demo, payment: PaymentRecord) -> dict[str, Any]:
    """Return the one succeeded charge of the payment's Stripe customer, read through the API.

    Any other number of succeeded charges fails the step, because the demo could not tell which
    charge the refund or dispute is for.
    """
    client = demo.stripe_client()
    listed = demo.stripe_call(
        lambda: client.v1.charges.list(params={"customer": payment.customer_id, "limit": 100})
    )
    charges = [charge.to_dict() for charge in listed.data]
    succeeded = [charge for charge in charges if charge.get("status") == "succeeded"]
    if len(succeeded) != 1:
        raise demo.fail("charge_count", customer_id=payment.customer_id, count=len(succeeded))
    charge = succeeded[0]
    demo.say(
        "charge_found",
        indent=1,
        customer_id=payment.customer_id,
        charge_id=charge["id"],
        amount=demo.money(charge.get("amount"), charge.get("currency")),
        status=charge.get("status"),
    )
    return charge


def act_set_card(demo: Demo, step: dict[str, Any]) -> None:
    """Make a test card the default payment method of a paid signup's Stripe customer."""
    _, _, payment = demo.paid_signup(step)
    payment_method = _test_card(step)
    shim = demo.stripe_shim

    attached = demo.stripe_call(
        lambda: shim.set_default_payment_method(payment.customer_id, payment_method)
    )
    demo.say(
        "card_set",
        indent=1,
        customer_id=payment.customer_id,
        card=card_label(payment_method, demo.lang),
        payment_method_id=attached.get("id"),
    )


def act_renew(demo: Demo, step: dict[str, Any]) -> None:
    """Renew a paid signup's subscription now and keep the renewal invoice for later steps."""
    record, _, payment = demo.paid_signup(step)
    subscription_id = payment.subscription_id
    if subscription_id is None:
        raise demo.fail("not_paid", step=record.step_id)
    shim = demo.stripe_shim

    demo.say("renew_request", indent=1, subscription_id=subscription_id)
    invoice, deliveries = demo.with_webhooks(
        step, lambda: demo.stripe_call(lambda: shim.renew_subscription(subscription_id))
    )
    _print_invoice(demo, invoice)
    demo.print_deliveries(deliveries)
    payment.deliveries.extend(deliveries)
    payment.renewal_invoice_id = str(invoice["id"])

    expect = step.get("expect", {})
    demo.check_fields(expect.get("invoice", {}), invoice, "invoice")
    demo.check_deliveries(expect, deliveries)


def act_pay_invoice(demo: Demo, step: dict[str, Any]) -> None:
    """Pay the renewal invoice of a paid signup through the Stripe API."""
    record, _, payment = demo.paid_signup(step)
    invoice_id = payment.renewal_invoice_id
    if invoice_id is None:
        raise demo.fail("no_renewal", step=record.step_id)
    client = demo.stripe_client()

    demo.say("pay_invoice_request", indent=1, invoice_id=invoice_id)
    invoice, deliveries = demo.with_webhooks(
        step, lambda: demo.stripe_call(lambda: client.v1.invoices.pay(invoice_id).to_dict())
    )
    _print_invoice(demo, invoice)
    demo.print_deliveries(deliveries)
    payment.deliveries.extend(deliveries)

    expect = step.get("expect", {})
    demo.check_fields(expect.get("invoice", {}), invoice, "invoice")
    demo.check_deliveries(expect, deliveries)


def act_refund(demo: Demo, step: dict[str, Any]) -> None:
    """Refund the only charge of a paid signup's Stripe customer through the Stripe API."""
    _, _, payment = demo.paid_signup(step)
    charge = _only_charge(demo, payment)
    reason = str(step.get("reason", "requested_by_customer"))
    client = demo.stripe_client()

    demo.say("refund_request", indent=1, charge_id=charge["id"], reason=reason)
    refund, deliveries = demo.with_webhooks(
        step,
        lambda: demo.stripe_call(
            lambda: client.v1.refunds.create(
                params={"charge": str(charge["id"]), "reason": reason}
            ).to_dict()
        ),
    )
    demo.say(
        "refund_state",
        indent=1,
        refund_id=refund.get("id"),
        amount=demo.money(refund.get("amount"), refund.get("currency")),
        status=refund.get("status"),
    )
    demo.print_deliveries(deliveries)
    payment.deliveries.extend(deliveries)

    expect = step.get("expect", {})
    demo.check_fields(expect.get("refund", {}), refund, "refund")
    demo.check_deliveries(expect, deliveries)


def act_open_dispute(demo: Demo, step: dict[str, Any]) -> None:
    """Open a dispute of the only charge of a paid signup's Stripe customer, as a cardholder would."""
    _, _, payment = demo.paid_signup(step)
    charge = _only_charge(demo, payment)
    reason = str(step.get("reason", "fraudulent"))
    shim = demo.stripe_shim

    demo.say("dispute_open_request", indent=1, charge_id=charge["id"], reason=reason)
    dispute, deliveries = demo.with_webhooks(
        step, lambda: demo.stripe_call(lambda: shim.create_dispute(str(charge["id"]), reason))
    )
    _print_dispute(demo, dispute)
    demo.print_deliveries(deliveries)
    payment.deliveries.extend(deliveries)
    payment.dispute_id = str(dispute["id"])

    expect = step.get("expect", {})
    demo.check_fields(expect.get("dispute", {}), dispute, "dispute")
    demo.check_deliveries(expect, deliveries)


def act_close_dispute(demo: Demo, step: dict[str, Any]) -> None:
    """Close the open dispute of a paid signup as won or lost (`won`)."""
    record, _, payment = demo.paid_signup(step)
    dispute_id = payment.dispute_id
    if dispute_id is None:
        raise demo.fail("no_dispute", step=record.step_id)
    won = step.get("won")
    if not isinstance(won, bool):
        raise StoryError(f"step {step['id']}: won must be true or false, got {won!r}")
    shim = demo.stripe_shim

    outcome = text("dispute_won" if won else "dispute_lost", demo.lang)
    demo.say("dispute_close_request", indent=1, dispute_id=dispute_id, outcome=outcome)
    dispute, deliveries = demo.with_webhooks(
        step, lambda: demo.stripe_call(lambda: shim.close_dispute(dispute_id, won))
    )
    _print_dispute(demo, dispute)
    demo.print_deliveries(deliveries)
    payment.deliveries.extend(deliveries)

    expect = step.get("expect", {})
    demo.check_fields(expect.get("dispute", {}), dispute, "dispute")
    demo.check_deliveries(expect, deliveries)


def act_check_dunning(demo: Demo, step: dict[str, Any]) -> None:
    """Wait until the dunning item of a signup's renewal invoice shows the expected `resolved`."""
    record, subscriber_id, payment = demo.paid_signup(step)
    invoice_id = payment.renewal_invoice_id
    if invoice_id is None:
        raise demo.fail("no_renewal", step=record.step_id)
    expect = dict(step.get("expect", {}))
    expected_resolved = expect.pop("resolved", False)
    if not isinstance(expected_resolved, bool):
        raise StoryError(
            f"step {step['id']}: expect.resolved must be true or false, got {expected_resolved!r}"
        )

    # NOTE: reads the table directly because no account API exists yet.
    table = main_table()
    deadline = time.monotonic() + BILLING_WAIT_SECONDS
    while True:
        item = table.get(f"SUB#{subscriber_id}", f"DUNNING#{invoice_id}")
        resolved = None if item is None else item.get("resolved") is True
        if resolved is expected_resolved or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    if item is None or resolved is not expected_resolved:
        raise demo.fail(
            "dunning_timeout",
            seconds=int(BILLING_WAIT_SECONDS),
            invoice_id=invoice_id,
            expected=_compact(expected_resolved),
            actual="-" if item is None else _compact(resolved),
        )

    demo.say(
        "dunning_state",
        indent=1,
        invoice_id=invoice_id,
        amount=demo.money(item.get("amount_due"), item.get("currency")),
        attempt_count=item.get("attempt_count"),
        until=_beijing_time(item.get("monitored_until")),
        resolved=_compact(resolved),
    )
    demo.check_fields(expect, item, f"DUNNING#{invoice_id}")


def _ledger_entries(table: Any, subscriber_id: str) -> list[dict[str, Any]]:
    """Return a subscriber's ledger items in the order of their sort keys."""
    items = table.get_partition(f"SUB#{subscriber_id}")
    return [items[sk] for sk in sorted(items) if sk.startswith("LEDGER#")]


def act_check_ledger(demo: Demo, step: dict[str, Any]) -> None:
    """Check that a paid subscriber's ledger contains exactly the expected entries.

    The billing consumer must first have applied the webhooks of the billing steps since the
    last check. Entries compare by kind, amount and currency, in any order, so one written twice
    or missing fails the step.
    """
    _, subscriber_id, payment = demo.paid_signup(step)
    expected_entries = step.get("expect", {}).get("entries")
    if not isinstance(expected_entries, list) or not all(
        isinstance(entry, dict) and {"kind", "amount", "currency"} <= set(entry)
        for entry in expected_entries
    ):
        raise StoryError(
            f"step {step['id']}: expect.entries must list objects with kind, amount and currency"
        )
    demo.wait_until_applied(payment, time.monotonic() + BILLING_WAIT_SECONDS)

    # NOTE: reads the table directly because no account API exists yet.
    entries = _ledger_entries(main_table(), subscriber_id)
    demo.say("ledger_header", indent=1, subscriber_id=subscriber_id, count=len(entries))
    for entry in entries:
        objects = ", ".join(f"{name} {value}" for name, value in entry["stripe_ids"].items())
        if isinstance(entry.get("fee_amount"), int):
            fee = demo.money(entry["fee_amount"], entry["currency"])
            objects += ", " + text("ledger_fee", demo.lang, fee=fee)
        demo.say(
            "ledger_entry",
            indent=2,
            time=_beijing_time(entry.get("created")),
            kind=entry["kind"],
            amount=demo.money(entry["amount"], entry["currency"]),
            minor=entry["amount"],
            currency=str(entry["currency"]).upper(),
            objects=objects,
        )

    def summary(entry: dict[str, Any]) -> tuple[str, int, str]:
        return (str(entry["kind"]), int(entry["amount"]), str(entry["currency"]))

    expected = sorted(summary(entry) for entry in expected_entries)
    actual = sorted(summary(entry) for entry in entries)
    if actual != expected:
        raise demo.fail("ledger_mismatch", expected=_compact(expected), actual=_compact(actual))
    demo.say("ledger_matches", indent=1)


def act_check_referral(demo: Demo, step: dict[str, Any]) -> None:
    """Wait until a referee's referral is settled, then check its referrer, status and credit."""
    record = demo.signup_record(step)
    referrer = demo.signup_record(step, "referrer")
    if record.subscriber_id is None:
        raise demo.fail("not_verified", step=record.step_id)
    if referrer.subscriber_id is None:
        raise demo.fail("not_verified", step=referrer.step_id)

    # NOTE: reads the table directly because no account API exists yet.
    table = main_table()
    deadline = time.monotonic() + BILLING_WAIT_SECONDS
    while True:
        referral = table.get(f"SUB#{record.subscriber_id}", "REFERRED_BY")
        if referral is None:
            raise demo.fail("referral_missing", subscriber_id=record.subscriber_id)
        # A referral is pending until the first invoice is paid, then credit_due until the
        # credit is granted.
        settled = referral.get("status") not in ("pending", "credit_due")
        if settled or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)

    credit = "-"
    if isinstance(referral.get("credit_amount"), int):
        credit = demo.money(referral["credit_amount"], referral.get("credit_currency"))
    demo.say(
        "referral_state",
        indent=1,
        referrer_id=referral.get("referrer_id"),
        code=referral.get("code"),
        status=referral.get("status"),
        credit=credit,
        balance_transaction_id=referral.get("balance_transaction_id") or "-",
    )
    if not settled:
        raise demo.fail(
            "referral_timeout", seconds=int(BILLING_WAIT_SECONDS), status=referral.get("status")
        )
    demo.check_fields(
        {"referrer_id": referrer.subscriber_id, **step.get("expect", {})},
        referral,
        "REFERRED_BY",
    )


def act_check_balance(demo: Demo, step: dict[str, Any]) -> None:
    """Read a paid signup's Stripe customer balance and balance transactions through the API.

    With `referee`, also check that the referee's referral credit is one of those transactions.
    """
    _, _, payment = demo.paid_signup(step)
    client = demo.stripe_client()
    customer_id = payment.customer_id

    customer = demo.stripe_call(lambda: client.v1.customers.retrieve(customer_id).to_dict())
    listed = demo.stripe_call(
        lambda: client.v1.customers.balance_transactions.list(customer_id, params={"limit": 100})
    )
    transactions = [transaction.to_dict() for transaction in listed.data]
    demo.say(
        "balance_state",
        indent=1,
        customer_id=customer_id,
        balance=demo.money(customer.get("balance"), customer.get("currency")),
        minor=customer.get("balance"),
        currency=str(customer.get("currency")).upper(),
    )
    for transaction in transactions:
        demo.say(
            "balance_transaction",
            indent=2,
            transaction_id=transaction.get("id"),
            amount=demo.money(transaction.get("amount"), transaction.get("currency")),
            description=transaction.get("description") or "-",
        )

    demo.check_fields(step.get("expect", {}), customer, "customer")
    if "referee" in step:
        referee = demo.signup_record(step, "referee")
        if referee.subscriber_id is None:
            raise demo.fail("not_verified", step=referee.step_id)
        referral = main_table().get(f"SUB#{referee.subscriber_id}", "REFERRED_BY") or {}
        transaction_id = referral.get("balance_transaction_id")
        if transaction_id not in {transaction.get("id") for transaction in transactions}:
            raise demo.fail(
                "balance_transaction_missing",
                transaction_id=transaction_id or "-",
                customer_id=customer_id,
            )


def act_open_billing_link(demo: Demo, step: dict[str, Any]) -> None:
    """Open the billing link of a received e-mail, follow it to the Customer Portal and print it."""
    email = demo.emails.get(str(step.get("email_step")))
    if email is None:
        raise StoryError(f"step {step['id']}: email_step must name an earlier receive_email step")
    base = demo.service.public_base_url
    links = [
        link
        for link in LINK_PATTERN.findall(email.text)
        if link.startswith(base + "/v1/billing/") and urlsplit(link).hostname == "127.0.0.1"
    ]
    if not links:
        raise demo.fail("no_billing_link", base_url=base)

    path = links[0][len(base) :]
    demo.say("open_link", indent=1, path=path)
    response = demo.request("GET", path)
    location = header_value(response, "location")
    demo.say("billing_link_redirect", indent=1, status=response.status, location=location or "-")
    expect = step.get("expect", {})
    demo.check_response({key: expect[key] for key in ("status",) if key in expect}, response)
    shim_base = demo.stripe_shim.base_url
    if (
        not location.startswith(shim_base + "/portal/")
        or urlsplit(location).hostname != "127.0.0.1"
    ):
        raise demo.fail("redirect_not_portal", base_url=shim_base, location=location or "-")
    demo.say("portal_local", indent=2)

    portal_path = urlsplit(location).path
    demo.say("open_link", indent=1, path=portal_path)
    page = demo.request("GET", portal_path, base_url=shim_base)
    demo.say("response", indent=1, status=page.status, code="")
    title = html_title(page.text)
    demo.say("page_title", indent=2, title=title)
    demo.say("page", indent=2)
    page_text = html_to_text(page.text)
    for line in page_text.split("\n"):
        demo.write(f"│ {line}", 2)
    if page.status != 200:
        raise demo.fail("expected_status", expected=200, actual=page.status, code="-")
    expected_text = expect.get("page_contains")
    if expected_text and expected_text not in page_text:
        raise demo.fail("page_missing_text", text=expected_text)


# ---------------------------------------------------------------------------- breaches


def _planted_identities(demo: Demo, step: dict[str, Any]) -> list[dict[str, str]]:
    """Return the identities that a `generate_breach` step plants, in the generator's form.

    The name, ID number and mobile come from the identities file entry with the signup's ID
    number, and the e-mail address from the signup.
    """
    plant = step.get("plant")
    if not isinstance(plant, list) or not plant:
        raise StoryError(f"step {step['id']}: plant must be a non-empty list")
    entries = json.loads(demo.story.identities_path.read_text(encoding="utf-8"))
    by_id_number = {identifiers.canonical_id_number(entry["id_number"]): entry for entry in entries}

    planted = []
    for index, entry in enumerate(plant):
        if not isinstance(entry, dict):
            raise StoryError(f"step {step['id']}: plant[{index}] must be an object")
        record = demo.signup_record({**entry, "id": step["id"]})
        kinds = entry.get("kinds", list(PLANT_KINDS))
        if not isinstance(kinds, list) or not kinds or not set(kinds) <= set(PLANT_KINDS):
            raise StoryError(
                f"step {step['id']}: plant[{index}].kinds must list some of {list(PLANT_KINDS)}"
            )
        identity = by_id_number.get(identifiers.canonical_id_number(record.body["id_number"]))
        if identity is None:
            raise StoryError(
                f"step {step['id']}: {demo.story.identities_path.name} has no entry with the "
                f"ID number of {record.step_id}"
            )

        person = {"name": str(identity["name"])}
        if "id_number" in kinds:
            person["id_number"] = str(identity["id_number"])
        if "mobile" in kinds:
            person["mobile"] = str(identity["mobile"])
        if "email" in kinds:
            person["email"] = record.email
        planted.append(person)
    return planted


def _masked_person(demo: Demo, person: dict[str, str]) -> str:
    """Return the masked identifiers of a planted person, such as "ID number 1101…, mobile 138…"."""
    parts = []
    if "id_number" in person:
        parts.append(text("plant_id_number", demo.lang, value=mask_id_number(person["id_number"])))
    if "mobile" in person:
        parts.append(text("plant_mobile", demo.lang, value=mask_mobile(person["mobile"])))
    if "email" in person:
        parts.append(text("plant_email", demo.lang, value=mask_email(person["email"])))
    return text("separator", demo.lang).join(parts)


def act_generate_breach(demo: Demo, step: dict[str, Any]) -> None:
    """Write a breach file and its manifest with the generator, planting the step's signups.

    Prints counts and the manifest's catalogue and provenance fields, never a row.
    """
    rows, seed, name = step.get("rows"), step.get("seed"), step.get("name")
    if not isinstance(rows, int) or rows < 1 or not isinstance(seed, int):
        raise StoryError(f"step {step['id']}: rows (a positive integer) and seed are required")
    if not isinstance(name, str) or not name:
        raise StoryError(f"step {step['id']}: name must be the breach Name")
    encoding = str(step.get("encoding", "gb18030"))
    planted = _planted_identities(demo, step)

    out_dir = demo.workdir / step["id"]
    plant_path = demo.workdir / f"{step['id']}.plant.json"
    plant_path.write_text(json.dumps(planted, ensure_ascii=False), encoding="utf-8")
    arguments = [
        *("--rows", str(rows), "--encoding", encoding, "--seed", str(seed), "--name", name),
        *("--plant", str(plant_path), "--out", str(out_dir)),
    ]
    demo.say(
        "generator_command", indent=1, command=" ".join(["python -m", GENERATOR_MODULE, *arguments])
    )
    # The command is this interpreter with arguments from the story file, so S603 does not apply.
    completed = subprocess.run(  # noqa: S603
        [sys.executable, "-m", GENERATOR_MODULE, *arguments],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=GENERATOR_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        # The generator's errors name arguments and rules, never a planted value.
        lines = completed.stderr.strip().splitlines()
        raise demo.fail(
            "generator_failed", status=completed.returncode, error=lines[-1] if lines else "-"
        )

    manifest = json.loads((out_dir / MANIFEST_FILE_NAME).read_text(encoding="utf-8"))
    expected = json.loads((out_dir / EXPECTED_FILE_NAME).read_text(encoding="utf-8"))
    data_path = out_dir / DATA_FILE_NAMES[str(manifest["format"])]
    demo.say(
        "breach_file",
        indent=1,
        file=data_path.name,
        rows=expected["rows"],
        size=f"{data_path.stat().st_size:,}",
        encoding=manifest["encoding"],
        seed=expected["seed"],
    )
    demo.say("breach_planted", indent=1, count=len(planted))
    for person in planted:
        demo.say("breach_plant", indent=2, name=person["name"], values=_masked_person(demo, person))
    if expected["planted"] != len(planted):
        raise demo.fail("planted_count", expected=len(planted), actual=expected["planted"])

    breach = manifest["breach"]
    demo.say(
        "breach_catalogue",
        indent=1,
        name=breach.get("Name"),
        title=breach.get("Title"),
        domain=breach.get("Domain"),
        breach_date=breach.get("BreachDate"),
        verified=_compact(breach.get("IsVerified")),
    )
    demo.say("breach_data_classes", indent=2, classes=", ".join(breach.get("DataClasses", [])))
    demo.say("breach_provenance", indent=1)
    for field_name, value in manifest["provenance"].items():
        demo.say("breach_field", indent=2, name=field_name, value=value)
    demo.say(
        "breach_expected",
        indent=1,
        rows_read=expected["rows_read"],
        rows_accepted=expected["rows_accepted"],
        rows_rejected=sum(expected["rows_rejected"].values()),
        legacy=expected["values_converted"].get("id_number.legacy_15_digit", 0),
    )
    demo.breach_files[step["id"]] = BreachFileRecord(
        data_path=data_path, manifest=manifest, expected=expected
    )


def _changed_manifest(demo: Demo, step: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `manifest` with the step's `manifest` changes, printing each change."""
    changes = step.get("manifest", {})
    removed = changes.get("remove", []) if isinstance(changes, dict) else None
    replaced = changes.get("set", {}) if isinstance(changes, dict) else None
    if (
        not isinstance(removed, list)
        or not isinstance(replaced, dict)
        or not set(changes) <= {"remove", "set"}
    ):
        raise StoryError(
            f"step {step['id']}: manifest may only contain remove (a list of fields) and set "
            "(an object of field values)"
        )

    changed = dict(manifest)
    for field_name in removed:
        changed.pop(field_name, None)
        demo.say("manifest_removed", indent=1, field=field_name)
    for field_name, value in replaced.items():
        changed[field_name] = value
        demo.say("manifest_set", indent=1, field=field_name, value=_compact(value))
    return changed


def _wait_for_intake(demo: Demo, job_id: str) -> tuple[dict[str, Any], float]:
    """Read an intake job through the admin API until it is done or rejected.

    Returns the job's report and the seconds waited. The route returns 404 until intake
    records the job, and any status other than 200 and 404 fails the step.
    """
    path = f"/v1/admin/intake-jobs/{job_id}"
    demo.say(
        "waiting_intake",
        indent=1,
        path=path,
        header=ADMIN_TOKEN_HEADER,
        seconds=int(BREACH_WAIT_SECONDS),
    )
    started = time.monotonic()
    deadline = started + BREACH_WAIT_SECONDS
    while True:
        response = demo.request("GET", path, admin=True)
        if response.status not in (200, 404):
            raise demo.fail(
                "expected_status", expected=200, actual=response.status, code=response.code or "-"
            )
        job = response.body if response.status == 200 else {}
        ended = job.get("status") in ("done", "rejected")
        if ended or time.monotonic() >= deadline:
            break
        time.sleep(ADMIN_POLL_SECONDS)
    if not ended:
        raise demo.fail(
            "intake_timeout",
            seconds=int(BREACH_WAIT_SECONDS),
            job_id=job_id,
            http_status=response.status,
            status=job.get("status") or "-",
            chunks_done=job.get("chunks_done", "-"),
            chunks_total=job.get("chunks_total", "-"),
        )
    return job, time.monotonic() - started


def _print_reasons(demo: Demo, counts: Counter[str]) -> None:
    for reason, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        demo.say("summary_reason", indent=3, reason=reason, count=count)


def _report_done_job(
    demo: Demo, job: dict[str, Any], elapsed: float, expected: dict[str, Any]
) -> None:
    """Print a finished intake job's counts by reason and check them against expected.json.

    `job` is the admin API's report: the job record's totals, and under `by_reason` the counts
    by reason that the job's pieces recorded.
    """
    by_reason = job.get("by_reason") or {}
    totals: dict[str, Counter[str]] = {
        name: Counter(by_reason.get(name) or {})
        for name in ("rows_rejected", "values_rejected", "values_converted")
    }

    demo.say(
        "intake_done",
        indent=1,
        job_id=job["job_id"],
        status=job["status"],
        chunks_done=job.get("chunks_done"),
        chunks_total=job.get("chunks_total"),
        elapsed=f"{elapsed:.1f}",
    )
    demo.say(
        "intake_rows",
        indent=2,
        rows_read=job.get("rows_read"),
        rows_accepted=job.get("rows_accepted"),
        rows_rejected=job.get("rows_rejected"),
    )
    _print_reasons(demo, totals["rows_rejected"])
    demo.say("intake_values", indent=2)
    _print_reasons(demo, totals["values_rejected"])
    demo.say(
        "intake_converted",
        indent=2,
        count=totals["values_converted"].get("id_number.legacy_15_digit", 0),
    )
    demo.say(
        "intake_index", indent=2, entries=job.get("index_entries"), exposures=job.get("exposures")
    )

    observed = {
        "rows_read": job.get("rows_read"),
        "rows_accepted": job.get("rows_accepted"),
        **{name: dict(counts) for name, counts in totals.items()},
    }
    for name, actual in observed.items():
        if actual != expected[name]:
            raise demo.fail(
                "intake_count_mismatch",
                name=name,
                expected=_compact(expected[name]),
                actual=_compact(actual),
            )
    demo.say("intake_matches_expected", indent=2)


def act_upload_breach(demo: Demo, step: dict[str, Any]) -> None:
    """Upload a generated breach file and its manifest, then follow the intake job to its end.

    The manifest goes last, because its upload notification starts the intake job.
    """
    source = demo.breach_files.get(str(step.get("file")))
    if source is None:
        raise StoryError(f"step {step['id']}: file must name an earlier generate_breach step")
    prefix = step.get("prefix")
    if not isinstance(prefix, str) or not prefix.strip("/") or prefix != prefix.strip("/"):
        raise StoryError(
            f"step {step['id']}: prefix must be a key prefix without slashes at its ends"
        )
    manifest = _changed_manifest(demo, step, source.manifest)

    runtime = demo.runtime
    bucket = runtime.environment["INTAKE_BUCKET"]
    s3 = runtime.client("s3")
    data = source.data_path.read_bytes()
    data_key = f"{prefix}/data.{source.manifest['format']}"
    manifest_key = f"{prefix}/{MANIFEST_NAME}"
    manifest_body = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
    demo.say("upload_object", indent=1, bucket=bucket, key=data_key, size=f"{len(data):,}")
    s3.put_object(Bucket=bucket, Key=data_key, Body=data)
    demo.say(
        "upload_object", indent=1, bucket=bucket, key=manifest_key, size=f"{len(manifest_body):,}"
    )
    uploaded = s3.put_object(Bucket=bucket, Key=manifest_key, Body=manifest_body)

    job_id = intake_job_id(bucket, manifest_key, str(uploaded["ETag"]).strip('"'))
    job, elapsed = _wait_for_intake(demo, job_id)
    demo.intake_jobs[step["id"]] = job
    files_left = int(s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("KeyCount", 0))
    detail = job.get("detail") or {}
    if job["status"] == "done":
        _report_done_job(demo, job, elapsed, source.expected)
        demo.say("files_deleted", indent=2, prefix=prefix, count=files_left)
    else:
        demo.say(
            "intake_rejected",
            indent=1,
            job_id=job_id,
            status=job["status"],
            reason=job.get("reason"),
            elapsed=f"{elapsed:.1f}",
        )
        if detail.get("fields"):
            demo.say("intake_fields", indent=2, fields=", ".join(detail["fields"]))
        if detail.get("detail"):
            demo.say("intake_detail", indent=2, detail=detail["detail"])
        demo.say("files_kept", indent=2, prefix=prefix, count=files_left)

    observed = {
        "status": job["status"],
        "reason": job.get("reason"),
        "fields": detail.get("fields"),
        "exposures": job.get("exposures"),
        "files_left": files_left,
    }
    expect = step.get("expect", {})
    if not set(expect) <= set(observed):
        raise StoryError(f"step {step['id']}: expect may only contain {sorted(observed)}")
    demo.check_fields(expect, observed, "job")


def _subscriber_name(demo: Demo, subscriber_id: str) -> str:
    """Return the name that the signup of a subscriber gave, or "-"."""
    for record in demo.signups.values():
        if record.subscriber_id == subscriber_id:
            return str(record.body.get("name", "-"))
    return "-"


def act_check_exposures(demo: Demo, step: dict[str, Any]) -> None:
    """Print a verified signup's exposures and its e-mail's HIBP state, and check them.

    `expect.exposures` maps every breach the subscriber must be exposed in to the fields its
    EXPOSURE item must have. Each exposure must have been announced exactly once.
    """
    record = demo.signup_record(step)
    subscriber_id = record.subscriber_id
    if subscriber_id is None:
        raise demo.fail("not_verified", step=record.step_id)
    expect = step.get("expect", {})
    expected_exposures = expect.get("exposures")
    if not isinstance(expected_exposures, dict):
        raise StoryError(f"step {step['id']}: expect.exposures must map breach names to fields")

    # NOTE: reads the table directly because no account API exists yet.
    items = main_table().get_partition(f"SUB#{subscriber_id}")
    exposures = {
        sort_key.removeprefix("EXPOSURE#"): item
        for sort_key, item in items.items()
        if sort_key.startswith("EXPOSURE#")
    }
    announcements = Counter(
        entry["breach_name"]
        for entry in demo.service_logs.records(EXPOSURE_MESSAGE)
        if entry["subscriber_id"] == subscriber_id
    )
    demo.say(
        "exposures_header",
        indent=1,
        subscriber_id=subscriber_id,
        name=record.body.get("name", "-"),
        count=len(exposures),
    )
    for breach_name, item in sorted(exposures.items()):
        demo.say(
            "exposure_item",
            indent=2,
            breach=breach_name,
            found_by=item.get("found_by"),
            kinds=", ".join(sorted(item.get("matched_kinds") or ())),
            announced=_compact(item.get("announced")),
            events=announcements[breach_name],
            found_at=_beijing_time(item.get("found_at")),
        )
    email = items.get("IDENT#email") or {}
    demo.say(
        "email_state",
        indent=1,
        email=mask_email(record.email),
        confirmed=_compact(email.get("confirmed") is True),
        status=email.get("hibp_status") or "-",
        checked_at=_beijing_time(email.get("hibp_checked_at")),
    )

    if set(exposures) != set(expected_exposures):
        raise demo.fail(
            "exposure_set",
            expected=_compact(sorted(expected_exposures)),
            actual=_compact(sorted(exposures)),
        )
    for breach_name, fields in expected_exposures.items():
        item = exposures[breach_name]
        observed = {
            "found_by": item.get("found_by"),
            "matched_kinds": sorted(item.get("matched_kinds") or ()),
            "announced": item.get("announced"),
        }
        expected_fields = {**fields, "matched_kinds": sorted(fields.get("matched_kinds", []))}
        demo.check_fields(expected_fields, observed, f"EXPOSURE#{breach_name}")
        if announcements[breach_name] != 1:
            raise demo.fail(
                "announcement_count", breach=breach_name, actual=announcements[breach_name]
            )
    if "hibp_status" in expect:
        demo.check_fields(
            {"hibp_status": expect["hibp_status"]},
            {"hibp_status": email.get("hibp_status")},
            "IDENT#email",
        )


def act_hibp_account(demo: Demo, step: dict[str, Any]) -> None:
    """Record a signup's e-mail address in breaches of the HIBP emulator's catalogue."""
    record = demo.signup_record(step)
    names = step.get("breaches")
    if not isinstance(names, list) or not names:
        raise StoryError(f"step {step['id']}: breaches must list breach names")
    catalogue = {breach["Name"]: breach for breach in load_catalogue(HIBP_CATALOGUE)}

    demo.say("hibp_account", indent=1, email=mask_email(record.email))
    for name in names:
        breach = catalogue.get(name, {})
        demo.say(
            "hibp_breach",
            indent=2,
            name=name,
            title=breach.get("Title", "-"),
            verified=_compact(breach.get("IsVerified")),
            spam_list=_compact(breach.get("IsSpamList")),
        )
    try:
        demo.hibp.add_account(record.email, names)
    except InvalidBreachError as exc:
        raise demo.fail("hibp_control_failed", error=exc) from exc


def act_breach_check(demo: Demo, step: dict[str, Any]) -> None:
    """Fire the daily breach check schedule and wait until every check job it queued finished.

    Prints each subscriber's result, the HIBP requests of the run and the exposures it found.
    """
    hibp_mark = demo.hibp.requests()["count"]
    checks_mark = demo.service_logs.count(CHECK_MESSAGE)
    pages_mark = demo.service_logs.count(PAGE_MESSAGE)
    lookups_mark = demo.service_logs.count(HIBP_MESSAGE)
    exposures_mark = demo.service_logs.count(EXPOSURE_MESSAGE)

    demo.say("schedule_fired", indent=1, schedule=BREACH_CHECK_SCHEDULE)
    demo.runtime.fire_schedule(BREACH_CHECK_SCHEDULE)
    # The run is over when its last page job ran, every check job it queued logged its result,
    # every HIBP job those queued logged its lookup, and both queues are empty.
    deadline = time.monotonic() + BREACH_WAIT_SECONDS
    while True:
        pages = demo.service_logs.records(PAGE_MESSAGE, pages_mark)
        jobs = sum(int(page["jobs"]) for page in pages)
        checks = demo.service_logs.records(CHECK_MESSAGE, checks_mark)
        queued = sum(1 for check in checks if check["hibp"] == "queued")
        looked_up = demo.service_logs.records(HIBP_MESSAGE, lookups_mark)
        backlog = demo.queue_backlog(CHECK_WORKER_FUNCTION) + demo.queue_backlog(
            HIBP_WORKER_FUNCTION
        )
        planned = any(page["more"] == "False" for page in pages)
        done = planned and len(checks) >= jobs and len(looked_up) >= queued and backlog == 0
        if done or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    if not done:
        raise demo.fail(
            "checks_timeout",
            seconds=int(BREACH_WAIT_SECONDS),
            done=len(checks),
            jobs=jobs,
            backlog=backlog,
        )

    if demo.replay is not None:
        # Replay mode delivers each page job and check job twice, and every delivery logs its
        # result again, so the run's jobs are its distinct check jobs.
        checks = list({check["job_id"]: check for check in checks}.values())
        jobs = len(checks)
    demo.say("planner_result", indent=1, jobs=jobs)
    for check in checks:
        # Check job ids are check_{run date}_{subscriber id}.
        subscriber_id = check["job_id"].split("_", 2)[-1]
        demo.say(
            "check_result",
            indent=2,
            name=_subscriber_name(demo, subscriber_id),
            subscriber_id=subscriber_id,
            status=check["status"],
            hibp=check["hibp"],
        )
    requests_made = demo.hibp.requests()["requests"][hibp_mark:]
    lookups = [entry for entry in requests_made if entry["endpoint"] == "breachedaccount"]
    demo.say(
        "hibp_requests",
        indent=1,
        catalogue=sum(1 for entry in requests_made if entry["endpoint"] == "breaches"),
        lookups=len(lookups),
        statuses=", ".join(str(entry["status"]) for entry in lookups) or "-",
    )
    found = demo.service_logs.records(EXPOSURE_MESSAGE, exposures_mark)
    demo.say("new_exposures", indent=1, count=len(found))
    for entry in found:
        demo.say(
            "new_exposure",
            indent=2,
            name=_subscriber_name(demo, entry["subscriber_id"]),
            breach=entry["breach_name"],
            found_by=entry["found_by"],
        )

    observed = {"jobs": jobs, "hibp_lookups": len(lookups), "exposures": len(found)}
    expect = step.get("expect", {})
    if not set(expect) <= set(observed):
        raise StoryError(f"step {step['id']}: expect may only contain {sorted(observed)}")
    demo.check_fields(expect, observed, "run")


UI_TEXT.update(ALERT_TEXT)
UI_TEXT.update(ACCOUNT_TEXT)
UI_TEXT.update(FINANCE_TEXT)
UI_TEXT.update(REPORT_TEXT)

ACTIONS: dict[str, Callable[[Demo, dict[str, Any]], None]] = {
    "signup": act_signup,
    "signup_burst": act_signup_burst,
    "receive_sms": act_receive_sms,
    "verify": act_verify,
    "receive_email": act_receive_email,
    "open_email_link": act_open_email_link,
    "register_identity": act_register_identity,
    "check_account": act_check_account,
    "open_billing_link": act_open_billing_link,
    "open_checkout": act_open_checkout,
    "pay_checkout": act_pay_checkout,
    "set_card": act_set_card,
    "renew": act_renew,
    "pay_invoice": act_pay_invoice,
    "refund": act_refund,
    "open_dispute": act_open_dispute,
    "close_dispute": act_close_dispute,
    "check_subscription": act_check_subscription,
    "check_dunning": act_check_dunning,
    "check_ledger": act_check_ledger,
    "check_referral": act_check_referral,
    "check_balance": act_check_balance,
    "generate_breach": act_generate_breach,
    "upload_breach": act_upload_breach,
    "check_exposures": act_check_exposures,
    "hibp_account": act_hibp_account,
    "breach_check": act_breach_check,
    "summary": act_summary,
    **ALERT_ACTIONS,
    **ACCOUNT_ACTIONS,
    **FINANCE_ACTIONS,
    **REPORT_ACTIONS,
}


# ---------------------------------------------------------------------------- entry point


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line: the output language and the story file."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.local.demo",
        description="Play the demo story against a fresh local stack and check every step.",
    )
    parser.add_argument(
        "--lang",
        choices=LANGS,
        default="zh-CN",
        help="language of the demo's own output (default zh-CN). API responses, SMS and "
        "e-mails keep each person's locale",
    )
    parser.add_argument(
        "--story",
        type=Path,
        default=DEFAULT_STORY,
        help="story file to play (default events/demo/story.json)",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def _service_logs_to(stream: TextIO) -> Iterator[None]:
    """Send log records and anything written to sys.stdout (Powertools' JSON lines) to `stream`.

    Powertools binds its handler to sys.stdout when a handler module is first imported, which
    happens inside the local service, so the redirect catches it in a fresh process.
    """
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(stream):
            yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return 0 when every step behaved as expected."""
    args = parse_args(argv)
    lang: Lang = args.lang
    out = sys.stdout
    try:
        story = load_story(args.story)
    except StoryError as exc:
        print(f"invalid story file: {exc}", file=sys.stderr)
        return EXIT_INVALID_STORY

    # SIGTERM stops the stack the same way Ctrl-C does.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_handler = signal.signal(signal.SIGTERM, _raise_interrupt) if in_main_thread else None
    LOG_FILE.parent.mkdir(exist_ok=True)
    demo = Demo(story, lang, out)
    try:
        with LOG_FILE.open("w", encoding="utf-8") as log_stream, _service_logs_to(log_stream):
            return demo.run()
    except KeyboardInterrupt:
        demo.say("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        demo.say("service_failed", error_type=type(exc).__name__, error=exc)
        return EXIT_STEP_FAILED
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_handler)


if __name__ == "__main__":
    # The stage modules import infra.local.demo, a second copy of this module when it runs as
    # `python -m`. Running that copy's main makes their StoryError the class its runner catches.
    from infra.local import demo as imported_demo

    sys.exit(imported_demo.main())
