"""Loopback HTTP server and JSON helpers shared by the local provider emulators."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

LOOPBACK_HOST = "127.0.0.1"
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Request:
    """An HTTP request passed to an emulator: the path without its query string, and the body."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes


@dataclass(frozen=True)
class Response:
    """An HTTP response that an emulator returns to the server."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any) -> Response:
    """Serialise `payload` as a UTF-8 JSON response."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(status=status, body=body)


def parse_json_body(body: bytes) -> Any:
    """Decode a UTF-8 JSON request body; raise ValueError when it is not valid JSON."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("request body is not valid UTF-8 JSON") from exc


class _EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, emulator: LoopbackHTTPServer) -> None:
        self.emulator = emulator
        super().__init__((LOOPBACK_HOST, port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _EmulatorHTTPServer

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes the request line to stderr, and a query string can carry a
        # phone number (Twilio's list filters do), so requests are logged by _dispatch only.
        return

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._write(json_response(413, {"error": "request_too_large"}))
            return

        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=self.rfile.read(length) if length else b"",
        )
        try:
            response = self.server.emulator.handle(request)
        except Exception as exc:
            # Only the exception type is logged: its message may quote request data.
            logger.error(
                "emulator request failed",
                extra={
                    "method": request.method,
                    "path": self.server.emulator.loggable_path(request.path),
                    "error_type": type(exc).__name__,
                },
            )
            response = json_response(500, {"error": "internal_error"})

        self._write(response)
        logger.debug(
            "emulator request handled",
            extra={
                "method": request.method,
                "path": self.server.emulator.loggable_path(request.path),
                "status": response.status,
            },
        )

    def _write(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first, for example after its timeout.
            logger.info("emulator client closed the connection before the response")


class LoopbackHTTPServer:
    """A threaded HTTP server bound to 127.0.0.1 that passes each request to `handle`.

    Port 0 (the default) lets the operating system pick a free port; `base_url` gives the
    chosen one after `start()`. Subclasses implement `handle` and may extend `start`/`stop`
    to run their own worker threads.
    """

    def __init__(self, port: int = 0) -> None:
        self._requested_port = port
        self._server: _EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handle(self, request: Request) -> Response:
        """Return the response to one request; called on the server's request threads."""
        raise NotImplementedError

    def loggable_path(self, path: str) -> str:
        """Return `path` as it may appear in logs; subclasses allow their known routes.

        A client can put anything in a path, a phone number included, so unknown paths are
        replaced by a placeholder.
        """
        return "<unmatched path>"

    @property
    def port(self) -> int:
        """The bound TCP port; raises RuntimeError before `start()`."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started: call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The server's root URL, for example `http://127.0.0.1:54321`, without a trailing slash."""
        return f"http://{LOOPBACK_HOST}:{self.port}"

    def start(self) -> Self:
        """Bind the socket and serve requests on a daemon thread; return self."""
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")

        self._server = _EmulatorHTTPServer(self._requested_port, self)
        # A short poll interval keeps stop() fast; serve_forever checks for shutdown this often.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-http",
            daemon=True,
        )
        self._thread.start()
        logger.info("emulator started", extra={"emulator": type(self).__name__, "port": self.port})
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; calling it twice is harmless."""
        if self._server is None:
            return

        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None
        logger.info("emulator stopped", extra={"emulator": type(self).__name__})

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
