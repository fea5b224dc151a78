"""Domain errors: what a caller did wrong (mapped to 4xx) or a dependency that failed (5xx)."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class ConfigurationError(RuntimeError):
    """A function's environment or secret is missing or invalid; raised at cold start."""


@dataclass(frozen=True)
class FieldProblem:
    """One invalid request field with a stable code and message parameters (never the value)."""

    field: str
    code: str
    params: dict[str, str] = dataclass_field(default_factory=dict)


class DomainError(Exception):
    """An error the caller can act on; `code` selects the localized message."""

    status = 400

    def __init__(self, code: str, params: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.params = params or {}


class RequestValidationError(DomainError):
    """The request has one or more invalid fields; all of them are listed."""

    status = 422

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("request.invalid")
        self.problems = problems


class NotFoundError(DomainError):
    """The addressed resource does not exist or has expired."""

    status = 404


class AccountNotFoundError(NotFoundError):
    """The token names an account whose profile is gone (it was deleted)."""

    def __init__(self) -> None:
        super().__init__("account.not_found")


class ConflictError(DomainError):
    """The request conflicts with the resource's current state."""

    status = 409


class RateLimitedError(DomainError):
    """An abuse limit was reached; the caller may retry after `retry_after` seconds."""

    status = 429

    def __init__(self, code: str, retry_after: int) -> None:
        super().__init__(code, {"retry_after": str(retry_after)})
        self.retry_after = retry_after


class ServiceUnavailableError(DomainError):
    """The service cannot take the request now (a budget breaker or a provider outage)."""

    status = 503

    def __init__(self, code: str, retry_after: int | None = None) -> None:
        super().__init__(code)
        self.retry_after = retry_after


class ProviderError(RuntimeError):
    """A third-party provider failed. `transient` is True when a retry may succeed.

    `code` is the provider's own error code when it gave one (Twilio's 21610, SES's
    `MessageRejected`), so callers can act on it: mark a number opted out, suppress an address.
    `outcome_unknown` is True when the request reached the provider and no answer came back
    (a read timeout), so the provider may have carried it out: sending again could send twice.
    """

    def __init__(
        self,
        provider: str,
        detail: str,
        *,
        transient: bool,
        code: str | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(f"{provider}: {detail}")
        self.provider = provider
        self.transient = transient
        self.code = code
        self.outcome_unknown = outcome_unknown


class PoisonMessageError(ValueError):
    """A queue message that can never be processed; it goes to the DLQ after its retries."""


def pydantic_problems(exc: ValidationError) -> list[FieldProblem]:
    """Turn a body model's validation errors into field problems with catalogue codes."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "body"
        kind = error["type"]
        if kind == "missing":
            problems.append(FieldProblem(field, "field.missing"))
        elif kind == "extra_forbidden":
            problems.append(FieldProblem(field, "field.unknown"))
        elif kind == "string_too_long":
            limit = str(error.get("ctx", {}).get("max_length", ""))
            problems.append(FieldProblem(field, "field.too_long", {"max_length": limit}))
        else:
            problems.append(FieldProblem(field, "field.invalid_type"))
    return problems
