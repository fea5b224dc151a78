"""Write synthetic breach files and their intake manifests, with the messiness of real leaks.

Every person is made up: names from common characters, ID numbers with valid GB 11643-1999
check characters, mobiles in valid mainland ranges and e-mail addresses at common domains.
The file mixes 18-digit and 15-digit legacy ID numbers, full-width digits, +86/0086/86
prefixes, separators, upper-case addresses, duplicate rows, malformed lines, blank lines and
undecodable bytes. ``expected.json`` contains the counts that intake should report for the file.

    python -m infra.tools.breach_generator --rows 1000 --encoding gb18030 --out DIR \
        [--format csv|tsv|jsonl] [--plant FILE] [--seed N] [--multiline] [--truncate]

This module does not import idsentry, so that tests can check intake against an
independent implementation of the identifier rules.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

ENCODINGS: Final = ("utf-8", "utf-8-sig", "gb18030", "gbk")
FORMATS: Final = ("csv", "tsv", "jsonl")
DATA_FILE_NAMES: Final = {"csv": "breach.csv", "tsv": "breach.tsv", "jsonl": "breach.jsonl"}
MANIFEST_FILE_NAME: Final = "manifest.json"
EXPECTED_FILE_NAME: Final = "expected.json"

NAME, ID_NUMBER, MOBILE, EMAIL, BANK_CARD, ADDRESS, PASSWORD, REGISTERED = (
    "姓名",
    "身份证号",
    "手机号",
    "电子邮箱",
    "银行卡号",
    "住址",
    "密码",
    "注册时间",
)
COLUMNS: Final = (NAME, ID_NUMBER, MOBILE, EMAIL, BANK_CARD, ADDRESS, PASSWORD, REGISTERED)
# The manifest maps every column except the registration time, which intake must ignore.
COLUMN_KINDS: Final = {
    NAME: "name",
    ID_NUMBER: "id_number",
    MOBILE: "mobile",
    EMAIL: "email",
    BANK_CARD: "bank_card",
    ADDRESS: "address",
    PASSWORD: "password",
}
IDENTIFIER_COLUMNS: Final = {
    column: kind
    for column, kind in COLUMN_KINDS.items()
    if kind in {"id_number", "mobile", "email", "bank_card"}
}
DATA_CLASSES: Final = (
    "Bank account numbers",
    "Email addresses",
    "Government issued IDs",
    "Names",
    "Passwords",
    "Phone numbers",
    "Physical addresses",
)

_SURNAMES: Final = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
_GIVEN_NAME_CHARACTERS: Final = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华慧巧美玲桂兰霞平刚红建国文辉鹏飞玉萍燕雪琳晶波斌宇浩凯俊帅欣怡梓涵子轩雨佳思博文昊然晨阳浩宇嘉怡"
_MINORITY_NAMES: Final = ("阿依古丽·买买提", "热合曼·艾力", "古丽娜尔·吐尔逊", "扎西·次仁")
# U+20BB7, a variant of 吉 that appears in names. It needs a four-byte GB18030 sequence and
# has no GBK code, so it only appears in files that are not GBK.
_FOUR_BYTE_NAME_CHARACTER: Final = "\U00020bb7"
_ADDRESS_PLACES: Final = (
    "北京市朝阳区",
    "北京市海淀区",
    "上海市浦东新区",
    "上海市徐汇区",
    "广东省深圳市南山区",
    "广东省广州市天河区",
    "浙江省杭州市西湖区",
    "江苏省南京市鼓楼区",
    "四川省成都市武侯区",
    "湖北省武汉市洪山区",
)
_ROADS: Final = ("建国路", "人民路", "中山路", "解放大道", "学院路", "科技园路", "长江路", "和平街")

# Region codes (GB/T 2260) of real county-level divisions. Any listed province code would do.
_REGION_CODES: Final = (
    "110101",
    "110105",
    "110108",
    "120101",
    "210102",
    "310104",
    "310115",
    "320102",
    "330106",
    "350102",
    "370102",
    "410105",
    "420111",
    "430104",
    "440106",
    "440305",
    "500103",
    "510107",
    "610113",
    "650102",
)
# Mainland mobile segments that phonenumbers 9.0.43 classifies as mobile for every
# 8-digit suffix.
_MOBILE_SEGMENTS: Final = (
    *(str(segment) for segment in range(130, 140)),
    "145",
    "147",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "162",
    "165",
    "166",
    "167",
    "170",
    "171",
    "172",
    "173",
    "175",
    "176",
    "177",
    "178",
    *(str(segment) for segment in range(180, 190)),
    "190",
    "191",
    "192",
    "193",
    "195",
    "196",
    "197",
    "198",
    "199",
)
_EMAIL_DOMAINS: Final = (
    "qq.com",
    "163.com",
    "126.com",
    "sina.com",
    "sohu.com",
    "foxmail.com",
    "139.com",
    "yeah.net",
    "gmail.com",
    "outlook.com",
)
# An internationalized domain and its IDNA A-label.
_IDN_DOMAIN: Final = ("例子.中国", "xn--fsqu00a.xn--fiqs8s")
_PINYIN_SURNAMES: Final = (
    "zhang",
    "wang",
    "li",
    "liu",
    "chen",
    "yang",
    "huang",
    "zhao",
    "wu",
    "zhou",
)
_PINYIN_GIVEN_NAMES: Final = (
    "wei",
    "fang",
    "na",
    "min",
    "jing",
    "li",
    "qiang",
    "lei",
    "jun",
    "yang",
)
_CARD_PREFIXES: Final = ("622202", "622848", "621700", "622588", "436742", "625907")

# GB 11643-1999: weight i is 2**(17 - i) mod 11, and the weighted sum mod 11 indexes the
# check character.
_ID_CHECK_CHARACTERS: Final = "10X98765432"
_FULL_WIDTH: Final = str.maketrans("0123456789X@", "０１２３４５６７８９Ｘ＠")

# Share of data lines of each shape.
MALFORMED_RATE: Final = 0.01
DUPLICATE_RATE: Final = 0.02
BLANK_RATE: Final = 0.002

# Marks where an invalid byte goes. Each U+0000 becomes 0xFF after encoding, a byte that
# UTF-8, GBK and GB18030 never use.
_INVALID_BYTE_MARK: Final = "\x00"


@dataclass(frozen=True)
class PlantedIdentity:
    """A made-up person that tests and the demo put into a breach file on purpose."""

    name: str
    id_number: str | None = None
    mobile: str | None = None
    email: str | None = None


@dataclass
class Expected:
    """The counts that intake should report for the generated file, by the generator's rules."""

    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: Counter[str] = field(default_factory=Counter)
    values_accepted: Counter[str] = field(default_factory=Counter)
    values_rejected: Counter[str] = field(default_factory=Counter)
    values_converted: Counter[str] = field(default_factory=Counter)
    distinct: dict[str, set[str]] = field(default_factory=dict)
    planted: int = 0

    def add(self, delta: _LineDelta) -> None:
        self.rows_read += 1
        if delta.problem is not None:
            self.rows_rejected[delta.problem] += 1
            return
        accepted = False
        for kind, canonical, reason in delta.values:
            if canonical is None:
                self.values_rejected[f"{kind}.{reason}"] += 1
                continue
            accepted = True
            self.values_accepted[kind] += 1
            self.distinct.setdefault(kind, set()).add(canonical)
            if reason == "legacy":
                self.values_converted["id_number.legacy_15_digit"] += 1
        if accepted:
            self.rows_accepted += 1
        else:
            self.rows_rejected["no_valid_identifier"] += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_rejected": dict(self.rows_rejected),
            "values_accepted": dict(self.values_accepted),
            "values_rejected": dict(self.values_rejected),
            "values_converted": dict(self.values_converted),
            "distinct": {kind: len(values) for kind, values in sorted(self.distinct.items())},
            "planted": self.planted,
        }


@dataclass(frozen=True)
class _LineDelta:
    """What one data line should add to the expected counts.

    ``values`` contains (kind, canonical, reason) per identifier: canonical is None for a
    rejected value, and reason is the rejection code, or "legacy" for a converted ID number.
    """

    problem: str | None = None
    values: tuple[tuple[str, str | None, str | None], ...] = ()


@dataclass(frozen=True)
class _Cell:
    text: str
    canonical: str | None
    reason: str | None = None


@dataclass(frozen=True)
class GeneratedBreach:
    """Paths of the written files and the expected intake counts."""

    data_path: Path
    manifest_path: Path
    expected_path: Path
    expected: dict[str, Any]


def generate(
    out_dir: Path,
    *,
    rows: int,
    encoding: str = "gb18030",
    file_format: str = "csv",
    seed: int | None = None,
    plants: Sequence[PlantedIdentity] = (),
    multiline: bool = False,
    truncate: bool = False,
    breach_name: str = "SyntheticLeak",
) -> GeneratedBreach:
    """Write ``rows`` data lines, a manifest and the expected counts into ``out_dir``.

    ``seed`` makes the output byte-for-byte repeatable (a random seed is drawn and recorded
    in expected.json when it is None). Planted identities are written with valid, possibly
    messy formatting and never in a malformed line. ``multiline`` puts line breaks into
    some quoted addresses (CSV/TSV only). ``truncate`` cuts the last line inside its ID number,
    as an interrupted download would.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}")
    if file_format not in FORMATS:
        raise ValueError(f"file_format must be one of {FORMATS}")
    if multiline and file_format == "jsonl":
        raise ValueError("multiline applies to csv and tsv only")
    if rows < len(plants) + (1 if truncate else 0):
        raise ValueError(
            "rows must exceed the number of planted identities (and the truncated line)"
        )
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)

    out_dir.mkdir(parents=True, exist_ok=True)
    writer = _BreachWriter(
        random.Random(seed), encoding, file_format, multiline=multiline, planted=plants
    )
    data_path = out_dir / DATA_FILE_NAMES[file_format]
    with data_path.open("wb") as stream:
        writer.write(stream, rows, truncate=truncate)

    manifest_path = out_dir / MANIFEST_FILE_NAME
    manifest = build_manifest(breach_name, encoding, file_format, multiline=multiline)
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", "utf-8")

    expected = writer.expected.to_json() | {"seed": seed, "rows": rows}
    expected_path = out_dir / EXPECTED_FILE_NAME
    expected_path.write_text(json.dumps(expected, ensure_ascii=False, indent=2) + "\n", "utf-8")
    return GeneratedBreach(data_path, manifest_path, expected_path, expected)


def build_manifest(
    breach_name: str, encoding: str, file_format: str, *, multiline: bool = False
) -> dict[str, Any]:
    """Return the intake manifest of a generated file, with synthetic provenance."""
    return {
        "schema_version": 1,
        "breach": {
            "Name": breach_name,
            "Title": "合成泄露数据（测试用）",
            "Domain": "example.com",
            "BreachDate": "2026-01-15",
            "PwnCount": 0,
            "Description": "Synthetic data written by infra.tools.breach_generator.",
            "DataClasses": list(DATA_CLASSES),
            "IsVerified": True,
        },
        "encoding": encoding,
        "format": file_format,
        "columns": COLUMN_KINDS,
        "multiline_fields": multiline,
        "provenance": {
            "source": "infra.tools.breach_generator (synthetic, no real person's data)",
            "legal_basis": "Synthetic test data: contains no personal information",
            "approved_by": "breach_generator",
            "approved_at": "2026-01-16T09:00:00+08:00",
        },
    }


def load_plants(path: Path) -> list[PlantedIdentity]:
    """Read planted identities from a JSON array of {name, id_number, mobile, email} objects."""
    entries = json.loads(path.read_text("utf-8"))
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON array of identities")
    plants = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ValueError(f"{path}: entry {index} needs a 'name' string")
        plants.append(
            PlantedIdentity(
                name=entry["name"],
                id_number=entry.get("id_number"),
                mobile=entry.get("mobile"),
                email=entry.get("email"),
            )
        )
    return plants


def id_check_character(first_17: str) -> str:
    """Return the GB 11643-1999 check character of 17 digits."""
    total = sum(int(digit) * (2 ** (17 - index) % 11) for index, digit in enumerate(first_17))
    return _ID_CHECK_CHARACTERS[total % 11]


def luhn_check_digit(body: str) -> str:
    """Return the digit that makes ``body`` + digit pass the Luhn check."""
    total = 0
    for index, character in enumerate(reversed(body)):
        digit = int(character)
        if index % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str((10 - total % 10) % 10)


class _BreachWriter:
    """Writes data lines and keeps the expected counts."""

    def __init__(
        self,
        rng: random.Random,
        encoding: str,
        file_format: str,
        *,
        multiline: bool,
        planted: Sequence[PlantedIdentity],
    ) -> None:
        self.rng = rng
        self.encoding = encoding
        self.codec = "utf-8" if encoding == "utf-8-sig" else encoding
        self.format = file_format
        self.multiline = multiline
        self.planted = list(planted)
        self.expected = Expected()
        # Recent good lines, replayed as exact duplicates.
        self._recent: list[tuple[bytes, _LineDelta]] = []
        self.line_end = "\r\n" if encoding in {"gbk", "gb18030"} else "\n"

    def write(self, stream: io.BufferedWriter, rows: int, *, truncate: bool) -> None:
        if self.encoding == "utf-8-sig":
            stream.write(b"\xef\xbb\xbf")
        if self.format != "jsonl":
            stream.write(self._delimited_line(list(COLUMNS)).encode(self.codec))

        last = rows - 1
        # A truncated last line must not be a planted identity.
        candidates = range(last if truncate else rows)
        positions = self.rng.sample(candidates, len(self.planted))
        plant_rows = dict(zip(positions, self.planted, strict=True))
        for index in range(rows):
            if truncate and index == last:
                line, delta = self._truncated_line()
            elif index in plant_rows:
                line, delta = self._planted_line(plant_rows[index])
                self.expected.planted += 1
            else:
                line, delta = self._random_line()
            stream.write(line)
            self.expected.add(delta)

    def _random_line(self) -> tuple[bytes, _LineDelta]:
        roll = self.rng.random()
        if roll < BLANK_RATE:
            return self.line_end.encode("ascii"), _LineDelta(problem="blank_line")
        if roll < BLANK_RATE + MALFORMED_RATE:
            return self._malformed_line()
        if roll < BLANK_RATE + MALFORMED_RATE + DUPLICATE_RATE and self._recent:
            return self.rng.choice(self._recent)

        cells = self._person_cells()
        line, delta = self._encode_row(cells)
        if len(self._recent) < 64:
            self._recent.append((line, delta))
        else:
            self._recent[self.rng.randrange(64)] = (line, delta)
        return line, delta

    def _planted_line(self, plant: PlantedIdentity) -> tuple[bytes, _LineDelta]:
        cells = self._person_cells(valid_only=True)
        cells[NAME] = _Cell(plant.name, None)
        cells[ID_NUMBER] = self._planted_id_number(plant.id_number)
        cells[MOBILE] = self._planted_mobile(plant.mobile)
        cells[EMAIL] = self._planted_email(plant.email)
        return self._encode_row(cells)

    def _truncated_line(self) -> tuple[bytes, _LineDelta]:
        cells = self._person_cells(valid_only=True)
        cells[ID_NUMBER] = _Cell(self._id_number(valid_only=True)[0], None)
        line = self._row_text(cells)
        # Cut inside the ID number, so the row lacks its later fields (or its closing brace).
        cut = line.index(cells[ID_NUMBER].text) + 9
        data = line[:cut].encode(self.codec)
        problem = "invalid_json" if self.format == "jsonl" else "wrong_field_count"
        return data, _LineDelta(problem=problem)

    def _malformed_line(self) -> tuple[bytes, _LineDelta]:
        cells = self._person_cells()
        kinds = ["wrong_field_count", "undecodable_value", "invalid_quoting"]
        if self.format == "jsonl":
            kinds = ["invalid_json", "not_an_object", "undecodable_line"]
        shape = self.rng.choice(kinds)

        if shape == "wrong_field_count":
            fields = [cells[column].text for column in COLUMNS][:-1]
            return self._delimited_line(fields).encode(self.codec), _LineDelta(
                problem="wrong_field_count"
            )
        if shape == "invalid_quoting":
            # A character right after a closing quote, which strict CSV parsing rejects. The
            # parser skips the rest of that line only, so the address must not continue on
            # the next line.
            cells[ADDRESS] = _Cell(self._address(single_line=True), None)
            fields = [cells[column].text for column in COLUMNS]
            text = self._delimited_line(fields)
            name = cells[NAME].text
            text = text.replace(name, f'"{name}"x', 1)
            return text.encode(self.codec), _LineDelta(problem="invalid_quoting")
        if shape == "undecodable_value":
            mobile = cells[MOBILE]
            cells[MOBILE] = _Cell(_INVALID_BYTE_MARK + mobile.text, None, "undecodable")
            return self._encode_row(cells)
        if shape == "invalid_json":
            text = self._row_text(cells).rstrip()[:-1] + ',"' + self.line_end
            return text.encode(self.codec), _LineDelta(problem="invalid_json")
        if shape == "not_an_object":
            text = json.dumps([cells[NAME].text, cells[MOBILE].text], ensure_ascii=False)
            return (text + self.line_end).encode(self.codec), _LineDelta(problem="not_an_object")
        text = self._row_text(cells).replace(cells[NAME].text, _INVALID_BYTE_MARK, 1)
        return _encode_marked(text, self.codec), _LineDelta(problem="undecodable")

    def _encode_row(self, cells: dict[str, _Cell]) -> tuple[bytes, _LineDelta]:
        values = tuple(
            (kind, cells[column].canonical, cells[column].reason)
            for column, kind in IDENTIFIER_COLUMNS.items()
        )
        return _encode_marked(self._row_text(cells), self.codec), _LineDelta(values=values)

    def _row_text(self, cells: dict[str, _Cell]) -> str:
        if self.format == "jsonl":
            document: dict[str, Any] = {column: cells[column].text for column in COLUMNS}
            mobile = cells[MOBILE].text
            # Some dumps store mobiles as JSON numbers.
            if mobile.isascii() and mobile.isdigit() and self.rng.random() < 0.2:
                document[MOBILE] = int(mobile)
            if cells[BANK_CARD].text == "" and self.rng.random() < 0.5:
                del document[BANK_CARD]
            return json.dumps(document, ensure_ascii=False) + self.line_end
        return self._delimited_line([cells[column].text for column in COLUMNS])

    def _delimited_line(self, fields: list[str]) -> str:
        buffer = io.StringIO()
        delimiter = "\t" if self.format == "tsv" else ","
        csv.writer(buffer, delimiter=delimiter, lineterminator=self.line_end).writerow(fields)
        return buffer.getvalue()

    def _person_cells(self, *, valid_only: bool = False) -> dict[str, _Cell]:
        rng = self.rng
        id_text, id_canonical, id_reason = self._id_number(valid_only=valid_only)
        cells = {
            NAME: _Cell(self._name(), None),
            ID_NUMBER: _Cell(id_text, id_canonical, id_reason),
            MOBILE: self._mobile(valid_only=valid_only),
            EMAIL: self._email(valid_only=valid_only),
            BANK_CARD: self._bank_card(valid_only=valid_only),
            ADDRESS: _Cell(self._address(), None),
            PASSWORD: _Cell("".join(rng.choices("abcdefghjkmnpqrstuvwxyz23456789", k=10)), None),
            REGISTERED: _Cell(
                (date(2015, 1, 1) + timedelta(days=rng.randrange(3000))).isoformat(), None
            ),
        }
        return cells

    def _name(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.02:
            return rng.choice(_MINORITY_NAMES)
        given_name = "".join(rng.choices(_GIVEN_NAME_CHARACTERS, k=rng.choice((1, 2))))
        if roll < 0.03 and self.encoding != "gbk":
            given_name = _FOUR_BYTE_NAME_CHARACTER + given_name[:1]
        return rng.choice(_SURNAMES) + given_name

    def _address(self, *, single_line: bool = False) -> str:
        rng = self.rng
        street = f"{rng.choice(_ROADS)}{rng.randrange(1, 300)}号"
        flat = f"{rng.randrange(1, 30)}栋{rng.randrange(1, 30)}0{rng.randrange(1, 9)}室"
        roll = rng.random()
        if self.multiline and not single_line and roll < 0.1:
            return f"{rng.choice(_ADDRESS_PLACES)}{street}\n{flat}"
        if self.format == "csv" and roll < 0.2:
            # A comma in the field makes the CSV writer quote it.
            return f"{rng.choice(_ADDRESS_PLACES)},{street}{flat}"
        return f"{rng.choice(_ADDRESS_PLACES)}{street}{flat}"

    def _id_number(self, *, valid_only: bool = False) -> tuple[str, str | None, str | None]:
        rng = self.rng
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 65))
        first_17 = (
            rng.choice(_REGION_CODES) + birth.strftime("%Y%m%d") + f"{rng.randrange(1000):03d}"
        )
        canonical = first_17 + id_check_character(first_17)

        roll = rng.random()
        if not valid_only and roll < 0.03:
            return "", None, "empty"
        if not valid_only and roll < 0.05:
            wrong = _ID_CHECK_CHARACTERS[(_ID_CHECK_CHARACTERS.index(canonical[17]) + 1) % 11]
            return first_17 + wrong, None, "invalid_checksum"
        return self._format_id_number(canonical)

    def _format_id_number(self, canonical: str) -> tuple[str, str, str | None]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.12 and canonical[6:8] == "19":
            return canonical[:6] + canonical[8:17], canonical, "legacy"
        if roll < 0.16:
            return canonical.translate(_FULL_WIDTH), canonical, None
        if roll < 0.20:
            return f"{canonical[:6]} {canonical[6:14]} {canonical[14:]}", canonical, None
        if canonical.endswith("X") and roll < 0.6:
            return canonical[:17] + "x", canonical, None
        return canonical, canonical, None

    def _mobile(self, *, valid_only: bool = False) -> _Cell:
        rng = self.rng
        national = rng.choice(_MOBILE_SEGMENTS) + f"{rng.randrange(10**8):08d}"
        roll = rng.random()
        if not valid_only and roll < 0.05:
            return _Cell("", None, "empty")
        if not valid_only and roll < 0.07:
            return _Cell(national[:10], None, "invalid")
        return self._format_mobile(national)

    def _format_mobile(self, national: str) -> _Cell:
        canonical = "+86" + national
        shapes = (
            national,
            national,
            national,
            f"+86 {national[:3]} {national[3:7]} {national[7:]}",
            f"+86-{national}",
            f"+86{national}",
            f"0086 {national}",
            f"86 {national}",
            f"{national[:3]}-{national[3:7]}-{national[7:]}",
            f"(+86){national}",
            national.translate(_FULL_WIDTH),
        )
        return _Cell(self.rng.choice(shapes), canonical)

    def _email(self, *, valid_only: bool = False) -> _Cell:
        rng = self.rng
        roll = rng.random()
        if not valid_only and roll < 0.2:
            return _Cell("", None, "empty")
        local = (
            rng.choice(_PINYIN_SURNAMES)
            + rng.choice(("", ".", "_"))
            + rng.choice(_PINYIN_GIVEN_NAMES)
        )
        local += str(rng.randrange(100)) if rng.random() < 0.7 else ""
        if rng.random() < 0.01:
            domain, ascii_domain = _IDN_DOMAIN
        else:
            domain = ascii_domain = rng.choice(_EMAIL_DOMAINS)
        canonical = f"{local}@{ascii_domain}".lower()

        if not valid_only and roll < 0.22:
            return _Cell(f"{local}.{domain}", None, "invalid")
        shape = rng.random()
        if shape < 0.2:
            return _Cell(f"{local.capitalize()}@{domain.upper()}", canonical)
        if shape < 0.22:
            return _Cell(f"{local}＠{domain}", canonical)
        if shape < 0.25:
            return _Cell(f" {local}@{domain} ", canonical)
        return _Cell(f"{local}@{domain}", canonical)

    def _bank_card(self, *, valid_only: bool = False) -> _Cell:
        rng = self.rng
        roll = rng.random()
        if roll < 0.7:
            return _Cell("", None, "empty")
        length = rng.choice((16, 19))
        prefix = rng.choice(_CARD_PREFIXES)
        body = prefix + "".join(rng.choices("0123456789", k=length - len(prefix) - 1))
        canonical = body + luhn_check_digit(body)
        if not valid_only and roll < 0.72:
            wrong = str((int(canonical[-1]) + 1) % 10)
            return _Cell(canonical[:-1] + wrong, None, "invalid_checksum")
        if rng.random() < 0.3:
            spaced = " ".join(canonical[i : i + 4] for i in range(0, length, 4))
            return _Cell(spaced, canonical)
        return _Cell(canonical, canonical)

    def _planted_id_number(self, raw: str | None) -> _Cell:
        if not raw:
            return _Cell("", None, "empty")
        canonical = _plant_id_number(raw)
        text, _, reason = self._format_id_number(canonical)
        return _Cell(text, canonical, reason)

    def _planted_mobile(self, raw: str | None) -> _Cell:
        if not raw:
            return _Cell("", None, "empty")
        return self._format_mobile(_plant_mobile(raw))

    def _planted_email(self, raw: str | None) -> _Cell:
        if not raw:
            return _Cell("", None, "empty")
        address = unicodedata.normalize("NFKC", raw).strip()
        local, at_sign, domain = address.rpartition("@")
        if not (local and at_sign and domain.isascii() and local.isascii()):
            raise ValueError("planted e-mail addresses must be ASCII and contain @")
        return _Cell(address, address.lower())


def _plant_id_number(raw: str) -> str:
    number = unicodedata.normalize("NFKC", raw).replace(" ", "").upper()
    if len(number) == 15 and number.isdigit():
        first_17 = number[:6] + "19" + number[6:]
        return first_17 + id_check_character(first_17)
    if (
        len(number) != 18
        or not number[:17].isdigit()
        or id_check_character(number[:17]) != number[17]
    ):
        raise ValueError("a planted ID number fails the GB 11643-1999 check")
    return number


def _plant_mobile(raw: str) -> str:
    digits = "".join(character for character in raw if character.isdigit())
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) != 11 or not digits.startswith("1"):
        raise ValueError("planted mobiles must be mainland numbers, 11 digits after +86")
    return digits


def _encode_marked(text: str, codec: str) -> bytes:
    return text.encode(codec).replace(_INVALID_BYTE_MARK.encode("ascii"), b"\xff")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.tools.breach_generator",
        description="Write a synthetic breach file, its intake manifest and expected counts.",
    )
    parser.add_argument("--rows", type=int, required=True, help="number of data lines to write")
    parser.add_argument("--encoding", choices=ENCODINGS, default="gb18030", help="file encoding")
    parser.add_argument("--format", choices=FORMATS, default="csv", help="file format")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--plant",
        type=Path,
        help="JSON array of identities ({name, id_number, mobile, email}) to include",
    )
    parser.add_argument(
        "--seed", type=int, help="random seed (the same seed writes the same bytes)"
    )
    parser.add_argument(
        "--multiline", action="store_true", help="put line breaks into some quoted addresses"
    )
    parser.add_argument(
        "--truncate", action="store_true", help="cut the last line inside its ID number"
    )
    parser.add_argument("--name", default="SyntheticLeak", help="breach Name in the manifest")
    args = parser.parse_args(argv)

    if args.rows < 1:
        parser.error("--rows must be at least 1")
    try:
        plants = load_plants(args.plant) if args.plant else []
        generated = generate(
            args.out,
            rows=args.rows,
            encoding=args.encoding,
            file_format=args.format,
            seed=args.seed,
            plants=plants,
            multiline=args.multiline,
            truncate=args.truncate,
            breach_name=args.name,
        )
    except (OSError, ValueError) as exc:
        parser.error(str(exc))

    sys.stdout.write(
        f"wrote {generated.data_path} ({generated.expected['rows']} data lines, "
        f"seed {generated.expected['seed']}) and {generated.manifest_path}\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
