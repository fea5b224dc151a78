"""In-process localstripe server on 127.0.0.1 with fresh in-memory state, for the local stack.

localstripe (PyPI, 1.15.10) is a stateful fake of the Stripe API built on aiohttp. Its command
line listens on every interface and pickles its store to `/tmp/localstripe.pickle` on every
change, then loads that file at the next start. `LocalStripe` runs the same routes instead:

- on its own event loop in a daemon thread, bound to 127.0.0.1 only (port 0 picks a free port),
  with aiohttp's access log off, because a request line can carry a customer e-mail filter;
- on a new aiohttp Application that copies localstripe's routes, middlewares and response
  hooks, so each instance gets a loop of its own;
- with localstripe's store switched to an in-memory subclass that never reads or writes the
  pickle file, and emptied at `start()` and `stop()` together with the webhook endpoints;
- with routes for the Stripe shim, such as `POST /_shim/subscriptions/{id}/renew` and
  `POST /_shim/invoices/{id}/pay` (see `infra/local/emulators/stripe_extensions.py`) and the
  list and seed routes of `infra/local/emulators/stripe_list_extension.py`, which must run on
  localstripe's loop because they read or change its objects.

localstripe keeps its objects and webhook endpoints in module-level globals, so one process
runs at most one `LocalStripe` at a time. `start()` raises RuntimeError while another runs.

Clients authenticate with any secret key that starts with `sk_` (for example `TEST_API_KEY`).
Point the official SDK at `base_url`:

    client = stripe.StripeClient(TEST_API_KEY, base_addresses={"api": emulator.base_url})

Webhooks: `configure_webhook()` registers an endpoint through localstripe's
`POST /_config/webhooks/{id}` route. localstripe sends each event about one second after
creating it, signed like Stripe (`Stripe-Signature: t=...,v1=HMAC-SHA256(secret, "t.payload")`),
but `t` is the event's `created` time rather than the send time, and a failed delivery is
logged and never retried. Webhook URLs must be plain HTTP to 127.0.0.1 or [::1]: both
`configure_webhook()` and the HTTP route reject any other host. Deliveries still waiting when
`stop()` runs are cancelled.
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import json
import logging
import re
import threading
import warnings
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

from aiohttp import web

from infra.local.emulators.base import LOOPBACK_HOST
from infra.local.emulators.stripe_extensions import EXTENSION_ROUTES
from infra.local.emulators.stripe_list_extension import LIST_EXTENSION_ROUTES

# localstripe registers plain functions as aiohttp handlers when its server module is
# imported, and aiohttp 3.x warns once per route (59 warnings with localstripe 1.15.10).
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Bare functions are deprecated", DeprecationWarning)
    from localstripe import resources, server, webhooks

logger = logging.getLogger(__name__)

TEST_API_KEY = "sk_test_localstripe"
WEBHOOK_CONFIG_PREFIX = "/_config/webhooks/"
ENDPOINT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
STARTUP_TIMEOUT_SECONDS = 10.0
SHUTDOWN_TIMEOUT_SECONDS = 10.0
# How long stop() lets requests in flight finish before aiohttp closes their connections.
SHUTDOWN_GRACE_SECONDS = 2.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _InMemoryStore(resources.Store):  # type: ignore[misc]
    """localstripe's store without the pickle file it loads at start and writes on every change."""

    def try_load_from_disk(self) -> None:
        return

    def dump_to_disk(self) -> None:
        return


def _use_in_memory_store() -> None:
    """Switch localstripe's single store object to `_InMemoryStore`. Calling it again is harmless.

    `resources.store` is the dict every localstripe resource writes through, and `Store` calls
    `dump_to_disk()` from `__setitem__`, `__delitem__` and a server middleware. Swapping the
    object's class keeps that object, which `server` imported by name, and turns both calls off.
    """
    store = resources.store
    if not isinstance(store, _InMemoryStore):
        store.__class__ = _InMemoryStore


def is_loopback_http_url(url: str) -> bool:
    """Return whether `url` is plain HTTP to a loopback IP address (127.0.0.0/8 or ::1).

    Host names, `localhost` included, are rejected because localstripe resolves them itself.
    """
    try:
        split = urlsplit(url)
        host = ipaddress.ip_address(split.hostname or "")
    except ValueError:
        return False
    return split.scheme == "http" and host.is_loopback


@web.middleware
async def _reject_remote_webhook_urls(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Reject a webhook endpoint whose URL is not loopback, before localstripe registers it."""
    if request.method == "POST" and request.path.startswith(WEBHOOK_CONFIG_PREFIX):
        # aiohttp caches the body, so localstripe's handler can read it again afterwards.
        data = await server.get_post_data(request)
        url = data.get("url") if isinstance(data, dict) else None
        if url is not None and not (isinstance(url, str) and is_loopback_http_url(url)):
            logger.warning(
                "localstripe webhook endpoint rejected: URL is not loopback",
                extra={"endpoint_id": request.match_info.get("id")},
            )
            body = {
                "error": {
                    "type": "invalid_request_error",
                    "param": "url",
                    "message": "url must be plain http to 127.0.0.1 or [::1]",
                }
            }
            return web.json_response(body, status=400)
    return await handler(request)


def _build_application() -> web.Application:
    """Return a new aiohttp Application with localstripe's routes, middlewares and hooks.

    The Application also serves the routes in `EXTENSION_ROUTES` and `LIST_EXTENSION_ROUTES`
    for the Stripe shim.

    localstripe builds one module-level Application, and aiohttp binds an Application to the
    first event loop that serves it, so every instance needs its own copy.
    """
    template = server.app
    app = web.Application(middlewares=[_reject_remote_webhook_urls, *template.middlewares])
    for hook in template.on_response_prepare:
        app.on_response_prepare.append(hook)

    # Routes keep their registration order, which localstripe relies on: its extra routes
    # such as `/v1/invoices/upcoming` must match before `/v1/invoices/{id}`.
    for route in template.router.routes():
        if route.resource is None:
            raise RuntimeError("localstripe registered a route without a resource")
        app.router.add_route(route.method, route.resource.canonical, route.handler)
    for method, path, handler in (*EXTENSION_ROUTES, *LIST_EXTENSION_ROUTES):
        app.router.add_route(method, path, handler)
    return app


def _clear_localstripe_state() -> None:
    resources.store.clear()
    webhooks._webhooks.clear()


class LocalStripe:
    """localstripe served on 127.0.0.1 from a thread with its own event loop.

    Port 0 (the default) lets the operating system pick a free port, and `base_url` contains
    the chosen one after `start()`.
    """

    _slot_lock: ClassVar[threading.Lock] = threading.Lock()
    _running: ClassVar[LocalStripe | None] = None

    def __init__(self, port: int = 0) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {port}")
        self._requested_port = port
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The bound TCP port. Reading it before `start()` raises RuntimeError."""
        if self._port is None:
            raise RuntimeError("LocalStripe is not started: call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        """The server's root URL, for example `http://127.0.0.1:54321`, without a trailing slash."""
        return f"http://{LOOPBACK_HOST}:{self.port}"

    def start(self) -> Self:
        """Empty localstripe's state, bind 127.0.0.1 and serve from a new thread, then return self."""
        with LocalStripe._slot_lock:
            if LocalStripe._running is self:
                raise RuntimeError("LocalStripe is already started")
            if LocalStripe._running is not None:
                raise RuntimeError(
                    "another LocalStripe is running in this process; localstripe keeps its "
                    "state in module globals, so stop that one first"
                )
            LocalStripe._running = self

        try:
            _use_in_memory_store()
            _clear_localstripe_state()
            self._start_loop()
            future = asyncio.run_coroutine_threadsafe(self._serve(), self._event_loop())
            self._port = future.result(timeout=STARTUP_TIMEOUT_SECONDS)
        except BaseException:
            self._stop_loop()
            self._release()
            raise

        logger.info("localstripe started", extra={"port": self._port})
        return self

    def stop(self) -> None:
        """Stop serving, cancel pending webhook deliveries, join the thread and empty the state.

        Calling it twice, or before `start()`, is harmless.
        """
        if self._loop is None:
            return

        try:
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            future.result(timeout=SHUTDOWN_TIMEOUT_SECONDS)
        finally:
            self._stop_loop()
            self._release()
        logger.info("localstripe stopped")

    def configure_webhook(
        self,
        url: str,
        secret: str,
        events: Sequence[str] | None = None,
        *,
        endpoint_id: str = "local",
    ) -> None:
        """Register (or replace) a webhook endpoint that receives every event, or only `events`.

        Raises ValueError naming the invalid argument, and RuntimeError when localstripe
        rejects the request.
        """
        if not isinstance(url, str) or not is_loopback_http_url(url):
            raise ValueError(
                "url must be plain http to 127.0.0.1 or [::1], for example http://127.0.0.1:8080/hook"
            )
        if not isinstance(secret, str) or not secret:
            raise ValueError("secret must be a non-empty string")
        if isinstance(events, str):
            raise ValueError("events must be a list of event types, not a string")
        if events is not None and not all(isinstance(event, str) and event for event in events):
            raise ValueError("events must contain only non-empty event type strings")
        if not ENDPOINT_ID_PATTERN.fullmatch(endpoint_id):
            raise ValueError("endpoint_id must be 1 to 64 letters, digits, '_' or '-'")

        body: dict[str, Any] = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = list(events)
        self._post_config(WEBHOOK_CONFIG_PREFIX + endpoint_id, body)
        logger.info(
            "localstripe webhook endpoint configured",
            extra={
                "endpoint_id": endpoint_id,
                "event_type_count": None if events is None else len(events),
            },
        )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _post_config(self, path: str, body: dict[str, Any]) -> None:
        # http.client talks to the socket directly, so no proxy from the environment applies.
        connection = http.client.HTTPConnection(
            LOOPBACK_HOST, self.port, timeout=STARTUP_TIMEOUT_SECONDS
        )
        try:
            connection.request(
                "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            detail = response.read().decode("utf-8", errors="replace")
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"localstripe rejected POST {path}: HTTP {response.status} {detail}")

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("LocalStripe is not started: call start() first")
        return self._loop

    def _start_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run_loop, args=(loop,), name="LocalStripe-loop", daemon=True
        )
        self._thread.start()

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            # aiohttp's client resolves host names on the default executor, so its threads
            # are shut down here with the loop.
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=SHUTDOWN_TIMEOUT_SECONDS)
            if thread.is_alive():
                raise RuntimeError("LocalStripe event loop thread did not stop")
        self._loop = None
        self._thread = None
        self._runner = None
        self._port = None

    def _release(self) -> None:
        with LocalStripe._slot_lock:
            if LocalStripe._running is self:
                _clear_localstripe_state()
                LocalStripe._running = None

    async def _serve(self) -> int:
        runner = web.AppRunner(
            _build_application(), access_log=None, shutdown_timeout=SHUTDOWN_GRACE_SECONDS
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, LOOPBACK_HOST, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise

        self._runner = runner
        return int(runner.addresses[0][1])

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

        # What is left are localstripe's webhook deliveries and asynchronous payments.
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
