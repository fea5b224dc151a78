"""China playbooks: the steps a subscriber takes per kind of leaked data, and which are done.

The steps, the official services they link to and the quarterly checks live in
`idsentry/config/playbooks.json`, the single source for the alert e-mail, the account
checklist and the quarterly reminder. Services reached only in an app or a mini program have
no URL, and their `access` text says where to find them.

A step marked done is one item `PLAYBOOK#{alert_id}#{step_id}` in the subscriber's partition;
marking it undone deletes the item, so both directions are idempotent.
"""

from __future__ import annotations

import logging
import re
from functools import cache
from importlib.resources import files
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator

from idsentry.adapters.table import MainTable
from idsentry.errors import (
    AccountNotFoundError,
    NotFoundError,
    RequestValidationError,
    pydantic_problems,
)
from idsentry.i18n import Locale
from idsentry.item_keys import BREACH_SORT_KEY
from idsentry.models.breach import Breach, DataKind

logger = logging.getLogger(__name__)

CONFIG_SOURCE = "idsentry/config/playbooks.json"
STEP_PREFIX = "PLAYBOOK#"
MAX_EMAIL_STEPS = 3
_ID_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"


class Text(BaseModel):
    """One text in both locales."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid", populate_by_name=True)

    # Each text must contain a visible character (pydantic patterns match anywhere).
    zh_cn: str = Field(alias="zh-CN", pattern=r"\S")
    en: str = Field(pattern=r"\S")

    def get(self, locale: Locale) -> str:
        """Return the text in `locale`."""
        return self.en if locale == "en" else self.zh_cn


class Service(BaseModel):
    """An official service: its name, its URL when it has one, and where to find it."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    name: Text
    url: str | None = Field(pattern=r"^https://[a-z0-9.-]+(/[^\s]*)?$")
    access: Text


class Step(BaseModel):
    """One step of a playbook and the services it uses."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    title: Text
    detail: Text
    services: tuple[str, ...]


class Playbook(BaseModel):
    """The steps for one kind of leaked data, and the ones the alert e-mail lists."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    steps: tuple[str, ...] = Field(min_length=1)
    email_steps: tuple[str, ...] = Field(min_length=1, max_length=MAX_EMAIL_STEPS)


class Check(BaseModel):
    """A pull-only official check that the quarterly reminder asks the subscriber to re-run."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    title: Text
    services: tuple[str, ...] = Field(min_length=1)
    counts: dict[str, Text] = Field(min_length=1)


class PlaybookConfig(BaseModel):
    """The whole playbook configuration, with every reference between its parts checked."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    schema_version: int = Field(ge=1, le=1)
    services: dict[str, Service]
    steps: dict[str, Step]
    playbooks: dict[DataKind, Playbook]
    checks: dict[str, Check]

    @model_validator(mode="after")
    def _check_references(self) -> PlaybookConfig:
        pattern = re.compile(_ID_PATTERN)
        ids = [*self.services, *self.steps, *self.checks]
        ids += [name for check in self.checks.values() for name in check.counts]
        for name in ids:
            if not pattern.fullmatch(name):
                raise ValueError(f"id {name!r} must match {_ID_PATTERN}")

        missing_kinds = set(DataKind) - set(self.playbooks)
        if missing_kinds:
            raise ValueError(f"no playbook for data kinds {sorted(missing_kinds)}")
        for step_id, step in self.steps.items():
            for service in step.services:
                if service not in self.services:
                    raise ValueError(f"step {step_id!r} names unknown service {service!r}")
        for check_id, check in self.checks.items():
            for service in check.services:
                if service not in self.services:
                    raise ValueError(f"check {check_id!r} names unknown service {service!r}")
        for kind, playbook in self.playbooks.items():
            for step_id in playbook.steps:
                if step_id not in self.steps:
                    raise ValueError(f"playbook {kind.value!r} names unknown step {step_id!r}")
            if len(set(playbook.steps)) != len(playbook.steps):
                raise ValueError(f"playbook {kind.value!r} names a step twice")
            if not set(playbook.email_steps) <= set(playbook.steps):
                raise ValueError(f"playbook {kind.value!r} e-mails steps it does not list")
        return self


class PlaybookConfigError(ValueError):
    """The playbook configuration is not valid; the message names the problem."""


def parse_config(raw: bytes, source: str) -> PlaybookConfig:
    """Validate a playbook configuration. Raises PlaybookConfigError naming the problem."""
    try:
        return PlaybookConfig.model_validate_json(raw)
    except ValidationError as exc:
        raise PlaybookConfigError(f"{source} is invalid: {exc}") from None


@cache
def load_config() -> PlaybookConfig:
    """Read and validate the packaged playbook configuration once per process."""
    resource = files("idsentry.config").joinpath("playbooks.json")
    return parse_config(resource.read_bytes(), CONFIG_SOURCE)


def email_steps(kind: DataKind, locale: Locale) -> tuple[str, ...]:
    """Return the texts of the steps the alert e-mail lists for `kind`, in `locale`."""
    config = load_config()
    return tuple(
        config.steps[step_id].detail.get(locale) for step_id in config.playbooks[kind].email_steps
    )


def email_step_links(kind: DataKind, locale: Locale) -> tuple[tuple[tuple[str, str], ...], ...]:
    """Return, per e-mailed step of `kind`, the (service name, URL) of its services with a URL."""
    config = load_config()
    links = []
    for step_id in config.playbooks[kind].email_steps:
        services = (config.services[name] for name in config.steps[step_id].services)
        links.append(
            tuple((service.name.get(locale), service.url) for service in services if service.url)
        )
    return tuple(links)


def service_view(service_id: str, locale: Locale) -> dict[str, Any]:
    """Return one service as the account routes show it."""
    service = load_config().services[service_id]
    return {
        "id": service_id,
        "name": service.name.get(locale),
        "url": service.url,
        "access": service.access.get(locale),
    }


# --- the checklist of one alert -------------------------------------------------------------


class AlertNotFoundError(NotFoundError):
    """The account has no confirmed alert with this id."""

    def __init__(self) -> None:
        super().__init__("alert.not_found")


class StepNotFoundError(NotFoundError):
    """The alert's playbook has no step with this id."""

    def __init__(self) -> None:
        super().__init__("playbook.step_not_found")


class StepChangeBody(BaseModel):
    """The JSON body of PUT /v1/account/alerts/{alert_id}/playbook/{step_id}."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    done: StrictBool


def parse_step_change(payload: dict[str, Any]) -> bool:
    """Return the requested done state. Raises RequestValidationError naming the field."""
    try:
        return StepChangeBody.model_validate(payload).done
    except ValidationError as exc:
        raise RequestValidationError(pydantic_problems(exc)) from None


def _step_sk(alert_id: str, step_id: str) -> str:
    return f"{STEP_PREFIX}{alert_id}#{step_id}"


def _leaked_kinds(
    table: MainTable, items: dict[str, dict[str, Any]], alert: dict[str, Any]
) -> list[DataKind]:
    """Return the alert's leaked kinds, most harmful first: the breach's and the matched ones."""
    breach_name = str(alert["breach_name"])
    exposure = items.get(f"EXPOSURE#{breach_name}") or {}
    kinds = {DataKind(kind) for kind in exposure.get("matched_kinds") or ()}
    record = table.get(f"BREACH#{breach_name}", BREACH_SORT_KEY)
    if record is not None:
        kinds |= Breach.model_validate(record).kinds
    order = list(load_config().playbooks)
    return sorted(kinds, key=order.index)


def _find_alert(items: dict[str, dict[str, Any]], alert_id: str) -> dict[str, Any]:
    for sk, item in items.items():
        if sk.startswith("ALERT#") and item.get("alert_id") == alert_id:
            # Alerts that were never sent (waiting for review, dismissed) have no playbook.
            if item.get("status") == "confirmed":
                return item
    raise AlertNotFoundError()


def alert_playbook(
    table: MainTable, subscriber_id: str, alert_id: str, locale: Locale
) -> dict[str, Any]:
    """Return the steps for the alert's leaked kinds, each with whether it is done.

    A step that several kinds share is listed once, under the first kind that lists it.
    Raises AlertNotFoundError when the account has no confirmed alert `alert_id`.
    """
    items = table.get_partition(f"SUB#{subscriber_id}")
    profile = items.get("PROFILE")
    if profile is None or profile.get("deletion_requested_at"):
        raise AccountNotFoundError()
    alert = _find_alert(items, alert_id)
    kinds = _leaked_kinds(table, items, alert)
    config = load_config()

    steps: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        for step_id in config.playbooks[kind].steps:
            if step_id in steps:
                steps[step_id]["data_kinds"].append(kind.value)
                continue
            step = config.steps[step_id]
            done = items.get(_step_sk(alert_id, step_id))
            steps[step_id] = {
                "step_id": step_id,
                "data_kinds": [kind.value],
                "title": step.title.get(locale),
                "detail": step.detail.get(locale),
                "services": [service_view(name, locale) for name in step.services],
                "done": done is not None,
                "done_at": done.get("done_at") if done else None,
            }
    done_count = sum(1 for step in steps.values() if step["done"])
    return {
        "alert_id": alert_id,
        "data_kinds": [kind.value for kind in kinds],
        "steps": list(steps.values()),
        "done": done_count,
        "total": len(steps),
    }


def mark_step(
    table: MainTable,
    subscriber_id: str,
    alert_id: str,
    step_id: str,
    done: bool,
    now: int,
    locale: Locale,
) -> dict[str, Any]:
    """Mark one step of the alert's playbook done or undone and return the whole playbook.

    A repeat changes nothing: marking a done step done keeps its first time. Raises
    AlertNotFoundError or StepNotFoundError.
    """
    playbook = alert_playbook(table, subscriber_id, alert_id, locale)
    if step_id not in {step["step_id"] for step in playbook["steps"]}:
        raise StepNotFoundError()

    pk = f"SUB#{subscriber_id}"
    if done:
        table.put(
            {
                "pk": pk,
                "sk": _step_sk(alert_id, step_id),
                "alert_id": alert_id,
                "step_id": step_id,
                "done_at": now,
            },
            condition="attribute_not_exists(pk)",
        )
    else:
        table.delete(pk, _step_sk(alert_id, step_id))
    logger.info(
        "playbook step marked",
        extra={
            "subscriber_id": subscriber_id,
            "alert_id": alert_id,
            "step_id": step_id,
            "done": done,
        },
    )
    return alert_playbook(table, subscriber_id, alert_id, locale)
