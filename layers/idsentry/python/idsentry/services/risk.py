"""Severity and confidence of an exposure, from ordered rule tables kept in configuration.

Each table is read from the top and the first rule whose conditions all hold gives the result.
The last rule of a table has no conditions, so every exposure gets a result. The shipped
tables are ``idsentry/config/risk_rules.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib.resources import files
from pathlib import Path
from typing import Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from idsentry.errors import ConfigurationError, FieldProblem
from idsentry.identifiers import IdentifierKind
from idsentry.models.breach import Breach, DataKind

FoundBy = Literal["dataset", "index", "hibp"]


class Severity(StrEnum):
    """Harm level of an exposure."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Confidence(StrEnum):
    """Certainty that an exposure belongs to the subscriber."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


_CONFIDENCE_RANK: Final[Mapping[Confidence, int]] = {
    Confidence.LOW: 0,
    Confidence.MEDIUM: 1,
    Confidence.HIGH: 2,
}


class ExposureFacts(BaseModel):
    """Facts about one exposure that the risk rules read, apart from the breach record.

    ``mobile_shared`` and ``email_confirmed`` describe the matched mobile number and e-mail
    address, so they may be True only when that kind is in ``matched_kinds``.
    """

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    matched_kinds: frozenset[IdentifierKind] = Field(min_length=1)
    found_by: FoundBy
    # True when more than one subscriber watches the matched mobile number.
    mobile_shared: StrictBool = False
    # True when the subscriber confirmed the matched e-mail address.
    email_confirmed: StrictBool = False

    @model_validator(mode="after")
    def _check_kind_facts(self) -> Self:
        if self.mobile_shared and IdentifierKind.MOBILE not in self.matched_kinds:
            raise ValueError("mobile_shared may be true only when matched_kinds contains mobile")
        if self.email_confirmed and IdentifierKind.EMAIL not in self.matched_kinds:
            raise ValueError("email_confirmed may be true only when matched_kinds contains email")
        return self


class Conditions(BaseModel):
    """The conditions of one rule. A rule applies when every condition that is set holds.

    A list condition holds when the fact shares at least one value with the list.
    """

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    matched_any: frozenset[IdentifierKind] | None = Field(default=None, min_length=1)
    breach_exposes_any: frozenset[DataKind] | None = Field(default=None, min_length=1)
    found_by: frozenset[FoundBy] | None = Field(default=None, min_length=1)
    verified: StrictBool | None = None
    catalogued: StrictBool | None = None
    mobile_shared: StrictBool | None = None
    email_confirmed: StrictBool | None = None

    @property
    def empty(self) -> bool:
        """Whether no condition is set, so that the rule applies to every exposure."""
        return all(getattr(self, name) is None for name in type(self).model_fields)


class _Rule(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+$")
    description: str = Field(default="", max_length=500)
    when: Conditions


class SeverityRule(_Rule):
    """One row of the severity table."""

    result: Severity


class ConfidenceRule(_Rule):
    """One row of the confidence table."""

    result: Confidence


def _check_table[RuleT: _Rule](rules: tuple[RuleT, ...]) -> tuple[RuleT, ...]:
    if not rules:
        raise ValueError("must contain at least one rule, and the last rule needs an empty 'when'")

    names = [rule.name for rule in rules]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ValueError(
                f"rule {index} repeats the name {name!r}. Give each rule a unique name."
            )

    for index, rule in enumerate(rules[:-1]):
        if rule.when.empty:
            raise ValueError(
                f"rule {index} ({rule.name!r}) has no conditions, so the rules after it never "
                "apply; only the last rule may have an empty 'when'"
            )

    if not rules[-1].when.empty:
        raise ValueError(
            f"the last rule ({len(rules) - 1}, {rules[-1].name!r}) must have an empty 'when', "
            "so that it is the default for every exposure that no other rule matches"
        )
    return rules


class RiskRules(BaseModel):
    """The severity and confidence tables and the confidence at which exposures auto-confirm."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    schema_version: Literal[1]
    # Exposures with at least this confidence are confirmed without review. None sends every
    # exposure to the review queue.
    auto_confirm_min_confidence: Confidence | None
    # _check_table rejects an empty table. A min_length here would make pydantic also report
    # "at least 1 item" whenever every rule of the table is invalid.
    severity: tuple[SeverityRule, ...]
    confidence: tuple[ConfidenceRule, ...]

    @field_validator("severity")
    @classmethod
    def _check_severity(cls, rules: tuple[SeverityRule, ...]) -> tuple[SeverityRule, ...]:
        return _check_table(rules)

    @field_validator("confidence")
    @classmethod
    def _check_confidence(cls, rules: tuple[ConfidenceRule, ...]) -> tuple[ConfidenceRule, ...]:
        return _check_table(rules)


class RiskRulesError(ConfigurationError):
    """The risk rules are not valid JSON or have invalid fields, which ``problems`` lists.

    Field paths name the table, the rule index and the field, for example
    ``severity[2].when.matched_any[0]``.
    """

    def __init__(self, source: str, problems: list[FieldProblem]) -> None:
        self.source = source
        self.problems = problems
        details = "; ".join(f"{problem.field}: {problem.params['message']}" for problem in problems)
        super().__init__(f"Invalid risk rules in {source}. {details}")

    @property
    def fields(self) -> list[str]:
        """The paths of the invalid fields, in the order pydantic reported them."""
        return [problem.field for problem in self.problems]


@dataclass(frozen=True)
class Assessment:
    """The result of scoring one exposure, with the names of the rules that decided it."""

    severity: Severity
    confidence: Confidence
    severity_rule: str
    confidence_rule: str
    auto_confirm: bool


def parse_rules(document: bytes | str | Mapping[str, Any], source: str = "document") -> RiskRules:
    """Parse and validate risk rules given as JSON text or an already decoded object.

    Raises RiskRulesError naming every invalid field; ``source`` names the file in the message.
    """
    if isinstance(document, bytes | str):
        try:
            data = json.loads(document)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            message = f"is not valid UTF-8 JSON (line {getattr(exc, 'lineno', 1)})"
            raise RiskRulesError(
                source, [_problem("rules", "rules.invalid_json", message)]
            ) from None
    else:
        data = dict(document)
    if not isinstance(data, dict):
        raise RiskRulesError(
            source, [_problem("rules", "rules.not_an_object", "must be an object")]
        )

    try:
        return RiskRules.model_validate(data)
    except ValidationError as exc:
        raise RiskRulesError(source, _rule_problems(exc)) from None


def load_rules(path: str | Path | None = None) -> RiskRules:
    """Load the risk rules from ``path``, or the rules shipped in the package when it is None.

    Raises RiskRulesError for invalid rules and OSError when the file cannot be read.
    """
    if path is None:
        resource = files("idsentry.config").joinpath("risk_rules.json")
        return parse_rules(resource.read_bytes(), source="idsentry/config/risk_rules.json")
    return parse_rules(Path(path).read_bytes(), source=str(path))


@dataclass(frozen=True)
class _Facts:
    exposure: ExposureFacts
    exposed_kinds: frozenset[DataKind]
    verified: bool
    catalogued: bool


def _facts(exposure: ExposureFacts, breach: Breach | None) -> _Facts:
    # A matched kind was in the breach data even when the breach's data classes leave it out.
    matched = frozenset(DataKind(kind.value) for kind in exposure.matched_kinds)

    # An index hit may name a breach that is missing from the catalogue. It is scored as an
    # unverified breach that exposed only the matched kinds, so it cannot reach high confidence
    # through the 'verified' condition.
    if breach is None:
        return _Facts(exposure, matched, verified=False, catalogued=False)
    return _Facts(exposure, breach.kinds | matched, verified=breach.is_verified, catalogued=True)


def _holds(when: Conditions, facts: _Facts) -> bool:
    exposure = facts.exposure
    checks = (
        when.matched_any is None or not when.matched_any.isdisjoint(exposure.matched_kinds),
        when.breach_exposes_any is None
        or not when.breach_exposes_any.isdisjoint(facts.exposed_kinds),
        when.found_by is None or exposure.found_by in when.found_by,
        when.verified is None or when.verified == facts.verified,
        when.catalogued is None or when.catalogued == facts.catalogued,
        when.mobile_shared is None or when.mobile_shared == exposure.mobile_shared,
        when.email_confirmed is None or when.email_confirmed == exposure.email_confirmed,
    )
    return all(checks)


def _first_match[RuleT: _Rule](rules: tuple[RuleT, ...], facts: _Facts) -> RuleT:
    for rule in rules:
        if _holds(rule.when, facts):
            return rule
    # Unreachable for validated rules, whose last rule has no conditions.
    raise ConfigurationError("risk rule table has no default rule")


def assess(exposure: ExposureFacts, breach: Breach | None, rules: RiskRules) -> Assessment:
    """Score an exposure by the first matching rule of each table.

    ``breach`` is the catalogue record, or None when the breach is not in the catalogue.
    ``auto_confirm`` depends on confidence only, so the caller still drops exposures in
    breaches that are not ``alertable`` (fabricated, spam lists, retired).
    """
    facts = _facts(exposure, breach)

    severity_rule = _first_match(rules.severity, facts)
    confidence_rule = _first_match(rules.confidence, facts)

    threshold = rules.auto_confirm_min_confidence
    auto_confirm = (
        threshold is not None
        and _CONFIDENCE_RANK[confidence_rule.result] >= _CONFIDENCE_RANK[threshold]
    )
    return Assessment(
        severity=severity_rule.result,
        confidence=confidence_rule.result,
        severity_rule=severity_rule.name,
        confidence_rule=confidence_rule.name,
        auto_confirm=auto_confirm,
    )


def _rule_problems(exc: ValidationError) -> list[FieldProblem]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        field = _path(error["loc"])
        match error["type"]:
            case "missing":
                problems.append(_problem(field, "field.missing", "field required"))
            case "extra_forbidden":
                problems.append(_problem(field, "field.unknown", "unknown field"))
            case _:
                message = error["msg"].removeprefix("Value error, ")
                problems.append(_problem(field, "field.invalid", message))
    return problems


def _path(loc: tuple[int | str, ...]) -> str:
    # ("severity", 2, "when", "matched_any", 0) becomes "severity[2].when.matched_any[0]".
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "rules"


def _problem(field: str, code: str, message: str) -> FieldProblem:
    return FieldProblem(field, code, {"message": message})
