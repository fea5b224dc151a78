"""Check that a breach file's bytes match the encoding its manifest declares.

GBK and GB18030 decode most UTF-8 byte sequences without an error, so a strict decode alone
cannot catch a UTF-8 file declared as GBK. The check therefore also tests whether the bytes
look like UTF-8. Valid UTF-8 with multi-byte characters is almost never GB text: in GB text
the trail byte of a two-byte character (0x40-0xFE) rarely forms the 0x80-0xBF continuation
bytes that UTF-8 requires after every lead byte. Text of generated Chinese names and
addresses encoded in GB18030 has several invalid UTF-8 sequences per decodable non-ASCII
character.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Final, get_args

from idsentry.models.breach import Encoding

UTF8_BOM: Final = codecs.BOM_UTF8
SUPPORTED_ENCODINGS: Final[tuple[str, ...]] = get_args(Encoding)
GB_ENCODINGS: Final = frozenset({"gb18030", "gbk"})

# How many bytes from the start of a file (or of a chunk) the intake samples.
ENCODING_SAMPLE_BYTES: Final = 1 << 20

# A sample is accepted in the declared encoding when the bytes that fail to decode are at most
# 3, at most 1% of its non-ASCII characters or at most 1 in 10,000 of its bytes, so that a few
# damaged lines do not reject a whole file. Rows with damaged bytes in an identifier are
# counted as undecodable when they are parsed. A sample only "looks like" UTF-8 when it meets
# the 1% share without the other allowances, because a few GB characters can form valid UTF-8
# sequences by chance.
_MAX_DAMAGED_SHARE: Final = 0.01
_DAMAGED_ALLOWANCE: Final = 3
_DAMAGED_BYTES_PER_SAMPLE_BYTE: Final = 1 / 10_000

# GBK maps its user-defined areas (lead bytes 0xAA-0xAF, 0xF8-0xFE and 0xA1-0xA7 with low
# trail bytes) to the Private Use Area. Big5 text and other foreign bytes decoded as GBK
# land there often, and real Chinese text rarely.
_PRIVATE_USE: Final = re.compile("[\ue000-\uf8ff]")


class EncodingMismatchError(ValueError):
    """The bytes of a breach file do not match the encoding that its manifest declares.

    ``declared`` is the manifest's value and ``suggested`` the supported encoding that fits
    the bytes, or None when none does. The message contains offsets and counts, never bytes.
    """

    field = "encoding"

    def __init__(self, declared: str, description: str, suggested: str | None) -> None:
        self.declared = declared
        self.description = description
        self.suggested = suggested
        advice = (
            f"Declare '{suggested}' in the manifest."
            if suggested
            else "Convert the file to UTF-8 or GB18030."
        )
        super().__init__(
            f"The manifest declares encoding '{declared}', but the data file {description}. "
            f"{advice}"
        )


@dataclass(frozen=True)
class _DecodeProfile:
    """Decoding statistics of a sample in one encoding, ignoring an incomplete last character."""

    non_ascii: int  # non-ASCII characters that decoded
    damaged: int  # replacement characters produced for invalid bytes
    first_invalid: int | None  # offset of the first invalid byte
    private_use: int
    size: int  # bytes in the sample

    @property
    def is_valid(self) -> bool:
        return self.damaged == 0

    @property
    def is_acceptable(self) -> bool:
        return self.damaged <= max(
            _DAMAGED_ALLOWANCE,
            self.non_ascii * _MAX_DAMAGED_SHARE,
            self.size * _DAMAGED_BYTES_PER_SAMPLE_BYTE,
        )

    @property
    def has_excess_private_use(self) -> bool:
        return self.private_use > self.non_ascii * _MAX_DAMAGED_SHARE

    @property
    def looks_like_text(self) -> bool:
        """Whether the sample has non-ASCII text and at most 1% of it is damaged."""
        return self.non_ascii > 0 and self.damaged <= self.non_ascii * _MAX_DAMAGED_SHARE


def check_encoding(sample: bytes, declared: str) -> None:
    """Raise EncodingMismatchError unless ``sample`` is plausible text in ``declared``.

    ``sample`` is the start of a file or of a chunk, and may end inside a character.
    UTF-8 declarations (``utf-8``, ``utf-8-sig``) accept a byte order mark or its absence,
    because the parser strips one either way. A GBK or GB18030 declaration fails when the
    sample starts with a UTF-8 byte order mark, when it looks like UTF-8 with multi-byte
    characters, or when more than 1% of its non-ASCII characters decode into the Private Use
    Area. Any declaration fails when the bytes that do not decode are more than 3, more than
    1% of the non-ASCII characters and more than 1 in 10,000 bytes of the sample. Raises ValueError for an unsupported ``declared`` value.
    """
    if declared not in SUPPORTED_ENCODINGS:
        raise ValueError(
            f"Unsupported encoding '{declared}'. Expected one of {SUPPORTED_ENCODINGS}."
        )
    has_bom = sample.startswith(UTF8_BOM)
    body = sample[len(UTF8_BOM) :] if has_bom else sample
    utf8 = _profile(body, "utf-8")

    if declared not in GB_ENCODINGS:
        if not utf8.is_acceptable:
            raise _mismatch(declared, sample)
        return

    if has_bom or utf8.looks_like_text:
        raise _mismatch(declared, sample)
    declared_profile = _profile(body, declared)
    if not declared_profile.is_acceptable:
        raise _mismatch(declared, sample)
    if declared_profile.has_excess_private_use:
        raise EncodingMismatchError(declared, _private_use_description(declared_profile), None)


def describe_bytes(sample: bytes) -> tuple[str, str | None]:
    """Describe what encoding ``sample`` looks like, and suggest a supported one that fits.

    Returns the description (offsets and counts only) and the suggestion, or None.
    """
    if sample.startswith(UTF8_BOM):
        body = sample[len(UTF8_BOM) :]
        if _profile(body, "utf-8").is_acceptable:
            return "starts with a UTF-8 byte order mark and is UTF-8", "utf-8-sig"
    utf8 = _profile(sample, "utf-8")
    if utf8.is_valid and utf8.non_ascii > 0:
        return f"is valid UTF-8 with {utf8.non_ascii} multi-byte characters", "utf-8"
    if utf8.looks_like_text:
        return (
            f"is UTF-8 with {utf8.damaged} invalid bytes among {utf8.non_ascii} "
            "multi-byte characters",
            "utf-8",
        )

    gbk = _profile(sample, "gbk")
    gb18030 = _profile(sample, "gb18030")
    if not gb18030.has_excess_private_use:
        if gbk.is_valid:
            return "is valid GBK (and GB18030)", "gb18030"
        if gb18030.is_valid:
            return "is valid GB18030 but not GBK (it has four-byte sequences)", "gb18030"
        if gb18030.is_acceptable:
            return (
                f"is GB18030 with {gb18030.damaged} invalid bytes among "
                f"{gb18030.non_ascii} multi-byte characters",
                "gb18030",
            )
    if gb18030.is_acceptable:
        return _private_use_description(gb18030), None
    return (
        f"is neither UTF-8 (invalid byte at offset {utf8.first_invalid}) nor GB18030 "
        f"(invalid byte at offset {gb18030.first_invalid})",
        None,
    )


def _private_use_description(profile: _DecodeProfile) -> str:
    return (
        f"decodes with {profile.private_use} of {profile.non_ascii} non-ASCII characters in "
        "the Private Use Area, which suggests another encoding such as Big5"
    )


def _mismatch(declared: str, sample: bytes) -> EncodingMismatchError:
    description, suggested = describe_bytes(sample)
    return EncodingMismatchError(declared, description, suggested)


def _profile(sample: bytes, encoding: str) -> _DecodeProfile:
    # An incremental decoder keeps an incomplete character at the end of the sample pending
    # instead of reporting it, because the sample may end inside a character.
    strict = codecs.getincrementaldecoder(encoding)("strict")
    try:
        text = strict.decode(sample, final=False)
        first_invalid = None
        damaged = 0
    except UnicodeDecodeError as exc:
        first_invalid = exc.start
        text = codecs.getincrementaldecoder(encoding)("replace").decode(sample, final=False)
        damaged = text.count("\ufffd")

    non_ascii = len(text) - len(text.encode("ascii", "ignore")) - damaged
    private_use = len(_PRIVATE_USE.findall(text))
    return _DecodeProfile(
        non_ascii=non_ascii,
        damaged=damaged,
        first_invalid=first_invalid,
        private_use=private_use,
        size=len(sample),
    )
