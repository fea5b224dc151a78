"""The local stack's moto wrapper runs DynamoDB requests one at a time, and nothing else."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from infra.local.moto_app import dynamodb_serial

pytestmark = pytest.mark.unit


class SlowApp:
    """A WSGI app that records how many requests it serves at once."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
        return [b"ok"]


def _serve_together(target: str) -> int:
    app = SlowApp()
    serial = dynamodb_serial(app)
    threads = [
        threading.Thread(target=serial, args=({"HTTP_X_AMZ_TARGET": target}, None))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return app.most


def test_dynamodb_requests_run_alone() -> None:
    assert _serve_together("DynamoDB_20120810.UpdateItem") == 1


def test_other_requests_stay_concurrent() -> None:
    assert _serve_together("AmazonSQS.ReceiveMessage") > 1
