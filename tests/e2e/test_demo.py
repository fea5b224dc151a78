"""The `make demo` story as a smoke test: it passes, masks identifiers and fails loudly."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.service import EMAIL_SENDER

pytestmark = [pytest.mark.e2e, pytest.mark.demo]

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
STORY_DIR = REPOSITORY_ROOT / "events" / "demo"
IDENTIFIER_KEYS = ("id_number", "mobile", "mobiles", "email")
TIMEOUT_SECONDS = 300
# Unmasked identifiers of any origin, such as a row of a generated breach file: 18-digit and
# 15-digit ID numbers, 11-digit mainland mobiles and e-mail addresses, matched after NFKC turns
# full-width digits into ASCII. Masked forms contain "*", so they do not match.
UNMASKED_PATTERNS = {
    "ID number": re.compile(r"(?<![\w*])(?:\d{17}[\dXx]|\d{15})(?!\w)"),
    "mobile": re.compile(r"(?<![\w*])(?:\+?86)?1\d{10}(?!\w)"),
    "e-mail address": re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"),
}
# The service's own sender, shown in the From line of the inbox view, is nobody's identifier.
SERVICE_ADDRESSES = frozenset({EMAIL_SENDER})


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the demo in a fresh process, as `make demo` does, and capture its output."""
    # The command is this interpreter with fixed arguments, so S603 does not apply.
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "infra.local.demo", *args],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def raw_identifiers(node: Any) -> Iterator[str]:
    """Yield every ID number, mobile and e-mail address written in a story or identities file.

    `expect` objects are skipped, because their `fields` map field names to error codes.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expect":
                continue
            if key in IDENTIFIER_KEYS:
                yield from (value if isinstance(value, list) else [value])
            else:
                yield from raw_identifiers(value)
    elif isinstance(node, list):
        for item in node:
            yield from raw_identifiers(item)


def forms_of(raw: str) -> set[str]:
    """Return the raw value and, for +86 mobiles, the 11-digit national number."""
    forms = {raw}
    if raw.startswith("+86"):
        forms.add(raw[3:])
    return forms


@pytest.fixture(scope="module")
def demo_run() -> subprocess.CompletedProcess[str]:
    """One English run of the demo story, shared by the tests of this module."""
    return run_demo("--lang", "en")


def test_demo_exits_zero(demo_run: subprocess.CompletedProcess[str]) -> None:
    assert demo_run.returncode == 0, demo_run.stdout[-3000:] + demo_run.stderr[-3000:]
    assert "steps behaved as expected" in demo_run.stdout
    assert "Local service stopped." in demo_run.stdout


def test_demo_shows_masked_identifiers(demo_run: subprocess.CompletedProcess[str]) -> None:
    assert "1101**********1239" in demo_run.stdout
    assert "138****8001" in demo_run.stdout
    assert "w***@example.com" in demo_run.stdout
    assert "1101**********0024" in demo_run.stdout
    assert "188****8008" in demo_run.stdout


def test_demo_billing_notices_in_english(demo_run: subprocess.CompletedProcess[str]) -> None:
    assert "Subject: Your renewal payment failed - IDSentry" in demo_run.stdout
    assert "IDSentry: your CN¥18.00 renewal payment failed." in demo_run.stdout
    assert "The SMS contains no link" in demo_run.stdout


def test_demo_output_has_no_raw_identifier(demo_run: subprocess.CompletedProcess[str]) -> None:
    story = json.loads((STORY_DIR / "story.json").read_text(encoding="utf-8"))
    identities = json.loads((STORY_DIR / "identities.json").read_text(encoding="utf-8"))
    values = set(raw_identifiers(story)) | set(raw_identifiers(identities))
    output = demo_run.stdout + demo_run.stderr

    assert len(values) > 20
    for raw in sorted(values):
        for form in sorted(forms_of(raw)):
            assert form not in output, f"the demo printed the raw identifier {form}"


def test_demo_output_has_no_unmasked_identifier(
    demo_run: subprocess.CompletedProcess[str],
) -> None:
    output = unicodedata.normalize("NFKC", demo_run.stdout + demo_run.stderr)

    for kind, pattern in UNMASKED_PATTERNS.items():
        found = sorted(set(pattern.findall(output)) - SERVICE_ADDRESSES)
        assert not found, f"the demo printed {len(found)} unmasked {kind} value(s)"


def test_demo_breach_intake_in_english(demo_run: subprocess.CompletedProcess[str]) -> None:
    output = demo_run.stdout

    assert output.count("status done, chunks 1/1") == 2
    assert output.count("value counts match expected.json") == 2
    assert "Legacy 15-digit ID numbers converted to 18 digits: " in output
    assert "status rejected, reason manifest_invalid" in output
    assert "Fields in error: provenance" in output
    assert "status rejected, reason encoding_mismatch" in output
    assert "Declare 'gb18030' in the manifest." in output
    assert "DemoLeak2026: found_by dataset, matched_kinds id_number, mobile," in output


def test_demo_hibp_check_in_english(demo_run: subprocess.CompletedProcess[str]) -> None:
    output = demo_run.stdout

    assert "ExampleForum2026: found_by hibp, matched_kinds email, announced true" in output
    assert "ExampleSpamList2026: found_by" not in output
    assert "hibp_status breached" in output
    assert "breachedaccount 1 (HTTP status 200)" in output
    assert "breachedaccount 0 (HTTP status -)" in output
    assert "Breach intake jobs: 2 done, 2 rejected" in output


def test_demo_failed_step_exits_nonzero(tmp_path: Path) -> None:
    story = json.loads((STORY_DIR / "story.json").read_text(encoding="utf-8"))
    first = dict(story["steps"][0])
    first["expect"] = {"status": 422}
    story["steps"] = [first]
    shutil.copy(STORY_DIR / "identities.json", tmp_path / "identities.json")
    (tmp_path / "story.json").write_text(json.dumps(story, ensure_ascii=False), encoding="utf-8")

    result = run_demo("--lang", "en", "--story", str(tmp_path / "story.json"))

    assert result.returncode == 1
    assert f"Step {first['id']} failed: expected HTTP 422, got HTTP 202" in result.stdout
    assert "Local service stopped." in result.stdout


def test_demo_referral_from_unknown_step(tmp_path: Path) -> None:
    story = json.loads((STORY_DIR / "story.json").read_text(encoding="utf-8"))
    first = dict(story["steps"][0])
    first["body"] = {**first["body"], "referral_code": {"from_step": "nobody.verify"}}
    story["steps"] = [first]
    shutil.copy(STORY_DIR / "identities.json", tmp_path / "identities.json")
    (tmp_path / "story.json").write_text(json.dumps(story, ensure_ascii=False), encoding="utf-8")

    result = run_demo("--lang", "en", "--story", str(tmp_path / "story.json"))

    assert result.returncode == 1
    assert "referral_code.from_step must name an earlier verify step" in result.stdout
    assert "'nobody.verify'" in result.stdout
    assert "Local service stopped." in result.stdout


def test_demo_plant_from_unknown_step(tmp_path: Path) -> None:
    story = json.loads((STORY_DIR / "story.json").read_text(encoding="utf-8"))
    generate = next(step for step in story["steps"] if step["action"] == "generate_breach")
    story["steps"] = [{**generate, "plant": [{"signup": "nobody.signup"}]}]
    shutil.copy(STORY_DIR / "identities.json", tmp_path / "identities.json")
    (tmp_path / "story.json").write_text(json.dumps(story, ensure_ascii=False), encoding="utf-8")

    result = run_demo("--lang", "en", "--story", str(tmp_path / "story.json"))

    assert result.returncode == 1
    assert "signup must name an earlier signup step that returned 202" in result.stdout
    assert "'nobody.signup'" in result.stdout
    assert "Local service stopped." in result.stdout


def test_demo_invalid_story_exits_two(tmp_path: Path) -> None:
    (tmp_path / "story.json").write_text('{"format_version": 1, "steps": []}', encoding="utf-8")

    result = run_demo("--story", str(tmp_path / "story.json"))

    assert result.returncode == 2
    assert "invalid story file" in result.stderr


def test_demo_account_stage_in_english(demo_run: subprocess.CompletedProcess[str]) -> None:
    output = demo_run.stdout

    assert "the checklist for DemoLeak2026, 0 of 14 steps done" in output
    assert "the checklist for DemoLeak2026, 1 of 14 steps done" in output
    assert "sent again → HTTP 200, done time unchanged: " in output
    assert "Scanned every table, bucket and queue for " in output


def test_demo_finance_stage_in_english(demo_run: subprocess.CompletedProcess[str]) -> None:
    output = demo_run.stdout
    finance = output[output.index("[finance] finance.lost_webhook") :]

    assert "Event not delivered: invoice.paid evt_" in finance
    assert "Items per class: Missing in the ledger 2, " in finance
    assert "Repair: Invoice in_" in finance
    assert ": Applied again" in finance
    assert "Repair: nothing was missing, so no event was applied again" in finance
    assert "the CSV starts with a UTF-8 BOM: yes" in finance
    assert "(Chinese and English, no download link): Stripe 对账已完成" in finance


def test_demo_reports_stage_in_english(demo_run: subprocess.CompletedProcess[str]) -> None:
    output = demo_run.stdout
    reports = output[output.index("[reports] reports.monthly") : output.index("[summary]")]

    # Everyone in the story signed up this month, after the month the schedule reports.
    assert "0 report jobs queued for " in reports
    assert "3 subscribers skipped because they signed up after it ended" in reports
    assert "Your monthly security report is ready" not in reports
    assert "Your security report is ready - IDSentry; link /signup/en/account/#reports" in reports
    assert "reports in the list: 1 (on_demand " in reports
    assert "language en, title “IDSentry monthly security report " in reports
    assert "3101**********0023" in reports
    assert re.search(r"PDF: [\d,]+ bytes, \d+ pages; lines that show identifiers:", reports)
    assert re.search(
        r"Incident dossier PDF: [\d,]+ bytes, \d+ pages, contains reference DOS-\w+: yes",
        reports,
    )


def test_demo_report_without_sign_in(tmp_path: Path) -> None:
    story = json.loads((STORY_DIR / "story.json").read_text(encoding="utf-8"))
    signup = next(step for step in story["steps"] if step["id"] == "wang.signup")
    report = next(step for step in story["steps"] if step["id"] == "wang.report")
    story["steps"] = [signup, report]
    shutil.copy(STORY_DIR / "identities.json", tmp_path / "identities.json")
    (tmp_path / "story.json").write_text(json.dumps(story, ensure_ascii=False), encoding="utf-8")

    result = run_demo("--lang", "en", "--story", str(tmp_path / "story.json"))

    assert result.returncode == 1
    assert "Step wang.report failed: wang.signup has no access token" in result.stdout
    assert "Local service stopped." in result.stdout
