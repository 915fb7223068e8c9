"""Check the coded-quote query against a plain reference implementation.

``query_quotes`` reads only the codings of the expression's codes, finds
the quotes with one sweep over the coding boundaries, and then reads the
codings that overlap each quote. The reference below does the same work the
slow and obvious way: it reads every coding in the selection, cuts each
text at every coding boundary and tests every coding against every piece.
Both must return the same rows on a project with many overlapping codings
of every status, coder and length.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from qualkit.cli import cli
from qualkit.coding import CODING_FROM, CodingFilter, filter_clause
from qualkit.project import Project
from qualkit.queries import parse_expression, query_quotes

CODEBOOK = """\
codebook:
  id: study
  version: "1"
codes:
{codes}"""
CODE = """\
  - id: {id}
    label: {id}
    {parent}definition: Code {id}.
    when_to_use: When {id} applies.
    when_not_to_use: When another code applies.
    example: An example of {id}.
"""
# Code id -> parent id. Parents come before their children.
CODES = {
    "strategy": None,
    "strategy.underpromise": "strategy",
    "strategy.reframing": "strategy",
    "target": None,
    "target.environment": "target",
    "target.veto": "target",
    "channel": None,
    "channel.formal": "channel",
    "tournament": None,
}
SENTENCES = (
    "We talked the targets down before the meeting.",
    "The ranking came out well this year.",
    "The environment target is a veto target.",
    "Nobody can bargain over it.",
    "We reframed the target as a green project.",
    "The county asked the city for a lower number.",
)
SOURCES = {"S01": "Hunan", "S02": "Hunan", "S03": "Zhejiang", "S04": "Sichuan"}
CODINGS_PER_SOURCE = 220
EXPRESSIONS = (
    "strategy.underpromise AND NOT target.environment",
    "strategy",
    "target OR channel.formal",
    "strategy AND target AND NOT channel",
    "tournament AND (strategy.reframing OR target.veto)",
    # These are true on text without any of their codes, so query_quotes
    # reads every coding for them.
    "NOT target.environment",
    "NOT (strategy AND target)",
    "strategy.underpromise OR NOT strategy",
)
SELECTIONS = {
    "accepted": CodingFilter(statuses=("accepted",)),
    "all statuses": CodingFilter(),
    "bob, not rejected": CodingFilter(
        coders=("bob",), statuses=("accepted", "suggested")
    ),
    "two sources": CodingFilter(sources=("S01", "S03"), statuses=("accepted",)),
    "province": CodingFilter(where=(("province", ("hunan",)),)),
    # The codes filter is ignored by query_quotes.
    "with codes": CodingFilter(codes=("tournament",), statuses=("accepted",)),
}
UNITS = ("overlap", "sentence", "turn")


def transcript(rng: random.Random, source_id: str, province: str) -> str:
    turns = []
    for number in range(12):
        speaker = "Interviewer" if number % 2 == 0 else "Respondent"
        sentences = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(1, 5)))
        turns.append(f"{speaker}: {sentences}")
    front = f"---\nid: {source_id}\nprovince: {province}\nlevel: county\n---\n\n"
    return front + "\n\n".join(turns) + "\n"


def random_span(
    rng: random.Random, text: str, boundaries: list[int]
) -> tuple[int, int]:
    """Return a span of ``text``: short, medium or long, often sharing a boundary of an earlier one."""
    length = rng.choice(
        (rng.randint(1, 15), rng.randint(15, 120), rng.randint(120, len(text)))
    )
    if boundaries and rng.random() < 0.4:
        start = rng.choice(boundaries)
    else:
        start = rng.randrange(len(text))
    if boundaries and rng.random() < 0.3:
        later = [point for point in boundaries if point > start]
        end = rng.choice(later) if later else start + length
    else:
        end = start + length
    start = min(start, len(text) - 1)
    return start, min(max(end, start + 1), len(text))


def add_random_codings(db_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    connection = sqlite3.connect(db_path)
    with connection:
        for source_id in SOURCES:
            text = connection.execute(
                "SELECT text FROM sources WHERE id = ?", [source_id]
            ).fetchone()[0]
            boundaries: list[int] = []
            for _ in range(CODINGS_PER_SOURCE):
                start, end = random_span(rng, text, boundaries)
                boundaries += [start, end]
                connection.execute(
                    "INSERT OR IGNORE INTO codings (source_id, start_offset, end_offset, quote, code_id, "
                    "coder, origin, status, codebook_version, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'manual', ?, '1', 't', 't')",
                    [
                        source_id,
                        start,
                        end,
                        text[start:end],
                        rng.choice(list(CODES)),
                        rng.choice(("alice", "bob")),
                        rng.choice(("accepted", "accepted", "suggested", "rejected")),
                    ],
                )
    connection.close()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """Four interviews with several hundred random, overlapping codings each."""
    folder = tmp_path_factory.mktemp("query-equivalence")
    rng = random.Random(20261204)
    paths = []
    for source_id, province in SOURCES.items():
        path = folder / f"{source_id}.md"
        path.write_text(transcript(rng, source_id, province), encoding="utf-8")
        paths.append(str(path))
    codes = "".join(
        CODE.format(id=code_id, parent=f"parent: {parent}\n    " if parent else "")
        for code_id, parent in CODES.items()
    )
    (folder / "codebook.yaml").write_text(
        CODEBOOK.format(codes=codes), encoding="utf-8"
    )
    db_path = folder / "qualkit.db"
    runner = CliRunner()
    for arguments in (
        ["import", *paths],
        ["codebook", "apply", str(folder / "codebook.yaml")],
    ):
        result = runner.invoke(
            cli, ["--db", str(db_path), *arguments], env={"QUALKIT_CODER": "alice"}
        )
        assert result.exit_code == 0, result.output
    add_random_codings(db_path, seed=7)
    opened = Project(db_path)
    yield opened
    opened.close()


# The reference: every coding read, every piece tested against every coding ---------


@dataclasses.dataclass(frozen=True)
class Coding:
    id: int
    start: int
    end: int
    code: str


def reference_quotes(
    db: Any, expression: str, selection: CodingFilter, unit: str
) -> pd.DataFrame:
    node = parse_expression(expression)
    where, params = filter_clause(db, dataclasses.replace(selection, codes=()))
    by_source: dict[str, list[Coding]] = {}
    for coding_id, source_id, start, end, code in db.execute(
        f"SELECT c.id, c.source_id, c.start_offset, c.end_offset, c.code_id {CODING_FROM} WHERE {where}",
        params,
    ):
        by_source.setdefault(source_id, []).append(Coding(coding_id, start, end, code))
    records = []
    for source_id in sorted(by_source):
        codings = by_source[source_id]
        text, case_id, province, level = db.execute(
            "SELECT s.text, k.id, k.province, k.level FROM sources s JOIN cases k ON k.id = s.case_id "
            "WHERE s.id = ?",
            [source_id],
        ).fetchone()
        if unit == "overlap":
            spans = reference_overlap_spans(node, codings)
        else:
            spans = reference_segment_spans(db, node, codings, source_id, unit)
        for start, end, covering in spans:
            while start < end and text[start].isspace():
                start += 1
            while end > start and text[end - 1].isspace():
                end -= 1
            records.append(
                {
                    "source_id": source_id,
                    "case_id": case_id,
                    "province": province,
                    "level": level,
                    "start_offset": start,
                    "end_offset": end,
                    "codes": ", ".join(sorted({c.code for c in covering})),
                    "codings": ", ".join(
                        str(i) for i in sorted({c.id for c in covering})
                    ),
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


def overlapping(codings: list[Coding], start: int, end: int) -> list[Coding]:
    return [c for c in codings if c.start < end and start < c.end]


def reference_overlap_spans(
    node: Any, codings: list[Coding]
) -> list[tuple[int, int, list[Coding]]]:
    bounds = sorted({c.start for c in codings} | {c.end for c in codings})
    spans: list[tuple[int, int, list[Coding]]] = []
    for start, end in itertools.pairwise(bounds):
        covering = overlapping(codings, start, end)
        if not covering or not node.holds(frozenset(c.code for c in covering)):
            continue
        if spans and spans[-1][1] == start:
            first, _, earlier = spans[-1]
            spans[-1] = (
                first,
                end,
                earlier + [c for c in covering if c not in earlier],
            )
        else:
            spans.append((start, end, covering))
    return spans


def reference_segment_spans(
    db: Any, node: Any, codings: list[Coding], source_id: str, unit: str
) -> list[tuple[int, int, list[Coding]]]:
    kinds = ("sentence",) if unit == "sentence" else ("turn", "paragraph")
    segments = db.execute(
        f"SELECT start_offset, end_offset FROM segments WHERE source_id = ? "
        f"AND kind IN ({', '.join('?' for _ in kinds)}) ORDER BY position",
        [source_id, *kinds],
    ).fetchall()
    spans = []
    for start, end in segments:
        covering = overlapping(codings, start, end)
        if covering and node.holds(frozenset(c.code for c in covering)):
            spans.append((start, end, covering))
    return spans


# Tests -----------------------------------------------------------------------------


def test_fixture_has_overlapping_codings(project: Project) -> None:
    counts = dict(
        project.db.execute(
            "SELECT status, count(*) FROM codings GROUP BY status"
        ).fetchall()
    )
    assert counts["accepted"] > 300
    assert counts["suggested"] > 100
    assert counts["rejected"] > 100
    nested = project.db.execute(
        "SELECT count(*) FROM codings a JOIN codings b ON a.source_id = b.source_id AND a.id != b.id "
        "AND a.start_offset < b.end_offset AND b.start_offset < a.end_offset"
    ).fetchone()[0]
    assert nested > 10_000


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("selection_name", list(SELECTIONS))
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_query_quotes_matches_reference(
    project: Project, expression: str, selection_name: str, unit: str
) -> None:
    selection = SELECTIONS[selection_name]
    expected = reference_quotes(project.db, expression, selection, unit)
    found = query_quotes(project.db, expression, selection, unit=unit)
    pd.testing.assert_frame_equal(found, expected)


def test_reference_finds_quotes(project: Project) -> None:
    # Guards the comparison above against passing on empty results. Whole
    # turns carry so many codes that some expressions are true on none.
    selection = SELECTIONS["accepted"]
    for expression in EXPRESSIONS:
        for unit in ("overlap", "sentence"):
            found = reference_quotes(project.db, expression, selection, unit)
            assert len(found) > 0, (expression, unit)
    with_turns = []
    for expression in EXPRESSIONS:
        if len(reference_quotes(project.db, expression, selection, "turn")) > 0:
            with_turns.append(expression)
    assert len(with_turns) >= len(EXPRESSIONS) // 2


def test_long_unrelated_coding_listed(project: Project) -> None:
    # A coding of a code outside the expression that starts long before a
    # quote and covers it must still appear in the quote's codings column.
    text = project.db.execute("SELECT text FROM sources WHERE id = 'S02'").fetchone()[0]
    with project.db.conn:
        cursor = project.db.execute(
            "INSERT INTO codings (source_id, start_offset, end_offset, quote, code_id, coder, origin, "
            "status, codebook_version, created_at, updated_at) "
            "VALUES ('S02', 0, ?, ?, 'tournament', 'carol', 'manual', 'accepted', '1', 't', 't')",
            [len(text), text],
        )
    whole = cursor.lastrowid
    try:
        selection = CodingFilter(statuses=("accepted",), sources=("S02",))
        found = query_quotes(project.db, "strategy.underpromise", selection)
        expected = reference_quotes(
            project.db, "strategy.underpromise", selection, "overlap"
        )
        pd.testing.assert_frame_equal(found, expected)
        assert len(found) > 0
        assert all(str(whole) in row.split(", ") for row in found["codings"])
        assert all("tournament" in row.split(", ") for row in found["codes"])
    finally:
        with project.db.conn:
            project.db.execute("DELETE FROM codings WHERE id = ?", [whole])
