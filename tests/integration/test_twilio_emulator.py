"""Integration tests of the Twilio emulator, driven through the official twilio SDK."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from infra.local.emulators import twilio as twilio_emulator
from infra.local.emulators.twilio import (
    CREATE_ERRORS,
    MESSAGE_SID_PATTERN,
    TwilioEmulator,
    count_segments,
    new_account_sid,
    new_messaging_service_sid,
)

pytestmark = pytest.mark.integration

AUTH_TOKEN = "emulator-auth-token"
SENDER = "+15005550006"
OTHER_SENDER = "+15005550007"
US_MOBILE = "+14155550100"
OTHER_US_MOBILE = "+14155550101"
SENDER_TWO = "+15005550007"
CN_MOBILE = "+8613800138000"
OTHER_CN_MOBILE = "+8613900139000"
WAIT_SECONDS = 10.0


class FakeClock:
    """A settable clock for the emulator: dates, validity expiry and China windows."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass(frozen=True)
class ReceivedCallback:
    url: str
    params: dict[str, str]
    signature: str
    idempotency_token: str


class IPv6HTTPServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class CallbackReceiver:
    """A status-callback endpoint on 127.0.0.1 that records requests and can fail the first N."""

    def __init__(self, ipv6: bool = False) -> None:
        self.attempts: list[ReceivedCallback] = []
        self.received: list[ReceivedCallback] = []
        self.fail_first = 0
        self._condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length).decode("utf-8")
                callback = ReceivedCallback(
                    url=f"http://{self.headers['Host']}{self.path}",
                    params=dict(parse_qsl(body, keep_blank_values=True)),
                    signature=self.headers.get("X-Twilio-Signature", ""),
                    idempotency_token=self.headers.get("I-Twilio-Idempotency-Token", ""),
                )
                status = receiver.record(callback)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        server_class = IPv6HTTPServer if ipv6 else ThreadingHTTPServer
        self._server = server_class(("::1" if ipv6 else "127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def record(self, callback: ReceivedCallback) -> int:
        with self._condition:
            self.attempts.append(callback)
            failing = self.fail_first > 0
            if failing:
                self.fail_first -= 1
            else:
                self.received.append(callback)
            self._condition.notify_all()
        return 500 if failing else 200

    def url(self, path: str = "/twilio/status", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self._server.server_address[1]}{path}"

    def wait_for(self, count: int) -> list[ReceivedCallback]:
        with self._condition:
            arrived = self._condition.wait_for(
                lambda: len(self.received) >= count, timeout=WAIT_SECONDS
            )
            assert arrived, f"expected {count} callbacks, got {len(self.received)}"
            return list(self.received)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def account_sid() -> str:
    return new_account_sid()


@pytest.fixture
def emulator(account_sid: str, clock: FakeClock) -> Iterator[TwilioEmulator]:
    with TwilioEmulator(
        account_sid,
        AUTH_TOKEN,
        clock=clock,
        paused=True,
        callback_backoff_seconds=0.01,
        callback_timeout_seconds=2.0,
    ) as running:
        yield running


@pytest.fixture
def client(emulator: TwilioEmulator, account_sid: str) -> Client:
    return sdk_client(emulator, account_sid, AUTH_TOKEN)


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    running = CallbackReceiver()
    running.start()
    yield running
    running.stop()


def sdk_client(emulator: TwilioEmulator, account_sid: str, auth_token: str) -> Client:
    # Domain.absolute_url joins the domain's base_url and the resource path, so pointing the
    # Api domain at the emulator redirects every Messages call, paging links included.
    client = Client(account_sid, auth_token)
    client.api.base_url = emulator.base_url
    return client


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def by_sid(emulator: TwilioEmulator) -> dict[str, dict[str, Any]]:
    return {message["sid"]: message for message in emulator.messages()}


def test_create_returns_twilio_resource(client: Client, account_sid: str, clock: FakeClock) -> None:
    message = client.messages.create(to=US_MOBILE, from_=SENDER, body="Your code is 123456")

    assert MESSAGE_SID_PATTERN.fullmatch(message.sid)
    assert message.account_sid == account_sid
    assert message.status == "queued"
    assert message.to == US_MOBILE
    assert message.from_ == SENDER
    assert message.body == "Your code is 123456"
    assert message.num_segments == "1"
    assert message.direction == "outbound-api"
    assert message.api_version == "2010-04-01"
    assert message.date_created == clock.now
    assert message.date_updated == clock.now
    assert message.date_sent is None
    assert message.error_code is None
    assert message.error_message is None
    assert message.price is None
    assert message.messaging_service_sid is None
    assert message.uri == f"/2010-04-01/Accounts/{account_sid}/Messages/{message.sid}.json"


def test_create_with_service_accepted(client: Client, emulator: TwilioEmulator) -> None:
    service_sid = new_messaging_service_sid()

    message = client.messages.create(to=US_MOBILE, messaging_service_sid=service_sid, body="Hi")
    emulator.drain_all()

    assert message.status == "accepted"
    assert message.messaging_service_sid == service_sid
    assert message.from_ is None
    record = by_sid(emulator)[message.sid]
    assert record["status_history"] == ["accepted", "queued", "sending", "sent", "delivered"]


def test_fetch_follows_status(client: Client, emulator: TwilioEmulator, clock: FakeClock) -> None:
    created = client.messages.create(to=US_MOBILE, from_=SENDER, body="Status check")

    queued = client.messages(created.sid).fetch()
    clock.advance(5)
    emulator.drain_all()
    delivered = client.messages(created.sid).fetch()

    assert queued.status == "queued"
    assert queued.date_sent is None
    assert delivered.status == "delivered"
    assert delivered.date_sent == clock.now
    assert delivered.date_updated == clock.now
    assert delivered.date_created == clock.now - timedelta(seconds=5)


def test_fetch_unknown_sid_404(client: Client) -> None:
    with pytest.raises(TwilioRestException) as caught:
        client.messages("SM" + "0" * 32).fetch()

    assert caught.value.status == 404
    assert caught.value.code == 20404


def test_list_pages_newest_first(client: Client) -> None:
    created = [
        client.messages.create(to=US_MOBILE, from_=SENDER, body=f"Notice {index}")
        for index in range(5)
    ]
    other = client.messages.create(to=CN_MOBILE, from_=SENDER, body="Other recipient")

    listed = client.messages.list(page_size=2)
    filtered = client.messages.list(to=US_MOBILE, page_size=2)
    limited = client.messages.list(limit=3)

    assert [message.sid for message in listed] == [other.sid] + [
        message.sid for message in reversed(created)
    ]
    assert [message.sid for message in filtered] == [message.sid for message in reversed(created)]
    assert len(limited) == 3


def test_list_page_shape(emulator: TwilioEmulator, client: Client, account_sid: str) -> None:
    for index in range(3):
        client.messages.create(to=US_MOBILE, from_=SENDER, body=f"Page {index}")

    response = requests.get(
        f"{emulator.base_url}/2010-04-01/Accounts/{account_sid}/Messages.json",
        params={"PageSize": 2},
        auth=(account_sid, AUTH_TOKEN),
        timeout=WAIT_SECONDS,
    )
    page = response.json()

    assert response.status_code == 200
    assert len(page["messages"]) == 2
    assert page["page"] == 0
    assert page["page_size"] == 2
    assert page["previous_page_uri"] is None
    assert page["next_page_uri"].endswith("Messages.json?PageSize=2&Page=1")
    assert page["uri"].endswith("Messages.json?PageSize=2&Page=0")


def test_auth_wrong_token_rejected(emulator: TwilioEmulator, account_sid: str) -> None:
    client = sdk_client(emulator, account_sid, "wrong-token")

    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=US_MOBILE, from_=SENDER, body="Hi")

    assert caught.value.status == 401
    assert caught.value.code == 20003
    assert emulator.messages() == []


def test_auth_other_account_rejected(emulator: TwilioEmulator) -> None:
    client = sdk_client(emulator, new_account_sid(), AUTH_TOKEN)

    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=US_MOBILE, from_=SENDER, body="Hi")

    assert caught.value.status == 401
    assert caught.value.code == 20003


def test_auth_error_body_shape(emulator: TwilioEmulator, account_sid: str) -> None:
    response = requests.post(
        f"{emulator.base_url}/2010-04-01/Accounts/{account_sid}/Messages.json",
        data={"To": US_MOBILE, "From": SENDER, "Body": "Hi"},
        timeout=WAIT_SECONDS,
    )

    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_auth_path_account_mismatch(emulator: TwilioEmulator, account_sid: str) -> None:
    response = requests.get(
        f"{emulator.base_url}/2010-04-01/Accounts/{new_account_sid()}/Messages.json",
        auth=(account_sid, AUTH_TOKEN),
        timeout=WAIT_SECONDS,
    )

    assert response.status_code == 404
    assert response.json()["code"] == 20404


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"to": "", "from_": SENDER, "body": "Hi"}, 21604),
        ({"to": "13800138000", "from_": SENDER, "body": "Hi"}, 21211),
        ({"to": "+86 138 0013 8000", "from_": SENDER, "body": "Hi"}, 21211),
        ({"to": "+1234567", "from_": SENDER, "body": "Hi"}, 21211),
        ({"to": "+1234567890123456", "from_": SENDER, "body": "Hi"}, 21211),
        ({"to": US_MOBILE, "body": "Hi"}, 21603),
        ({"to": US_MOBILE, "from_": "+1", "body": "Hi"}, 21212),
        ({"to": US_MOBILE, "messaging_service_sid": "MG123", "body": "Hi"}, 21701),
        ({"to": US_MOBILE, "from_": SENDER}, 21602),
        ({"to": US_MOBILE, "from_": SENDER, "body": ""}, 21602),
        ({"to": US_MOBILE, "from_": SENDER, "body": "x" * 1601}, 21617),
        ({"to": US_MOBILE, "from_": SENDER, "body": "Hi", "validity_period": 0}, 21624),
        ({"to": US_MOBILE, "from_": SENDER, "body": "Hi", "validity_period": 36001}, 21624),
        ({"to": US_MOBILE, "from_": SENDER, "body": "Hi", "status_callback": "ftp://x/"}, 21609),
    ],
)
def test_create_invalid_parameters(
    client: Client, emulator: TwilioEmulator, arguments: dict[str, Any], code: int
) -> None:
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(**arguments)

    assert caught.value.status == 400
    assert caught.value.code == code
    assert emulator.messages() == []


def test_create_accepts_boundaries(client: Client) -> None:
    shortest = client.messages.create(to="+12345678", from_="IDSentry", body="x" * 1600)
    longest = client.messages.create(
        to="+123456789012345", from_=SENDER, body="Hi", validity_period=1
    )

    assert shortest.status == "queued"
    assert longest.status == "queued"


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, "1"),
        ("a" * 161, "2"),
        ("a" * 306, "2"),
        ("a" * 307, "3"),
        ("€" * 80, "1"),
        ("€" * 81, "2"),
        ("中" * 70, "1"),
        ("中" * 71, "2"),
        ("中" * 134, "2"),
        ("中" * 135, "3"),
        ("a" * 69 + "中", "1"),
        ("a" * 159 + "中", "3"),
    ],
)
def test_segments_reported(client: Client, body: str, segments: str) -> None:
    message = client.messages.create(to=US_MOBILE, from_=SENDER, body=body)

    assert message.num_segments == segments


def test_segments_encoding() -> None:
    assert count_segments("Hello @ £5 {ok}").encoding == "GSM-7"
    assert count_segments("您好").encoding == "UCS-2"
    assert count_segments("ok 😀").encoding == "UCS-2"
    # 152 single septets plus one escape pair: the pair does not fit in the first part.
    assert count_segments("a" * 152 + "€" + "a" * 10).count == 2
    assert count_segments("a" * 152 + "€" + "a" * 152).count == 3
    # A surrogate pair is two UTF-16 units and is never split across parts.
    assert count_segments("😀" * 35).count == 1
    assert count_segments("😀" * 36).count == 2


def test_drain_once_orders_per_sender(client: Client, emulator: TwilioEmulator) -> None:
    first_a = client.messages.create(to=US_MOBILE, from_=SENDER, body="A1")
    first_b = client.messages.create(to=US_MOBILE, from_=OTHER_SENDER, body="B1")
    second_a = client.messages.create(to=US_MOBILE, from_=SENDER, body="A2")
    third_a = client.messages.create(to=US_MOBILE, from_=SENDER, body="A3")
    second_b = client.messages.create(to=US_MOBILE, from_=OTHER_SENDER, body="B2")

    steps = []
    for _ in range(4):
        sent = emulator.drain_once()
        statuses = by_sid(emulator)
        delivered = {sid for sid, record in statuses.items() if record["status"] == "delivered"}
        steps.append((sent, delivered))

    assert steps[0] == (2, {first_a.sid, first_b.sid})
    assert steps[1] == (2, {first_a.sid, first_b.sid, second_a.sid, second_b.sid})
    assert steps[2][0] == 1
    assert third_a.sid in steps[2][1]
    assert steps[3][0] == 0


def test_worker_drains_in_order(
    client: Client, emulator: TwilioEmulator, receiver: CallbackReceiver
) -> None:
    plan = [SENDER, OTHER_SENDER, SENDER, SENDER, OTHER_SENDER, SENDER, OTHER_SENDER]
    created = [
        client.messages.create(
            to=US_MOBILE, from_=sender, body=f"Ordered {index}", status_callback=receiver.url()
        )
        for index, sender in enumerate(plan)
    ]

    emulator.resume()
    callbacks = receiver.wait_for(2 * len(created))

    sent_order = [c.params["MessageSid"] for c in callbacks if c.params["MessageStatus"] == "sent"]
    for sender in (SENDER, OTHER_SENDER):
        expected = [message.sid for message in created if message.from_ == sender]
        assert [sid for sid in sent_order if sid in expected] == expected
    assert all(record["status"] == "delivered" for record in emulator.messages())


def test_status_callbacks_signed(
    client: Client, emulator: TwilioEmulator, receiver: CallbackReceiver, account_sid: str
) -> None:
    url = receiver.url("/twilio/status?deployment=local&kind=otp")
    message = client.messages.create(to=US_MOBILE, from_=SENDER, body="Signed", status_callback=url)

    emulator.drain_all()
    callbacks = receiver.wait_for(2)

    validator = RequestValidator(AUTH_TOKEN)
    assert [callback.params["MessageStatus"] for callback in callbacks] == ["sent", "delivered"]
    for callback in callbacks:
        assert callback.url == url
        assert validator.validate(callback.url, callback.params, callback.signature)
        assert not RequestValidator("other-token").validate(
            callback.url, callback.params, callback.signature
        )
        assert not validator.validate(
            callback.url, {**callback.params, "MessageStatus": "failed"}, callback.signature
        )
        assert callback.params["MessageSid"] == message.sid
        assert callback.params["SmsSid"] == message.sid
        assert callback.params["SmsStatus"] == callback.params["MessageStatus"]
        assert callback.params["AccountSid"] == account_sid
        assert callback.params["From"] == SENDER
        assert callback.params["To"] == US_MOBILE
        assert callback.params["ApiVersion"] == "2010-04-01"
        assert "ErrorCode" not in callback.params
    assert callbacks[0].idempotency_token != callbacks[1].idempotency_token


def test_callback_to_localhost_delivered(
    client: Client, emulator: TwilioEmulator, receiver: CallbackReceiver
) -> None:
    url = receiver.url(host="localhost")
    client.messages.create(to=US_MOBILE, from_=SENDER, body="Local", status_callback=url)

    emulator.drain_all()
    callbacks = receiver.wait_for(2)

    assert callbacks[0].url == url
    assert RequestValidator(AUTH_TOKEN).validate(url, callbacks[0].params, callbacks[0].signature)


def test_callback_to_ipv6_loopback(client: Client, emulator: TwilioEmulator) -> None:
    try:
        receiver = CallbackReceiver(ipv6=True)
    except OSError:
        pytest.skip("IPv6 loopback is not available on this machine")
    receiver.start()
    url = receiver.url(host="[::1]")

    try:
        client.messages.create(to=US_MOBILE, from_=SENDER, body="Six", status_callback=url)
        emulator.drain_all()
        callbacks = receiver.wait_for(2)
    finally:
        receiver.stop()

    assert callbacks[0].url == url
    assert RequestValidator(AUTH_TOKEN).validate(url, callbacks[0].params, callbacks[0].signature)


def test_callback_retried_after_error(
    client: Client, emulator: TwilioEmulator, receiver: CallbackReceiver
) -> None:
    receiver.fail_first = 2
    client.messages.create(to=US_MOBILE, from_=SENDER, body="Retry", status_callback=receiver.url())

    emulator.drain_all()
    callbacks = receiver.wait_for(2)
    assert emulator.wait_for_callbacks(WAIT_SECONDS)

    first_three = receiver.attempts[:3]
    assert [callback.params["MessageStatus"] for callback in first_three] == ["sent"] * 3
    assert len({callback.idempotency_token for callback in first_three}) == 1
    assert [callback.params["MessageStatus"] for callback in callbacks] == ["sent", "delivered"]
    assert emulator.callback_counts() == {"delivered": 2, "dropped": 0, "skipped": 0}


def test_callback_dropped_worker_survives(
    client: Client,
    emulator: TwilioEmulator,
    receiver: CallbackReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="infra.local.emulators")
    unreachable = f"http://127.0.0.1:{closed_port()}/status"
    lost = client.messages.create(
        to=US_MOBILE, from_=SENDER, body="Lost", status_callback=unreachable
    )

    emulator.drain_all()
    assert emulator.wait_for_callbacks(WAIT_SECONDS)
    kept = client.messages.create(
        to=US_MOBILE, from_=SENDER, body="Kept", status_callback=receiver.url()
    )
    emulator.resume()
    callbacks = receiver.wait_for(2)

    dropped = [
        r for r in caplog.records if r.getMessage() == "status callback dropped after retries"
    ]
    assert [record.__dict__["message_sid"] for record in dropped] == [lost.sid, lost.sid]
    assert emulator.callback_counts()["dropped"] == 2
    assert [callback.params["MessageSid"] for callback in callbacks] == [kept.sid, kept.sid]
    assert by_sid(emulator)[lost.sid]["status"] == "delivered"


@pytest.mark.parametrize(
    "url",
    [
        "http://callbacks.example.com/twilio/status",
        "https://127.0.0.1:8443/twilio/status",
        "http://127.0.0.1.example.com/twilio/status",
        "http://127.0.0.1@callbacks.example.com/twilio/status",
        "http://[::ffff:127.0.0.1]/twilio/status",
    ],
)
def test_callback_non_loopback_skipped(
    client: Client,
    emulator: TwilioEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    url: str,
) -> None:
    opened: list[tuple[str, int]] = []

    def refuse_connection(host: str, port: int, timeout: float) -> Any:
        opened.append((host, port))
        raise OSError("the test blocks every connection")

    monkeypatch.setattr(twilio_emulator, "_open_connection", refuse_connection)
    caplog.set_level(logging.WARNING, logger="infra.local.emulators")
    message = client.messages.create(to=US_MOBILE, from_=SENDER, body="Away", status_callback=url)

    emulator.drain_all()
    assert emulator.wait_for_callbacks(WAIT_SECONDS)

    skipped = [r for r in caplog.records if r.getMessage().startswith("status callback skipped")]
    assert opened == []
    assert emulator.callback_counts() == {"delivered": 0, "dropped": 0, "skipped": 2}
    assert [record.__dict__["message_sid"] for record in skipped] == [message.sid, message.sid]
    assert by_sid(emulator)[message.sid]["status"] == "delivered"


def test_validity_period_expires(
    client: Client, emulator: TwilioEmulator, receiver: CallbackReceiver, clock: FakeClock
) -> None:
    expired = client.messages.create(
        to=US_MOBILE,
        from_=SENDER,
        body="Too late",
        validity_period=60,
        status_callback=receiver.url(),
    )
    clock.advance(61)
    emulator.drain_all()
    callbacks = receiver.wait_for(1)

    in_time = client.messages.create(
        to=US_MOBILE, from_=SENDER, body="Just in time", validity_period=60
    )
    clock.advance(60)
    emulator.drain_all()

    fetched = client.messages(expired.sid).fetch()
    assert fetched.status == "failed"
    assert fetched.error_code == 30036
    assert fetched.error_message == "Validity Period Expired"
    assert fetched.date_sent is None
    assert by_sid(emulator)[expired.sid]["status_history"] == ["queued", "failed"]
    assert [callback.params["MessageStatus"] for callback in callbacks] == ["failed"]
    assert callbacks[0].params["ErrorCode"] == "30036"
    assert client.messages(in_time.sid).fetch().status == "delivered"


def test_default_validity_period(
    client: Client, emulator: TwilioEmulator, clock: FakeClock
) -> None:
    kept = client.messages.create(to=US_MOBILE, from_=SENDER, body="Ten hours")
    clock.advance(36000)
    emulator.drain_all()
    expired = client.messages.create(to=US_MOBILE, from_=SENDER, body="Ten hours and one")
    clock.advance(36001)
    emulator.drain_all()

    assert client.messages(kept.sid).fetch().status == "delivered"
    assert client.messages(expired.sid).fetch().error_code == 30036


def test_china_duplicate_body_filtered(
    client: Client, emulator: TwilioEmulator, receiver: CallbackReceiver, clock: FakeClock
) -> None:
    body = "【身份哨兵】您的验证码是 482913"
    first = client.messages.create(to=CN_MOBILE, from_=SENDER, body=body)
    emulator.drain_all()
    clock.advance(23 * 3600)
    repeated = client.messages.create(
        to=CN_MOBILE, from_=SENDER, body=body, status_callback=receiver.url()
    )
    emulator.drain_all()
    callbacks = receiver.wait_for(2)
    clock.advance(3601)
    next_day = client.messages.create(to=CN_MOBILE, from_=SENDER, body=body)
    emulator.drain_all()

    filtered = client.messages(repeated.sid).fetch()
    assert client.messages(first.sid).fetch().status == "delivered"
    assert filtered.status == "undelivered"
    assert filtered.error_code == 30007
    assert filtered.error_message == "Message filtered"
    assert [callback.params["MessageStatus"] for callback in callbacks] == ["sent", "undelivered"]
    assert callbacks[1].params["ErrorCode"] == "30007"
    assert client.messages(next_day.sid).fetch().status == "delivered"


def test_duplicate_body_allowed_elsewhere(client: Client, emulator: TwilioEmulator) -> None:
    sent = [
        client.messages.create(to=to, from_=SENDER, body="Same text")
        for to in (US_MOBILE, US_MOBILE, CN_MOBILE, OTHER_CN_MOBILE)
    ]

    emulator.drain_all()

    assert [client.messages(m.sid).fetch().status for m in sent] == ["delivered"] * 4


def test_china_fifth_message_held(
    client: Client, emulator: TwilioEmulator, clock: FakeClock
) -> None:
    sids = []
    for index in range(6):
        message = client.messages.create(to=CN_MOBILE, from_=SENDER, body=f"通知 {index}")
        emulator.drain_all()
        sids.append(message.sid)
        clock.advance(3600)
    other = client.messages.create(to=OTHER_CN_MOBILE, from_=SENDER, body="通知 other")
    emulator.drain_all()
    # 26 hours after the first message, only the ones sent at hours 3, 4 and 5 are in the window.
    clock.advance(20 * 3600 + 1)
    later = client.messages.create(to=CN_MOBILE, from_=SENDER, body="通知 later")
    emulator.drain_all()

    records = by_sid(emulator)
    assert [records[sid]["status"] for sid in sids] == ["delivered"] * 4 + ["sent"] * 2
    assert [records[sid]["held_for_review"] for sid in sids] == [False] * 4 + [True] * 2
    assert client.messages(sids[4]).fetch().status == "sent"
    assert records[other.sid]["status"] == "delivered"
    assert records[later.sid]["status"] == "delivered"
    assert records[later.sid]["held_for_review"] is False


def test_fail_next_creates_429(client: Client, emulator: TwilioEmulator) -> None:
    emulator.fail_next_creates(2)

    for _ in range(2):
        with pytest.raises(TwilioRestException) as caught:
            client.messages.create(to=US_MOBILE, from_=SENDER, body="Throttled")
        assert caught.value.status == 429
        assert caught.value.code == 20429
    accepted = client.messages.create(to=US_MOBILE, from_=SENDER, body="Accepted")

    assert [record["sid"] for record in emulator.messages()] == [accepted.sid]


@pytest.mark.parametrize(("status", "code"), [(500, 20500), (503, 20503)])
def test_fail_next_creates_server_error(
    client: Client, emulator: TwilioEmulator, status: int, code: int
) -> None:
    response = requests.post(
        f"{emulator.base_url}/_emulator/faults",
        json={"count": 1, "status": status},
        timeout=WAIT_SECONDS,
    )

    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=US_MOBILE, from_=SENDER, body="Unavailable")
    accepted = client.messages.create(to=US_MOBILE, from_=SENDER, body="Back")

    assert response.status_code == 200
    assert caught.value.status == status
    assert caught.value.code == code
    assert accepted.status == "queued"


def test_fail_next_creates_rejects_status(emulator: TwilioEmulator) -> None:
    with pytest.raises(ValueError, match="status"):
        emulator.fail_next_creates(1, status=404)
    response = requests.post(
        f"{emulator.base_url}/_emulator/faults", json={"count": -1}, timeout=WAIT_SECONDS
    )

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "field": "count"}


def test_fail_deliveries_to(client: Client, emulator: TwilioEmulator) -> None:
    emulator.fail_deliveries_to(US_MOBILE, error_code=30005)
    message = client.messages.create(to=US_MOBILE, from_=SENDER, body="Nobody there")

    emulator.drain_all()
    fetched = client.messages(message.sid).fetch()

    assert fetched.status == "undelivered"
    assert fetched.error_code == 30005


def test_control_api_lists_and_resets(client: Client, emulator: TwilioEmulator) -> None:
    message = client.messages.create(to=CN_MOBILE, from_=SENDER, body="您好")
    emulator.drain_all()

    listed = requests.get(f"{emulator.base_url}/_emulator/messages", timeout=WAIT_SECONDS).json()
    reset = requests.post(f"{emulator.base_url}/_emulator/reset", timeout=WAIT_SECONDS)
    after = requests.get(f"{emulator.base_url}/_emulator/messages", timeout=WAIT_SECONDS).json()

    record = listed["messages"][0]
    assert record["sid"] == message.sid
    assert record["to"] == CN_MOBILE
    assert record["from"] == SENDER
    assert record["body"] == "您好"
    assert record["status"] == "delivered"
    assert record["error_code"] is None
    assert record["num_segments"] == 1
    assert record["held_for_review"] is False
    assert reset.status_code == 200
    assert after == {"messages": []}
    assert emulator.messages() == []


def test_control_drain_endpoint(client: Client, emulator: TwilioEmulator) -> None:
    client.messages.create(to=US_MOBILE, from_=SENDER, body="One")
    client.messages.create(to=US_MOBILE, from_=SENDER, body="Two")

    response = requests.post(f"{emulator.base_url}/_emulator/drain", timeout=WAIT_SECONDS)

    assert response.json() == {"sent": 2}
    assert [record["status"] for record in emulator.messages()] == ["delivered"] * 2


def test_base_url_requires_start(account_sid: str) -> None:
    emulator = TwilioEmulator(account_sid, AUTH_TOKEN)

    with pytest.raises(RuntimeError, match="not started"):
        _ = emulator.base_url
    with emulator:
        assert emulator.base_url.startswith("http://127.0.0.1:")
    with pytest.raises(RuntimeError, match="not started"):
        _ = emulator.base_url


def test_constructor_rejects_bad_sid() -> None:
    with pytest.raises(ValueError, match="account_sid"):
        TwilioEmulator("AC123", AUTH_TOKEN)


def test_logs_contain_no_personal_data(
    client: Client,
    emulator: TwilioEmulator,
    receiver: CallbackReceiver,
    clock: FakeClock,
    account_sid: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The product pins the SDK's loggers to WARNING because at INFO they print request data.
    caplog.set_level(logging.WARNING, logger="twilio")
    caplog.set_level(logging.WARNING, logger="urllib3")
    caplog.set_level(logging.DEBUG)
    otp_body = "【身份哨兵】您的验证码是 482913"
    alert_body = "IDSentry alert: breach-unique-zq7731"
    service_sid = new_messaging_service_sid()

    for _ in range(2):
        client.messages.create(
            to=CN_MOBILE, from_=SENDER, body=otp_body, status_callback=receiver.url()
        )
    client.messages.create(
        to=US_MOBILE,
        messaging_service_sid=service_sid,
        body=alert_body,
        status_callback="http://callbacks.example.com/status",
    )
    client.messages.create(
        to=OTHER_CN_MOBILE,
        from_=SENDER,
        body=alert_body,
        validity_period=1,
        status_callback=f"http://127.0.0.1:{closed_port()}/status",
    )
    with pytest.raises(TwilioRestException):
        client.messages.create(to="+86 13800138000", from_=SENDER, body=otp_body)
    emulator.fail_next_creates(1)
    with pytest.raises(TwilioRestException):
        client.messages.create(to=CN_MOBILE, from_=SENDER, body=otp_body)
    clock.advance(2)
    emulator.drain_all()
    receiver.wait_for(4)
    assert emulator.wait_for_callbacks(WAIT_SECONDS)
    client.messages.list(to=CN_MOBILE)
    requests.get(f"{emulator.base_url}/_emulator/messages", timeout=WAIT_SECONDS)
    misrouted = requests.get(
        f"{emulator.base_url}/2010-04-01/Accounts/{account_sid}/Messages/{CN_MOBILE}.json",
        auth=(account_sid, AUTH_TOKEN),
        timeout=WAIT_SECONDS,
    )
    assert misrouted.status_code == 404
    emulator.reset()

    numbers = [CN_MOBILE, OTHER_CN_MOBILE, US_MOBILE, SENDER]
    personal = [number.removeprefix("+") for number in numbers]
    # Body fragments with letters outside hex, so a random message sid cannot contain them.
    personal += ["13800138000", "13900139000", otp_body, alert_body, "验证码是 482913", "zq7731"]
    emulator_records = [r for r in caplog.records if r.name.startswith("infra.local.emulators")]
    assert len(emulator_records) > 10
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        for value in personal:
            assert value not in text, f"{record.name}: {record.msg}"


@pytest.mark.parametrize("code", sorted(CREATE_ERRORS))
def test_fail_creates_to_number(client: Client, emulator: TwilioEmulator, code: int) -> None:
    emulator.fail_creates_to(US_MOBILE, code)

    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=US_MOBILE, from_=SENDER, body="Rejected")
    other = client.messages.create(to=OTHER_US_MOBILE, from_=SENDER, body="Accepted")

    assert caught.value.status == 400
    assert caught.value.code == code
    assert caught.value.msg.endswith(CREATE_ERRORS[code])
    assert [record["sid"] for record in emulator.messages()] == [other.sid]


def test_create_error_body_shape(emulator: TwilioEmulator, account_sid: str) -> None:
    emulator.fail_creates_to(US_MOBILE, 21610)

    response = requests.post(
        f"{emulator.base_url}/2010-04-01/Accounts/{account_sid}/Messages.json",
        data={"To": US_MOBILE, "From": SENDER, "Body": "Rejected"},
        auth=(account_sid, AUTH_TOKEN),
        timeout=WAIT_SECONDS,
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": 21610,
        "message": "Attempt to send to unsubscribed recipient",
        "more_info": "https://www.twilio.com/docs/errors/21610",
        "status": 400,
    }


def test_create_errors_control_endpoint(client: Client, emulator: TwilioEmulator) -> None:
    response = requests.post(
        f"{emulator.base_url}/_emulator/create-errors",
        json={"to": US_MOBILE, "code": 21614},
        timeout=WAIT_SECONDS,
    )

    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=US_MOBILE, from_=SENDER, body="Landline")

    assert response.status_code == 200
    assert caught.value.code == 21614


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"to": US_MOBILE, "code": 30003}, "code"),
        ({"to": "4155550100", "code": 21610}, "to"),
        ({"code": 21610}, "to"),
        ([], "body"),
    ],
)
def test_create_errors_control_rejects(
    emulator: TwilioEmulator, payload: object, field: str
) -> None:
    response = requests.post(
        f"{emulator.base_url}/_emulator/create-errors", json=payload, timeout=WAIT_SECONDS
    )

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "field": field}


def test_fail_creates_to_rejects_code(emulator: TwilioEmulator) -> None:
    with pytest.raises(ValueError, match="error_code"):
        emulator.fail_creates_to(US_MOBILE, 30003)


def test_reset_clears_create_errors(client: Client, emulator: TwilioEmulator) -> None:
    emulator.fail_creates_to(US_MOBILE, 21211)

    emulator.reset()
    message = client.messages.create(to=US_MOBILE, from_=SENDER, body="Allowed again")

    assert message.status == "queued"


def test_callbacks_reversed(
    client: Client, emulator: TwilioEmulator, receiver: CallbackReceiver
) -> None:
    emulator.set_callback_order("reversed")
    client.messages.create(to=US_MOBILE, from_=SENDER, body="Late", status_callback=receiver.url())

    emulator.drain_all()
    callbacks = receiver.wait_for(2)

    assert [callback.params["MessageStatus"] for callback in callbacks] == ["delivered", "sent"]


def test_callbacks_shuffled_with_duplicate(
    client: Client, emulator: TwilioEmulator, receiver: CallbackReceiver
) -> None:
    emulator.set_callback_order("shuffled", duplicate=True, seed=3)
    messages = [
        client.messages.create(
            to=US_MOBILE, from_=SENDER, body=f"Shuffled {index}", status_callback=receiver.url()
        )
        for index in range(6)
    ]

    emulator.drain_all()
    callbacks = receiver.wait_for(3 * len(messages))
    assert emulator.wait_for_callbacks(WAIT_SECONDS)

    validator = RequestValidator(AUTH_TOKEN)
    orders = []
    for message in messages:
        own = [c for c in callbacks if c.params["MessageSid"] == message.sid]
        statuses = [c.params["MessageStatus"] for c in own]
        assert len(own) == 3
        assert set(statuses) == {"sent", "delivered"}
        tokens = [c.idempotency_token for c in own]
        assert len(set(tokens)) == 2, "the repeated callback keeps its idempotency token"
        assert all(validator.validate(c.url, c.params, c.signature) for c in own)
        orders.append(tuple(statuses))
    assert len(callbacks) == 3 * len(messages)
    assert any(order[0] == "delivered" for order in orders), "no callback arrived out of order"


def test_callbacks_in_order_again_after_reset(
    client: Client, emulator: TwilioEmulator, receiver: CallbackReceiver
) -> None:
    emulator.set_callback_order("reversed", duplicate=True)
    emulator.reset()
    client.messages.create(to=US_MOBILE, from_=SENDER, body="Plain", status_callback=receiver.url())

    emulator.drain_all()
    callbacks = receiver.wait_for(2)
    assert emulator.wait_for_callbacks(WAIT_SECONDS)

    assert [callback.params["MessageStatus"] for callback in receiver.received] == [
        "sent",
        "delivered",
    ]
    assert len(callbacks) == 2


def test_callback_order_control_endpoint(
    client: Client, emulator: TwilioEmulator, receiver: CallbackReceiver
) -> None:
    rejected = requests.post(
        f"{emulator.base_url}/_emulator/callback-order",
        json={"order": "random"},
        timeout=WAIT_SECONDS,
    )
    accepted = requests.post(
        f"{emulator.base_url}/_emulator/callback-order",
        json={"order": "reversed", "duplicate": True, "seed": 1},
        timeout=WAIT_SECONDS,
    )
    client.messages.create(to=US_MOBILE, from_=SENDER, body="Twice", status_callback=receiver.url())

    emulator.drain_all()
    callbacks = receiver.wait_for(3)

    assert rejected.status_code == 400
    assert rejected.json() == {"error": "invalid_request", "field": "order"}
    assert accepted.json() == {"order": "reversed", "duplicate": True}
    assert [c.params["MessageStatus"] for c in callbacks[:2]] == ["delivered", "sent"]


def test_set_callback_order_rejects(emulator: TwilioEmulator) -> None:
    with pytest.raises(ValueError, match="order"):
        emulator.set_callback_order("random")


def test_send_inbound_signed(emulator: TwilioEmulator, receiver: CallbackReceiver) -> None:
    service_sid = new_messaging_service_sid()
    url = receiver.url("/v1/webhooks/twilio/inbound")
    with TwilioEmulator(
        emulator.account_sid,
        AUTH_TOKEN,
        paused=True,
        inbound_url=url,
        messaging_service_sid=service_sid,
    ) as inbound:
        reply = inbound.send_inbound(US_MOBILE, "退订")
    received = receiver.wait_for(1)[0]

    assert reply.status == 200
    assert received.url == url
    assert RequestValidator(AUTH_TOKEN).validate(url, received.params, received.signature)
    assert received.params["Body"] == "退订"
    assert received.params["From"] == US_MOBILE
    assert received.params["To"] == "+15005550006"
    assert received.params["MessagingServiceSid"] == service_sid
    assert received.params["AccountSid"] == emulator.account_sid
    assert MESSAGE_SID_PATTERN.fullmatch(received.params["MessageSid"])
    assert received.params["SmsSid"] == received.params["MessageSid"]
    assert received.params["SmsMessageSid"] == received.params["MessageSid"]
    assert received.params["SmsStatus"] == "received"
    assert received.params["NumMedia"] == "0"
    assert received.params["NumSegments"] == "1"
    assert received.params["ApiVersion"] == "2010-04-01"


def test_send_inbound_to_other_number(emulator: TwilioEmulator, receiver: CallbackReceiver) -> None:
    emulator.set_inbound_url(receiver.url())

    emulator.send_inbound(US_MOBILE, "STOP", to=SENDER_TWO)
    received = receiver.wait_for(1)[0]

    assert received.params["To"] == SENDER_TWO
    assert "MessagingServiceSid" not in received.params


def test_send_inbound_failed_reply(emulator: TwilioEmulator, receiver: CallbackReceiver) -> None:
    receiver.fail_first = 1
    emulator.set_inbound_url(receiver.url())

    reply = emulator.send_inbound(US_MOBILE, "STOP")

    assert reply.status == 500
    assert len(receiver.attempts) == 1, "an incoming message webhook is not retried"


@pytest.mark.parametrize(
    "url", ["http://example.com/inbound", "https://127.0.0.1/inbound", "http://10.0.0.1/inbound"]
)
def test_inbound_url_must_be_loopback(emulator: TwilioEmulator, url: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        emulator.set_inbound_url(url)


def test_send_inbound_requires_url(emulator: TwilioEmulator) -> None:
    with pytest.raises(RuntimeError, match="inbound URL"):
        emulator.send_inbound(US_MOBILE, "STOP")


@pytest.mark.parametrize(
    ("from_number", "body"), [("4155550100", "STOP"), (US_MOBILE, ""), (US_MOBILE, "x" * 1601)]
)
def test_send_inbound_rejects_input(
    emulator: TwilioEmulator, receiver: CallbackReceiver, from_number: str, body: str
) -> None:
    emulator.set_inbound_url(receiver.url())

    with pytest.raises(ValueError):
        emulator.send_inbound(from_number, body)
    assert receiver.attempts == []


def test_inbound_control_endpoint(emulator: TwilioEmulator, receiver: CallbackReceiver) -> None:
    unset = requests.post(
        f"{emulator.base_url}/_emulator/inbound",
        json={"from": US_MOBILE, "body": "STOP"},
        timeout=WAIT_SECONDS,
    )
    emulator.set_inbound_url(receiver.url())
    invalid = requests.post(
        f"{emulator.base_url}/_emulator/inbound",
        json={"from": "not a number", "body": "STOP"},
        timeout=WAIT_SECONDS,
    )
    sent = requests.post(
        f"{emulator.base_url}/_emulator/inbound",
        json={"from": US_MOBILE, "body": "START"},
        timeout=WAIT_SECONDS,
    )

    assert unset.status_code == 409
    assert invalid.json() == {"error": "invalid_request", "field": "from"}
    assert sent.status_code == 200
    assert sent.json()["status"] == 200
    assert receiver.wait_for(1)[0].params["Body"] == "START"


def test_inbound_logs_no_personal_data(
    emulator: TwilioEmulator, receiver: CallbackReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator.set_inbound_url(receiver.url())
    body = "退订 unique-qx81"

    emulator.send_inbound(US_MOBILE, body)
    requests.post(
        f"{emulator.base_url}/_emulator/inbound",
        json={"from": US_MOBILE, "body": body},
        timeout=WAIT_SECONDS,
    )

    emulator_records = [r for r in caplog.records if r.name.startswith("infra.local.emulators")]
    assert emulator_records
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        assert US_MOBILE.removeprefix("+") not in text
        assert "qx81" not in text
