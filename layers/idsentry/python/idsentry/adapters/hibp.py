"""Have I Been Pwned API v3 client: the breach catalogue and the breaches of one e-mail address."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from idsentry.errors import ConfigurationError, ProviderError

if TYPE_CHECKING:
    import requests

logger = logging.getLogger(__name__)

PROVIDER = "hibp"
DEFAULT_BASE_URL = "https://haveibeenpwned.com/api/v3"
# HIBP returns 403 to a request without a user agent and requires that it name the application.
# The version is pyproject.toml's, and a unit test keeps the two equal.
DEFAULT_USER_AGENT = "IDSentry/0.1.0 (self-hosted identity-exposure monitoring)"
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_WAIT_SECONDS = 10.0
# Plain HTTP would send the API key in clear text, so it is allowed only to the local emulator.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class CheckOutcome(StrEnum):
    """Outcome of one `breachedaccount` lookup of an address."""

    BREACHED = "breached"  # 200: the address is in at least one breach
    CLEAN = "clean"  # 404: the address is in no breach
    DEFERRED = "deferred"  # 429 beyond the bounded wait: check again on the next run
    UNAUTHORIZED = "unauthorized"  # 401/403: record "unknown", never "clean", and raise an alarm
    TRANSIENT = "transient"  # 5xx, timeout, connection failure or a garbled body: retry later
    INVALID = "invalid"  # 400 or another unexpected status: retrying will not help


@dataclass(frozen=True)
class AccountCheck:
    """The result of one `breachedaccount` lookup, with the full breach models when breached.

    `retry_after_seconds` is HIBP's last `retry-after` value when the outcome is DEFERRED, and
    `waited_seconds` is how long the client slept on 429 responses before giving up or
    succeeding.
    """

    outcome: CheckOutcome
    breaches: tuple[dict[str, Any], ...] = ()
    status: int | None = None
    reason: str | None = None
    retry_after_seconds: int | None = None
    waited_seconds: float = 0.0

    @property
    def names(self) -> tuple[str, ...]:
        """The breach names (HIBP's stable ids) in the order HIBP returned them."""
        return tuple(str(breach["Name"]) for breach in self.breaches)


def check_base_url(base_url: str) -> str:
    """Return `base_url` without a trailing slash, or raise ConfigurationError when it is unsafe.

    It must be HTTPS, or plain HTTP to a loopback host (the local emulator), and carry no
    credentials, query or fragment.
    """
    split = urlsplit(base_url)
    loopback = split.hostname in LOOPBACK_HOSTS
    if split.scheme not in ("https", "http") or not split.hostname:
        raise ConfigurationError("hibp base_url must be an absolute http(s) URL")
    if split.scheme == "http" and not loopback:
        raise ConfigurationError("hibp base_url must use https unless the host is loopback")
    if split.username is not None or split.password is not None or split.query or split.fragment:
        raise ConfigurationError(
            "hibp base_url must not contain credentials, a query or a fragment"
        )
    return base_url.rstrip("/")


def parse_retry_after(value: str | None) -> int | None:
    """Return HIBP's `retry-after` header as whole seconds, or None when absent or not a number.

    HIBP sends whole seconds rounded up. A value of 0 is read as 1, so that a retry loop
    always moves forward.
    """
    if value is None:
        return None
    try:
        seconds = int(value.strip())
    except ValueError:
        return None
    if seconds < 0:
        return None
    return max(seconds, 1)


class HibpClient:
    """HIBP API v3 over HTTPS with the `hibp-api-key` header and a descriptive user agent.

    `max_wait_seconds` bounds the total time one `breached_account` call sleeps on 429
    responses before it returns DEFERRED. `sleep` is injectable so that tests do not sleep.
    The client never logs an address. Keep the `urllib3` logger at WARNING
    (`idsentry.logs.configure_logging`), because at DEBUG urllib3 logs request paths, and a
    `breachedaccount` path contains the address.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        user_agent: str = DEFAULT_USER_AGENT,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise ConfigurationError("hibp api_key must be configured")
        if not user_agent.strip():
            raise ConfigurationError("hibp user_agent must not be empty")
        if timeout_seconds <= 0:
            raise ConfigurationError("hibp timeout_seconds must be positive")
        if max_wait_seconds < 0:
            raise ConfigurationError("hibp max_wait_seconds must not be negative")

        self._base_url = check_base_url(base_url)
        self._api_key = api_key
        self._user_agent = user_agent
        self._timeout = timeout_seconds
        self._max_wait = max_wait_seconds
        self._session = session
        self._sleep = sleep

    def _http(self) -> requests.Session:
        if self._session is None:
            import requests

            session = requests.Session()
            # Ignore proxy variables and .netrc, which could send the key through another host.
            session.trust_env = False
            self._session = session
        return self._session

    def account_url(self, email: str) -> str:
        """Return the `breachedaccount` URL of `email`, percent-encoded as one path segment."""
        if not isinstance(email, str) or "@" not in email:
            raise ValueError("email must be an e-mail address")
        if email != email.strip() or any(ord(char) < 0x21 or ord(char) == 0x7F for char in email):
            raise ValueError("email must not contain spaces or control characters")
        return f"{self._base_url}/breachedaccount/{quote(email, safe='')}?truncateResponse=false"

    def breaches(self) -> list[dict[str, Any]]:
        """Return every breach in HIBP's catalogue as HIBP's PascalCase breach models.

        Raises ProviderError, transient for timeouts, connection failures, 429, 5xx and a body
        that is not JSON.
        """
        import requests

        try:
            response = self._http().get(
                f"{self._base_url}/breaches",
                headers={"user-agent": self._user_agent, "accept": "application/json"},
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise ProviderError(PROVIDER, type(exc).__name__, transient=True) from None

        status = response.status_code
        if status != 200:
            transient = status == 429 or status >= 500
            raise ProviderError(PROVIDER, f"breaches: HTTP {status}", transient=transient)
        try:
            payload = response.json()
        except ValueError:
            raise ProviderError(PROVIDER, "breaches: body is not JSON", transient=True) from None
        if not isinstance(payload, list) or not all(isinstance(entry, dict) for entry in payload):
            raise ProviderError(
                PROVIDER, "breaches: body is not a list of breaches", transient=False
            )
        return payload

    def breached_account(self, email: str) -> AccountCheck:
        """Look `email` up with `truncateResponse=false` and classify the response.

        Every HTTP status, timeout and connection failure becomes an outcome, and ValueError is
        raised only when `email` is not an e-mail address. A 429 response is retried after its
        `retry-after` while the total wait stays within `max_wait_seconds`. After that the
        result is DEFERRED.
        """
        url = self.account_url(email)
        waited = 0.0

        while True:
            result = self._lookup(url, waited)
            if result.outcome is not CheckOutcome.DEFERRED:
                break
            retry_after = result.retry_after_seconds
            if retry_after is None or waited + retry_after > self._max_wait:
                break
            logger.info("hibp rate limited, waiting", extra={"retry_after_seconds": retry_after})
            self._sleep(retry_after)
            waited += retry_after

        log = logger.error if result.outcome is CheckOutcome.UNAUTHORIZED else logger.info
        log(
            "hibp account checked",
            extra={
                "outcome": result.outcome.value,
                "status": result.status,
                "reason": result.reason,
                "breach_count": len(result.breaches),
                "waited_seconds": result.waited_seconds,
            },
        )
        return result

    def _lookup(self, url: str, waited: float) -> AccountCheck:
        import requests

        try:
            response = self._http().get(
                url,
                headers={
                    "hibp-api-key": self._api_key,
                    "user-agent": self._user_agent,
                    "accept": "application/json",
                },
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            return AccountCheck(CheckOutcome.TRANSIENT, reason="timeout", waited_seconds=waited)
        except requests.RequestException as exc:
            # The exception's message quotes the URL, which contains the address.
            return AccountCheck(
                CheckOutcome.TRANSIENT, reason=type(exc).__name__, waited_seconds=waited
            )

        return classify_response(
            response.status_code,
            response.headers.get("retry-after"),
            response.content,
            waited_seconds=waited,
        )


def classify_response(
    status: int, retry_after: str | None, body: bytes, *, waited_seconds: float = 0.0
) -> AccountCheck:
    """Map one `breachedaccount` response to an AccountCheck (HIBP's documented status codes)."""
    if status == 200:
        return _breached(body, waited_seconds)
    if status == 404:
        return AccountCheck(CheckOutcome.CLEAN, status=status, waited_seconds=waited_seconds)
    if status == 429:
        return AccountCheck(
            CheckOutcome.DEFERRED,
            status=status,
            reason="rate_limited",
            retry_after_seconds=parse_retry_after(retry_after),
            waited_seconds=waited_seconds,
        )
    if status in (401, 403):
        reason = "invalid_api_key" if status == 401 else "forbidden"
        return AccountCheck(
            CheckOutcome.UNAUTHORIZED, status=status, reason=reason, waited_seconds=waited_seconds
        )
    if status >= 500:
        return AccountCheck(
            CheckOutcome.TRANSIENT,
            status=status,
            reason="server_error",
            waited_seconds=waited_seconds,
        )
    reason = "bad_request" if status == 400 else "unexpected_status"
    return AccountCheck(
        CheckOutcome.INVALID, status=status, reason=reason, waited_seconds=waited_seconds
    )


def _breached(body: bytes, waited_seconds: float) -> AccountCheck:
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("Name"), str) and entry["Name"]
        for entry in payload
    ):
        # A 200 whose body is not breach models usually comes from a proxy or CDN error page.
        return AccountCheck(
            CheckOutcome.TRANSIENT,
            status=200,
            reason="malformed_response",
            waited_seconds=waited_seconds,
        )

    if not payload:
        return AccountCheck(CheckOutcome.CLEAN, status=200, waited_seconds=waited_seconds)
    return AccountCheck(
        CheckOutcome.BREACHED,
        breaches=tuple(payload),
        status=200,
        waited_seconds=waited_seconds,
    )
