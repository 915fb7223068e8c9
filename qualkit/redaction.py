"""Redact names, places and patterns (phone numbers, e-mail addresses) from output text.

A redaction list is a UTF-8 text file with one term per line::

    # people
    Zhang Wei
    Zhang => [official A]
    张伟 => [官员甲]
    word:Li
    re:G\\d{2}S\\d{2,3}
    pattern: cn-mobile

- A plain line is a literal term. It matches case-insensitively anywhere,
  also inside a longer word, and a space in it matches any run of white
  space (a name broken across lines is still found). Invisible format
  characters (soft hyphen, zero-width space, joiners) inside the name in
  the text do not stop a match.
- ``word:`` makes a literal match only where it is not part of a longer
  run of ASCII letters and digits, for short Latin names such as "Li"
  that would otherwise be cut out of "policy".
- ``re:`` starts a Python regular expression, matched as written (add
  ``(?i)`` for case-insensitive matching). An expression that matches the
  empty string, also only at some places (``\\b``), is rejected.
- ``pattern: NAME`` switches on a built-in pattern from ``PATTERNS``.
- `` => TEXT`` at the end of a line sets the replacement for that term;
  the default is ``[REDACTED]``.
- Lines that start with ``#`` and blank lines are skipped. A ``#`` later in
  a line is part of the term.

Matches of all terms are found in the original text in one pass, so one
term's replacement is never matched by another term. Where matches
overlap, they are merged into one redacted span, so overlapping names never
leave a fragment visible. The span takes the replacement of the match that
starts first, or of the longest of those that start there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qualkit.errors import InputError

DEFAULT_REPLACEMENT = "[REDACTED]"

# Built-in patterns, switched on with "pattern: NAME" in a redaction list.
PATTERNS: dict[str, str] = {
    # An address such as name.surname@mail.example.cn.
    "email": r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    # Mainland mobile numbers: 11 digits starting 13-19, optionally after +86
    # or 0086, with optional spaces or hyphens in the 3-4-4 grouping.
    "cn-mobile": r"(?<!\d)(?:(?:\+|00)86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)",
    # Mainland landlines with an area code: 010-12345678, (0851) 8123 4567.
    "cn-landline": r"(?<!\d)(?:\(0\d{2,3}\)|0\d{2,3})[ -]?\d{3,4}[ -]?\d{4}(?!\d)",
    # Resident identity card numbers: 17 digits and a digit or X.
    "cn-id": r"(?<![\dXx])\d{17}[\dXx](?![\dXx])",
    # A phone number with a country code (+44 20 7946 0958), an area code in
    # brackets ((555) 123-4567) or in 3-3-4 form with hyphens or dots
    # (555-123-4567). Bare digit runs and "2011-2015" are left alone.
    "phone": (
        r"(?<![\w+])(?:"
        r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
        r"|\(\d{1,4}\)[ .-]?\d{3,4}[ .-]?\d{3,4}"
        r"|\d{3}([.-])\d{3,4}\1\d{4}"
        r")(?!\w)"
    ),
}
# Digits a "phone" match needs, so that "+1 2015" is not a phone number.
PHONE_MIN_DIGITS = 7

_REPLACEMENT_SUFFIX = re.compile(r"^(?P<term>.*?\S)\s+=>(?:\s+(?P<replacement>.*))?$")
# Letters and digits that a "word:" term must not touch on either side.
_ASCII_WORD = "A-Za-z0-9"
# A run of zero or more invisible format characters that copied text often carries
# inside words: soft hyphen, Mongolian vowel separator, zero-width space,
# joiners, direction marks and embeddings, word joiner, invisible operators
# and the byte order mark. A literal term matches across them.
_INVISIBLE = "[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]*"
# Text searched for zero-length matches when a "re:" term is loaded: Latin,
# digits, white space, punctuation, CJK and full-width letters.
_EMPTY_MATCH_PROBE = "Zhang Wei, Li 09 _-.;:!?'\"()[]{}<>@#$%&*+=/\\|~`^\n\t张伟 Ｚé ."


@dataclass(frozen=True)
class Term:
    """One line of a redaction list, compiled."""

    text: str
    pattern: re.Pattern[str]
    replacement: str
    kind: str
    line: int | None = None

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Return the non-empty (start, end) spans where this term matches ``text``."""
        found = []
        for match in self.pattern.finditer(text):
            if match.end() <= match.start():
                continue
            if self.kind == "pattern:phone" and not _looks_like_phone(match.group()):
                continue
            found.append((match.start(), match.end()))
        return found


def _looks_like_phone(text: str) -> bool:
    return sum(character.isdigit() for character in text) >= PHONE_MIN_DIGITS


class Redactor:
    """Replace every listed term in a text. An empty redactor returns the text unchanged."""

    def __init__(
        self, terms: list[Term] | None = None, *, path: str | Path | None = None
    ) -> None:
        self.terms = list(terms or [])
        self.path = str(path) if path is not None else None

    @classmethod
    def none(cls) -> Redactor:
        """Return a redactor with no terms."""
        return cls([])

    @classmethod
    def from_file(cls, path: str | Path) -> Redactor:
        """Read a redaction list, and raise InputError naming the file and line of a bad entry."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise InputError(
                f"Cannot read the redaction list ({error.strerror or error}).",
                path=path,
                fix="Check the path and its permissions.",
            ) from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            raise InputError(
                f"The redaction list is not valid UTF-8 (byte {error.start}).",
                path=path,
                line=line,
                fix="Save the file as UTF-8.",
            ) from None

        return cls.from_lines(text.splitlines(), path=path)

    @classmethod
    def from_lines(
        cls, lines: list[str], *, path: str | Path | None = None
    ) -> Redactor:
        """Build a redactor from the lines of a redaction list (see the module docstring)."""
        terms = []
        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            terms.append(parse_term(line, line_number=number, path=path))
        return cls(terms, path=path)

    def __bool__(self) -> bool:
        return bool(self.terms)

    def __len__(self) -> int:
        return len(self.terms)

    def __repr__(self) -> str:
        return f"Redactor({len(self.terms)} terms, path={self.path!r})"

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Return the (start, end, replacement) spans that ``apply`` replaces, in text order.

        Offsets are Python ``str`` indices into ``text``, so a caller can cut
        a text at redaction boundaries (e.g. to highlight codings around them).
        """
        if not isinstance(text, str) or not self.terms:
            return []
        return [
            (start, end, term.replacement) for start, end, term in self._matches(text)
        ]

    def _matches(self, text: str) -> list[tuple[int, int, Term]]:
        """Return the merged, non-overlapping spans to replace, in text order."""
        found = [
            (start, end, term) for term in self.terms for start, end in term.spans(text)
        ]
        # The longest match first at each start, so a merged span takes its replacement.
        found.sort(key=lambda item: (item[0], -(item[1] - item[0])))
        merged: list[tuple[int, int, Term]] = []
        for start, end, term in found:
            if merged and start < merged[-1][1]:
                last_start, last_end, last_term = merged[-1]
                merged[-1] = (last_start, max(last_end, end), last_term)
                continue
            merged.append((start, end, term))
        return merged

    def apply(self, text: Any) -> Any:
        """Return ``text`` with every match replaced; values that are not strings pass through."""
        if not isinstance(text, str) or not self.terms or not text:
            return text
        pieces = []
        position = 0
        for start, end, term in self._matches(text):
            pieces.append(text[position:start])
            pieces.append(term.replacement)
            position = end
        pieces.append(text[position:])

        return "".join(pieces)

    def terms_found(self, text: Any) -> list[str]:
        """Return the terms, as written in the list, that match ``text``, in list order."""
        if not isinstance(text, str) or not text:
            return []
        return [term.text for term in self.terms if term.spans(text)]


def parse_term(
    line: str, *, line_number: int | None = None, path: str | Path | None = None
) -> Term:
    """Compile one non-blank, non-comment line of a redaction list."""
    term_text, replacement = line, DEFAULT_REPLACEMENT
    suffix = _REPLACEMENT_SUFFIX.match(line)
    if suffix:
        term_text = suffix.group("term")
        replacement = suffix.group("replacement") or ""

    if term_text.startswith("re:"):
        expression = term_text[3:].strip()
        kind = "regex"
    elif term_text.startswith("pattern:"):
        name = term_text[8:].strip()
        if name not in PATTERNS:
            raise InputError(
                f"Unknown built-in pattern {name!r}.",
                path=path,
                line=line_number,
                fix=f"Use one of: {', '.join(sorted(PATTERNS))}.",
            )
        expression = PATTERNS[name]
        kind = f"pattern:{name}"
    elif term_text.startswith("word:"):
        literal = term_text[5:].strip()
        expression = _literal_expression(literal)
        if literal[:1].isascii() and literal[:1].isalnum():
            expression = f"(?<![{_ASCII_WORD}])" + expression
        if literal[-1:].isascii() and literal[-1:].isalnum():
            expression += f"(?![{_ASCII_WORD}])"
        expression = "(?i:" + expression + ")"
        kind = "word"
    else:
        expression = "(?i:" + _literal_expression(term_text) + ")"
        kind = "literal"

    if not expression:
        raise InputError(
            f"The term {line!r} is empty after its prefix.",
            path=path,
            line=line_number,
            fix="Write the name or expression after the prefix, or delete the line.",
        )
    try:
        pattern = re.compile(expression)
    except re.error as error:
        raise InputError(
            f"Invalid regular expression {expression!r}: {error}.",
            path=path,
            line=line_number,
            fix="Correct the expression (Python 're' syntax), or drop the 're:' prefix to match the text literally.",
        ) from None
    if pattern.fullmatch("") or _matches_empty_somewhere(pattern):
        raise InputError(
            f"The regular expression {expression!r} matches the empty string.",
            path=path,
            line=line_number,
            fix="Make the expression require at least one character, e.g. use + instead of *.",
        )

    return Term(term_text, pattern, replacement, kind, line_number)


def _matches_empty_somewhere(pattern: re.Pattern[str]) -> bool:
    """Return whether ``pattern`` finds a zero-length match in a sample text.

    Such a term (``\\b``, ``(?=Z)``) never redacts anything.
    """
    # NOTE: a lookaround that needs text absent from the probe, such as
    # (?=Zhao), still passes this check and redacts nothing.
    return any(match.end() == match.start() for match in pattern.finditer(_EMPTY_MATCH_PROBE))


def _literal_expression(literal: str) -> str:
    """Escape a literal term, letting each space match any run of white space.

    Invisible format characters may sit between any two characters of the
    term and around its spaces, so "Zh<SHY>ang Wei" is still found. White
    space may also sit between two Chinese characters, since wrapped
    Chinese text breaks lines inside words ("李<newline>明"). Each ASCII
    character also matches its full-width form ("Ｚｈａｎｇ"), which
    Chinese input methods type.
    """
    # The two classes are disjoint, so each white-space character is taken by
    # exactly one repetition and the expression cannot backtrack badly. A
    # zero-width space, (non-)joiner or word joiner alone also separates the
    # words, as it shows the name without a gap ("ZhangWei").
    separator = f"(?:(?:{_INVISIBLE}\\s)+{_INVISIBLE}|[\u200b-\u200d\u2060]+)"
    words = [_word_expression(part) for part in literal.split()]
    return separator.join(words)


# Between two Chinese characters: any run of white space or invisible
# format characters, as one class so the expression cannot backtrack badly.
_CJK_GAP = "[\\s" + _INVISIBLE[1:-2] + "]*"


def _word_expression(word: str) -> str:
    pieces = [_character_expression(word[0])]
    for before, character in zip(word, word[1:]):
        pieces.append(_CJK_GAP if _is_cjk(before) and _is_cjk(character) else _INVISIBLE)
        pieces.append(_character_expression(character))
    return "".join(pieces)


def _character_expression(character: str) -> str:
    if "!" <= character <= "~":
        # U+FF01 to U+FF5E are the full-width forms of ASCII ! to ~.
        return f"[{re.escape(character)}{re.escape(chr(ord(character) + 0xFEE0))}]"
    return re.escape(character)


def _is_cjk(character: str) -> bool:
    return (
        "\u3400" <= character <= "\u9fff"
        or "\uf900" <= character <= "\ufaff"
        or "\U00020000" <= character <= "\U0003134f"
    )
