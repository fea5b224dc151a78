"""Test helpers for the local Stripe server and its shim: a loopback-only SDK client, a webhook receiver and raw HTTP calls."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests
import stripe

from idsentry.services.stripe_signature import verify

WAIT_SECONDS = 10.0


class LoopbackOnlyClient(stripe.RequestsClient):
    """The SDK's requests client, rejecting any URL whose host is not 127.0.0.1 and recording calls."""

    def __init__(self) -> None:
        session = requests.Session()
        # Proxy variables from the environment must not reroute loopback requests.
        session.trust_env = False
        super().__init__(session=session, timeout=WAIT_SECONDS)
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
    ) -> tuple[bytes, int, Mapping[str, str]]:
        if urlsplit(url).hostname != "127.0.0.1":
            raise AssertionError(f"stripe SDK tried to reach {url}, outside 127.0.0.1")
        self.calls.append((method, url, dict(headers or {})))
        return super().request(method, url, headers, post_data)


@dataclass(frozen=True)
class Delivery:
    body: bytes
    signature: str

    def event(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document


class WebhookReceiver:
    """A webhook endpoint on 127.0.0.1 that keeps each request's exact body bytes.

    It returns HTTP 500 to the first `failures` requests, then 200.
    """

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.failures = 0
        self._condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                delivery = Delivery(
                    body=self.rfile.read(length),
                    signature=self.headers.get("Stripe-Signature", ""),
                )
                with receiver._condition:
                    failing = receiver.failures > 0
                    if failing:
                        receiver.failures -= 1
                    else:
                        receiver.deliveries.append(delivery)
                    receiver._condition.notify_all()
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1/webhooks/stripe"

    def wait_for(self, count: int) -> list[Delivery]:
        with self._condition:
            arrived = self._condition.wait_for(
                lambda: len(self.deliveries) >= count, timeout=WAIT_SECONDS
            )
            assert arrived, f"expected {count} webhook deliveries, got {len(self.deliveries)}"
            return list(self.deliveries)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def http_call(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResult:
    """Send one request without following redirects, as a browser form or a control call."""
    split = urlsplit(url)
    assert split.hostname == "127.0.0.1"
    connection = http.client.HTTPConnection("127.0.0.1", split.port, timeout=WAIT_SECONDS)
    try:
        target = split.path + (f"?{split.query}" if split.query else "")
        connection.request(method, target, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return HttpResult(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def verified_events(deliveries: list[Delivery], secret: str) -> list[dict[str, Any]]:
    """Return the events of deliveries after checking each signature with `secret`."""
    for delivery in deliveries:
        verify(delivery.body, delivery.signature, [secret], now=int(time.time()))
    return [delivery.event() for delivery in deliveries]
