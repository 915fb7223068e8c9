"""Questions to the coded data: boolean code queries, matrices, keyword in context.

A code in a query stands for itself and all its child codes. Codings are
compared in one of two ways (``unit``):

- ``overlap``: the text is cut at every coding boundary into pieces, each
  carrying the codes whose codings cover it. The expression is evaluated
  on each piece's set of codes, and adjacent pieces where it is true join
  into one quote. Only coded text is looked at, so ``NOT x`` finds coded
  text without x, never uncoded text.
- ``sentence`` or ``turn``: each segment carries the codes of the codings
  that overlap it, and the expression is evaluated per segment.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlite_utils

from qualkit.coding import (
    CODING_FROM,
    CodingFilter,
    filter_clause,
    metadata_expression,
    require_code,
    source_text,
)
from qualkit.errors import InputError

UNITS = ("overlap", "sentence", "turn")
COUNTS = ("codings", "sources", "cases")
MISSING_VALUE = "(missing)"


# Boolean code expressions ---------------------------------------------------------


@dataclass(frozen=True)
class CodeTerm:
    """A code id in an expression; it matches the code and its child codes."""

    code: str

    def holds(self, codes: frozenset[str]) -> bool:
        """Return True when the code or one of its children is among ``codes``."""
        prefix = self.code + "."
        return any(code == self.code or code.startswith(prefix) for code in codes)


@dataclass(frozen=True)
class Not:
    """Negation of an expression."""

    operand: Any

    def holds(self, codes: frozenset[str]) -> bool:
        """Return True when the operand does not hold."""
        return not self.operand.holds(codes)


@dataclass(frozen=True)
class And:
    """Conjunction of expressions."""

    operands: tuple[Any, ...]

    def holds(self, codes: frozenset[str]) -> bool:
        """Return True when every operand holds."""
        return all(operand.holds(codes) for operand in self.operands)


@dataclass(frozen=True)
class Or:
    """Disjunction of expressions."""

    operands: tuple[Any, ...]

    def holds(self, codes: frozenset[str]) -> bool:
        """Return True when any operand holds."""
        return any(operand.holds(codes) for operand in self.operands)


TOKEN = re.compile(r"\(|\)|[^\s()]+")
OPERATORS = ("AND", "OR", "NOT")


class _Parser:
    """Recursive descent over: expr = term {OR term}; term = factor {AND factor};
    factor = NOT factor | "(" expr ")" | code id. AND binds tighter than OR.
    """

    def __init__(self, text: str) -> None:
        self.depth = 0
        self.text = text
        self.tokens = [(m.group(0), m.start()) for m in TOKEN.finditer(text)]
        self.index = 0

    def fail(self, message: str) -> InputError:
        position = (
            self.tokens[self.index][1]
            if self.index < len(self.tokens)
            else len(self.text)
        )
        # Tabs and line breaks are shown as spaces, and wide (CJK) characters
        # take two columns, so that the caret lines up under the character.
        display_text = re.sub(r"\s", " ", self.text)
        width = sum(
            2 if unicodedata.east_asian_width(char) in "WF" else 1
            for char in display_text[:position]
        )
        pointer = " " * width + "^"
        return InputError(
            f"invalid query at character {position + 1}: {message}.\n  {display_text}\n  {pointer}",
            fix="Combine code ids with AND, OR, NOT and parentheses, e.g. "
            "'strategy.reframing AND (target.environment OR target.veto) AND NOT channel.formal'.",
        )

    def peek(self) -> str | None:
        return self.tokens[self.index][0] if self.index < len(self.tokens) else None

    def take(self) -> str:
        token = self.tokens[self.index][0]
        self.index += 1
        return token

    def parse(self) -> Any:
        if not self.tokens:
            raise self.fail("the query is empty")
        node = self.expression()
        if self.peek() == ")":
            raise self.fail("unexpected ')' with no matching '(' before it")
        if self.peek() is not None:
            raise self.fail(
                f"unexpected {self.peek()!r}; a code needs AND or OR before it"
            )
        return node

    def expression(self) -> Any:
        operands = [self.term()]
        while (self.peek() or "").upper() == "OR":
            self.take()
            operands.append(self.term())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def term(self) -> Any:
        operands = [self.factor()]
        while (self.peek() or "").upper() == "AND":
            self.take()
            operands.append(self.factor())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def factor(self) -> Any:
        token = self.peek()
        if token is None:
            raise self.fail("the query ends where a code or '(' is expected")
        if token.upper() == "NOT":
            self.take()
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self.fail(f"NOT and parentheses nested deeper than {MAX_NESTING} levels")
            node = Not(self.factor())
            self.depth -= 1
            return node
        if token == "(":
            self.take()
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self.fail(f"parentheses nested deeper than {MAX_NESTING} levels")
            node = self.expression()
            self.depth -= 1
            if self.peek() != ")":
                raise self.fail("missing ')'")
            self.take()
            return node
        if token == ")" or token.upper() in OPERATORS:
            raise self.fail(f"expected a code id or '(' but found {token!r}")
        self.take()
        return CodeTerm(token)


# Each level of parentheses costs Python stack frames; this keeps a hostile
# query from reaching Python's recursion limit.
MAX_NESTING = 50


def parse_expression(text: str) -> Any:
    """Parse a boolean code expression; raise InputError pointing at the first problem.

    AND, OR and NOT are matched without regard to case, so no code can be
    called ``and``, ``or`` or ``not``.
    """
    return _Parser(text).parse()


def expression_codes(node: Any) -> list[str]:
    """Return the code ids an expression names, in order of appearance."""
    if isinstance(node, CodeTerm):
        return [node.code]
    if isinstance(node, Not):
        return expression_codes(node.operand)
    return [code for operand in node.operands for code in expression_codes(operand)]


# Codings and their units ----------------------------------------------------------


@dataclass(frozen=True)
class _Coding:
    id: int
    source_id: str
    start: int
    end: int
    code: str


def _codings(
    db: sqlite_utils.Database,
    selection: CodingFilter,
    code_ids: list[str] | None = None,
) -> list[_Coding]:
    """Return the codings in ``selection``, only those of ``code_ids`` if given."""
    where, params = filter_clause(db, selection)
    if code_ids is not None:
        where = f"({where}) AND c.code_id IN ({', '.join('?' for _ in code_ids)})"
        params = [*params, *code_ids]
    rows = db.execute(
        f"SELECT c.id, c.source_id, c.start_offset, c.end_offset, c.code_id {CODING_FROM} "
        f"WHERE {where} ORDER BY c.source_id, c.start_offset, c.id",
        params,
    ).fetchall()
    return [_Coding(*row) for row in rows]


def _by_source(codings: Iterable[_Coding]) -> dict[str, list[_Coding]]:
    grouped: dict[str, list[_Coding]] = defaultdict(list)
    for coding in codings:
        grouped[coding.source_id].append(coding)
    return grouped


def _segments(
    db: sqlite_utils.Database, source_id: str, unit: str
) -> list[tuple[int, int, int]]:
    kinds = ("sentence",) if unit == "sentence" else ("turn", "paragraph")
    return db.execute(
        f"SELECT position, start_offset, end_offset FROM segments WHERE source_id = ? "
        f"AND kind IN ({', '.join('?' for _ in kinds)}) ORDER BY position",
        [source_id, *kinds],
    ).fetchall()


def _label(code: str, depth: int | None) -> str:
    return code if depth is None else ".".join(code.split(".")[:depth])


def _check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise InputError(
            f"unknown unit {unit!r}.", fix=f"Use one of: {', '.join(UNITS)}."
        )


def _case_metadata(db: sqlite_utils.Database) -> dict[str, tuple[Any, ...]]:
    return {
        row[0]: row[1:]
        for row in db.execute(
            "SELECT s.id, k.id, k.province, k.level FROM sources s JOIN cases k ON k.id = s.case_id"
        )
    }


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# Queries ----------------------------------------------------------------------------


def query_quotes(
    db: sqlite_utils.Database,
    expression: str,
    selection: CodingFilter,
    *,
    unit: str = "overlap",
) -> pd.DataFrame:
    """Return the quotes where a boolean code expression holds, one row per quote.

    ``selection`` chooses the codings that count (statuses, coders, sources,
    metadata); its ``codes`` filter is ignored, since the expression names
    the codes. The ``codes`` and ``codings`` columns list every coding in
    the selection that overlaps the matched text (before the whitespace at
    its ends is trimmed), whatever its code.
    """
    _check_unit(unit)
    node = parse_expression(expression)
    for code in expression_codes(node):
        require_code(db, code, active=False)
    selection = dataclasses.replace(selection, codes=())
    # Which text matches depends only on the codings of the expression's
    # codes, unless the expression is true on text without any of them (as
    # NOT x is). Then any coded text can match, so every coding is read.
    reads_all = node.holds(frozenset())
    code_ids = None if reads_all else _expression_code_ids(db, node)
    codings = _by_source(_codings(db, selection, code_ids))
    # Pieces of text carry few distinct sets of codes, so each set is
    # evaluated once.
    holds = functools.cache(node.holds)
    found: list[tuple[str, int, int]] = []
    for source_id, source_codings in sorted(codings.items()):
        if unit == "overlap":
            spans = _overlap_spans(holds, source_codings)
        else:
            spans = _segment_spans(
                holds, _Overlaps(source_codings), _segments(db, source_id, unit)
            )
        found += [(source_id, start, end) for start, end in spans]
    if reads_all:
        lookup = {source_id: _Overlaps(items) for source_id, items in codings.items()}
        matched = [lookup[source].over(start, end) for source, start, end in found]
    else:
        matched = _overlapping_codings(db, selection, found)
    cases = _case_metadata(db)
    texts: dict[str, str] = {}
    records = []
    for (source_id, start, end), covering in zip(found, matched):
        if source_id not in texts:
            texts.clear()
            texts[source_id] = db.execute(
                "SELECT text FROM sources WHERE id = ?", [source_id]
            ).fetchone()[0]
        text = texts[source_id]
        start, end = _trimmed(text, start, end)
        case_id, province, level = cases[source_id]
        records.append(
            {
                "source_id": source_id,
                "case_id": case_id,
                "province": province,
                "level": level,
                "start_offset": start,
                "end_offset": end,
                "codes": ", ".join(sorted({c.code for c in covering})),
                "codings": ", ".join(str(i) for i in sorted({c.id for c in covering})),
                "quote": text[start:end],
            }
        )
    columns = [
        "source_id",
        "case_id",
        "province",
        "level",
        "start_offset",
        "end_offset",
        "codes",
        "codings",
        "quote",
    ]
    return pd.DataFrame(records, columns=columns)


def _expression_code_ids(db: sqlite_utils.Database, node: Any) -> list[str]:
    """Return the stored code ids that the expression's terms match, children included.

    Every coding's code is a row of ``codes`` (a foreign key), so this list
    selects every coding that the expression can see.
    """
    terms = [CodeTerm(code) for code in expression_codes(node)]
    return [
        code_id
        for (code_id,) in db.execute("SELECT id FROM codes ORDER BY id")
        if any(term.holds(frozenset((code_id,))) for term in terms)
    ]


def _overlap_spans(
    holds: Callable[[frozenset[str]], bool], codings: list[_Coding]
) -> list[tuple[int, int]]:
    """Return the runs of coded text where the expression is true, in text order.

    The text is cut at every coding boundary. One sweep over the sorted
    boundaries keeps the codes open in each piece, and neighbouring pieces
    where the expression is true join into one run.
    """
    opening: dict[int, list[str]] = defaultdict(list)
    closing: dict[int, list[str]] = defaultdict(list)
    for coding in codings:
        opening[coding.start].append(coding.code)
        closing[coding.end].append(coding.code)
    bounds = sorted(opening.keys() | closing.keys())
    open_codes: Counter[str] = Counter()
    spans: list[tuple[int, int]] = []
    for start, end in itertools.pairwise(bounds):
        for code in closing.get(start, ()):
            open_codes[code] -= 1
            if not open_codes[code]:
                del open_codes[code]
        for code in opening.get(start, ()):
            open_codes[code] += 1
        if not open_codes or not holds(frozenset(open_codes)):
            continue
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def _segment_spans(
    holds: Callable[[frozenset[str]], bool],
    codings: _Overlaps,
    segments: list[tuple[int, int, int]],
) -> list[tuple[int, int]]:
    """Return the segments that a coding overlaps and where the expression is true."""
    spans = []
    for _, start, end in segments:
        codes = frozenset(c.code for c in codings.over(start, end))
        if codes and holds(codes):
            spans.append((start, end))
    return spans


class _Overlaps:
    """One source's codings sorted by start, for finding those that overlap a span."""

    def __init__(self, codings: list[_Coding]) -> None:
        self.codings = sorted(codings, key=lambda c: (c.start, c.id))
        self.starts = [c.start for c in self.codings]
        self.longest = max((c.end - c.start for c in self.codings), default=0)

    def over(self, start: int, end: int) -> list[_Coding]:
        """Return the codings that overlap [start, end)."""
        # An overlapping coding starts before ``end`` and, being at most
        # ``longest`` characters long, no earlier than ``start - longest``.
        low = bisect.bisect_left(self.starts, start - self.longest)
        high = bisect.bisect_left(self.starts, end)
        return [c for c in self.codings[low:high] if c.end > start]


def _overlapping_codings(
    db: sqlite_utils.Database,
    selection: CodingFilter,
    spans: list[tuple[str, int, int]],
) -> list[list[_Coding]]:
    """Return, per (source, start, end) span, the selected codings that overlap it."""
    if not spans:
        return []
    longest = dict(
        db.execute(
            "SELECT source_id, max(end_offset - start_offset) FROM codings "
            "GROUP BY source_id"
        ).fetchall()
    )
    # Each span goes to SQLite as [source, start, end, lowest start of a
    # coding that can overlap it], so that the index on (source_id,
    # start_offset) reads only the codings near each span.
    payload = json.dumps(
        [
            [source_id, start, end, start - longest.get(source_id, 0)]
            for source_id, start, end in spans
        ]
    )

    where, params = filter_clause(db, selection)
    rows = db.execute(
        "SELECT j.key, c.id, c.source_id, c.start_offset, c.end_offset, c.code_id "
        "FROM json_each(?) AS j CROSS JOIN codings c "
        "ON c.source_id = json_extract(j.value, '$[0]') "
        "AND c.start_offset >= json_extract(j.value, '$[3]') "
        "AND c.start_offset < json_extract(j.value, '$[2]') "
        "JOIN sources s ON s.id = c.source_id JOIN cases k ON k.id = s.case_id "
        f"WHERE c.end_offset > json_extract(j.value, '$[1]') AND ({where})",
        [payload, *params],
    )

    matched: list[list[_Coding]] = [[] for _ in spans]
    for key, *coding in rows:
        matched[key].append(_Coding(*coding))
    return matched


def _code_order(db: sqlite_utils.Database, labels: Iterable[str]) -> list[str]:
    position = {
        row[0]: index
        for index, row in enumerate(
            db.execute("SELECT id FROM codes ORDER BY active DESC, position, id")
        )
    }
    return sorted(
        set(labels), key=lambda label: (position.get(label, len(position)), label)
    )


def cooccurrence(
    db: sqlite_utils.Database,
    selection: CodingFilter,
    *,
    unit: str = "overlap",
    depth: int | None = None,
) -> pd.DataFrame:
    """Return the code-by-code co-occurrence matrix.

    With ``overlap``, a cell counts pairs of overlapping codings of the two
    codes and the diagonal counts codings. With ``sentence`` or ``turn``, a
    cell counts segments that carry both codes and the diagonal counts
    segments that carry the code. ``depth`` rolls codes up to their
    ancestors at that depth (1: strategy, 2: strategy.reframing), and two
    codings that roll up to the same code do not count as a pair.
    """
    _check_unit(unit)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    labels: set[str] = set()
    for source_id, codings in _by_source(_codings(db, selection)).items():
        if unit == "overlap":
            for coding in codings:
                label = _label(coding.code, depth)
                labels.add(label)
                counts[label, label] += 1
            for index, first in enumerate(codings):
                for second in codings[index + 1 :]:
                    if second.start >= first.end:
                        break
                    a, b = _label(first.code, depth), _label(second.code, depth)
                    if a != b:
                        counts[a, b] += 1
                        counts[b, a] += 1
            continue
        for _, start, end in _segments(db, source_id, unit):
            present = {
                _label(c.code, depth)
                for c in codings
                if c.start < end and start < c.end
            }
            labels |= present
            for a in present:
                for b in present:
                    counts[a, b] += 1
    order = _code_order(db, labels)
    matrix = pd.DataFrame(
        0, index=pd.Index(order, name="code"), columns=order, dtype="int64"
    )
    for (a, b), count in counts.items():
        matrix.loc[a, b] = count
    return matrix


def code_by_attribute(
    db: sqlite_utils.Database,
    field: str,
    selection: CodingFilter,
    *,
    count: str = "codings",
    depth: int | None = None,
) -> pd.DataFrame:
    """Return a codes-by-values matrix of a metadata field such as province or level.

    Cells count codings, or the distinct sources or cases with the code.
    ``total`` is counted the same way over all values, so for sources and
    cases it is not the sum of the row.
    """
    if count not in COUNTS:
        raise InputError(
            f"unknown count {count!r}.", fix=f"Use one of: {', '.join(COUNTS)}."
        )
    expression, expression_params = metadata_expression(db, field.lower())
    where, params = filter_clause(db, selection)
    rows = db.execute(
        f"SELECT c.id, c.code_id, c.source_id, k.id, {expression} {CODING_FROM} WHERE {where}",
        expression_params + params,
    ).fetchall()
    column = {"codings": 0, "sources": 2, "cases": 3}[count]
    cells: dict[tuple[str, str], set[Any]] = defaultdict(set)
    for row in rows:
        label = _label(row[1], depth)
        value = MISSING_VALUE if row[4] in (None, "") else str(row[4])
        cells[label, value].add(row[column])
        cells[label, "total"].add(row[column])
    labels = _code_order(db, {label for label, _ in cells})
    values = sorted({value for _, value in cells if value != "total"})
    matrix = pd.DataFrame(
        0,
        index=pd.Index(labels, name="code"),
        columns=values + ["total"],
        dtype="int64",
    )
    for (label, value), members in cells.items():
        matrix.loc[label, value] = len(members)
    matrix.columns.name = field
    return matrix


# Keyword in context ---------------------------------------------------------------


def _normalize(character: str) -> str:
    return unicodedata.normalize("NFKC", character).casefold()


def normalized_text(text: str) -> tuple[str, list[int]]:
    """Return ``text`` normalized for searching and, per normalized character, its offset in ``text``.

    Each character is NFKC-normalized and case-folded on its own, so
    full-width Latin letters and digits match their ASCII forms and the
    offsets map back exactly. Compositions that span two characters (a base
    letter and a separate combining accent) are not joined.
    """
    pieces, offsets = [], []
    for index, character in enumerate(text):
        normalized = _normalize(character)
        pieces.append(normalized)
        offsets.extend([index] * len(normalized))
    return "".join(pieces), offsets


def keyword_in_context(
    db: sqlite_utils.Database,
    term: str,
    *,
    width: int = 30,
    regex: bool = False,
    selection: CodingFilter | None = None,
    roles: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Return every occurrence of ``term`` with ``width`` characters of context on each side.

    Matching ignores case and full-width forms; Chinese needs no word
    boundaries, so a term matches inside longer words. ``selection`` limits
    the sources (ids, metadata) and chooses the codings listed for each hit.
    """
    if not term.strip():
        raise InputError("the search term is empty.")
    selection = selection or CodingFilter()
    pattern = _search_pattern(term, regex)
    where, params = _source_clause(db, selection)
    sources = db.execute(
        f"SELECT s.id, s.text, k.province, k.level FROM sources s JOIN cases k ON k.id = s.case_id "
        f"WHERE {where} ORDER BY s.id",
        params,
    ).fetchall()
    coding_selection = dataclasses.replace(selection, codes=())
    codings = _by_source(_codings(db, coding_selection))
    records = []
    for source_id, text, province, level in sources:
        turns = db.execute(
            "SELECT start_offset, end_offset, speaker, role FROM segments WHERE source_id = ? "
            "AND kind IN ('turn', 'paragraph') ORDER BY position",
            [source_id],
        ).fetchall()
        searched, offsets = normalized_text(text)
        for found in pattern.finditer(searched):
            if found.end() == found.start():
                continue
            start, end = offsets[found.start()], offsets[found.end() - 1] + 1
            speaker, role = next(
                ((t[2], t[3]) for t in turns if t[0] <= start < t[1]), (None, None)
            )
            if roles and role not in roles:
                continue
            codes = sorted(
                {
                    c.code
                    for c in codings.get(source_id, [])
                    if c.start < end and start < c.end
                }
            )
            records.append(
                {
                    "source_id": source_id,
                    "offset": start,
                    "left": _context(text[max(0, start - width) : start]),
                    "keyword": text[start:end],
                    "right": _context(text[end : end + width]),
                    "speaker": speaker,
                    "codes": ", ".join(codes),
                    "province": province,
                    "level": level,
                }
            )
    columns = [
        "source_id",
        "offset",
        "left",
        "keyword",
        "right",
        "speaker",
        "codes",
        "province",
        "level",
    ]
    return pd.DataFrame(records, columns=columns)


def _search_pattern(term: str, regex: bool) -> re.Pattern[str]:
    if not regex:
        return re.compile(re.escape("".join(_normalize(ch) for ch in term)))
    try:
        pattern = re.compile(term, re.IGNORECASE)
    except re.error as error:
        raise InputError(
            f"regular expression {term!r} does not compile: {error}."
        ) from None
    if pattern.search("") is not None:
        raise InputError(
            f"regular expression {term!r} matches the empty string.",
            fix="Make it require at least one character.",
        )
    return pattern


def _source_clause(
    db: sqlite_utils.Database, selection: CodingFilter
) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if selection.sources:
        for source in selection.sources:
            source_text(db, source)
        clauses.append(f"s.id IN ({', '.join('?' for _ in selection.sources)})")
        params += list(selection.sources)
    for name, values in selection.where:
        expression, expression_params = metadata_expression(db, name)
        clauses.append(
            f"lower({expression}) IN ({', '.join('lower(?)' for _ in values)})"
        )
        params += expression_params + list(values)
    return (" AND ".join(clauses) or "1"), params


def _context(text: str) -> str:
    """Collapse whitespace runs, line breaks included, to one space, keeping one at either end."""
    collapsed = " ".join(text.split())
    if not collapsed:
        return " " if text else ""
    if text[0].isspace():
        collapsed = " " + collapsed
    if text[-1].isspace():
        collapsed += " "
    return collapsed
