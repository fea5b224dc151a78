"""Line breaking for the PDF: Chinese breaks between characters, other text at spaces.

A line may break after any wide (CJK) character, as Chinese typesetting does, but never
before closing punctuation such as "，" or "）" and never after opening punctuation such as
"“" or "（". Latin words, numbers and masked identifiers stay whole unless one is wider than
the line on its own.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

# Characters that must not start a line.
NO_BREAK_BEFORE = frozenset("，。、：；！？）》」』】〕〉”’…—％·,.:;!?)]}%")
# Characters that must not end a line.
NO_BREAK_AFTER = frozenset("（《「『【〔〈“‘([{")


def _is_wide(character: str) -> bool:
    return unicodedata.east_asian_width(character) in ("W", "F")


def segments(line: str) -> list[str]:
    """Split one line into the pieces a line break may fall between.

    Each wide character is a piece, a run of other characters up to a space or a wide
    character is a piece, and each space is a piece. Punctuation is then glued to its
    neighbour so that no line starts or ends with the wrong mark.
    """
    units: list[str] = []
    index = 0
    while index < len(line):
        character = line[index]
        if character == " " or _is_wide(character):
            units.append(character)
            index += 1
            continue
        end = index
        while end < len(line) and line[end] != " " and not _is_wide(line[end]):
            end += 1
        units.append(line[index:end])
        index = end

    glued: list[str] = []
    for unit in units:
        if glued and unit != " " and glued[-1] != " ":
            if unit[0] in NO_BREAK_BEFORE or glued[-1][-1] in NO_BREAK_AFTER:
                glued[-1] += unit
                continue
        glued.append(unit)
    return glued


def break_lines(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """Break `text` into lines no wider than `width`, keeping its own line breaks.

    `measure` returns the width of a string in the same unit as `width`, and widths must add
    up (no kerning), which holds for fpdf2 without text shaping. A piece wider than a whole
    line is split between characters.
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        current_width = 0.0
        for piece in segments(paragraph):
            if piece == " ":
                # A space counts only between two pieces of the same line.
                if current:
                    current += piece
                    current_width += measure(piece)
                continue
            piece_width = measure(piece)
            if current_width + piece_width <= width:
                current += piece
                current_width += piece_width
                continue
            if current.strip():
                lines.append(current.rstrip())
            while piece_width > width and len(piece) > 1:
                head = _longest_fitting(piece, width, measure)
                lines.append(head)
                piece = piece[len(head) :]
                piece_width = measure(piece)
            current = piece
            current_width = piece_width
        lines.append(current.rstrip())
    return lines


def _longest_fitting(piece: str, width: float, measure: Callable[[str], float]) -> str:
    # At least one character, so that a line narrower than one glyph still makes progress.
    end = 1
    while end < len(piece) and measure(piece[: end + 1]) <= width:
        end += 1
    return piece[:end]
