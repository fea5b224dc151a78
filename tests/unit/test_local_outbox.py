"""`make run` writes each accepted e-mail to .local/outbox with its headers on top."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.local import run

pytestmark = pytest.mark.unit


class FakeService:
    def __init__(self, emails: list[dict[str, Any]]) -> None:
        self.emails = emails

    def sent_emails(self) -> list[dict[str, Any]]:
        return self.emails


def test_outbox_page_starts_with_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "OUTBOX", tmp_path)
    email = {
        "to": ["wang@example.com"],
        "subject": "警报",
        "body": "<p>hello</p>",
        "headers": {"list-unsubscribe": "<http://127.0.0.1/v1/preferences/t-->"},
    }

    written = run._write_outbox(FakeService([email]), 0)  # type: ignore[arg-type]

    page = (tmp_path / "0001.html").read_text(encoding="utf-8")
    assert written == 1
    assert page.startswith("<!--\nto: wang@example.com\nsubject: 警报\n")
    # "--" would end the comment early, so it is broken up.
    assert "list-unsubscribe: <http://127.0.0.1/v1/preferences/t- ->\n" in page
    assert page.endswith("-->\n<p>hello</p>")
