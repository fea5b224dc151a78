"""Hypothesis strategies for bad input: odd text, JSON values, broken bodies and odd headers."""

from __future__ import annotations

import json
from datetime import date

from hypothesis import strategies as st

from idsentry.identifiers import id_number_check_character

# Text that looks like an attack on some layer: SQL, HTML, spreadsheet formulas, template and
# lookup syntax, paths, and characters that hide or reorder text.
INJECTIONS = (
    "' OR '1'='1' --",
    "1; DROP TABLE subscribers;--",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    '=HYPERLINK("http://127.0.0.1/","x")',
    "=1+1",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,1)",
    "\tTAB",
    "${jndi:ldap://127.0.0.1/a}",
    "{{7*7}}",
    "../../etc/passwd",
    "NUL\x00byte",
    "\x00",
    "RTL\u202eoverride",
    "zero\u200bwidth",
    "\ufeffBOM",
    "%00%0d%0a",
    "\r\nSet-Cookie: a=b",
    "张三\u200d",
    "𝟏𝟑𝟖𝟎𝟎𝟏𝟑𝟖𝟎𝟎𝟎",
)

injections = st.sampled_from(INJECTIONS)

# Mobile prefixes that libphonenumber 9.0 lists as mobile in mainland China.
MOBILE_PREFIXES = ("130", "131", "135", "136", "138", "139", "150", "158", "186", "188")
REGIONS = ("110105", "310104", "320103", "440305", "510107")


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    """A valid 18-character resident ID number of someone born from 1946 to 2007."""
    region = draw(st.sampled_from(REGIONS))
    birth = draw(st.dates(min_value=date(1946, 1, 1), max_value=date(2007, 12, 31)))
    sequence = draw(st.integers(min_value=0, max_value=999))
    first = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return first + id_number_check_character(first)


# Text of any code point, including surrogates' neighbours, controls and private-use ones.
odd_text = st.one_of(
    st.text(max_size=40),
    injections,
    st.builds(
        lambda left, middle, right: left + middle + right,
        st.text(max_size=8),
        injections,
        st.text(max_size=8),
    ),
)

# A string far over every field's limit, built without drawing each character.
huge_text = st.builds(
    lambda piece, count: piece * count,
    st.sampled_from(["a", "张", "\u200b", "1", "'"]),
    st.integers(min_value=300, max_value=300_000),
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    odd_text,
)

json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=12,
)


def nested(depth: int, opener: str) -> str:
    """Return JSON nested `depth` levels deep, as arrays ("[") or objects ("{")."""
    if opener == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


# Bodies that are not a JSON object, or not JSON at all.
broken_bodies = st.one_of(
    st.binary(max_size=200),
    st.just(b""),
    st.just(b"\xff\xfe\xfd"),
    st.builds(lambda prefix: prefix + b"\xc3\x28\xa0\xa1", st.binary(max_size=20)),
    st.builds(
        lambda depth, opener: nested(depth, opener).encode(),
        st.sampled_from([2, 100, 1_000, 5_000, 50_000, 200_000]),
        st.sampled_from(["[", "{"]),
    ),
    st.builds(lambda value: json.dumps(value).encode(), json_values),
    st.sampled_from(
        [
            b"NaN",
            b'{"a": NaN}',
            b'{"a": Infinity}',
            b"1" * 5000,
            b'{"a": ' + b"9" * 5000 + b"}",
            b"{",
            b'{"name": "x",',
            b"null",
            b"[]",
            b'"text"',
            b"name=x&plan=monthly",
            b"<xml/>",
        ]
    ),
)

accept_languages = st.one_of(
    st.sampled_from(
        [
            "",
            "*",
            "en",
            "EN",
            "en-US,en;q=0.9",
            "zh-CN,zh;q=0.9,en;q=0.8",
            "zh-TW",
            "fr-FR,fr;q=0.9",
            "en;q=0",
            "en;q=1.5",
            "en;q=abc, zh;q=0.1",
            "en-GB;q=0.3, de;q=0.9",
            ";;;,,,",
            "x" * 5000,
            "en\u202e",
            "zh\x00en",
        ]
    ),
    st.text(max_size=40),
)

# Visible ASCII keys are valid (1 to 255 characters); the others are not.
idempotency_keys = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=255),
    st.sampled_from(["", " ", "a b", "ключ", "k" * 256, "\x00", "key\u200b", "\t"]),
    st.text(max_size=40),
)

content_types = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=gbk",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "",
        "../../",
    ]
)
