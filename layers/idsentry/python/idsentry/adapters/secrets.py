"""Secrets Manager reads cached for a bounded time, so secrets are not fetched per request."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from idsentry.errors import ConfigurationError


class SecretCache:
    """JSON secrets by id, each cached for `ttl_seconds` after it is fetched."""

    def __init__(
        self,
        client: Any = None,
        ttl_seconds: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}

    def _secrets_client(self) -> Any:
        if self._client is None:
            from idsentry.adapters.aws import client

            self._client = client("secretsmanager")
        return self._client

    def get_json(self, secret_id: str) -> dict[str, Any]:
        """Return the secret's JSON object, from the cache while it is fresh."""
        cached = self._entries.get(secret_id)
        now = self._monotonic()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]

        response = self._secrets_client().get_secret_value(SecretId=secret_id)
        try:
            value = json.loads(response["SecretString"])
        except (KeyError, ValueError) as exc:
            raise ConfigurationError(f"secret {secret_id} is not a JSON object") from exc
        if not isinstance(value, dict):
            raise ConfigurationError(f"secret {secret_id} is not a JSON object")

        self._entries[secret_id] = (now, value)
        return value
