"""Loopback emulator of Twilio Programmable Messaging for the local stack and integration tests.

It speaks Twilio's wire format for the Messages resource (API version 2010-04-01), so the
official `twilio` SDK works against it once the SDK's API domain points at `base_url`:

    client = twilio.rest.Client(account_sid, auth_token)
    client.api.base_url = emulator.base_url

Behaviour:

- HTTP Basic auth with the account SID and auth token; anything else gets Twilio's 20003 error.
- `POST .../Messages.json` validates `To`, `From` or `MessagingServiceSid`, `Body`,
  `StatusCallback` and `ValidityPeriod` with Twilio's error codes, then queues the message.
  It reports `num_segments`: GSM-7 fits 160 septets in one segment and 153 in each part of a
  longer message, and UCS-2 fits 70 UTF-16 code units, or 67 per part.
- `GET .../Messages/{Sid}.json` returns one message. `GET .../Messages.json` lists them newest
  first in Twilio's page shape, with the filters `To` and `From` and paging by `PageSize` and
  `Page`.
- `POST .../Messages/{Sid}.json` with `Body` set to the empty string redacts the message body,
  as Twilio's Message update does for a message that has left its queue. A non-empty `Body`,
  or `Status` (cancelling a scheduled message, which the emulator never schedules), gets
  Twilio's 30400 error. A message still `accepted`, `queued` or `sending` gets HTTP 409.
  Carriers have already seen the text, so the China repeat filter still compares the
  original text after a redaction.
- Each sender (the messaging service SID, or else `From`) has its own FIFO queue. A worker
  thread drains every queue at `segments_per_second`, paced by the real monotonic clock. A
  message's slot starts when the previous one's ends or when it arrived, whichever is later, so
  the thread's wake-up latency does not lower the rate; at most `PACING_CARRY_S` of lateness
  is carried forward, which bounds the burst after a stall.
  `pause()`, `resume()`, `drain_once()` and `drain_all()` let tests step it by hand.
- Draining moves a message queued -> sending -> sent -> delivered, or to failed/undelivered.
  A message that waited longer than its ValidityPeriod on the emulator clock is `failed` with
  error 30036 and is never sent. `fail_deliveries_to()` makes a recipient's messages end
  `undelivered` or `failed` with a carrier error such as 30003.
- `fail_creates_to()` makes creates to one number fail as Twilio rejects them: HTTP 400 with
  error 21610 (the recipient replied STOP), 21211 (invalid number) or 21614 (not a mobile).
  `fail_next_creates()` makes the next creates fail with 429 or a 5xx, in Twilio's error JSON.
- `stall_next_creates()` holds the next create responses for some seconds, so that a client
  with a shorter timeout gives up; with `created=True` the message is queued first, and the
  client cannot tell whether it exists. `overflow_next_creates()` makes the next creates
  overflow the sender's queue: Twilio rejects a `From` sender's create with HTTP 400 and error
  21611, and fails a messaging service's message after creation with error 30001.
  `advance_clock()` moves the emulator clock forward, so queued messages expire (30036).
- Each `sent` and final status is POSTed to `StatusCallback`, form-encoded and signed with
  `X-Twilio-Signature` exactly as Twilio signs webhooks. A failed callback is retried
  `callback_attempts` times in all, then dropped with a warning. `set_callback_order()` holds
  each message's callbacks until it is drained, then sends them reversed or shuffled, and can
  repeat one of them, as Twilio may deliver callbacks out of order and more than once.
  `set_replay()` (the local stack's replay mode, see infra.local.replay) holds them the same
  way and then sends every one of them twice, shuffled.
- `send_inbound()` posts an incoming message (a subscriber's reply) to `inbound_url`, signed and
  with the parameters of Twilio's incoming message webhook, and returns the webhook's response.
  In replay mode it posts the message twice, with the same MessageSid and idempotency token.
- Mainland China (`+86` numbers) emulates Twilio's China SMS limits, timed by the emulator
  clock. Twilio's support article "China SMS Template Whitelisting" states that three
  identical messages to one number within 24 hours are rejected, and that five different ones
  trigger a manual review with a 24-hour delivery delay. The emulator is stricter on repeats:
  a body identical to one already sent to the same number within 24 hours is filtered, so the
  message goes `sent`, then `undelivered` with error 30007 "Message filtered". The fifth and
  later messages sent to one number within 24 hours are held for review: the status stays
  `sent` (never released) and `held_for_review` is true in the emulator's own record.
  Filtered and expired messages do not count toward the five.

Safety and privacy: status callbacks and inbound messages go only to `http` URLs whose host is
`127.0.0.1`, `localhost` or `[::1]`. Any other callback is skipped with a warning naming the
message SID, any other inbound URL is rejected, and redirects are never followed. Log lines
carry message SIDs, statuses and counts, never a phone number or a message body.

Not part of Twilio, under `/_emulator/`: `GET messages` (every message as the recipient sees
it), `POST reset`, `POST drain`, `POST faults` (`{"count": 2, "status": 429}` makes the next
two create requests fail), `POST create-errors` (`{"to": "+1…", "code": 21610}`),
`POST callback-order` (`{"order": "shuffled", "duplicate": true, "seed": 7}`) and
`POST inbound` (`{"from": "+1…", "body": "STOP"}`, answered with the webhook's status and
body). The same controls exist as Python methods.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import logging
import queue
import random
import re
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlencode, urlsplit

from idsentry.clock import Clock, utc_now
from infra.local.emulators.base import (
    LoopbackHTTPServer,
    Request,
    Response,
    json_response,
    parse_json_body,
)
from infra.local.replay import TWILIO_INBOUND_SMS, TWILIO_STATUS_CALLBACKS, Replay

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
DEFAULT_VALIDITY_PERIOD = 36000
MAX_VALIDITY_PERIOD = 36000
MAX_BODY_CHARACTERS = 1600
CHINA_WINDOW_SECONDS = 24 * 60 * 60
# Lateness of the drain thread that a sender queue may make up, in seconds (see _drain_loop).
PACING_CARRY_S = 0.5
CHINA_REVIEW_THRESHOLD = 5
FAULT_STATUSES = (429, 500, 503)

ACCOUNT_SID_PATTERN = re.compile(r"AC[0-9a-f]{32}")
MESSAGE_SID_PATTERN = re.compile(r"SM[0-9a-f]{32}")
SERVICE_SID_PATTERN = re.compile(r"MG[0-9a-f]{32}")
E164_PATTERN = re.compile(r"\+[1-9][0-9]{7,14}")
ALPHANUMERIC_SENDER_PATTERN = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")

MESSAGES_PATH = re.compile(r"/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json")
MESSAGE_PATH = re.compile(r"/2010-04-01/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>[^/]+)\.json")

# 3GPP TS 23.038 GSM 7-bit default alphabet, 16 characters a row; 0x1B is the escape to the
# extension table and is not a character a message can contain.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
) - {"\x1b"}
# Extension-table characters cost two septets (escape + character).
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

DELIVERY_ERRORS = {
    30001: "Queue overflow",
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
    30036: "Validity Period Expired",
}
# Errors Twilio returns when a message is created, with HTTP 400, for the recipient's number.
CREATE_ERRORS = {
    21211: "Invalid 'To' Phone Number",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
}
QUEUE_FULL_CODE = 21611
CALLBACK_ORDERS = ("in_order", "reversed", "shuffled")
# One of Twilio's magic test numbers; the default `To` of inbound messages.
DEFAULT_INBOUND_NUMBER = "+15005550006"
FAULT_ERRORS = {
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}


@dataclass(frozen=True)
class Segments:
    """The encoding and segment count that Twilio would use for a message body."""

    encoding: Literal["GSM-7", "UCS-2"]
    count: int


def count_segments(body: str) -> Segments:
    """Return the encoding and number of SMS segments for `body`.

    GSM-7 applies when every character is in the GSM 7-bit alphabet or its extension table.
    Any other character (Chinese, most emoji) switches the whole message to UCS-2. A part
    boundary never splits an escape pair or a UTF-16 surrogate pair.
    """
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in body):
        units = [2 if char in GSM7_EXTENSION else 1 for char in body]
        return Segments("GSM-7", _pack_units(units, single=160, part=153))

    units = [len(char.encode("utf-16-le")) // 2 for char in body]
    return Segments("UCS-2", _pack_units(units, single=70, part=67))


def _pack_units(units: list[int], *, single: int, part: int) -> int:
    if sum(units) <= single:
        return 1

    parts = 1
    used = 0
    for size in units:
        if used + size > part:
            parts += 1
            used = 0
        used += size
    return parts


def compute_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """Compute Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1 of the URL and sorted params."""
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _open_connection(host: str, port: int, timeout: float) -> http.client.HTTPConnection:
    # A module-level factory so that tests can assert no connection is ever opened.
    return http.client.HTTPConnection(host, port, timeout=timeout)


# Callback host -> address actually connected to. `localhost` is pinned to 127.0.0.1 so that a
# changed hosts file cannot send a callback off the machine.
_LOOPBACK_CALLBACK_HOSTS = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "::1": "::1"}


@dataclass(frozen=True)
class _CallbackTarget:
    connect_host: str
    port: int
    host_header: str
    path: str


def _loopback_target(url: str) -> _CallbackTarget | None:
    """Return where to deliver a callback URL, or None unless it is plain HTTP to loopback."""
    split = urlsplit(url)
    try:
        port = split.port or 80
    except ValueError:
        return None
    if split.scheme != "http" or split.username is not None or split.password is not None:
        return None

    connect_host = _LOOPBACK_CALLBACK_HOSTS.get(split.hostname or "")
    if connect_host is None:
        return None

    path = split.path or "/"
    if split.query:
        path = f"{path}?{split.query}"
    return _CallbackTarget(connect_host, port, split.netloc, path)


def _format_date(moment: datetime | None) -> str | None:
    return None if moment is None else format_datetime(moment)


def pacing_slot(next_free: float, enqueued_at: float, now: float) -> float:
    """Return when a message's send counts as started, on the monotonic clock.

    That is the sender's next free slot or the message's arrival, whichever is later, so the
    drain thread's own wake-up lateness is not charged to the queue and the rate holds on a busy
    machine. At most PACING_CARRY_S of lateness is made up, which bounds the burst after a stall.
    """
    return max(next_free, enqueued_at, now - PACING_CARRY_S)


@dataclass
class _Message:
    sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    segments: Segments
    status_callback: str | None
    validity_period: int
    date_created: datetime
    status: str
    sender_key: str
    date_updated: datetime
    date_sent: datetime | None = None
    error_code: int | None = None
    held_for_review: bool = False
    redacted: bool = False
    # SHA-256 of the text as created, which the China repeat filter compares even after a
    # redaction emptied `body`.
    body_digest: str = ""
    # When the message joined its sender's queue, on the monotonic clock.
    enqueued_at: float = 0.0
    # The sender's queue overflowed when the message was created: it fails with 30001.
    overflowed: bool = False
    status_history: list[str] = field(default_factory=list)
    held_callbacks: list[_Callback] = field(default_factory=list)


@dataclass(frozen=True)
class _Callback:
    url: str
    params: dict[str, str]
    message_sid: str
    status: str
    idempotency_token: str
    generation: int


@dataclass(frozen=True)
class InboundReply:
    """The response of the incoming message webhook: status, media type and body (TwiML)."""

    status: int
    content_type: str
    body: str


class TwilioError(Exception):
    """A request error returned to the client in Twilio's error JSON shape."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def to_response(self) -> Response:
        """Return the error as Twilio's JSON body, with a Basic challenge on 401."""
        response = json_response(
            self.status,
            {
                "code": self.code,
                "message": self.message,
                "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
                "status": self.status,
            },
        )
        if self.status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return response


class TwilioEmulator(LoopbackHTTPServer):
    """Twilio Messaging on 127.0.0.1: queues, paced draining, China rules and signed callbacks.

    `clock` returns a timezone-aware datetime. It drives every date, validity expiry and the
    China 24-hour windows. Pacing uses the real monotonic clock, so throughput stays real when
    a test freezes `clock`. Pass `paused=True` to start with draining stopped, then step it
    with `drain_once()`.

    `inbound_url` is where `send_inbound()` posts incoming messages, addressed to
    `inbound_number` through `messaging_service_sid` when one is given.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        port: int = 0,
        segments_per_second: float = 10.0,
        clock: Clock = utc_now,
        paused: bool = False,
        callback_attempts: int = 3,
        callback_backoff_seconds: float = 0.2,
        callback_timeout_seconds: float = 5.0,
        inbound_url: str | None = None,
        inbound_number: str = DEFAULT_INBOUND_NUMBER,
        messaging_service_sid: str | None = None,
    ) -> None:
        if not ACCOUNT_SID_PATTERN.fullmatch(account_sid):
            raise ValueError("account_sid must be 'AC' followed by 32 lower-case hex digits")
        if not auth_token:
            raise ValueError("auth_token must not be empty")
        if segments_per_second <= 0:
            raise ValueError("segments_per_second must be positive")
        if callback_attempts < 1:
            raise ValueError("callback_attempts must be at least 1")
        if not E164_PATTERN.fullmatch(inbound_number):
            raise ValueError("inbound_number must be an E.164 number such as +15005550006")
        if messaging_service_sid is not None and not SERVICE_SID_PATTERN.fullmatch(
            messaging_service_sid
        ):
            raise ValueError("messaging_service_sid must be 'MG' followed by 32 hex digits")

        super().__init__(port)
        self.account_sid = account_sid
        self._auth_token = auth_token
        self._segments_per_second = segments_per_second
        self._clock = clock
        self._callback_attempts = callback_attempts
        self._callback_backoff_seconds = callback_backoff_seconds
        self._callback_timeout_seconds = callback_timeout_seconds
        self._inbound_url: str | None = None
        if inbound_url is not None:
            self.set_inbound_url(inbound_url)
        self._inbound_number = inbound_number
        self._messaging_service_sid = messaging_service_sid

        self._condition = threading.Condition()
        self._paused = paused
        self._running = False
        self._worker: threading.Thread | None = None
        self._messages: dict[str, _Message] = {}
        self._queues: dict[str, deque[str]] = {}
        self._next_send_at: dict[str, float] = {}
        self._china_sent: dict[str, list[_Message]] = {}
        self._delivery_failures: dict[str, tuple[str, int]] = {}
        self._create_failures: dict[str, int] = {}
        self._callback_order = "in_order"
        self._duplicate_callbacks = False
        self._callback_random = random.Random()
        self._replay: Replay | None = None
        self._replay_random = random.Random()
        self._fault_status = 429
        self._fault_remaining = 0
        self._stalls: deque[tuple[float, bool]] = deque()
        self._overflow_remaining = 0
        self._clock_offset = timedelta(0)
        # Faults injected since start or the last reset, by kind, for the reliability suite.
        self._injected: Counter[str] = Counter()

        self._callbacks: queue.Queue[_Callback | None] = queue.Queue()
        self._callback_thread: threading.Thread | None = None
        self._callback_condition = threading.Condition()
        self._callbacks_pending = 0
        self._callback_generation = 0
        self._callback_counts = {"delivered": 0, "dropped": 0, "skipped": 0}

    # Lifecycle.

    def start(self) -> Self:
        """Start the HTTP server, the drain worker and the callback sender."""
        super().start()

        with self._condition:
            self._running = True
        self._worker = threading.Thread(target=self._drain_loop, name="twilio-drain", daemon=True)
        self._worker.start()
        self._callback_thread = threading.Thread(
            target=self._callback_loop, name="twilio-callbacks", daemon=True
        )
        self._callback_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, stop the worker and drop callbacks that were not sent yet."""
        super().stop()

        with self._condition:
            self._running = False
            self._condition.notify_all()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

        if self._callback_thread is not None:
            with self._callback_condition:
                self._callback_generation += 1
            self._callbacks.put(None)
            self._callback_thread.join()
            self._callback_thread = None

    # Controls for tests and operators.

    def pause(self) -> None:
        """Stop the worker from draining; queued messages stay queued."""
        with self._condition:
            self._paused = True

    def resume(self) -> None:
        """Let the worker drain the queues again at the configured rate."""
        with self._condition:
            self._paused = False
            self._condition.notify_all()

    def drain_once(self) -> int:
        """Send the head message of each sender's queue now, ignoring the rate; return the count."""
        with self._condition:
            heads = [queue_.popleft() for queue_ in self._queues.values() if queue_]
            for sid in heads:
                self._send(self._messages[sid])
            self._condition.notify_all()
        return len(heads)

    def drain_all(self) -> int:
        """Call `drain_once()` until every queue is empty; return how many messages it sent."""
        total = 0
        while count := self.drain_once():
            total += count
        return total

    def fail_next_creates(self, count: int, status: int = 429) -> None:
        """Make the next `count` create requests fail with 429 (code 20429), 500 or 503."""
        if count < 0:
            raise ValueError("count must not be negative")
        if status not in FAULT_STATUSES:
            raise ValueError(f"status must be one of {FAULT_STATUSES}, got {status}")

        with self._condition:
            self._fault_status = status
            self._fault_remaining = count

    def stall_next_creates(self, count: int, seconds: float, *, created: bool = True) -> None:
        """Hold the response of the next `count` create requests for `seconds`.

        A client whose timeout is shorter gives up first. With `created`, the message is
        queued before the wait, as when Twilio accepted it and the response was lost; without
        it, nothing is created and the late response is Twilio's 20500 error.
        """
        if count < 0:
            raise ValueError("count must not be negative")
        if seconds <= 0:
            raise ValueError("seconds must be positive")

        with self._condition:
            self._stalls.clear()
            self._stalls.extend([(seconds, created)] * count)

    def overflow_next_creates(self, count: int) -> None:
        """Make the next `count` creates overflow their sender's queue.

        Twilio rejects a create from a `From` sender with HTTP 400 and error 21611. A message
        sent through a messaging service is created, then fails with error 30001 when drained.
        """
        if count < 0:
            raise ValueError("count must not be negative")

        with self._condition:
            self._overflow_remaining = count

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator clock forward by `seconds`, as if that much time had passed.

        Queued messages that have then waited longer than their ValidityPeriod fail with
        30036 when drained. Pacing keeps using the real monotonic clock.
        """
        if seconds < 0:
            raise ValueError("seconds must not be negative")

        with self._condition:
            self._clock_offset += timedelta(seconds=seconds)

    def fail_deliveries_to(
        self,
        to: str,
        error_code: int = 30003,
        status: Literal["undelivered", "failed"] = "undelivered",
    ) -> None:
        """Make every later message to `to` end `status` with `error_code` after it is sent."""
        if error_code not in DELIVERY_ERRORS or error_code in (30001, 30007, 30036):
            raise ValueError(f"error_code must be a carrier error such as 30003, got {error_code}")

        with self._condition:
            self._delivery_failures[to] = (status, error_code)

    def fail_creates_to(self, to: str, error_code: int = 21610) -> None:
        """Make every later create to `to` fail with HTTP 400 and 21610, 21211 or 21614."""
        if error_code not in CREATE_ERRORS:
            raise ValueError(f"error_code must be one of {sorted(CREATE_ERRORS)}, got {error_code}")

        with self._condition:
            self._create_failures[to] = error_code

    def set_callback_order(
        self, order: str, *, duplicate: bool = False, seed: int | None = None
    ) -> None:
        """Send each message's status callbacks `in_order`, `reversed` or `shuffled`.

        Out of order, a message's callbacks are held until it has been drained and then sent
        together. `duplicate` sends one of them twice, with the same idempotency token. `seed`
        makes the shuffle and the choice of duplicate repeatable.
        """
        if order not in CALLBACK_ORDERS:
            raise ValueError(f"order must be one of {CALLBACK_ORDERS}, got {order!r}")

        with self._condition:
            self._callback_order = order
            self._duplicate_callbacks = duplicate
            self._callback_random = random.Random(seed)

    def set_replay(self, replay: Replay | None) -> None:
        """Send every later status callback and inbound message twice, or (None) once again.

        A message's callbacks are held until it is drained, then sent twice each in a shuffled
        order. `reset()` leaves this setting as it is.
        """
        with self._condition:
            self._replay = replay
            if replay is not None:
                self._replay_random = replay.random("twilio_callbacks")

    def set_inbound_url(self, url: str) -> None:
        """Set where `send_inbound()` posts; it must be plain HTTP to a loopback host."""
        if _loopback_target(url) is None:
            raise ValueError("inbound_url must be an http URL whose host is a loopback address")
        self._inbound_url = url

    def send_inbound(self, from_number: str, body: str, *, to: str | None = None) -> InboundReply:
        """POST one incoming message to the inbound URL, signed; return the webhook's response.

        It is sent once, without retries, and a failed response is returned like any other.
        """
        if self._inbound_url is None:
            raise RuntimeError("no inbound URL: pass inbound_url or call set_inbound_url()")
        if not E164_PATTERN.fullmatch(from_number):
            raise ValueError("from_number must be an E.164 number such as +14155550100")
        if not 1 <= len(body) <= MAX_BODY_CHARACTERS:
            raise ValueError("body must have 1 to 1600 characters")
        recipient = to or self._inbound_number
        if not E164_PATTERN.fullmatch(recipient):
            raise ValueError("to must be an E.164 number such as +15005550006")

        sid = "SM" + secrets.token_hex(16)
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "Body": body,
            "From": from_number,
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": str(count_segments(body).count),
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": recipient,
        }
        if self._messaging_service_sid is not None:
            params["MessagingServiceSid"] = self._messaging_service_sid

        url = self._inbound_url
        target = _loopback_target(url)
        assert target is not None  # checked by set_inbound_url
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "X-Twilio-Signature": compute_signature(self._auth_token, url, params),
        }
        body_bytes = urlencode(params).encode("utf-8")
        reply = self._post_inbound(target, body_bytes, headers)
        logger.info("inbound message sent", extra={"message_sid": sid, "status": reply.status})
        replay = self._replay
        if replay is not None:
            # Twilio retries a webhook with the same parameters and idempotency token.
            replay.count(TWILIO_INBOUND_SMS)
            second = self._post_inbound(target, body_bytes, headers)
            logger.info(
                "inbound message sent again", extra={"message_sid": sid, "status": second.status}
            )
        return reply

    def messages(self) -> list[dict[str, Any]]:
        """Return every message in creation order as the recipient and the operator see it."""
        with self._condition:
            return [self._operator_view(message) for message in self._messages.values()]

    def injected_faults(self) -> dict[str, int]:
        """Return the faults injected since start or the last reset, by kind.

        Kinds: `http_429`, `http_500`, `http_503` (fail_next_creates), `stall` and
        `stall_dropped` (stall_next_creates with and without `created`), and `overflow`.
        """
        with self._condition:
            return dict(self._injected)

    def callback_counts(self) -> dict[str, int]:
        """Return how many status callbacks were delivered, dropped after retries and skipped."""
        with self._callback_condition:
            return dict(self._callback_counts)

    def wait_for_callbacks(self, timeout: float) -> bool:
        """Block until no status callback is waiting to be sent; return False on timeout."""
        with self._callback_condition:
            return self._callback_condition.wait_for(
                lambda: self._callbacks_pending == 0, timeout=timeout
            )

    def reset(self) -> None:
        """Forget every message, queue, China history, fault and pending callback."""
        with self._condition:
            count = len(self._messages)
            self._messages.clear()
            self._queues.clear()
            self._next_send_at.clear()
            self._china_sent.clear()
            self._delivery_failures.clear()
            self._create_failures.clear()
            self._fault_remaining = 0
            self._stalls.clear()
            self._overflow_remaining = 0
            self._injected.clear()
            self._callback_order = "in_order"
            self._duplicate_callbacks = False

        with self._callback_condition:
            self._callback_generation += 1
            self._callback_counts = dict.fromkeys(self._callback_counts, 0)
        logger.info("twilio emulator reset", extra={"message_count": count})

    # HTTP.

    def handle(self, request: Request) -> Response:
        """Route one request to the Messages API or the `/_emulator/` control API."""
        if request.path.startswith("/_emulator/"):
            return self._handle_control(request)

        try:
            self._authenticate(request)
            return self._handle_api(request)
        except TwilioError as error:
            logger.info(
                "twilio request rejected", extra={"status": error.status, "code": error.code}
            )
            return error.to_response()

    def loggable_path(self, path: str) -> str:
        """Return `path` for logs when it is a known route, whose only variables are SIDs."""
        if path in (
            "/_emulator/messages",
            "/_emulator/reset",
            "/_emulator/drain",
            "/_emulator/faults",
            "/_emulator/create-errors",
            "/_emulator/callback-order",
            "/_emulator/inbound",
        ):
            return path
        if (match := MESSAGES_PATH.fullmatch(path)) and ACCOUNT_SID_PATTERN.fullmatch(
            match["account"]
        ):
            return path
        if (
            (match := MESSAGE_PATH.fullmatch(path))
            and ACCOUNT_SID_PATTERN.fullmatch(match["account"])
            and MESSAGE_SID_PATTERN.fullmatch(match["sid"])
        ):
            return path
        return super().loggable_path(path)

    def _handle_api(self, request: Request) -> Response:
        if match := MESSAGES_PATH.fullmatch(request.path):
            self._check_account(match["account"], request.path)
            if request.method == "POST":
                return self._create(request)
            if request.method == "GET":
                return self._list(request)
            raise TwilioError(405, 20004, "Method not allowed")

        if match := MESSAGE_PATH.fullmatch(request.path):
            self._check_account(match["account"], request.path)
            if request.method == "POST":
                return self._redact(match["sid"], request)
            if request.method != "GET":
                # NOTE: deleting a message record (HTTP DELETE) is not emulated.
                raise TwilioError(405, 20004, "Method not allowed")
            return self._fetch(match["sid"], request.path)

        raise _not_found(request.path)

    def _handle_control(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route == ("GET", "/_emulator/messages"):
            return json_response(200, {"messages": self.messages()})
        if route == ("POST", "/_emulator/reset"):
            self.reset()
            return json_response(200, {"reset": True})
        if route == ("POST", "/_emulator/drain"):
            return json_response(200, {"sent": self.drain_all()})
        if route == ("POST", "/_emulator/faults"):
            return self._control_faults(request)
        if route == ("POST", "/_emulator/create-errors"):
            return self._control_create_errors(request)
        if route == ("POST", "/_emulator/callback-order"):
            return self._control_callback_order(request)
        if route == ("POST", "/_emulator/inbound"):
            return self._control_inbound(request)
        return json_response(404, {"error": "not_found"})

    def _control_create_errors(self, request: Request) -> Response:
        payload = _control_payload(request)
        if payload is None:
            return _invalid_control_field("body")
        to = payload.get("to")
        code = payload.get("code", 21610)
        if not isinstance(to, str) or not E164_PATTERN.fullmatch(to):
            return _invalid_control_field("to")
        if code not in CREATE_ERRORS:
            return _invalid_control_field("code")

        self.fail_creates_to(to, code)
        return json_response(200, {"code": code})

    def _control_callback_order(self, request: Request) -> Response:
        payload = _control_payload(request)
        if payload is None:
            return _invalid_control_field("body")
        order = payload.get("order")
        duplicate = payload.get("duplicate", False)
        seed = payload.get("seed")
        if order not in CALLBACK_ORDERS:
            return _invalid_control_field("order")
        if not isinstance(duplicate, bool):
            return _invalid_control_field("duplicate")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            return _invalid_control_field("seed")

        self.set_callback_order(order, duplicate=duplicate, seed=seed)
        return json_response(200, {"order": order, "duplicate": duplicate})

    def _control_inbound(self, request: Request) -> Response:
        payload = _control_payload(request)
        if payload is None:
            return _invalid_control_field("body")
        from_number = payload.get("from")
        body = payload.get("body")
        to = payload.get("to")
        if not isinstance(from_number, str) or not E164_PATTERN.fullmatch(from_number):
            return _invalid_control_field("from")
        if not isinstance(body, str) or not 1 <= len(body) <= MAX_BODY_CHARACTERS:
            return _invalid_control_field("body")
        if to is not None and (not isinstance(to, str) or not E164_PATTERN.fullmatch(to)):
            return _invalid_control_field("to")
        if self._inbound_url is None:
            return json_response(409, {"error": "inbound_url_not_set"})

        try:
            reply = self.send_inbound(from_number, body, to=to)
        except (OSError, http.client.HTTPException) as exc:
            logger.warning("inbound message failed", extra={"error_type": type(exc).__name__})
            return json_response(502, {"error": "inbound_webhook_unreachable"})
        return json_response(
            200, {"status": reply.status, "content_type": reply.content_type, "body": reply.body}
        )

    def _control_faults(self, request: Request) -> Response:
        try:
            payload = parse_json_body(request.body)
        except ValueError:
            return json_response(400, {"error": "invalid_request", "field": "body"})
        if not isinstance(payload, dict):
            return json_response(400, {"error": "invalid_request", "field": "body"})

        count = payload.get("count")
        status = payload.get("status", 429)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return json_response(400, {"error": "invalid_request", "field": "count"})
        if status not in FAULT_STATUSES:
            return json_response(400, {"error": "invalid_request", "field": "status"})

        self.fail_next_creates(count, status)
        return json_response(200, {"count": count, "status": status})

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization") or ""
        scheme, _, encoded = header.partition(" ")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        username, _, password = decoded.partition(":")

        valid_user = hmac.compare_digest(username.encode(), self.account_sid.encode())
        valid_password = hmac.compare_digest(password.encode(), self._auth_token.encode())
        if scheme.lower() != "basic" or not (valid_user and valid_password):
            raise TwilioError(401, 20003, "Authenticate")

    def _check_account(self, account_sid: str, path: str) -> None:
        if account_sid != self.account_sid:
            raise _not_found(path)

    def _create(self, request: Request) -> Response:
        params = _parse_form(request.body)
        with self._condition:
            if self._fault_remaining > 0:
                self._fault_remaining -= 1
                status = self._fault_status
                logger.warning(
                    "twilio emulator returned an injected fault",
                    extra={"status": status, "faults_remaining": self._fault_remaining},
                )
                code, reason = FAULT_ERRORS[status]
                self._injected[f"http_{status}"] += 1
                raise TwilioError(status, code, reason)
            stall = self._stalls.popleft() if self._stalls else None
            if stall is not None:
                self._injected["stall" if stall[1] else "stall_dropped"] += 1

        if stall is not None and not stall[1]:
            logger.warning("twilio emulator stalled a create and dropped it")
            time.sleep(stall[0])
            code, reason = FAULT_ERRORS[500]
            raise TwilioError(500, code, reason)

        message = self._validate_create(params)
        with self._condition:
            create_error = self._create_failures.get(message.to)
            if create_error is not None:
                raise TwilioError(400, create_error, CREATE_ERRORS[create_error])
            if self._overflow_remaining > 0:
                self._overflow_remaining -= 1
                self._injected["overflow"] += 1
                logger.warning("twilio emulator overflowed a sender queue")
                if message.messaging_service_sid is None:
                    raise TwilioError(
                        400,
                        QUEUE_FULL_CODE,
                        "This 'From' number has exceeded the maximum number of queued messages",
                    )
                message.overflowed = True
            self._messages[message.sid] = message
            message.enqueued_at = time.monotonic()
            self._queues.setdefault(message.sender_key, deque()).append(message.sid)
            resource = self._resource(message)
            self._condition.notify_all()

        logger.info(
            "message created",
            extra={"message_sid": message.sid, "num_segments": message.segments.count},
        )
        if stall is not None:
            logger.warning(
                "twilio emulator stalled a create response", extra={"message_sid": message.sid}
            )
            time.sleep(stall[0])
        return json_response(201, resource)

    def _validate_create(self, params: dict[str, str]) -> _Message:
        to = params.get("To", "")
        if not to:
            raise TwilioError(400, 21604, "A 'To' phone number is required.")
        if not E164_PATTERN.fullmatch(to):
            raise TwilioError(400, 21211, "The 'To' number is not a valid phone number.")

        from_ = params.get("From") or None
        service_sid = params.get("MessagingServiceSid") or None
        if from_ is None and service_sid is None:
            raise TwilioError(400, 21603, "A 'From' or 'MessagingServiceSid' is required.")
        if from_ is not None and not (
            E164_PATTERN.fullmatch(from_) or ALPHANUMERIC_SENDER_PATTERN.fullmatch(from_)
        ):
            raise TwilioError(400, 21212, "The 'From' is not a valid phone number or sender ID.")
        if service_sid is not None and not SERVICE_SID_PATTERN.fullmatch(service_sid):
            raise TwilioError(400, 21701, "The 'MessagingServiceSid' is invalid.")

        body = params.get("Body", "")
        if not body:
            raise TwilioError(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY_CHARACTERS:
            raise TwilioError(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )

        validity_period = _parse_validity_period(params.get("ValidityPeriod"))
        status_callback = params.get("StatusCallback") or None
        callback_scheme = urlsplit(status_callback or "").scheme
        if status_callback is not None and callback_scheme not in ("http", "https"):
            raise TwilioError(400, 21609, "The 'StatusCallback' URL is invalid.")

        now = self._now()
        return _Message(
            sid="SM" + secrets.token_hex(16),
            to=to,
            from_=from_,
            messaging_service_sid=service_sid,
            body=body,
            body_digest=hashlib.sha256(body.encode("utf-8")).hexdigest(),
            segments=count_segments(body),
            status_callback=status_callback,
            validity_period=validity_period,
            date_created=now,
            date_updated=now,
            status="accepted" if service_sid else "queued",
            sender_key=service_sid or from_ or "",
            status_history=["accepted" if service_sid else "queued"],
        )

    def _fetch(self, sid: str, path: str) -> Response:
        with self._condition:
            message = self._messages.get(sid)
            if message is None:
                raise _not_found(path)
            return json_response(200, self._resource(message))

    def _redact(self, sid: str, request: Request) -> Response:
        """Empty a message's body, as Twilio's Message update with `Body=""` does."""
        params = _parse_form(request.body)
        if "Status" in params:
            raise TwilioError(
                400, 30400, "Parameters are not valid: the emulator schedules no message to cancel."
            )
        if params.get("Body") != "":
            raise TwilioError(
                400, 30400, "Message body redaction request does not have empty Body parameter."
            )

        with self._condition:
            message = self._messages.get(sid)
            if message is None:
                raise _not_found(request.path)
            if message.status in ("accepted", "queued", "sending"):
                # NOTE: Twilio redacts only messages that have left its queue but documents no
                # error code for the others; 409 with 20409 is this emulator's own answer.
                raise TwilioError(
                    409, 20409, f"Message {sid} is {message.status}: redact it once it is sent."
                )
            message.body = ""
            message.redacted = True
            message.date_updated = self._now()
            resource = self._resource(message)

        logger.info("message redacted", extra={"message_sid": sid})
        return json_response(200, resource)

    def _list(self, request: Request) -> Response:
        page_size = _parse_page_parameter(request.query, "PageSize", default=50, low=1, high=1000)
        page = _parse_page_parameter(request.query, "Page", default=0, low=0, high=None)
        filters = {
            name: values[0] for name, values in request.query.items() if name in ("To", "From")
        }

        with self._condition:
            matching = [
                message
                for message in reversed(self._messages.values())
                if filters.get("To", message.to) == message.to
                and filters.get("From", message.from_) == message.from_
            ]
            start = page * page_size
            records = [self._resource(message) for message in matching[start : start + page_size]]

        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"

        def page_uri(number: int) -> str:
            return f"{base}?{urlencode({**filters, 'PageSize': page_size, 'Page': number})}"

        has_next = start + page_size < len(matching)
        payload = {
            "messages": records,
            "page": page,
            "page_size": page_size,
            "start": start,
            "end": start + max(len(records) - 1, 0),
            "uri": page_uri(page),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        }
        return json_response(200, payload)

    # Draining.

    def _drain_loop(self) -> None:
        with self._condition:
            while self._running:
                if self._paused:
                    self._condition.wait()
                    continue

                now = time.monotonic()
                waiting = [key for key, queue_ in self._queues.items() if queue_]
                ready = [key for key in waiting if self._next_send_at.get(key, 0.0) <= now]
                if not ready:
                    delays = [self._next_send_at[key] - now for key in waiting]
                    self._condition.wait(timeout=min(delays) if delays else None)
                    continue

                for key in ready:
                    sid = self._queues[key].popleft()
                    slot = pacing_slot(
                        self._next_send_at.get(key, 0.0), self._messages[sid].enqueued_at, now
                    )
                    try:
                        sent_segments = self._send(self._messages[sid])
                    except Exception as exc:
                        # One bad message (or a broken clock) must not stop the worker.
                        logger.error(
                            "message drain failed",
                            extra={"message_sid": sid, "error_type": type(exc).__name__},
                        )
                        sent_segments = 0
                    self._next_send_at[key] = slot + sent_segments / self._segments_per_second

    def _send(self, message: _Message) -> int:
        """Move one dequeued message to its final status; return the segments it used.

        Called with `self._condition` held. Callbacks are only queued here; the callback thread
        sends them, so a slow receiver never holds up draining.
        """
        try:
            return self._advance(message)
        finally:
            self._release_callbacks(message)

    def _advance(self, message: _Message) -> int:
        now = self._now()
        if message.status == "accepted":
            self._set_status(message, "queued", now)

        if message.overflowed:
            self._set_status(message, "failed", now, error_code=30001)
            return 0

        waited = (now - message.date_created).total_seconds()
        if waited > message.validity_period:
            self._set_status(message, "failed", now, error_code=30036)
            return 0

        self._set_status(message, "sending", now)
        message.date_sent = now
        self._set_status(message, "sent", now)

        if message.to.startswith("+86"):
            recent = [
                earlier
                for earlier in self._china_sent.get(message.to, [])
                if earlier.date_sent is not None
                and (now - earlier.date_sent).total_seconds() < CHINA_WINDOW_SECONDS
            ]
            if any(earlier.body_digest == message.body_digest for earlier in recent):
                self._set_status(message, "undelivered", now, error_code=30007)
                return message.segments.count

            self._china_sent[message.to] = [*recent, message]
            if len(recent) + 1 >= CHINA_REVIEW_THRESHOLD:
                message.held_for_review = True
                logger.info("message held for review", extra={"message_sid": message.sid})
                return message.segments.count

        failure = self._delivery_failures.get(message.to)
        if failure is not None:
            status, error_code = failure
            self._set_status(message, status, now, error_code=error_code)
        else:
            self._set_status(message, "delivered", now)
        return message.segments.count

    def _set_status(
        self, message: _Message, status: str, now: datetime, error_code: int | None = None
    ) -> None:
        message.status = status
        message.error_code = error_code
        message.date_updated = now
        message.status_history.append(status)
        logger.debug(
            "message status changed",
            extra={"message_sid": message.sid, "status": status, "error_code": error_code},
        )

        if message.status_callback is not None and status in (
            "sent",
            "delivered",
            "undelivered",
            "failed",
        ):
            self._enqueue_callback(message)

    # Status callbacks.

    def _enqueue_callback(self, message: _Message) -> None:
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "MessageSid": message.sid,
            "MessageStatus": message.status,
            "SmsSid": message.sid,
            "SmsStatus": message.status,
            "To": message.to,
        }
        if message.from_ is not None:
            params["From"] = message.from_
        if message.messaging_service_sid is not None:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if message.error_code is not None:
            params["ErrorCode"] = str(message.error_code)

        with self._callback_condition:
            generation = self._callback_generation
        callback = _Callback(
            url=message.status_callback or "",
            params=params,
            message_sid=message.sid,
            status=message.status,
            idempotency_token=str(uuid.uuid4()),
            generation=generation,
        )
        if (
            self._callback_order == "in_order"
            and not self._duplicate_callbacks
            and self._replay is None
        ):
            self._put_callback(callback)
        else:
            message.held_callbacks.append(callback)

    def _release_callbacks(self, message: _Message) -> None:
        """Send a drained message's held callbacks in the configured order."""
        callbacks, message.held_callbacks = message.held_callbacks, []
        if not callbacks:
            return

        if self._callback_order == "reversed":
            callbacks.reverse()
        elif self._callback_order == "shuffled":
            self._callback_random.shuffle(callbacks)
        if self._duplicate_callbacks:
            callbacks.append(self._callback_random.choice(callbacks))
        if self._replay is not None:
            self._replay.count(TWILIO_STATUS_CALLBACKS, len(callbacks))
            callbacks = callbacks * 2
            self._replay_random.shuffle(callbacks)
        for callback in callbacks:
            self._put_callback(callback)

    def _put_callback(self, callback: _Callback) -> None:
        with self._callback_condition:
            self._callbacks_pending += 1
        self._callbacks.put(callback)

    def _callback_loop(self) -> None:
        while (callback := self._callbacks.get()) is not None:
            try:
                with self._callback_condition:
                    current = callback.generation == self._callback_generation
                if current:
                    outcome = self._deliver_callback(callback)
                    with self._callback_condition:
                        if callback.generation == self._callback_generation:
                            self._callback_counts[outcome] += 1
            except Exception as exc:
                # The sender must outlive any single callback, so nothing escapes this loop.
                logger.error(
                    "status callback raised an unexpected error",
                    extra={"message_sid": callback.message_sid, "error_type": type(exc).__name__},
                )
            finally:
                with self._callback_condition:
                    self._callbacks_pending -= 1
                    self._callback_condition.notify_all()

        with self._callback_condition:
            self._callbacks_pending = 0
            self._callback_condition.notify_all()

    def _deliver_callback(self, callback: _Callback) -> Literal["delivered", "dropped", "skipped"]:
        target = _loopback_target(callback.url)
        if target is None:
            logger.warning(
                "status callback skipped: URL is not plain HTTP to a loopback host",
                extra={"message_sid": callback.message_sid, "status": callback.status},
            )
            return "skipped"

        body = urlencode(callback.params).encode("utf-8")
        signature = compute_signature(self._auth_token, callback.url, callback.params)
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": callback.idempotency_token,
            "X-Twilio-Signature": signature,
        }
        for attempt in range(1, self._callback_attempts + 1):
            error_type = self._post_callback(target, body, headers)
            if error_type is None:
                logger.debug(
                    "status callback delivered",
                    extra={"message_sid": callback.message_sid, "status": callback.status},
                )
                return "delivered"

            logger.warning(
                "status callback attempt failed",
                extra={
                    "message_sid": callback.message_sid,
                    "status": callback.status,
                    "attempt": attempt,
                    "error_type": error_type,
                },
            )
            if attempt < self._callback_attempts:
                time.sleep(self._callback_backoff_seconds * 2 ** (attempt - 1))

        logger.warning(
            "status callback dropped after retries",
            extra={
                "message_sid": callback.message_sid,
                "status": callback.status,
                "attempts": self._callback_attempts,
            },
        )
        return "dropped"

    def _post_callback(
        self, target: _CallbackTarget, body: bytes, headers: dict[str, str]
    ) -> str | None:
        """POST once; return None on a 2xx response, else the error type or HTTP status."""
        connection: http.client.HTTPConnection | None = None
        try:
            connection = _open_connection(
                target.connect_host, target.port, self._callback_timeout_seconds
            )
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            return type(exc).__name__
        finally:
            if connection is not None:
                connection.close()

        if 200 <= response.status < 300:
            return None
        return f"HTTP {response.status}"

    def _post_inbound(
        self, target: _CallbackTarget, body: bytes, headers: dict[str, str]
    ) -> InboundReply:
        connection = _open_connection(
            target.connect_host, target.port, self._callback_timeout_seconds
        )
        try:
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()
            content = response.read()
        finally:
            connection.close()
        return InboundReply(
            status=response.status,
            content_type=response.getheader("Content-Type") or "",
            body=content.decode("utf-8", "replace"),
        )

    # Representations.

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("clock must return a timezone-aware datetime")
        return now + self._clock_offset

    def _resource(self, message: _Message) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{message.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": message.body,
            "date_created": _format_date(message.date_created),
            "date_sent": _format_date(message.date_sent),
            "date_updated": _format_date(message.date_updated),
            "direction": "outbound-api",
            "error_code": message.error_code,
            "error_message": DELIVERY_ERRORS.get(message.error_code or 0),
            "from": message.from_,
            "messaging_service_sid": message.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(message.segments.count),
            "price": None,
            "price_unit": "USD",
            "sid": message.sid,
            "status": message.status,
            "subresource_uris": {
                "media": f"{uri}/Media.json",
                "feedback": f"{uri}/Feedback.json",
            },
            "to": message.to,
            "uri": f"{uri}.json",
        }

    def _operator_view(self, message: _Message) -> dict[str, Any]:
        return {
            "sid": message.sid,
            "to": message.to,
            "from": message.from_,
            "messaging_service_sid": message.messaging_service_sid,
            "body": message.body,
            "status": message.status,
            "status_history": list(message.status_history),
            "error_code": message.error_code,
            "num_segments": message.segments.count,
            "encoding": message.segments.encoding,
            "held_for_review": message.held_for_review,
            "redacted": message.redacted,
            "date_created": _format_date(message.date_created),
            "date_sent": _format_date(message.date_sent),
        }


def _not_found(path: str) -> TwilioError:
    return TwilioError(404, 20404, f"The requested resource {path} was not found")


def _control_payload(request: Request) -> dict[str, Any] | None:
    """Return a control request's JSON object, or None when the body is not one."""
    try:
        payload = parse_json_body(request.body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _invalid_control_field(name: str) -> Response:
    return json_response(400, {"error": "invalid_request", "field": name})


def _parse_form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TwilioError(400, 20001, "The request body is not valid UTF-8.") from exc
    return {name: values[-1] for name, values in parse_qs(text, keep_blank_values=True).items()}


def _parse_validity_period(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_VALIDITY_PERIOD
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_VALIDITY_PERIOD:
        raise TwilioError(
            400, 21624, "ValidityPeriod must be an integer between 1 and 36000 seconds."
        )
    return value


def _parse_page_parameter(
    query: dict[str, list[str]], name: str, *, default: int, low: int, high: int | None
) -> int:
    raw = query.get(name, [""])[0]
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise TwilioError(400, 20001, f"{name} must be an integer {limit}.")
    return value


def new_account_sid() -> str:
    """Return a random, well-formed account SID for a local run."""
    return "AC" + secrets.token_hex(16)


def new_messaging_service_sid() -> str:
    """Return a random, well-formed messaging service SID for a local run."""
    return "MG" + secrets.token_hex(16)


__all__ = [
    "CREATE_ERRORS",
    "MESSAGE_SID_PATTERN",
    "InboundReply",
    "Segments",
    "TwilioEmulator",
    "TwilioError",
    "compute_signature",
    "count_segments",
    "new_account_sid",
    "new_messaging_service_sid",
]
