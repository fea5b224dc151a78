"""moto's WSGI application as the local stack serves it, in a thread or in a process of its own.

Three things are added to moto's own application, and one of its checks is made cheaper:
- DynamoDB requests run one at a time (see `dynamodb_serial`);
- SES's suppression list, which moto lacks (`infra.local.emulators.ses_suppression`);
- `GET /_local/ses/sent-messages`, the e-mails SES accepted, so that a caller in another process
  can read them as well as one in the same process;
- SQS's retention check reads the queue's retention period directly (see
  `constant_time_retention_check`);
- TransactWriteItems copies the items it writes, not whole tables, to roll back (see
  `item_level_transaction_rollback`).

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


class _TransactionState(threading.local):
    active = False


def item_level_transaction_rollback() -> None:
    """Make moto's TransactWriteItems save the items it writes instead of whole tables.

    Before it applies a transaction, moto 5 deep-copies every table that the transaction names,
    to put them back if the transaction is cancelled. That cost grows with the table. In moto
    5.2.5 on a busy 2-core machine, a two-write transaction took 20 ms on an empty table and
    80 ms with 500 items. It runs under the lock that serves DynamoDB requests one at a time,
    so a load test slowed down as it wrote. This wrapper saves a copy of each item that the transaction
    names (or notes that it is missing) and puts those back when the transaction raises. moto's
    own rollback then puts back the same table objects, because the wrapper makes moto skip the
    table copies.
    """
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    transaction_apply = DynamoDBBackend.transact_write_items
    if getattr(transaction_apply, "item_level_rollback", False):
        return
    real_copy = dynamodb_models.copy
    state = _TransactionState()

    class CopyModule:
        """moto's `copy` module, whose deepcopy returns a table itself inside a transaction."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real_copy, name)

        @staticmethod
        def deepcopy(value: Any, *args: Any) -> Any:
            if state.active and isinstance(value, Table):
                return value
            return real_copy.deepcopy(value, *args)

    def saved_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[Any]:
        saved = []
        for entry in transact_items:
            operation = next(iter(entry.values()))
            table = backend.get_table(operation["TableName"])
            if "Key" in operation:
                key = operation["Key"]
            else:
                names = [table.hash_key_attr, table.range_key_attr]
                key = {name: operation["Item"][name] for name in names if name is not None}
            hash_value, range_value = backend.get_keys_value(table, key)
            item = table.get_item(hash_value, range_value)
            saved.append((table, hash_value, range_value, real_copy.deepcopy(item)))
        return saved

    def restore(saved: list[Any]) -> None:
        for table, hash_value, range_value, item in reversed(saved):
            if item is None:
                table.delete_item(hash_value, range_value)
            elif range_value is not None:
                table.items[hash_value][range_value] = item
            else:
                table.items[hash_value] = item

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        try:
            saved = saved_items(self, transact_items)
        except Exception:
            # moto's own checks reject this request (an unknown table, a missing key).
            return transaction_apply(self, transact_items)
        state.active = True
        try:
            return transaction_apply(self, transact_items)
        except Exception:
            restore(saved)
            raise
        finally:
            state.active = False

    transact_write_items.item_level_rollback = True  # type: ignore[attr-defined]
    dynamodb_models.copy = CopyModule()  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def build_app() -> WsgiApp:
    """Return moto's application with the local stack's additions."""
    from moto.server import DomainDispatcherApplication, create_backend_app

    from infra.local.emulators.ses_suppression import install as install_ses_suppression_list

    # It must run before the server handles its first sesv2 request.
    install_ses_suppression_list()
    constant_time_retention_check()
    item_level_transaction_rollback()
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
