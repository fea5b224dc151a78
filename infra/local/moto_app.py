"""moto's WSGI application as the local stack serves it, in a thread or in a process of its own.

Three things are added to moto's own application, and one of its checks is made cheaper:
- DynamoDB requests run one at a time (see `dynamodb_serial`);
- SES's suppression list, which moto lacks (`infra.local.emulators.ses_suppression`);
- `GET /_local/ses/sent-messages`, the e-mails SES accepted, so that a caller in another process
  can read them as well as one in the same process;
- SQS's retention check reads the queue's retention period directly (see
  `constant_time_retention_check`).

`python -m infra.local.moto_app --port N` serves the application in a process of its own. It
prints `ready <port>` once it listens and stops when its standard input closes. The bench uses it
so that moto's work runs on a core of its own, beside the process that serves the HTTP API.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

SENT_MESSAGES_PATH = "/_local/ses/sent-messages"
LOOPBACK = "127.0.0.1"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def dynamodb_serial(app: WsgiApp) -> WsgiApp:
    """Wrap moto's WSGI app so that DynamoDB requests run one at a time.

    moto's DynamoDB backend keeps tables in plain dicts without a lock, so two concurrent
    requests can both pass one condition expression, or a query can fail with "dictionary
    changed size during iteration" while a write lands. DynamoDB itself applies each
    conditional write atomically; this lock gives the local stack the same guarantee. Other
    services stay concurrent, because an SQS long poll must not hold the table up.
    """
    lock = threading.Lock()

    def serial_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return app(environ, start_response)
        with lock:
            return list(app(environ, start_response))

    return serial_app


def outbox_entry(sent: Any) -> dict[str, Any]:
    """Describe one message that moto's SES stored, raw (a whole MIME message) or Simple."""
    raw = getattr(sent, "raw_data", None)
    if raw is None:
        body = getattr(sent, "body", None)
        return {
            "to": list(sent.destinations.get("ToAddresses", [])),
            "subject": getattr(sent, "subject", ""),
            "body": body,
            "text": None,
            "html": body,
            "headers": {},
        }

    message = email.message_from_string(raw, policy=email.policy.default)
    parts = {subtype: message.get_body(preferencelist=(subtype,)) for subtype in ("plain", "html")}
    text, html = (part.get_content() if part is not None else None for part in parts.values())
    recipients = message["To"]
    return {
        "to": [address.addr_spec for address in recipients.addresses] if recipients else [],
        "subject": str(message["Subject"] or ""),
        "body": html if html is not None else text,
        "text": text,
        "html": html,
        "headers": {name.lower(): str(value) for name, value in message.items()},
    }


def with_sent_messages(app: WsgiApp) -> WsgiApp:
    """Serve the e-mails that SES accepted at SENT_MESSAGES_PATH, oldest first, as JSON."""

    def outbox_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != SENT_MESSAGES_PATH:
            return app(environ, start_response)

        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        backend = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        body = json.dumps([outbox_entry(sent) for sent in backend.sent_messages]).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return outbox_app


def constant_time_retention_check() -> None:
    """Make moto's SQS retention check read one attribute instead of all of them.

    For every message that a ReceiveMessage returns, moto checks the retention period through
    GetQueueAttributes, which also counts the queue's messages. With a thousand messages queued,
    that made each receive count the queue ten times over and took a seventh of moto's time in
    the notification bench. The outcome of the check is unchanged.
    """
    from moto.core.utils import unix_time
    from moto.sqs.models import Message, SQSBackend

    def is_message_valid_based_on_retention_period(
        self: SQSBackend, queue_name: str, message: Message
    ) -> bool:
        queue = self.get_queue(queue_name)
        retention_s = int(queue.message_retention_period)
        return bool(retention_s + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = (
        is_message_valid_based_on_retention_period
    )


def build_app() -> WsgiApp:
    """Return moto's application with the local stack's additions."""
    from moto.server import DomainDispatcherApplication, create_backend_app

    from infra.local.emulators.ses_suppression import install as install_ses_suppression_list

    # It must run before the server handles its first sesv2 request.
    install_ses_suppression_list()
    constant_time_retention_check()
    return with_sent_messages(dynamodb_serial(DomainDispatcherApplication(create_backend_app)))


def serve(port: int) -> None:
    """Serve build_app() on 127.0.0.1:`port` until standard input closes."""
    from moto.server import MotoRequestHandler
    from werkzeug.serving import make_server

    # werkzeug logs every request line with its URL and query.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(LOOPBACK, port, build_app(), True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="moto", daemon=True)
    thread.start()
    print(f"ready {server.server_port}", flush=True)

    sys.stdin.read()
    server.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve moto for the local stack.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve(parser.parse_args(argv).port)


if __name__ == "__main__":
    main()
