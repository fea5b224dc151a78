"""Unit tests for recognising opt-out and opt-in keywords in inbound SMS replies."""

from __future__ import annotations

import pytest

from idsentry.services.inbound_sms import OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS, keyword_of

pytestmark = pytest.mark.unit

OPT_OUT_WORDS = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "TD", "退订"]


@pytest.mark.parametrize("word", OPT_OUT_WORDS)
def test_opt_out_words(word: str) -> None:
    assert keyword_of(word) == "opt_out"


@pytest.mark.parametrize("word", ["START", "UNSTOP", "YES"])
def test_opt_in_words(word: str) -> None:
    assert keyword_of(word) == "opt_in"


@pytest.mark.parametrize("body", ["stop", " Stop\n", "td", "\t退订 ", "ＳＴＯＰ", "start "])
def test_case_width_and_space_ignored(body: str) -> None:
    assert keyword_of(body) is not None


@pytest.mark.parametrize(
    "body", ["", "  ", "HELP", "stop please", "STOP!", "不要", "退订吧", "S T O P", "STARTED"]
)
def test_other_text_is_not_keyword(body: str) -> None:
    assert keyword_of(body) is None


def test_keyword_sets_disjoint() -> None:
    assert not OPT_OUT_KEYWORDS & OPT_IN_KEYWORDS
