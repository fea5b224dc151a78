"""Compare the end states of two runs of one story, ignoring what legitimately differs.

Two runs of a story create different ids, timestamps, ciphertexts, fingerprints (each run has
its own pepper), Stripe object ids, Twilio SIDs, SES message ids, ports and one-time codes.
`normalise()` replaces each of those with a placeholder (a generated id of a story step's
signup or subscriber becomes that step's id, such as `<wang.signup>`), and keeps everything
else: statuses, amounts, counts, kinds, breach names, masked identifiers, message texts.

`compare()` then matches the normalised records of the two runs as multisets, per category.
A record of the first run with no equal record in the second is lost, and one only in the
second is duplicated. A lost and a duplicated record with the same key (table, partition and
sort key, or recipient) pair up as one differing record. Reports name categories, kinds and step
labels, never a phone number or e-mail address.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from infra.chaos.end_state import EndState

CATEGORIES = (
    "subscribers",
    "entitlements",
    "exposures",
    "alerts",
    "money_ledger",
    "notification_ledger",
    "sms",
    "email",
    "other",
)
# Item kinds by (first part of the partition key, first part of the sort key). Kinds not
# listed here are compared too, under "other".
ITEM_CATEGORIES: dict[tuple[str, str], str] = {
    ("SIGNUP", "SIGNUP"): "subscribers",
    ("SIGNUP", "OTP"): "subscribers",
    ("SUB", "IDENT"): "subscribers",
    ("SUB", "IDENT_REMOVED"): "subscribers",
    ("SUB", "PREFS"): "subscribers",
    ("SUB", "DELETION"): "subscribers",
    ("CLAIM", "CLAIM"): "subscribers",
    ("WATCH", "WATCH"): "subscribers",
    ("REFCODE", "REFCODE"): "subscribers",
    ("KEY", ""): "subscribers",
    ("SUB", "PROFILE"): "entitlements",
    ("SUB", "DUNNING"): "entitlements",
    ("SUB", "PURCHASE"): "entitlements",
    ("SUB", "REFERRED_BY"): "entitlements",
    ("SUB", "REFCAP"): "entitlements",
    ("STRIPECUS", "LINK"): "entitlements",
    ("STRIPE_EVENT", "APPLIED"): "entitlements",
    ("STRIPE", "CUSTOMER"): "entitlements",
    ("SUB", "EXPOSURE"): "exposures",
    ("BREACH", "BREACH"): "exposures",
    ("INTAKE", "JOB"): "exposures",
    ("INTAKE", "CHUNK"): "exposures",
    ("INDEX", ""): "exposures",
    ("SUB", "ALERT"): "alerts",
    ("REVIEWBATCH", "BATCH"): "alerts",
    ("DEFER", "DEFER"): "alerts",
    ("SUB", "LEDGER"): "money_ledger",
    ("ARCHIVE", "LEDGER"): "money_ledger",
    ("NOTIFY", "sms"): "notification_ledger",
    ("NOTIFY", "email"): "notification_ledger",
    ("SMS", "SMS"): "notification_ledger",
    ("SESMSG", "SESMSG"): "notification_ledger",
    ("SUB", "EMAILEVENT"): "notification_ledger",
    ("SMSWIN", "SMSWIN"): "notification_ledger",
    ("ALERTSMS", "BUDGET"): "notification_ledger",
    ("BUDGET", "D"): "notification_ledger",
}

# Run-specific strings, each replaced by a placeholder, in this order.
_REPLACEMENTS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"https?://127\.0\.0\.1:\d+"), "<local>"),
    # Signed tokens (JWTs, signed links): base64url parts joined by dots.
    (re.compile(r"\b[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}(?:\.[A-Za-z0-9_-]+)?"), "<token>"),
    (re.compile(r"\b(SM|MG|AC)[0-9a-f]{32}\b"), r"<\1>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    # moto's SES message ids.
    (re.compile(r"\b[a-z]{16}-[a-z]{8}-[a-z]{4}-[a-z]{4}-[a-z]{4}-[a-z]{12}-[a-z]{6}\b"), "<ses>"),
    # Stripe ids and the service's prefixed ULIDs and hashes (`sbr_01…`, `alt_5f…`, `in_4q…`),
    # also inside a longer id such as `job_payment_failed_in_4q…_1`.
    (
        re.compile(r"(?<![A-Za-z0-9])([a-z]{2,8})_(?:test_)?[0-9A-Za-z]{10,}(?![A-Za-z0-9])"),
        r"<\1>",
    ),
    (re.compile(r"\b[0-9a-f]{32,}\b"), "<hex>"),
    # Upper-case hex references, such as a dossier's `DOS-E5AA2B6BCA34`.
    (re.compile(r"(?<![A-Za-z0-9])[0-9A-F]{10,}(?![A-Za-z0-9])"), "<HEX>"),
    # Ciphertexts, data keys and request ids: long base64, or shorter base64 with padding.
    (re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{20,}={0,2}(?![A-Za-z0-9+/=])"), "<base64>"),
    (re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{8,}={1,2}(?![A-Za-z0-9+/=])"), "<base64>"),
    (
        re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"),
        "<time>",
    ),
    (
        re.compile(r"\b[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}"),
        "<time>",
    ),
    # Days and hours in keys (`D#20261205`, `H#2026120514`) and epoch seconds or milliseconds.
    (re.compile(r"(?<!\d)20\d{6}(?:\d{2})?(?!\d)"), "<day>"),
    (re.compile(r"(?<!\d)1[6-9]\d{8}(?:\d{3})?(?!\d)"), "<epoch>"),
)
CODE_PATTERN = re.compile(r"(?<!\d)\d{6}(?!\d)")
# Epoch seconds from 2017 to 2103: creation times, and expiry times decades ahead (an archived
# ledger item's), which differ with the second the run reached them.
EPOCH_SECONDS = (1_500_000_000, 4_200_000_000)
# Fields whose values depend on timing, not on what happened (compared as present or absent).
TIMING_FIELDS = frozenset({"tokens_milli", "refill_from_ms"})
# Fields left out of the comparison, because whether they exist depends on timing alone.
# `linked_at` is set when a status callback reaches a notification record before the notifier
# has marked it sent. Either way the record ends with the same provider id and state.
IGNORED_FIELDS = frozenset({"linked_at"})
# Audit records of reads (`reconciliation.view`, `review.view`) are compared as a set: the story
# polls a reconciliation until it is done, so how many reads it records depends on timing.
READ_ACTION_SUFFIX = ".view"


@dataclass(frozen=True)
class Record:
    """One normalised thing of the end state: its category, kind, key and content."""

    category: str
    kind: str
    key: str
    content: str


@dataclass
class CategoryDiff:
    """Record counts of one category in both runs, and the differences of the second run."""

    first: int = 0
    second: int = 0
    lost: int = 0
    duplicated: int = 0
    differing: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class Comparison:
    """The result of compare(): per-category counts and a few examples of each difference."""

    categories: dict[str, CategoryDiff]

    @property
    def lost(self) -> int:
        return sum(diff.lost for diff in self.categories.values())

    @property
    def duplicated(self) -> int:
        return sum(diff.duplicated for diff in self.categories.values())

    @property
    def differing(self) -> int:
        return sum(diff.differing for diff in self.categories.values())

    @property
    def identical(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.differing == 0

    def summary_lines(self) -> list[str]:
        """Return one line per category and one per example difference."""
        lines = []
        for name, diff in self.categories.items():
            lines.append(
                f"{name}: {diff.first} vs {diff.second}, lost {diff.lost}, "
                f"duplicated {diff.duplicated}, differing {diff.differing}"
            )
            lines.extend(f"  {example}" for example in diff.examples)
        return lines


class Normaliser:
    """Replace the run-specific values of one run's end state with placeholders."""

    def __init__(self, labels: dict[str, str]) -> None:
        # Longest first, so that no label's value replaces part of a longer one.
        ordered = sorted(labels.items(), key=lambda pair: len(pair[0]), reverse=True)
        self._labels = ordered
        self._label_pattern = (
            re.compile("|".join(re.escape(value) for value, _ in ordered)) if ordered else None
        )
        self._label_of = dict(ordered)

    def text(self, value: str) -> str:
        """Normalise one string."""
        if self._label_pattern is not None:
            value = self._label_pattern.sub(lambda match: f"<{self._label_of[match[0]]}>", value)
        for pattern, replacement in _REPLACEMENTS:
            value = pattern.sub(replacement, value)
        return value

    def value(self, value: Any) -> Any:
        """Normalise a value of any type that a DynamoDB item or JSON document holds."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, Decimal | int | float):
            number = int(value) if value == int(value) else float(value)
            if EPOCH_SECONDS[0] <= number <= EPOCH_SECONDS[1]:
                return "<epoch>"
            if EPOCH_SECONDS[0] * 1000 <= number <= EPOCH_SECONDS[1] * 1000:
                return "<epoch>"
            return number
        if isinstance(value, dict):
            return {
                self.text(str(name)): "<timing>" if name in TIMING_FIELDS else self.value(item)
                for name, item in value.items()
                if name not in IGNORED_FIELDS
            }
        if isinstance(value, set | frozenset):
            return sorted((self.value(item) for item in value), key=_sort_key)
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        if isinstance(value, bytes | bytearray | memoryview) or hasattr(value, "value"):
            return "<binary>"
        return self.text(str(value))


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def item_kind(table: str, item: dict[str, Any]) -> tuple[str, str]:
    """Return a normalised item's kind: the first `#` part of its partition and sort keys."""
    if "pk" not in item:
        return ("KEY", "") if "owner_id" in item else (table.upper(), "")
    if table == "BreachIndexTable":
        return ("INDEX", "")
    return (str(item["pk"]).split("#", 1)[0], str(item.get("sk", "")).split("#", 1)[0])


def normalise(state: EndState) -> list[Record]:
    """Return every normalised record of one run's end state."""
    normaliser = Normaliser(state.labels)
    records: list[Record] = []
    reads: set[Record] = set()

    for table, items in sorted(state.items.items()):
        for item in items:
            content = normaliser.value(item)
            kind = item_kind(table, content)
            category = ITEM_CATEGORIES.get(kind, "other")
            key = _canonical([table, content.get("pk", content.get("owner_id")), content.get("sk")])
            record = Record(category, f"{table}:{kind[0]}/{kind[1]}", key, _canonical(content))
            if str(content.get("action", "")).endswith(READ_ACTION_SUFFIX):
                reads.add(record)
            else:
                records.append(record)
    records.extend(reads)

    for customer in state.stripe_customers:
        content = normaliser.value(customer)
        records.append(
            Record(
                "entitlements",
                "stripe:customer",
                _canonical(content["subscriber_id"]),
                _canonical(content),
            )
        )

    for message in state.sms:
        content = {
            "to": _recipient(normaliser.text(str(message["to"]))),
            "body": CODE_PATTERN.sub("<code>", normaliser.text(str(message["body"]))),
            "status": message["status"],
            "error_code": message["error_code"],
            "num_segments": message["num_segments"],
            "held_for_review": message["held_for_review"],
        }
        records.append(Record("sms", "twilio:message", content["to"], _canonical(content)))

    for email in state.emails:
        headers = email.get("headers") or {}
        content = {
            "to": [_recipient(normaliser.text(address)) for address in email["to"]],
            "subject": normaliser.text(str(email["subject"])),
            "text": normaliser.text(str(email.get("text") or "")),
            "html": normaliser.text(str(email.get("html") or "")),
            "list_unsubscribe": normaliser.text(str(headers.get("list-unsubscribe", ""))),
        }
        records.append(
            Record("email", "ses:message", _canonical(content["to"]), _canonical(content))
        )
    return records


def repeated_sends(state: EndState) -> int:
    """Count SMS and e-mails of one run that repeat an earlier one exactly (same recipient, text).

    It catches a message sent twice even when the run it is compared with sent it twice too.
    Redacted SMS (emptied when an account is deleted) are left out, and so are one-time codes,
    whose texts differ by their code.
    """
    texts: Counter[tuple[Any, ...]] = Counter(
        (message["to"], message["body"]) for message in state.sms if not message.get("redacted")
    )
    texts.update(
        (tuple(email["to"]), email["subject"], email.get("text") or email.get("html"))
        for email in state.emails
    )
    return sum(count - 1 for count in texts.values())


def _recipient(normalised: str) -> str:
    # A number or address that no story step names stays out of every report.
    return normalised if normalised.startswith("<") else "<other recipient>"


def compare(first: Iterable[Record], second: Iterable[Record], *, examples: int = 5) -> Comparison:
    """Compare two runs' records (see the module docstring for lost, duplicated, differing)."""
    diffs = {name: CategoryDiff() for name in CATEGORIES}
    first_records = list(first)
    second_records = list(second)
    for name in CATEGORIES:
        ours = Counter(record for record in first_records if record.category == name)
        theirs = Counter(record for record in second_records if record.category == name)
        diff = diffs[name]
        diff.first = sum(ours.values())
        diff.second = sum(theirs.values())

        only_first = list((ours - theirs).elements())
        only_second = list((theirs - ours).elements())
        unmatched_second = Counter((record.kind, record.key) for record in only_second)
        paired = Counter[tuple[str, str]]()
        for record in only_first:
            identity = (record.kind, record.key)
            if unmatched_second[identity] > 0:
                unmatched_second[identity] -= 1
                paired[identity] += 1
                diff.differing += 1
                _example(diff, examples, f"differing {record.kind} {record.key}")
            else:
                diff.lost += 1
                _example(diff, examples, f"lost {record.kind} {record.key}")
        for identity, count in unmatched_second.items():
            if count > 0:
                diff.duplicated += count
                _example(diff, examples, f"duplicated x{count} {identity[0]} {identity[1]}")
    return Comparison(diffs)


def _example(diff: CategoryDiff, limit: int, text: str) -> None:
    if len(diff.examples) < limit:
        diff.examples.append(text)


def content_differences(
    first: Iterable[Record], second: Iterable[Record], kind: str, key: str
) -> tuple[list[str], list[str]]:
    """Return the contents of one kind and key that only the first or only the second run has.

    It shows what differs in a record that compare() reported as differing.
    """
    ours = Counter(r.content for r in first if r.kind == kind and r.key == key)
    theirs = Counter(r.content for r in second if r.kind == kind and r.key == key)
    return list((ours - theirs).elements()), list((theirs - ours).elements())
