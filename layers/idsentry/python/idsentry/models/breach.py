"""Breach catalogue records (HIBP v3 breach model), data-class kinds and intake manifests."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from idsentry import jsontext
from idsentry.errors import FieldProblem
from idsentry.identifiers import IdentifierKind


class DataKind(StrEnum):
    """Kind of personal data that a breach exposed.

    The first four values equal the IdentifierKind values, because those kinds are
    fingerprinted and matched. Passwords, names and addresses only count towards severity.
    """

    ID_NUMBER = "id_number"
    MOBILE = "mobile"
    EMAIL = "email"
    BANK_CARD = "bank_card"
    PASSWORD = "password"  # noqa: S105 (the name of a data kind, not a secret)
    NAME = "name"
    ADDRESS = "address"

    @property
    def identifier_kind(self) -> IdentifierKind | None:
        """The IdentifierKind of a kind that is fingerprinted, or None."""
        try:
            return IdentifierKind(self.value)
        except ValueError:
            return None


# HIBP data-class names (as GET /api/v3/dataclasses lists them) and the Chinese names that
# manifests use. Keys are compared after NFKC, trimming and casefolding. A data class that is
# missing here (for example "Usernames" or "IP addresses") is kept but maps to no kind.
# "Partial credit card data" is left out on purpose: it is usually the last four digits,
# which cannot identify a card.
_DATA_CLASS_KINDS: Final[Mapping[str, DataKind]] = {
    "Email addresses": DataKind.EMAIL,
    "Phone numbers": DataKind.MOBILE,
    "Government issued IDs": DataKind.ID_NUMBER,
    "Passwords": DataKind.PASSWORD,
    "Names": DataKind.NAME,
    "Physical addresses": DataKind.ADDRESS,
    "Bank account numbers": DataKind.BANK_CARD,
    "Credit cards": DataKind.BANK_CARD,
    "电子邮箱": DataKind.EMAIL,
    "电子邮件": DataKind.EMAIL,
    "邮箱": DataKind.EMAIL,
    "邮箱地址": DataKind.EMAIL,
    "邮件地址": DataKind.EMAIL,
    "手机号": DataKind.MOBILE,
    "手机号码": DataKind.MOBILE,
    "手机": DataKind.MOBILE,
    "电话": DataKind.MOBILE,
    "电话号码": DataKind.MOBILE,
    "联系电话": DataKind.MOBILE,
    "身份证": DataKind.ID_NUMBER,
    "身份证号": DataKind.ID_NUMBER,
    "身份证号码": DataKind.ID_NUMBER,
    "证件号": DataKind.ID_NUMBER,
    "证件号码": DataKind.ID_NUMBER,
    "居民身份证号码": DataKind.ID_NUMBER,
    "密码": DataKind.PASSWORD,
    "姓名": DataKind.NAME,
    "名字": DataKind.NAME,
    "真实姓名": DataKind.NAME,
    "地址": DataKind.ADDRESS,
    "住址": DataKind.ADDRESS,
    "家庭住址": DataKind.ADDRESS,
    "收货地址": DataKind.ADDRESS,
    "详细地址": DataKind.ADDRESS,
    "银行卡": DataKind.BANK_CARD,
    "银行卡号": DataKind.BANK_CARD,
    "银行账号": DataKind.BANK_CARD,
    "信用卡": DataKind.BANK_CARD,
    "信用卡号": DataKind.BANK_CARD,
}


def normalize_label(label: str) -> str:
    """Return the comparison form of a data-class name, column header or JSON key.

    NFKC maps full-width letters and spaces to their ASCII forms, then the label is trimmed
    and casefolded, so that "Email Addresses " and "email addresses" compare equal.
    """
    return unicodedata.normalize("NFKC", label).strip().casefold()


_KINDS_BY_LABEL: Final[Mapping[str, DataKind]] = {
    normalize_label(label): kind for label, kind in _DATA_CLASS_KINDS.items()
}


def kind_for_data_class(data_class: str) -> DataKind | None:
    """Return the kind of an HIBP data class or a Chinese synonym, or None if it has none."""
    return _KINDS_BY_LABEL.get(normalize_label(data_class))


# The breach Name is our breach id and part of DynamoDB keys, so it must not contain the
# key separator "#". HIBP names are Pascal-cased letters and digits ("Adobe", "000webhost").
_BREACH_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class Breach(BaseModel):
    """One breach in the catalogue: HIBP's v3 breach model plus our ``source``.

    Fields validate and serialize by their HIBP names (``Name``, ``AddedDate``), and Python
    code uses the snake_case names. Attributes that HIBP adds later are ignored, because HIBP
    extends the model without a new API version.
    """

    model_config = ConfigDict(
        defer_build=True,
        frozen=True,
        extra="ignore",
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
        str_strip_whitespace=True,
    )

    source: Literal["hibp", "dataset"]
    name: str = Field(alias="Name", min_length=1, max_length=128)
    title: str = Field(alias="Title", min_length=1, max_length=256)
    domain: str = Field(default="", alias="Domain", max_length=253)
    breach_date: date = Field(alias="BreachDate")
    # Dataset manifests may leave these out. The intake fills them in with catalogue_record().
    added_date: AwareDatetime | None = Field(default=None, alias="AddedDate")
    modified_date: AwareDatetime | None = Field(default=None, alias="ModifiedDate")
    pwn_count: int = Field(default=0, alias="PwnCount", ge=0)
    description: str = Field(default="", alias="Description", max_length=20_000)
    logo_path: str | None = Field(default=None, alias="LogoPath")
    attribution: str | None = Field(default=None, alias="Attribution")
    disclosure_url: str | None = Field(default=None, alias="DisclosureUrl")
    data_classes: tuple[str, ...] = Field(alias="DataClasses")
    # Required, so that a manifest cannot mark a dataset verified by leaving the flag out.
    is_verified: bool = Field(alias="IsVerified")
    is_fabricated: bool = Field(default=False, alias="IsFabricated")
    is_sensitive: bool = Field(default=False, alias="IsSensitive")
    is_retired: bool = Field(default=False, alias="IsRetired")
    is_spam_list: bool = Field(default=False, alias="IsSpamList")
    is_malware: bool = Field(default=False, alias="IsMalware")
    is_stealer_log: bool = Field(default=False, alias="IsStealerLog")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _BREACH_NAME_PATTERN.fullmatch(value):
            raise ValueError(
                "must start with a letter or digit and contain only letters, digits, "
                "'.', '_' and '-' (at most 128 characters)"
            )
        return value

    @field_validator("data_classes")
    @classmethod
    def _check_data_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(item.strip() for item in value)
        if any(not item for item in cleaned):
            raise ValueError("must not contain empty data classes")
        return cleaned

    @classmethod
    def from_hibp(cls, payload: Mapping[str, Any]) -> Breach:
        """Parse one breach as HIBP's ``/breaches`` and ``/breach/{name}`` return it."""
        return cls.model_validate({**payload, "source": "hibp"})

    @property
    def kinds(self) -> frozenset[DataKind]:
        """Kinds of personal data in the breach's data classes."""
        found = (kind_for_data_class(item) for item in self.data_classes)
        return frozenset(kind for kind in found if kind is not None)

    @property
    def alertable(self) -> bool:
        """Whether an exposure in this breach may produce an alert.

        Fabricated breaches, spam lists and retired breaches never do.
        """
        return not (self.is_fabricated or self.is_spam_list or self.is_retired)

    @property
    def needs_review(self) -> bool:
        """Whether the breach is unverified, so risk scoring lowers its confidence."""
        return not self.is_verified


class Provenance(BaseModel):
    """The origin of a dataset, the legal basis for processing it and who approved it."""

    model_config = ConfigDict(
        defer_build=True, frozen=True, extra="forbid", str_strip_whitespace=True
    )

    source: str = Field(min_length=1, max_length=1000)
    legal_basis: str = Field(min_length=1, max_length=1000)
    approved_by: str = Field(min_length=1, max_length=256)
    approved_at: AwareDatetime


Encoding = Literal["utf-8", "utf-8-sig", "gb18030", "gbk"]
FileFormat = Literal["csv", "tsv", "jsonl"]

# Spellings that operators commonly write for the supported encodings.
_ENCODING_ALIASES: Final[Mapping[str, str]] = {
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "utf8-sig": "utf-8-sig",
    "utf-8-bom": "utf-8-sig",
    "gb18030": "gb18030",
    "gb-18030": "gb18030",
    "gbk": "gbk",
    "cp936": "gbk",
}


class IntakeManifest(BaseModel):
    """The JSON manifest that an operator uploads next to a breach data file.

    ``columns`` maps a CSV/TSV header or a top-level JSON key to the kind of data it holds.
    Columns that the manifest does not name are ignored.
    """

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    breach: Breach
    encoding: Encoding
    format: FileFormat
    columns: dict[str, DataKind] = Field(min_length=1)
    multiline_fields: bool = False
    provenance: Provenance

    @field_validator("breach", mode="before")
    @classmethod
    def _mark_dataset(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            if value.get("source", "dataset") != "dataset":
                raise ValueError("source must be 'dataset' in a manifest, or left out")
            return {**value, "source": "dataset"}
        return value

    @field_validator("encoding", mode="before")
    @classmethod
    def _normalize_encoding(cls, value: Any) -> Any:
        if isinstance(value, str):
            spelling = value.strip().lower().replace("_", "-")
            return _ENCODING_ALIASES.get(spelling, value)
        return value

    @field_validator("columns")
    @classmethod
    def _check_columns(
        cls, value: dict[str, DataKind], info: ValidationInfo
    ) -> dict[str, DataKind]:
        labels = [normalize_label(column) for column in value]
        if any(not label for label in labels):
            raise ValueError("column names must not be empty")
        if len(set(labels)) != len(labels):
            raise ValueError("two column names are equal after NFKC, trimming and casefolding")
        if not any(kind.identifier_kind is not None for kind in value.values()):
            raise ValueError(
                "at least one column must hold an identifier: id_number, mobile, email or bank_card"
            )

        # info.data has "breach" only when the breach itself was valid.
        breach = info.data.get("breach")
        if isinstance(breach, Breach):
            undeclared = sorted({kind for kind in value.values() if kind not in breach.kinds})
            if undeclared:
                raise ValueError(
                    "columns hold kinds that breach.DataClasses does not list: "
                    + ", ".join(undeclared)
                    + ". Add the matching data classes, such as 'Phone numbers' for mobile."
                )
        return value

    @field_validator("multiline_fields")
    @classmethod
    def _check_multiline(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("format") == "jsonl":
            raise ValueError(
                "applies to csv and tsv only, because JSON Lines escapes line breaks inside strings"
            )
        return value

    @property
    def identifier_columns(self) -> dict[str, IdentifierKind]:
        """The columns that hold fingerprinted identifiers, by column name."""
        found = {column: kind.identifier_kind for column, kind in self.columns.items()}
        return {column: kind for column, kind in found.items() if kind is not None}

    def catalogue_record(self, now: datetime, pwn_count: int | None = None) -> Breach:
        """Return the breach as the catalogue stores it once intake accepts the manifest.

        A missing ``AddedDate`` or ``ModifiedDate`` becomes ``now``. ``pwn_count``, when
        given, replaces ``PwnCount`` (for example with the number of accepted rows).
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        update: dict[str, Any] = {
            "added_date": self.breach.added_date or now,
            "modified_date": self.breach.modified_date or now,
        }
        if pwn_count is not None:
            update["pwn_count"] = pwn_count
        return self.breach.model_copy(update=update)


class ManifestError(ValueError):
    """An intake manifest is not valid JSON or has invalid fields; ``problems`` lists them.

    Field paths use the manifest's own names, for example ``provenance`` or
    ``breach.BreachDate``. The message never contains field values.
    """

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        details = "; ".join(f"{problem.field}: {problem.params['message']}" for problem in problems)
        super().__init__(f"Invalid intake manifest. {details}")

    @property
    def fields(self) -> list[str]:
        """The paths of the invalid fields, in the order pydantic reported them."""
        return [problem.field for problem in self.problems]


def parse_manifest(document: bytes | str | Mapping[str, Any]) -> IntakeManifest:
    """Parse and validate an intake manifest given as JSON text or an already decoded object.

    Raises ManifestError naming every invalid field. A manifest without ``provenance`` is
    rejected with the problem ``provenance: field.missing``.
    """
    if isinstance(document, bytes | str):
        try:
            data = jsontext.loads(document)
        except ValueError as exc:
            # Also invalid UTF-8, integers over 4,300 digits and nesting past the decoder's limit.
            message = f"is not valid UTF-8 JSON (line {getattr(exc, 'lineno', 1)})"
            raise ManifestError([_problem("manifest", "manifest.invalid_json", message)]) from None
    else:
        data = dict(document)
    if not isinstance(data, dict):
        raise ManifestError([_problem("manifest", "manifest.not_an_object", "must be an object")])

    try:
        return IntakeManifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(_manifest_problems(exc)) from None


def _manifest_problems(exc: ValidationError) -> list[FieldProblem]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "manifest"
        match error["type"]:
            case "missing":
                problems.append(_problem(field, "field.missing", "field required"))
            case "extra_forbidden":
                problems.append(_problem(field, "field.unknown", "unknown field"))
            case _:
                problems.append(_problem(field, "field.invalid", _strip_prefix(error["msg"])))
    return problems


def _strip_prefix(message: str) -> str:
    # Messages of ValueErrors raised in validators start with "Value error, ".
    return message.removeprefix("Value error, ")


def _problem(field: str, code: str, message: str) -> FieldProblem:
    return FieldProblem(field, code, {"message": message})
