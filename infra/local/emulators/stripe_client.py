"""HTTP client from the local Stripe shim to localstripe's API, with the shim's own secret key."""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from infra.local.emulators.stripe_api import (
    MAX_LIST_LIMIT,
    LocalStripeError,
    StripeApiError,
    encode_form,
    resource_missing,
)

logger = logging.getLogger(__name__)

LOCALSTRIPE_TIMEOUT_SECONDS = 10.0


class LocalStripeClient:
    """Calls to a running localstripe on 127.0.0.1. `loggable_path` turns a path into a log field."""

    def __init__(
        self, host: str, port: int, api_key: str, loggable_path: Callable[[str], str]
    ) -> None:
        self._host = host
        self._port = port
        self._api_key = api_key
        self._loggable_path = loggable_path

    def request(
        self, method: str, target: str, body: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, str, bytes]:
        # http.client talks to the socket directly, so no proxy from the environment applies.
        connection = http.client.HTTPConnection(
            self._host, self._port, timeout=LOCALSTRIPE_TIMEOUT_SECONDS
        )
        try:
            connection.request(method, target, body=body, headers=dict(headers))
            response = connection.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException) as exc:
            logger.error(
                "localstripe request failed",
                extra={
                    "method": method,
                    "path": self._loggable_path(urlsplit(target).path),
                    "error_type": type(exc).__name__,
                },
            )
            raise StripeApiError(
                502, "localstripe is not reachable from the shim", error_type="api_error"
            ) from exc
        finally:
            connection.close()
        return response.status, response.getheader("Content-Type") or "", content

    def call(
        self, method: str, path: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Call localstripe's API with the shim's own key and return the JSON object.

        Raises LocalStripeError when localstripe returns any status other than 200.
        """
        headers = {"Authorization": f"Bearer {self._api_key}"}
        encoded = urlencode(encode_form(params or {}))
        target, body = path, None
        if method in ("GET", "DELETE"):
            target = f"{path}?{encoded}" if encoded else path
        else:
            body = encoded.encode("utf-8")
            headers["Content-Type"] = "application/x-www-form-urlencoded"

        status, _, content = self.request(method, target, body, headers)
        try:
            document = json.loads(content)
        except (UnicodeDecodeError, json.JSONDecodeError):
            document = None
        if status != 200 or not isinstance(document, dict):
            error = document.get("error") if isinstance(document, dict) else None
            error = error if isinstance(error, dict) else {}
            raise LocalStripeError(method, path, status, str(error.get("message") or ""), error)
        return document

    def call_json(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a JSON body to one of localstripe's shim extension routes and return the object.

        Raises LocalStripeError when localstripe returns any status other than 200.
        """
        headers = {"Authorization": f"Bearer {self._api_key}", "Content-Type": "application/json"}
        status, _, content = self.request("POST", path, json.dumps(body).encode("utf-8"), headers)
        try:
            document = json.loads(content)
        except (UnicodeDecodeError, json.JSONDecodeError):
            document = None
        if status != 200 or not isinstance(document, dict):
            error = document.get("error") if isinstance(document, dict) else None
            error = error if isinstance(error, dict) else {}
            raise LocalStripeError("POST", path, status, str(error.get("message") or ""), error)
        return document

    def call_config(self, path: str, body: Mapping[str, Any]) -> None:
        status, _, content = self.request(
            "POST", path, json.dumps(body).encode("utf-8"), {"Content-Type": "application/json"}
        )
        if status != 200:
            detail = content.decode("utf-8", errors="replace")
            raise RuntimeError(f"localstripe rejected POST {path}: HTTP {status} {detail}")

    def event_ids(self) -> list[str]:
        ids: list[str] = []
        params: dict[str, Any] = {"limit": MAX_LIST_LIMIT}
        while True:
            page = self.call("GET", "/v1/events", params)
            data = page.get("data") or []
            ids.extend(str(event["id"]) for event in data)
            if not page.get("has_more") or not data:
                return ids
            params["starting_after"] = ids[-1]

    def require(self, kind: str, object_id: str, param: str) -> dict[str, Any]:
        """Retrieve a referenced object, turning localstripe's 404 into Stripe's 400 on `param`."""
        try:
            return self.call("GET", f"/v1/{kind}s/{quote(object_id, safe='')}")
        except LocalStripeError as exc:
            if exc.localstripe_status == 404:
                raise resource_missing(kind, object_id, param) from exc
            raise

    def retrieve(self, kind: str, object_id: str) -> dict[str, Any]:
        """Retrieve an object named in the request path, turning localstripe's 404 into Stripe's."""
        try:
            return self.call("GET", f"/v1/{kind}s/{quote(object_id, safe='')}")
        except LocalStripeError as exc:
            if exc.localstripe_status == 404:
                raise resource_missing(kind, object_id) from exc
            raise
