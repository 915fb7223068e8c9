"""Tests of adjudication into a consensus coder, through the CLI on a real project.

The project and its codings are those of test_agreement: alice, bob (stored
as Bob, bob and BOB) and carol code E01 and Z01, and carol skips Z01. Per
sentence, the coders' judgements are:

- E01 sentences 1 and 3, strategy.reframing: all three coders.
- E01 sentence 5, strategy.reframing: alice only.
- E01 sentence 5, target.veto: all three (values 3, 2, 3).
- E01 sentence 6: strategy.reframing by bob only, target.veto by carol only.
- Z01 sentence 1, target.veto: alice and bob (carol did not code Z01).
- Z01 sentence 2, strategy.reframing: bob only, so a tie with alice.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import test_agreement
from click.testing import CliRunner
from test_agreement import REFRAMING, VETO, invoke, rows

# The coded project of test_agreement, built once per module here too.
coded_template = test_agreement.coded_template
coded_db = test_agreement.coded_db


def sentence(db: Path, source: str, position: int) -> tuple[int, int]:
    return rows(
        db,
        "SELECT start_offset, end_offset FROM segments WHERE source_id = ? "
        "AND kind = 'sentence' AND position = ?",
        (source, position),
    )[0]


def consensus(db: Path, coder: str = "consensus") -> set[tuple[Any, ...]]:
    return set(
        rows(
            db,
            "SELECT source_id, code_id, start_offset, end_offset, value FROM codings "
            "WHERE coder = ?",
            (coder,),
        )
    )


def expected(
    db: Path, *items: tuple[str, str, int, float | None]
) -> set[tuple[Any, ...]]:
    return {
        (source, code, *sentence(db, source, position), value)
        for source, code, position, value in items
    }


AGREED = [
    ("E01", REFRAMING, 1, None),
    ("E01", REFRAMING, 3, None),
    ("E01", VETO, 5, 3.0),
    ("Z01", VETO, 1, None),
]


def test_majority_keeps_agreed_and_lists_tie(runner: CliRunner, coded_db: Path) -> None:
    result = invoke(
        runner, coded_db, "adjudicate", "--into", "consensus", "--format", "json"
    )
    unresolved = json.loads(result.stdout[result.stdout.index("[") :])

    assert result.exit_code == 0, result.output
    assert consensus(coded_db) == expected(coded_db, *AGREED)
    assert [(row["unit_id"], row["code"]) for row in unresolved] == [
        ("Z01:sentence:2", REFRAMING)
    ]
    assert unresolved[0]["applied_by"] == "Bob"
    assert unresolved[0]["not_applied_by"] == "alice"
    assert "1 ties need a person" in result.stderr


def test_accept_from_breaks_tie(runner: CliRunner, coded_db: Path) -> None:
    result = invoke(runner, coded_db, "adjudicate", "--accept-from", "BOB")

    assert result.exit_code == 0, result.output
    # bob's codings give the offsets and values wherever bob applied the code.
    assert consensus(coded_db) == expected(
        coded_db,
        ("E01", REFRAMING, 1, None),
        ("E01", REFRAMING, 3, None),
        ("E01", VETO, 5, 2.0),
        ("Z01", VETO, 1, None),
        ("Z01", REFRAMING, 2, None),
    )
    assert "ties need a person" not in result.stderr


def test_union_keeps_every_code(runner: CliRunner, coded_db: Path) -> None:
    result = invoke(runner, coded_db, "adjudicate", "--rule", "union")

    assert result.exit_code == 0, result.output
    assert consensus(coded_db) == expected(
        coded_db,
        *AGREED,
        ("E01", REFRAMING, 5, None),
        ("E01", REFRAMING, 6, None),
        ("E01", VETO, 6, 1.0),
        ("Z01", REFRAMING, 2, None),
    )


def test_intersection_keeps_only_agreed(runner: CliRunner, coded_db: Path) -> None:
    result = invoke(runner, coded_db, "adjudicate", "--rule", "intersection")

    assert result.exit_code == 0, result.output
    assert consensus(coded_db) == expected(coded_db, *AGREED)


def test_rule_coder_takes_one_coder(runner: CliRunner, coded_db: Path) -> None:
    result = invoke(
        runner, coded_db, "adjudicate", "--rule", "coder", "--accept-from", "alice"
    )

    assert result.exit_code == 0, result.output
    # alice's value 3 is kept for target.veto; her lone reframing of sentence 5 too.
    assert consensus(coded_db) == expected(
        coded_db, *AGREED, ("E01", REFRAMING, 5, None)
    )


def test_undo_takes_adjudication_back(runner: CliRunner, coded_db: Path) -> None:
    before = rows(coded_db, "SELECT count(*) FROM codings")[0][0]
    adjudicated = invoke(
        runner, coded_db, "adjudicate", "--rule", "union", coder="lead"
    )
    batches = rows(
        coded_db,
        "SELECT DISTINCT batch_id, coder FROM audit_log WHERE command = 'adjudicate'",
    )
    undone = invoke(runner, coded_db, "undo", coder="lead")

    assert adjudicated.exit_code == 0, adjudicated.output
    assert len(batches) == 1
    assert batches[0][1] == "lead"
    assert undone.exit_code == 0, undone.output
    assert consensus(coded_db) == set()
    assert rows(coded_db, "SELECT count(*) FROM codings")[0][0] == before


def test_dry_run_writes_nothing(runner: CliRunner, coded_db: Path) -> None:
    result = invoke(runner, coded_db, "adjudicate", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "Would write 4 consensus codings" in result.stdout
    assert consensus(coded_db) == set()


def test_consensus_left_out_of_agree(runner: CliRunner, coded_db: Path) -> None:
    invoke(runner, coded_db, "adjudicate", "--into", "Panel")
    again = invoke(runner, coded_db, "adjudicate", "--into", "panel")
    result = invoke(runner, coded_db, "agree", "--format", "json", "--bootstrap", "0")

    assert again.exit_code == 0, again.output
    assert "4 unchanged" in again.stdout
    assert rows(
        coded_db, "SELECT DISTINCT coder FROM codings WHERE coder LIKE 'panel'"
    ) == [("Panel",)]
    assert {row["coders"] for row in json.loads(result.stdout)} == {3}


def test_decisions_file_overrides_rule(
    runner: CliRunner, coded_db: Path, tmp_path: Path
) -> None:
    listing = invoke(runner, coded_db, "disagreements", "--format", "csv")
    table = list(csv.DictReader(io.StringIO(listing.stdout)))
    chosen = {
        "Z01:sentence:2": REFRAMING,
        "E01:sentence:6": "none",
        "E01:sentence:5": f"{VETO}=2.5",
    }
    for row in table:
        row["decision"] = chosen.get(row["unit_id"], "")
    decisions = tmp_path / "decisions.csv"
    with decisions.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    result = invoke(runner, coded_db, "adjudicate", "--decisions", str(decisions))

    assert result.exit_code == 0, result.output
    assert "Decisions applied to 3 units." in result.stdout
    assert consensus(coded_db) == expected(
        coded_db,
        ("E01", REFRAMING, 1, None),
        ("E01", REFRAMING, 3, None),
        ("E01", VETO, 5, 2.5),
        ("Z01", VETO, 1, None),
        ("Z01", REFRAMING, 2, None),
    )


def test_span_clipped_and_rejoined(runner: CliRunner, coded_db: Path) -> None:
    # carol widens her sentence-3 coding over sentence 2 as well.
    start, _ = sentence(coded_db, "E01", 2)
    _, end = sentence(coded_db, "E01", 3)
    added = invoke(
        runner,
        coded_db,
        "code",
        "add",
        "E01",
        "--code",
        REFRAMING,
        "--span",
        f"{start}:{end}",
        coder="carol",
    )
    majority = invoke(
        runner, coded_db, "adjudicate", "--accept-from", "carol", "--into", "m"
    )
    union = invoke(
        runner,
        coded_db,
        "adjudicate",
        "--accept-from",
        "carol",
        "--rule",
        "union",
        "--into",
        "u",
    )
    m_spans = {
        (s, e) for _, code, s, e, _ in consensus(coded_db, "m") if code == REFRAMING
    }
    u_spans = {
        (s, e) for _, code, s, e, _ in consensus(coded_db, "u") if code == REFRAMING
    }

    assert added.exit_code == 0, added.output
    assert majority.exit_code == 0, majority.output
    assert union.exit_code == 0, union.output
    # Majority drops sentence 2 (carol alone), so carol's coding is cut to sentence 3.
    assert sentence(coded_db, "E01", 3) in m_spans
    # Union keeps both sentences, and the two pieces of carol's coding join again.
    assert (start, end) in u_spans


def test_character_units_match_sentences(runner: CliRunner, coded_db: Path) -> None:
    result = invoke(
        runner, coded_db, "adjudicate", "--unit", "character", "--accept-from", "bob"
    )

    assert result.exit_code == 0, result.output
    assert consensus(coded_db) == expected(
        coded_db,
        ("E01", REFRAMING, 1, None),
        ("E01", REFRAMING, 3, None),
        ("E01", VETO, 5, 2.0),
        ("Z01", VETO, 1, None),
        ("Z01", REFRAMING, 2, None),
    )


ADJUDICATE_ERRORS = [
    pytest.param(["--into", "ALICE"], "is one of the compared coders", id="into-coder"),
    pytest.param(["--rule", "coder"], "--accept-from CODER", id="coder-rule-alone"),
    pytest.param(
        ["--accept-from", "dave"], "not one of the compared coders", id="unknown-accept"
    ),
    pytest.param(["--into", "autocode"], "reserved", id="reserved-into"),
    pytest.param(
        ["--decisions", "missing.csv"], "cannot read the decisions file", id="no-file"
    ),
]


@pytest.mark.parametrize(("args", "message"), ADJUDICATE_ERRORS)
def test_adjudicate_errors(
    runner: CliRunner, coded_db: Path, args: list[str], message: str
) -> None:
    result = invoke(
        runner,
        coded_db,
        "adjudicate",
        "--coder",
        "alice",
        "--coder",
        "bob",
        "--coder",
        "carol",
        *args,
    )

    assert result.exit_code == 1
    assert message in result.stderr
    assert consensus(coded_db) == set()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Z01:sentence:9,strategy.reframing", "unit 'Z01:sentence:9' is not among"),
        ("Z01:sentence:2,strategy.nothing", "code 'strategy.nothing'"),
        ("Z01:sentence:2,target.veto=high", "value 'high'"),
    ],
)
def test_bad_decision_line(
    runner: CliRunner, coded_db: Path, tmp_path: Path, line: str, message: str
) -> None:
    decisions = tmp_path / "decisions.csv"
    decisions.write_text(
        f"unit_id,decision\nE01:sentence:6,none\n{line}\n", encoding="utf-8"
    )
    result = invoke(runner, coded_db, "adjudicate", "--decisions", str(decisions))

    assert result.exit_code == 1
    assert f"{decisions}, line 3" in result.stderr
    assert message in result.stderr
    assert consensus(coded_db) == set()
