"""Loopback emulator of a licensed real-name verification provider (name + ID number + mobile).

It stands in for a Chinese three-factor check (三要素核验): does this resident ID number
belong to this name, and is this mobile registered to that person?

- `POST /v1/identity/verify` with `Authorization: Bearer <api_key>` and a JSON body
  `{"name": str, "id_number": str, "mobile": str}`, the mobile in E.164 and the ID number as
  18 characters (17 digits, then a digit or upper-case X). It returns 200
  `{"request_id": "<uuid>", "result": "match" | "mismatch" | "not_found"}`: `match` when a
  registered identity has all three values, `mismatch` when the ID number is registered but
  the name or mobile differs, `not_found` when the ID number is unknown. Values are compared
  exactly as sent, so the caller must send canonical forms.
- A wrong or missing key gets 401 `{"error": "unauthorized"}`; a missing, non-string or
  malformed field gets 400 `{"error": "invalid_request", "field": "<name>"}`.
- The registered population comes from a JSON file (a list of `{"name", "id_number",
  "mobile"}`) given to the constructor, `add_identity()` and `POST /_emulator/identities`.
  One identity is kept per ID number; adding the same ID number again replaces it.

Not part of the provider, under `/_emulator/`: `GET requests` (the number of verification
requests and each one's request id and result, no personal data), `POST identities`,
`POST faults` (`{"count": 2}` makes the next two verification requests fail with 503) and
`POST reset` (back to the population loaded from the file, with no request history or faults).

Log lines carry request ids, results and counts, never a name, ID number or mobile.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from infra.local.emulators.base import (
    LoopbackHTTPServer,
    Request,
    Response,
    json_response,
    parse_json_body,
)

logger = logging.getLogger(__name__)

VERIFY_PATH = "/v1/identity/verify"
ID_NUMBER_PATTERN = re.compile(r"[0-9]{17}[0-9X]")
E164_PATTERN = re.compile(r"\+[1-9][0-9]{7,14}")
MAX_NAME_CHARACTERS = 64
FIELDS = ("name", "id_number", "mobile")
CONTROL_PATHS = (
    "/_emulator/requests",
    "/_emulator/identities",
    "/_emulator/faults",
    "/_emulator/reset",
)

VerificationResult = Literal["match", "mismatch", "not_found"]


@dataclass(frozen=True)
class Identity:
    """One registered person: the three values the provider checks together."""

    name: str
    id_number: str
    mobile: str


class InvalidIdentityError(ValueError):
    """An identity record or request is missing a field or has a malformed one."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field


def parse_identity(payload: Any) -> Identity:
    """Validate a JSON object into an Identity; raise InvalidIdentityError naming the field.

    The error names the field and the rule, never the value, so it is safe to log.
    """
    if not isinstance(payload, dict):
        raise InvalidIdentityError("body", "must be a JSON object")
    for name in FIELDS:
        if not isinstance(payload.get(name), str):
            raise InvalidIdentityError(name, "is missing or not a string")

    identity = Identity(payload["name"], payload["id_number"], payload["mobile"])
    if not identity.name.strip() or len(identity.name) > MAX_NAME_CHARACTERS:
        raise InvalidIdentityError("name", f"must be 1 to {MAX_NAME_CHARACTERS} characters")
    if not ID_NUMBER_PATTERN.fullmatch(identity.id_number):
        raise InvalidIdentityError("id_number", "must be 17 digits then a digit or upper-case X")
    if not E164_PATTERN.fullmatch(identity.mobile):
        raise InvalidIdentityError("mobile", "must be in E.164 format, for example +8613800138000")
    return identity


def load_identities(path: Path) -> list[Identity]:
    """Read a JSON list of identities from `path`; raise ValueError naming the bad entry."""
    payload = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(payload, list):
        raise ValueError(f"{path} must contain a JSON list of identities")

    identities = []
    for index, entry in enumerate(payload):
        try:
            identities.append(parse_identity(entry))
        except InvalidIdentityError as exc:
            raise ValueError(f"{path} entry {index}: {exc}") from exc
    return identities


class RealNameEmulator(LoopbackHTTPServer):
    """Real-name verification provider on 127.0.0.1, checking requests against known people."""

    def __init__(
        self,
        api_key: str,
        *,
        identities_path: str | Path | None = None,
        port: int = 0,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")

        super().__init__(port)
        self._api_key = api_key
        self._lock = threading.Lock()
        self._initial = load_identities(Path(identities_path)) if identities_path else []
        self._identities = {identity.id_number: identity for identity in self._initial}
        self._requests: list[dict[str, str]] = []
        self._rejections: Counter[str] = Counter()
        self._faults_remaining = 0

    # Controls for tests and operators.

    def add_identity(self, name: str, id_number: str, mobile: str) -> None:
        """Register one person; raise InvalidIdentityError naming a malformed field."""
        identity = parse_identity({"name": name, "id_number": id_number, "mobile": mobile})
        with self._lock:
            self._identities[identity.id_number] = identity

    def fail_next(self, count: int) -> None:
        """Make the next `count` verification requests fail with HTTP 503, before the key check."""
        if count < 0:
            raise ValueError("count must not be negative")
        with self._lock:
            self._faults_remaining = count

    def requests(self) -> dict[str, Any]:
        """Return the verification count, counts per result and rejection, and each request."""
        with self._lock:
            results = Counter(entry["result"] for entry in self._requests)
            return {
                "count": len(self._requests),
                "results": {name: results[name] for name in ("match", "mismatch", "not_found")},
                "rejected": dict(self._rejections),
                "requests": [dict(entry) for entry in self._requests],
            }

    def reset(self) -> None:
        """Restore the population loaded from the file and clear request history and faults."""
        with self._lock:
            self._identities = {identity.id_number: identity for identity in self._initial}
            self._requests.clear()
            self._rejections.clear()
            self._faults_remaining = 0
        logger.info("real-name emulator reset", extra={"identity_count": len(self._initial)})

    # HTTP.

    def loggable_path(self, path: str) -> str:
        """Return `path` for logs when it is one of the fixed routes."""
        if path in (VERIFY_PATH, *CONTROL_PATHS):
            return path
        return super().loggable_path(path)

    def handle(self, request: Request) -> Response:
        """Route one request to the verification API or the `/_emulator/` control API."""
        route = (request.method, request.path)
        if route == ("POST", VERIFY_PATH):
            return self._verify(request)
        if route == ("GET", "/_emulator/requests"):
            return json_response(200, self.requests())
        if route == ("POST", "/_emulator/identities"):
            return self._control_identities(request)
        if route == ("POST", "/_emulator/faults"):
            return self._control_faults(request)
        if route == ("POST", "/_emulator/reset"):
            self.reset()
            return json_response(200, {"reset": True})
        return json_response(404, {"error": "not_found"})

    def _verify(self, request: Request) -> Response:
        with self._lock:
            if self._faults_remaining > 0:
                self._faults_remaining -= 1
                self._rejections["unavailable"] += 1
                logger.warning(
                    "real-name emulator returned an injected fault",
                    extra={"status": 503, "faults_remaining": self._faults_remaining},
                )
                return json_response(503, {"error": "service_unavailable"})

        if not self._authorized(request):
            self._reject("unauthorized")
            return json_response(401, {"error": "unauthorized"})

        try:
            identity = parse_identity(parse_json_body(request.body))
        except InvalidIdentityError as exc:
            self._reject("invalid_request", field=exc.field)
            return json_response(400, {"error": "invalid_request", "field": exc.field})
        except ValueError:
            self._reject("invalid_request", field="body")
            return json_response(400, {"error": "invalid_request", "field": "body"})

        request_id = str(uuid.uuid4())
        with self._lock:
            result = self._match(identity)
            self._requests.append({"request_id": request_id, "result": result})
        logger.info("identity verified", extra={"request_id": request_id, "result": result})
        return json_response(200, {"request_id": request_id, "result": result})

    def _match(self, identity: Identity) -> VerificationResult:
        registered = self._identities.get(identity.id_number)
        if registered is None:
            return "not_found"
        if registered == identity:
            return "match"
        return "mismatch"

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self._api_key.encode()
        )

    def _reject(self, reason: str, field: str | None = None) -> None:
        with self._lock:
            self._rejections[reason] += 1
        logger.info("verification request rejected", extra={"reason": reason, "field": field})

    def _control_identities(self, request: Request) -> Response:
        try:
            payload = parse_json_body(request.body)
        except ValueError:
            return json_response(400, {"error": "invalid_request", "field": "body"})

        entries = payload if isinstance(payload, list) else [payload]
        try:
            identities = [parse_identity(entry) for entry in entries]
        except InvalidIdentityError as exc:
            return json_response(400, {"error": "invalid_request", "field": exc.field})

        with self._lock:
            for identity in identities:
                self._identities[identity.id_number] = identity
        logger.info("identities registered", extra={"identity_count": len(identities)})
        return json_response(201, {"added": len(identities)})

    def _control_faults(self, request: Request) -> Response:
        try:
            payload = parse_json_body(request.body)
        except ValueError:
            return json_response(400, {"error": "invalid_request", "field": "body"})

        count = payload.get("count") if isinstance(payload, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return json_response(400, {"error": "invalid_request", "field": "count"})

        self.fail_next(count)
        return json_response(200, {"count": count})
