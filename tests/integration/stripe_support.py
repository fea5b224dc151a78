"""Test helpers for the local Stripe server and its shim: a loopback-only SDK client and a webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests
import stripe

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
