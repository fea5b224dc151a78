"""Requests of the account routes, validated into typed changes or a list of field problems."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from idsentry.errors import FieldProblem, RequestValidationError, pydantic_problems
from idsentry.i18n import SUPPORTED_LOCALES, Locale
from idsentry.models.signup import is_known_timezone


class EmailListsBody(BaseModel):
    """The e-mail lists a subscriber receives. A list left out stays as it is."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    alerts: StrictBool | None = None
    reports: StrictBool | None = None


class PreferencesBody(BaseModel):
    """The JSON body of PUT /v1/account/preferences, whose fields are all optional."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    sms_alerts: StrictBool | None = None
    email_lists: EmailListsBody | None = None
    timezone: str | None = Field(default=None, max_length=64)
    locale: str | None = Field(default=None, max_length=16)


@dataclass(frozen=True)
class PreferencesChange:
    """The settings a request changes. None leaves a setting as it is."""

    sms_alerts: bool | None = None
    email_alerts: bool | None = None
    email_reports: bool | None = None
    timezone: str | None = None
    locale: Locale | None = None

    def is_empty(self) -> bool:
        """Return whether the request changes nothing."""
        return all(
            value is None
            for value in (
                self.sms_alerts,
                self.email_alerts,
                self.email_reports,
                self.timezone,
                self.locale,
            )
        )


def parse_preferences(payload: dict[str, Any]) -> PreferencesChange:
    """Validate a preferences body. Raises RequestValidationError listing every invalid field."""
    try:
        body = PreferencesBody.model_validate(payload)
    except ValidationError as exc:
        raise RequestValidationError(pydantic_problems(exc)) from None

    problems: list[FieldProblem] = []
    if body.timezone is not None and not is_known_timezone(body.timezone):
        problems.append(FieldProblem("timezone", "timezone.unknown"))
    locale: Locale | None = None
    if body.locale is not None:
        if body.locale not in SUPPORTED_LOCALES:
            problems.append(FieldProblem("locale", "locale.unsupported"))
        else:
            locale = "en" if body.locale == "en" else "zh-CN"
    if problems:
        raise RequestValidationError(problems)

    lists = body.email_lists or EmailListsBody()
    change = PreferencesChange(
        sms_alerts=body.sms_alerts,
        email_alerts=lists.alerts,
        email_reports=lists.reports,
        timezone=body.timezone,
        locale=locale,
    )
    if change.is_empty():
        raise RequestValidationError([FieldProblem("body", "preferences.nothing_to_change")])
    return change
