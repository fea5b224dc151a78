"""Loopback emulator of the Have I Been Pwned API v3 (breaches) for the local stack and tests.

It serves the routes and shapes documented at https://haveibeenpwned.com/API/v3:

- `GET /api/v3/breaches` returns the whole catalogue as a JSON array of breach models in
  HIBP's PascalCase shape, sensitive and retired breaches included. `Domain` and `IsSpamList`
  filter it. No key is needed.
- `GET /api/v3/breach/{name}` returns one breach model, or 404 when the name is unknown.
- `GET /api/v3/breachedaccount/{account}` needs the `hibp-api-key` header. A missing or wrong
  key gets 401 with HIBP's JSON body (`{"statusCode": 401, "message": "Access denied due to
  missing hibp-api-key."}`). An account in no breach gets 404 with an empty body, and an
  empty account gets 400. Otherwise 200 with the account's breaches: names only
  (`[{"Name": "Adobe"}]`) unless `truncateResponse=false`, which returns full breach models.
  `IncludeUnverified=false` drops unverified breaches and `domain` keeps one domain's. As HIBP
  does, breaches flagged sensitive or retired are never returned here. The account is
  percent-decoded from the path, trimmed and compared case-insensitively. A `+` in the path
  stays a `+`.
- Every API request without a `user-agent` header gets 403, as HIBP requires one.
- `breachedaccount` is limited per key to `requests_per_minute` accepted requests in any
  60-second window of the emulator's monotonic clock. A request over the limit gets 429 with
  a `retry-after` header (whole seconds until the oldest request leaves the window, rounded
  up) and HIBP's body `{"statusCode": 429, "message": "Rate limit is exceeded. Try again in N
  seconds."}`. Rejected requests do not count.

Not part of HIBP, under `/_emulator/`: `GET requests` (each API request's endpoint, status,
key state and user agent, never the account), `POST catalogue` (a JSON array of breaches that
replaces the catalogue), `POST breaches` (adds or replaces one breach), `POST accounts`
(`{"account": ..., "breaches": [names]}` or a list of them), `POST faults`
(`{"count": 2, "status": 503}` makes the next two API requests return 401, 403 or 503),
`POST rate` (`{"requests_per_minute": 10}`) and `POST reset`. The same controls exist as
Python methods.

Log lines carry endpoints, statuses and counts. They never contain an account: the path of a
`breachedaccount` request is logged as `/api/v3/breachedaccount/<account>`.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from infra.local.emulators.base import (
    LoopbackHTTPServer,
    Request,
    Response,
    json_response,
    parse_json_body,
)

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v3"
BREACHES_PATH = f"{API_PREFIX}/breaches"
BREACH_PATH = re.compile(rf"{API_PREFIX}/breach/(?P<name>[^/]+)")
ACCOUNT_PATH = re.compile(rf"{API_PREFIX}/breachedaccount/(?P<account>[^/]*)")
LOGGED_ACCOUNT_PATH = f"{API_PREFIX}/breachedaccount/<account>"
# Breach names are stable PascalCase identifiers such as "Adobe" or "000webhost".
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
WINDOW_SECONDS = 60.0
DEFAULT_REQUESTS_PER_MINUTE = 10
FAULT_STATUSES = (401, 403, 503)
CONTROL_PATHS = (
    "/_emulator/requests",
    "/_emulator/catalogue",
    "/_emulator/breaches",
    "/_emulator/accounts",
    "/_emulator/faults",
    "/_emulator/rate",
    "/_emulator/reset",
)

# The breach model's fields in the order HIBP returns them. Fields other than the first seven
# may be left out of a loaded breach and take these defaults.
REQUIRED_FIELDS = ("Name", "Title", "Domain", "BreachDate", "AddedDate", "ModifiedDate", "PwnCount")
OPTIONAL_FIELDS: dict[str, Any] = {
    "Description": "",
    "LogoPath": "",
    "Attribution": None,
    "DataClasses": [],
    "IsVerified": False,
    "IsFabricated": False,
    "IsSensitive": False,
    "IsRetired": False,
    "IsSpamList": False,
    "IsMalware": False,
    "IsSubscriptionFree": False,
    "IsStealerLog": False,
}
STRING_FIELDS = ("Name", "Title", "Domain", "Description", "LogoPath")
FLAG_FIELDS = tuple(name for name in OPTIONAL_FIELDS if name.startswith("Is"))


class InvalidBreachError(ValueError):
    """A breach model or account record is missing a field or has a malformed one."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field


def parse_breach(payload: Any) -> dict[str, Any]:
    """Validate one breach model and return it with every field, in HIBP's order.

    Raises InvalidBreachError naming the field. Dates must be ISO 8601: `BreachDate` a date,
    `AddedDate` and `ModifiedDate` date-times such as `2013-12-04T00:00:00Z`.
    """
    if not isinstance(payload, dict):
        raise InvalidBreachError("breach", "must be a JSON object")
    for name in REQUIRED_FIELDS:
        if name not in payload:
            raise InvalidBreachError(name, "is missing")

    breach: dict[str, Any] = {name: payload[name] for name in REQUIRED_FIELDS}
    for name, default in OPTIONAL_FIELDS.items():
        value = payload.get(name, default)
        breach[name] = list(value) if isinstance(value, list) else value

    for name in STRING_FIELDS:
        if not isinstance(breach[name], str):
            raise InvalidBreachError(name, "must be a string")
    if not NAME_PATTERN.fullmatch(breach["Name"]):
        raise InvalidBreachError("Name", "must be 1 to 100 letters, digits, '.', '_' or '-'")
    if breach["Attribution"] is not None and not isinstance(breach["Attribution"], str):
        raise InvalidBreachError("Attribution", "must be a string or null")
    pwn_count = breach["PwnCount"]
    if not isinstance(pwn_count, int) or isinstance(pwn_count, bool) or pwn_count < 0:
        raise InvalidBreachError("PwnCount", "must be a non-negative integer")
    classes = breach["DataClasses"]
    if not isinstance(classes, list) or not all(isinstance(item, str) for item in classes):
        raise InvalidBreachError("DataClasses", "must be a list of strings")
    for name in FLAG_FIELDS:
        if not isinstance(breach[name], bool):
            raise InvalidBreachError(name, "must be true or false")

    _check_date("BreachDate", breach["BreachDate"], date_only=True)
    _check_date("AddedDate", breach["AddedDate"], date_only=False)
    _check_date("ModifiedDate", breach["ModifiedDate"], date_only=False)
    return breach


def _check_date(field: str, value: Any, *, date_only: bool) -> None:
    if not isinstance(value, str):
        raise InvalidBreachError(field, "must be a string")
    try:
        if date_only:
            date.fromisoformat(value)
        else:
            datetime.fromisoformat(value)
    except ValueError as exc:
        expected = (
            "YYYY-MM-DD" if date_only else "an ISO 8601 date-time such as 2013-12-04T00:00:00Z"
        )
        raise InvalidBreachError(field, f"must be {expected}") from exc


def load_catalogue(path: Path) -> list[dict[str, Any]]:
    """Read a JSON array of breach models from `path`, raising ValueError that names a bad entry."""
    payload = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(payload, list):
        raise ValueError(f"{path} must contain a JSON array of breaches")

    breaches = []
    for index, entry in enumerate(payload):
        try:
            breaches.append(parse_breach(entry))
        except InvalidBreachError as exc:
            raise ValueError(f"{path} entry {index}: {exc}") from exc
    return breaches


def normalise_account(account: str) -> str:
    """Return the form accounts are compared in: trimmed and lower-cased, as HIBP compares them."""
    return account.strip().lower()


def _flag(values: list[str] | None, default: bool) -> bool:
    # Only an explicit "true" or "false" changes the default of HIBP's boolean query parameters.
    if not values:
        return default
    value = values[-1].strip().lower()
    if value in ("true", "false"):
        return value == "true"
    return default


def _query(request: Request) -> dict[str, list[str]]:
    # HIBP reads query parameter names case-insensitively (truncateResponse, IncludeUnverified).
    query: dict[str, list[str]] = {}
    for name, values in request.query.items():
        query.setdefault(name.lower(), []).extend(values)
    return query


def _text_response(status: int, text: str) -> Response:
    return Response(status=status, body=text.encode("utf-8"), content_type="text/plain")


class HibpEmulator(LoopbackHTTPServer):
    """Have I Been Pwned API v3 on 127.0.0.1: catalogue, breached accounts and a per-key limit.

    `monotonic` returns seconds and drives the rate limit. Tests pass a clock they move
    forward instead of sleeping.
    """

    def __init__(
        self,
        api_key: str,
        *,
        requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE,
        catalogue_path: str | Path | None = None,
        port: int = 0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        _check_requests_per_minute(requests_per_minute)

        super().__init__(port)
        self._api_keys = {api_key}
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._initial_requests_per_minute = requests_per_minute
        self._requests_per_minute = requests_per_minute
        self._initial_catalogue = load_catalogue(Path(catalogue_path)) if catalogue_path else []
        self._catalogue = {breach["Name"]: breach for breach in self._initial_catalogue}
        self._accounts: dict[str, set[str]] = {}
        self._windows: dict[str, deque[float]] = {}
        self._requests: list[dict[str, Any]] = []
        self._fault_status = 503
        self._faults_remaining = 0

    # Controls for tests and operators.

    def add_api_key(self, api_key: str) -> None:
        """Accept another key, which gets its own rate-limit window."""
        if not api_key:
            raise ValueError("api_key must not be empty")
        with self._lock:
            self._api_keys.add(api_key)

    def load_catalogue(self, breaches: Iterable[Any]) -> int:
        """Replace the catalogue with `breaches` and return how many breaches it contains.

        Raises InvalidBreachError naming the field, and then the catalogue is unchanged.
        Accounts keep their breach names, and a name missing from the new catalogue is left
        out of their results.
        """
        parsed = [parse_breach(entry) for entry in breaches]
        with self._lock:
            self._catalogue = {breach["Name"]: breach for breach in parsed}
            count = len(self._catalogue)
        logger.info("hibp emulator catalogue loaded", extra={"breach_count": count})
        return count

    def add_breach(self, breach: Mapping[str, Any]) -> None:
        """Add one breach to the catalogue, or replace the breach with the same Name."""
        parsed = parse_breach(dict(breach))
        with self._lock:
            self._catalogue[parsed["Name"]] = parsed

    def add_account(self, account: str, breach_names: Iterable[str]) -> None:
        """Record `account` in each named breach, raising InvalidBreachError for an unknown name."""
        key = normalise_account(account)
        if not key:
            raise InvalidBreachError("account", "must not be empty")
        names = list(breach_names)
        if not all(isinstance(name, str) for name in names):
            raise InvalidBreachError("breaches", "must be a list of breach names")

        with self._lock:
            unknown = [name for name in names if name not in self._catalogue]
            if unknown:
                raise InvalidBreachError(
                    "breaches", f"contains breaches not in the catalogue: {unknown}"
                )
            self._accounts.setdefault(key, set()).update(names)

    def fail_next(self, count: int, status: int = 503) -> None:
        """Make the next `count` API requests return `status` (401, 403 or 503) before any check."""
        if count < 0:
            raise ValueError("count must not be negative")
        if status not in FAULT_STATUSES:
            raise ValueError(f"status must be one of {FAULT_STATUSES}, got {status}")
        with self._lock:
            self._fault_status = status
            self._faults_remaining = count

    def set_requests_per_minute(self, requests_per_minute: int) -> None:
        """Change the per-key limit. Requests already in the window still count."""
        _check_requests_per_minute(requests_per_minute)
        with self._lock:
            self._requests_per_minute = requests_per_minute

    def requests(self) -> dict[str, Any]:
        """Return the API request count, counts per status, and each request without its account."""
        with self._lock:
            statuses = Counter(str(entry["status"]) for entry in self._requests)
            return {
                "count": len(self._requests),
                "statuses": dict(statuses),
                "requests": [dict(entry) for entry in self._requests],
            }

    def reset(self) -> None:
        """Restore the file's catalogue and the first limit. Forget accounts, history and faults."""
        with self._lock:
            self._catalogue = {breach["Name"]: breach for breach in self._initial_catalogue}
            self._requests_per_minute = self._initial_requests_per_minute
            self._accounts.clear()
            self._windows.clear()
            self._requests.clear()
            self._faults_remaining = 0
        logger.info("hibp emulator reset", extra={"breach_count": len(self._initial_catalogue)})

    # HTTP.

    def loggable_path(self, path: str) -> str:
        """Return `path` for logs: fixed routes as they are, an account path without the account."""
        if path == BREACHES_PATH or path in CONTROL_PATHS:
            return path
        if ACCOUNT_PATH.fullmatch(path):
            return LOGGED_ACCOUNT_PATH
        if (match := BREACH_PATH.fullmatch(path)) and NAME_PATTERN.fullmatch(match["name"]):
            return path
        return super().loggable_path(path)

    def handle(self, request: Request) -> Response:
        """Route one request to the HIBP API or the `/_emulator/` control API."""
        if request.path.startswith("/_emulator/"):
            return self._handle_control(request)
        if request.method != "GET":
            return json_response(404, {"error": "not_found"})

        if request.path == BREACHES_PATH:
            return self._api_request(
                request, "breaches", lambda _key_state: self._breaches(request)
            )
        if match := BREACH_PATH.fullmatch(request.path):
            name = unquote(match["name"])
            return self._api_request(request, "breach", lambda _key_state: self._breach(name))
        if match := ACCOUNT_PATH.fullmatch(request.path):
            account = unquote(match["account"])
            return self._api_request(
                request,
                "breachedaccount",
                lambda key_state: self._breached_account(request, account, key_state),
            )
        return json_response(404, {"error": "not_found"})

    def _api_request(
        self, request: Request, endpoint: str, serve: Callable[[str], Response]
    ) -> Response:
        key_state = self._key_state(request)
        user_agent = request.headers.get("user-agent")
        truncate = _flag(_query(request).get("truncateresponse"), default=True)

        response = self._fault()
        if response is None and not user_agent:
            response = _text_response(403, "Forbidden: a user-agent header is required.")
        if response is None:
            response = serve(key_state)

        entry = {
            "endpoint": endpoint,
            "status": response.status,
            "api_key": key_state,
            "user_agent": user_agent,
            "truncate_response": truncate if endpoint == "breachedaccount" else None,
        }
        with self._lock:
            self._requests.append(entry)
        logger.info(
            "hibp emulator request served",
            extra={"endpoint": endpoint, "status": response.status, "api_key": key_state},
        )
        return response

    def _fault(self) -> Response | None:
        with self._lock:
            if self._faults_remaining <= 0:
                return None
            self._faults_remaining -= 1
            status = self._fault_status
            remaining = self._faults_remaining

        logger.warning(
            "hibp emulator returned an injected fault",
            extra={"status": status, "faults_remaining": remaining},
        )
        if status == 401:
            return _unauthorized("Access denied due to invalid hibp-api-key.")
        if status == 403:
            return _text_response(403, "Forbidden: request blocked.")
        return _text_response(503, "Service Unavailable")

    def _key_state(self, request: Request) -> str:
        key = request.headers.get("hibp-api-key")
        if key is None:
            return "missing"
        with self._lock:
            known = list(self._api_keys)
        valid = any(hmac.compare_digest(key.encode(), candidate.encode()) for candidate in known)
        return "valid" if valid else "invalid"

    def _breaches(self, request: Request) -> Response:
        query = _query(request)
        domain = (query.get("domain") or [""])[-1].strip().lower()
        spam_list = (query.get("isspamlist") or [""])[-1].strip().lower()

        with self._lock:
            breaches = [dict(breach) for breach in self._catalogue.values()]
        if domain:
            breaches = [breach for breach in breaches if breach["Domain"].lower() == domain]
        if spam_list in ("true", "false"):
            spam_flag = spam_list == "true"
            breaches = [breach for breach in breaches if breach["IsSpamList"] is spam_flag]
        return json_response(200, breaches)

    def _breach(self, name: str) -> Response:
        with self._lock:
            breach = self._catalogue.get(name)
        if breach is None:
            return Response(status=404)
        return json_response(200, dict(breach))

    def _breached_account(self, request: Request, account: str, key_state: str) -> Response:
        if key_state == "missing":
            return _unauthorized("Access denied due to missing hibp-api-key.")
        if key_state == "invalid":
            return _unauthorized("Access denied due to invalid hibp-api-key.")

        retry_after = self._take_request(request.headers["hibp-api-key"])
        if retry_after is not None:
            return Response(
                status=429,
                body=json.dumps(
                    {
                        "statusCode": 429,
                        "message": f"Rate limit is exceeded. Try again in {retry_after} seconds.",
                    }
                ).encode("utf-8"),
                headers={"retry-after": str(retry_after)},
            )

        key = normalise_account(account)
        if not key:
            return _text_response(400, "Bad request: the account is empty.")

        query = _query(request)
        truncate = _flag(query.get("truncateresponse"), default=True)
        include_unverified = _flag(query.get("includeunverified"), default=True)
        domain = (query.get("domain") or [""])[-1].strip().lower()

        with self._lock:
            names = self._accounts.get(key, set())
            breaches = [self._catalogue[name] for name in sorted(names) if name in self._catalogue]
        breaches = [
            breach
            for breach in breaches
            if not breach["IsSensitive"]
            and not breach["IsRetired"]
            and (include_unverified or breach["IsVerified"])
            and (not domain or breach["Domain"].lower() == domain)
        ]

        if not breaches:
            return Response(status=404)
        if truncate:
            return json_response(200, [{"Name": breach["Name"]} for breach in breaches])
        return json_response(200, [dict(breach) for breach in breaches])

    def _take_request(self, api_key: str) -> int | None:
        """Count one request in the key's window, or return the seconds to wait when it is full."""
        now = self._monotonic()
        with self._lock:
            window = self._windows.setdefault(api_key, deque())
            while window and window[0] <= now - WINDOW_SECONDS:
                window.popleft()
            if len(window) >= self._requests_per_minute:
                # HIBP rounds the wait up to the next whole second.
                return max(1, math.ceil(window[0] + WINDOW_SECONDS - now))
            window.append(now)
            return None

    # Control API.

    def _handle_control(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route == ("GET", "/_emulator/requests"):
            return json_response(200, self.requests())
        if route == ("POST", "/_emulator/reset"):
            self.reset()
            return json_response(200, {"reset": True})
        if request.method != "POST" or request.path not in CONTROL_PATHS:
            return json_response(404, {"error": "not_found"})

        try:
            payload = parse_json_body(request.body)
        except ValueError:
            return _invalid("body")

        try:
            if request.path == "/_emulator/catalogue":
                if not isinstance(payload, list):
                    return _invalid("body")
                return json_response(200, {"breach_count": self.load_catalogue(payload)})
            if request.path == "/_emulator/breaches":
                self.add_breach(payload if isinstance(payload, dict) else {})
                return json_response(201, {"added": 1})
            if request.path == "/_emulator/accounts":
                return self._control_accounts(payload)
            if request.path == "/_emulator/faults":
                return self._control_faults(payload)
            return self._control_rate(payload)
        except InvalidBreachError as exc:
            return _invalid(exc.field)

    def _control_accounts(self, payload: Any) -> Response:
        entries = payload if isinstance(payload, list) else [payload]
        with self._lock:
            known = set(self._catalogue)
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("account"), str):
                return _invalid("account")
            if not normalise_account(entry["account"]):
                return _invalid("account")
            names = entry.get("breaches")
            if not isinstance(names, list) or not all(
                isinstance(name, str) and name in known for name in names
            ):
                return _invalid("breaches")

        # Every entry was checked first, so a bad entry adds none of them.
        for entry in entries:
            self.add_account(entry["account"], entry["breaches"])
        logger.info("hibp emulator accounts added", extra={"account_count": len(entries)})
        return json_response(201, {"added": len(entries)})

    def _control_faults(self, payload: Any) -> Response:
        if not isinstance(payload, dict):
            return _invalid("body")
        count = payload.get("count")
        status = payload.get("status", 503)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return _invalid("count")
        if status not in FAULT_STATUSES:
            return _invalid("status")
        self.fail_next(count, status)
        return json_response(200, {"count": count, "status": status})

    def _control_rate(self, payload: Any) -> Response:
        value = payload.get("requests_per_minute") if isinstance(payload, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return _invalid("requests_per_minute")
        self.set_requests_per_minute(value)
        return json_response(200, {"requests_per_minute": value})


def _check_requests_per_minute(value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError("requests_per_minute must be a positive integer")


def _unauthorized(message: str) -> Response:
    return json_response(401, {"statusCode": 401, "message": message})


def _invalid(field: str) -> Response:
    return json_response(400, {"error": "invalid_request", "field": field})
