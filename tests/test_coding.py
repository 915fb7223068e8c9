"""Tests of manual coding, the audit log, undo and memos, through the CLI.

The project has one English and one Chinese transcript, imported with the
real spaCy pipelines, and a small codebook without rules.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from qualkit import store
from qualkit.cli import cli
from qualkit.cli.coding import resolve_coder

ENGLISH = """\
---
id: E01
province: Hunan
level: city
district: north
---

Interviewer: How are the targets set?

Respondent: We talked the targets down before the meeting. The ranking came out well. We reframed the target as a green project.

Interviewer: And the environment?

Respondent: The environment target is a veto target. Nobody can bargain over it.
"""
CHINESE = """\
---
id: Z01
province: Zhejiang
level: county
language: zh
---

问：你们怎么报指标？

答：我们留一手，指标报低一点。环保指标是一票否决的。
"""
# Sentence 3 of E01 and its offsets, as the import segments it.
SENTENCE_3 = "We reframed the target as a green project."
LEAF = """\
  - id: {id}
    label: {id}
    {parent}definition: Code {id}.
    when_to_use: When {id} applies.
    when_not_to_use: When another code applies.
    example: An example of {id}.
"""
PARENT = """\
  - id: {id}
    label: {id}
    definition: Parent code {id}.
"""
CODES = {
    "strategy": None,
    "strategy.underpromise": "strategy",
    "strategy.reframing": "strategy",
    "target": None,
    "target.environment": "target",
    "target.veto": "target",
}


def codebook_text(
    codes: dict[str, str | None],
    version: str = "1",
    extra: dict[str, str] | None = None,
) -> str:
    """Return a codebook YAML with the given codes (id -> parent) and extra lines per code."""
    parents = set(codes.values())
    lines = [f'codebook:\n  id: study\n  version: "{version}"\ncodes:\n']
    for code_id, parent in codes.items():
        if code_id in parents:
            entry = PARENT.format(id=code_id)
        else:
            entry = LEAF.format(
                id=code_id, parent=f"parent: {parent}\n    " if parent else ""
            )
        if parent and code_id in parents:
            entry = entry.replace(
                "    definition:", f"    parent: {parent}\n    definition:"
            )
        if extra and code_id in extra:
            entry += extra[code_id]
        lines.append(entry)
    return "".join(lines)


def invoke(
    runner: CliRunner, db: Path, *args: str, coder: str | None = "alice", **kwargs: Any
) -> Result:
    env = {"QUALKIT_CODER": coder} if coder else {"QUALKIT_CODER": None}
    env.update(kwargs.pop("env", {}))
    return runner.invoke(
        cli, ["--db", str(db), *args], prog_name="qualkit", env=env, **kwargs
    )


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def all_codings(db: Path) -> list[tuple[Any, ...]]:
    return rows(db, "SELECT * FROM codings ORDER BY id")


def content_hash(db: Path) -> str:
    opened = store.open_database(db, create=False)
    try:
        return store.content_hash(opened)
    finally:
        opened.close()


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with E01 and Z01 imported and the study codebook applied, built once."""
    folder = tmp_path_factory.mktemp("coding")
    (folder / "E01.md").write_text(ENGLISH, encoding="utf-8")
    (folder / "Z01.md").write_text(CHINESE, encoding="utf-8")
    (folder / "codebook.yaml").write_text(codebook_text(CODES), encoding="utf-8")
    db = folder / "qualkit.db"
    runner = CliRunner()
    result = invoke(
        runner, db, "import", str(folder / "E01.md"), str(folder / "Z01.md")
    )
    assert result.exit_code == 0, result.output
    result = invoke(
        runner, db, "codebook", "apply", str(folder / "codebook.yaml"), coder="lead"
    )
    assert result.exit_code == 0, result.output
    checkpoint(db)
    return db


def checkpoint(db: Path) -> None:
    """Move the write-ahead log into the database file, so that copying the file copies the data."""
    connection = sqlite3.connect(db)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


@pytest.fixture
def project_db(template_db: Path, tmp_path: Path) -> Path:
    """A private copy of the template database."""
    copy = tmp_path / "qualkit.db"
    shutil.copyfile(template_db, copy)
    return copy


def sentence_span(db: Path, source: str, position: int) -> tuple[int, int]:
    return rows(
        db,
        "SELECT start_offset, end_offset FROM segments WHERE source_id = ? AND kind = 'sentence' AND position = ?",
        (source, position),
    )[0]


def text_of(db: Path, source: str) -> str:
    return rows(db, "SELECT text FROM sources WHERE id = ?", (source,))[0][0]


def add(runner: CliRunner, db: Path, *args: str, coder: str = "alice") -> Result:
    return invoke(runner, db, "code", "add", *args, coder=coder)


# code add: the three ways of giving a span


def test_add_by_span_stores_quote(runner: CliRunner, project_db: Path) -> None:
    start = text_of(project_db, "E01").index(SENTENCE_3)
    result = add(
        runner,
        project_db,
        "E01",
        "--code",
        "strategy.reframing",
        "--span",
        f"{start}:{start + len(SENTENCE_3)}",
    )

    assert result.exit_code == 0, result.output
    assert rows(project_db, "SELECT quote, coder, origin, status FROM codings") == [
        (SENTENCE_3, "alice", "manual", "accepted")
    ]


def test_add_by_sentence_position(runner: CliRunner, project_db: Path) -> None:
    result = add(
        runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "3"
    )

    assert result.exit_code == 0, result.output
    assert rows(project_db, "SELECT quote FROM codings") == [(SENTENCE_3,)]


def test_add_by_turn_position(runner: CliRunner, project_db: Path) -> None:
    result = add(
        runner,
        project_db,
        "E01",
        "--code",
        "target.veto",
        "--segment",
        "3",
        "--unit",
        "turn",
    )

    assert result.exit_code == 0, result.output
    assert rows(project_db, "SELECT quote FROM codings") == [
        ("The environment target is a veto target. Nobody can bargain over it.",)
    ]


def test_add_by_match_occurrence(runner: CliRunner, project_db: Path) -> None:
    text = text_of(project_db, "E01")
    third = [i for i in range(len(text)) if text.startswith("target", i)][2]
    result = add(
        runner,
        project_db,
        "E01",
        "--code",
        "target.environment",
        "--match",
        "target",
        "--occurrence",
        "3",
    )

    assert result.exit_code == 0, result.output
    assert rows(project_db, "SELECT start_offset, end_offset FROM codings") == [
        (third, third + 6)
    ]


def test_add_chinese_match_offsets(runner: CliRunner, project_db: Path) -> None:
    text = text_of(project_db, "Z01")
    result = add(
        runner,
        project_db,
        "Z01",
        "--code",
        "strategy.underpromise",
        "--match",
        "留一手",
    )

    start = text.index("留一手")
    assert result.exit_code == 0, result.output
    assert rows(project_db, "SELECT start_offset, end_offset, quote FROM codings") == [
        (start, start + 3, "留一手")
    ]


def test_add_keeps_codebook_version(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "3")

    assert rows(project_db, "SELECT codebook_version FROM codings") == [("1",)]


def test_add_trims_whitespace_at_edges(runner: CliRunner, project_db: Path) -> None:
    start, end = sentence_span(project_db, "E01", 3)
    result = add(
        runner,
        project_db,
        "E01",
        "--code",
        "strategy.reframing",
        "--span",
        f"{start - 1}:{end + 2}",
    )

    assert result.exit_code == 0, result.output
    assert rows(project_db, "SELECT start_offset, end_offset FROM codings") == [
        (start, end)
    ]


BAD_ADDS = [
    pytest.param(
        ["E01", "--code", "strategy.reframe", "--segment", "1"],
        1,
        "Code 'strategy.reframe' not found",
        id="unknown-code",
    ),
    pytest.param(
        ["E99", "--code", "strategy.reframing", "--segment", "1"],
        1,
        "Source 'E99' not found",
        id="unknown-source",
    ),
    pytest.param(
        ["E01", "--code", "strategy.reframing", "--span", "10:99999"],
        1,
        "outside source 'E01'",
        id="span-out-of-range",
    ),
    pytest.param(
        ["E01", "--code", "strategy.reframing", "--span", "90:60"],
        1,
        "is reversed",
        id="reversed-span",
    ),
    pytest.param(
        ["E01", "--code", "strategy.reframing", "--span", "60:60"],
        1,
        "is empty",
        id="empty-span",
    ),
    pytest.param(
        ["E01", "--code", "strategy.reframing", "--span", "-5:10"],
        1,
        "outside source",
        id="negative-start",
    ),
    pytest.param(
        ["E01", "--code", "strategy.reframing", "--span", "37:39"],
        1,
        "only whitespace",
        id="whitespace-span",
    ),
    pytest.param(
        ["E01", "--code", "strategy.reframing", "--span", "a:b"],
        2,
        "is not START:END",
        id="malformed-span",
    ),
    pytest.param(
        ["E01", "--code", "strategy.reframing", "--match", "green projects"],
        1,
        "does not occur in source 'E01'",
        id="match-absent",
    ),
    pytest.param(
        ["E01", "--code", "strategy.reframing", "--match", "we reframed"],
        1,
        "other capitals as 'We reframed'",
        id="match-wrong-case",
    ),
    pytest.param(
        ["E01", "--code", "strategy.reframing", "--match", "target"],
        1,
        "occurs 5 times",
        id="match-ambiguous",
    ),
    pytest.param(
        [
            "E01",
            "--code",
            "strategy.reframing",
            "--match",
            "target",
            "--occurrence",
            "9",
        ],
        1,
        "occurrence 9 does not exist",
        id="occurrence-too-high",
    ),
    pytest.param(
        [
            "E01",
            "--code",
            "strategy.reframing",
            "--match",
            "target",
            "--occurrence",
            "0",
        ],
        2,
        "--occurrence",
        id="occurrence-zero",
    ),
    pytest.param(
        ["E01", "--code", "strategy.reframing", "--occurrence", "2", "--segment", "1"],
        2,
        "--occurrence goes with --match",
        id="occurrence-without-match",
    ),
    pytest.param(
        ["E01", "--code", "strategy.reframing"],
        2,
        "exactly one of --span, --segment or --match",
        id="no-span",
    ),
    pytest.param(
        ["E01", "--code", "strategy.reframing", "--segment", "1", "--span", "1:4"],
        2,
        "exactly one of",
        id="two-spans",
    ),
    pytest.param(
        ["E01", "--code", "strategy.reframing", "--segment", "40"],
        1,
        "no sentence at position 40",
        id="segment-out-of-range",
    ),
]


@pytest.mark.parametrize(("args", "status", "message"), BAD_ADDS)
def test_add_bad_input(
    runner: CliRunner, project_db: Path, args: list[str], status: int, message: str
) -> None:
    result = add(runner, project_db, *args)

    assert result.exit_code == status
    assert message in result.stderr
    assert rows(project_db, "SELECT count(*) FROM codings") == [(0,)]


def test_add_without_coder_is_usage_error(runner: CliRunner, project_db: Path) -> None:
    result = invoke(
        runner,
        project_db,
        "code",
        "add",
        "E01",
        "--code",
        "target.veto",
        "--segment",
        "1",
        coder=None,
    )

    assert result.exit_code == 2
    assert "No coder given" in result.stderr


def test_add_reserved_coder_rejected(runner: CliRunner, project_db: Path) -> None:
    result = add(
        runner,
        project_db,
        "E01",
        "--code",
        "target.veto",
        "--segment",
        "1",
        coder="autocode",
    )

    assert result.exit_code == 2
    assert "reserved" in result.stderr


def test_add_dropped_code_rejected(
    runner: CliRunner, project_db: Path, tmp_path: Path
) -> None:
    smaller = {k: v for k, v in CODES.items() if k != "target.veto"}
    (tmp_path / "v2.yaml").write_text(
        codebook_text(smaller, version="2"), encoding="utf-8"
    )
    invoke(runner, project_db, "codebook", "apply", str(tmp_path / "v2.yaml"))

    result = add(runner, project_db, "E01", "--code", "target.veto", "--segment", "1")

    assert result.exit_code == 1
    assert "not in the current codebook" in result.stderr


def test_coder_from_project_settings(
    runner: CliRunner, project_db: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "qualkit.toml").write_text(
        f'[project]\ndatabase = "{project_db.as_posix()}"\ncoder = "carol"\n',
        encoding="utf-8",
    )
    result = runner.invoke(
        cli,
        [
            "--project",
            str(folder),
            "code",
            "add",
            "E01",
            "--code",
            "target.veto",
            "--segment",
            "5",
        ],
        prog_name="qualkit",
        env={"QUALKIT_CODER": None},
    )

    assert result.exit_code == 0, result.output
    assert rows(project_db, "SELECT coder FROM codings") == [("carol",)]


def test_coder_option_beats_settings() -> None:
    project = SimpleNamespace(config=SimpleNamespace(coder="carol"))

    assert resolve_coder(project, "dave") == "dave"


def test_coder_missing_everywhere() -> None:
    with pytest.raises(click.UsageError, match="No coder given"):
        resolve_coder(SimpleNamespace(config=None), None)


# One coder, one code, overlapping spans


def test_overlap_same_code_merges(runner: CliRunner, project_db: Path) -> None:
    first = sentence_span(project_db, "E01", 1)
    second = sentence_span(project_db, "E01", 2)
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    result = add(
        runner,
        project_db,
        "E01",
        "--code",
        "strategy.reframing",
        "--span",
        f"{first[1] - 8}:{second[1]}",
    )

    assert result.exit_code == 0, result.output
    assert "merged" in result.stdout
    assert rows(project_db, "SELECT start_offset, end_offset FROM codings") == [
        (first[0], second[1])
    ]


def test_overlap_merge_joins_two_codings(runner: CliRunner, project_db: Path) -> None:
    first = sentence_span(project_db, "E01", 1)
    third = sentence_span(project_db, "E01", 3)
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "3")
    result = add(
        runner,
        project_db,
        "E01",
        "--code",
        "strategy.reframing",
        "--span",
        f"{first[1] - 5}:{third[0] + 5}",
    )

    assert result.exit_code == 0, result.output
    assert rows(project_db, "SELECT start_offset, end_offset FROM codings") == [
        (first[0], third[1])
    ]


def test_adjacent_spans_not_merged(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "2")

    assert rows(project_db, "SELECT count(*) FROM codings") == [(2,)]


def test_overlap_error_on_request(runner: CliRunner, project_db: Path) -> None:
    start, end = sentence_span(project_db, "E01", 1)
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    before = all_codings(project_db)
    result = add(
        runner,
        project_db,
        "E01",
        "--code",
        "strategy.reframing",
        "--span",
        f"{start + 3}:{end + 10}",
        "--on-overlap",
        "error",
    )

    assert result.exit_code == 1
    assert "already coded strategy.reframing" in result.stderr
    assert all_codings(project_db) == before


def test_span_inside_own_coding_unchanged(runner: CliRunner, project_db: Path) -> None:
    start, end = sentence_span(project_db, "E01", 1)
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    before = all_codings(project_db)
    result = add(
        runner,
        project_db,
        "E01",
        "--code",
        "strategy.reframing",
        "--span",
        f"{start + 3}:{end - 3}",
    )

    assert result.exit_code == 0
    assert "unchanged" in result.stdout
    assert all_codings(project_db) == before


def test_overlap_other_code_kept_apart(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    add(runner, project_db, "E01", "--code", "target.environment", "--segment", "1")

    assert rows(project_db, "SELECT count(*) FROM codings") == [(2,)]


def test_overlap_other_coder_kept_apart(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    add(
        runner,
        project_db,
        "E01",
        "--code",
        "strategy.reframing",
        "--segment",
        "1",
        coder="bob",
    )

    assert rows(project_db, "SELECT coder FROM codings ORDER BY coder") == [
        ("alice",),
        ("bob",),
    ]


# code move and code remove


def test_move_changes_span_and_quote(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    result = invoke(runner, project_db, "code", "move", "1", "--segment", "3")

    assert result.exit_code == 0, result.output
    assert rows(project_db, "SELECT id, quote FROM codings") == [(1, SENTENCE_3)]


def test_move_onto_own_coding_merges(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "3")
    start = sentence_span(project_db, "E01", 2)[0]
    end = sentence_span(project_db, "E01", 3)[0] + 5
    result = invoke(runner, project_db, "code", "move", "1", "--span", f"{start}:{end}")

    assert result.exit_code == 0, result.output
    assert rows(project_db, "SELECT id, start_offset, end_offset FROM codings") == [
        (1, start, sentence_span(project_db, "E01", 3)[1])
    ]


def test_move_unknown_coding(runner: CliRunner, project_db: Path) -> None:
    result = invoke(runner, project_db, "code", "move", "42", "--segment", "1")

    assert result.exit_code == 1
    assert "Coding #42 not found" in result.stderr


def test_move_out_of_range(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    result = invoke(runner, project_db, "code", "move", "1", "--span", "0:100000")

    assert result.exit_code == 1
    assert "outside source" in result.stderr


def test_remove_deletes_coding_and_memo(runner: CliRunner, project_db: Path) -> None:
    add(
        runner,
        project_db,
        "E01",
        "--code",
        "strategy.reframing",
        "--segment",
        "1",
        "--memo",
        "first pass",
    )
    result = invoke(runner, project_db, "code", "remove", "1")

    assert result.exit_code == 0, result.output
    assert rows(project_db, "SELECT count(*) FROM codings") == [(0,)]
    assert rows(project_db, "SELECT count(*) FROM memos") == [(0,)]


def test_remove_unknown_coding(runner: CliRunner, project_db: Path) -> None:
    result = invoke(runner, project_db, "code", "remove", "7")

    assert result.exit_code == 1
    assert "Coding #7 not found" in result.stderr


def test_remove_suggestion_rejected(runner: CliRunner, project_db: Path) -> None:
    suggest(project_db, "E01", 1, "target.veto")
    result = invoke(runner, project_db, "code", "remove", "1")

    assert result.exit_code == 1
    assert "Reject it instead" in result.stderr


def suggest(db: Path, source: str, position: int, code: str) -> None:
    """Insert an auto-coding suggestion on a sentence, as autocode stores one."""
    start, end = sentence_span(db, source, position)
    quote = text_of(db, source)[start:end]
    connection = sqlite3.connect(db)
    with connection:
        connection.execute(
            "INSERT INTO codings (source_id, start_offset, end_offset, quote, code_id, coder, origin, "
            "status, codebook_version, rule, matched_text, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, 'autocode', 'auto', 'suggested', '1', 'keyword x', ?, 't', 't')",
            (source, start, end, quote, code, quote[:5]),
        )
    connection.close()


# code list


@pytest.fixture
def listed_db(runner: CliRunner, project_db: Path) -> Path:
    """Four codings: alice on E01 (two) and Z01 (one), bob on E01 (one)."""
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "3")
    add(runner, project_db, "E01", "--code", "target.veto", "--segment", "5")
    add(
        runner,
        project_db,
        "Z01",
        "--code",
        "strategy.underpromise",
        "--match",
        "留一手",
    )
    add(
        runner,
        project_db,
        "E01",
        "--code",
        "target.environment",
        "--segment",
        "5",
        coder="bob",
    )
    return project_db


LIST_FILTERS = [
    pytest.param(["--code", "strategy"], {1, 3}, id="code-with-children"),
    pytest.param(["--code", "target.veto"], {2}, id="leaf-code"),
    pytest.param(["--source", "Z01"], {3}, id="source"),
    pytest.param(["--coder", "bob"], {4}, id="coder"),
    pytest.param(["--status", "accepted"], {1, 2, 3, 4}, id="status"),
    pytest.param(["--where", "province=hunan"], {1, 2, 4}, id="province-any-case"),
    pytest.param(["--where", "level=county,township"], {3}, id="level-list"),
    pytest.param(["--where", "district=north"], {1, 2, 4}, id="front-matter-attribute"),
    pytest.param(["--code", "target", "--coder", "alice"], {2}, id="combined"),
]


@pytest.mark.parametrize(("args", "expected"), LIST_FILTERS)
def test_list_filter(
    runner: CliRunner, listed_db: Path, args: list[str], expected: set[int]
) -> None:
    result = invoke(runner, listed_db, "code", "list", *args, "--format", "json")

    assert result.exit_code == 0, result.output
    assert {row["id"] for row in json.loads(result.stdout)} == expected


def test_list_target_filter(runner: CliRunner, listed_db: Path, tmp_path: Path) -> None:
    targets = tmp_path / "targets.yaml"
    targets.write_text(
        "targets:\n  - id: environment\n    name: Environment\n    category: environment\n"
        "    aliases:\n      en: [environment target]\n",
        encoding="utf-8",
    )
    linked = invoke(runner, listed_db, "link", "--targets", str(targets))
    result = invoke(
        runner, listed_db, "code", "list", "--target", "environment", "--format", "json"
    )

    assert linked.exit_code == 0, linked.output
    assert {row["id"] for row in json.loads(result.stdout)} == {2, 4}


def test_list_csv_has_quotes(runner: CliRunner, listed_db: Path) -> None:
    result = invoke(
        runner, listed_db, "code", "list", "--source", "Z01", "--format", "csv"
    )

    assert result.exit_code == 0
    assert result.stdout.splitlines()[1].endswith(",留一手")


def test_list_table_format(runner: CliRunner, listed_db: Path) -> None:
    result = invoke(runner, listed_db, "code", "list", "--coder", "bob")

    assert result.exit_code == 0
    assert "target.environment" in result.stdout


LIST_ERRORS = [
    pytest.param(
        ["--code", "strategi"], 1, "Code 'strategi' not found", id="unknown-code"
    ),
    pytest.param(
        ["--source", "nope"], 1, "Source 'nope' not found", id="unknown-source"
    ),
    pytest.param(
        ["--where", "religion=none"],
        1,
        "unknown metadata field 'religion'",
        id="unknown-field",
    ),
    pytest.param(
        ["--where", "province"], 2, "is not FIELD=VALUE", id="where-without-value"
    ),
    pytest.param(
        ["--target", "moon"], 1, "Target 'moon' not found", id="unknown-target"
    ),
    pytest.param(
        ["--status", "maybe"], 2, "Invalid value for '--status'", id="bad-status"
    ),
]


@pytest.mark.parametrize(("args", "status", "message"), LIST_ERRORS)
def test_list_bad_filter(
    runner: CliRunner, listed_db: Path, args: list[str], status: int, message: str
) -> None:
    result = invoke(runner, listed_db, "code", "list", *args)

    assert result.exit_code == status
    assert message in result.stderr


def test_segments_lists_positions(runner: CliRunner, project_db: Path) -> None:
    result = invoke(runner, project_db, "code", "segments", "E01", "--format", "json")
    listed = json.loads(result.stdout)

    assert result.exit_code == 0
    assert listed[3]["text"] == SENTENCE_3


# The audit log and undo


def test_log_records_add(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "3")
    result = invoke(runner, project_db, "log", "--coder", "alice", "--format", "json")
    entries = json.loads(result.stdout)

    assert result.exit_code == 0
    assert [(e["command"], e["table"], e["action"]) for e in entries] == [
        ("code add", "codings", "insert")
    ]
    assert "strategy.reframing" in entries[0]["change"]


def test_log_before_and_after_json(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    invoke(runner, project_db, "code", "move", "1", "--segment", "3")
    before, after = rows(
        project_db, "SELECT before, after FROM audit_log WHERE command = 'code move'"
    )[0]

    assert (
        json.loads(before)["quote"] == "We talked the targets down before the meeting."
    )
    assert json.loads(after)["quote"] == SENTENCE_3


def test_undo_after_add_restores_rows(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    before = all_codings(project_db)
    digest = content_hash(project_db)
    add(runner, project_db, "E01", "--code", "target.veto", "--segment", "5")
    result = invoke(runner, project_db, "undo")

    assert result.exit_code == 0, result.output
    assert all_codings(project_db) == before
    assert content_hash(project_db) == digest


def test_undo_after_merge_restores_rows(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    add(
        runner,
        project_db,
        "E01",
        "--code",
        "strategy.reframing",
        "--segment",
        "3",
        "--memo",
        "keep me",
    )
    before = all_codings(project_db), rows(project_db, "SELECT * FROM memos")
    first, third = (
        sentence_span(project_db, "E01", 1),
        sentence_span(project_db, "E01", 3),
    )
    merged = add(
        runner,
        project_db,
        "E01",
        "--code",
        "strategy.reframing",
        "--span",
        f"{first[1] - 5}:{third[0] + 5}",
    )
    result = invoke(runner, project_db, "undo")

    assert "merged" in merged.stdout
    assert result.exit_code == 0, result.output
    assert (all_codings(project_db), rows(project_db, "SELECT * FROM memos")) == before


def test_undo_after_remove_restores_links(
    runner: CliRunner, listed_db: Path, tmp_path: Path
) -> None:
    targets = tmp_path / "targets.yaml"
    targets.write_text(
        "targets:\n  - id: environment\n    name: Environment\n    category: environment\n"
        "    aliases:\n      en: [environment target]\n",
        encoding="utf-8",
    )
    invoke(runner, listed_db, "link", "--targets", str(targets))
    before = (
        all_codings(listed_db),
        rows(listed_db, "SELECT * FROM quote_links ORDER BY coding_id"),
    )
    invoke(runner, listed_db, "code", "remove", "2", "4")
    result = invoke(runner, listed_db, "undo")

    assert result.exit_code == 0, result.output
    assert (
        all_codings(listed_db),
        rows(listed_db, "SELECT * FROM quote_links ORDER BY coding_id"),
    ) == before


def test_undo_walks_back(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    add(runner, project_db, "E01", "--code", "target.veto", "--segment", "5")
    invoke(runner, project_db, "undo")
    result = invoke(runner, project_db, "undo")

    assert result.exit_code == 0, result.output
    assert all_codings(project_db) == []


def test_undo_only_own_changes(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    add(
        runner,
        project_db,
        "E01",
        "--code",
        "target.veto",
        "--segment",
        "5",
        coder="bob",
    )
    invoke(runner, project_db, "undo")

    assert rows(project_db, "SELECT coder, code_id FROM codings") == [
        ("bob", "target.veto")
    ]


def test_undo_fails_after_later_change(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    invoke(runner, project_db, "code", "move", "1", "--segment", "3", coder="bob")
    before = all_codings(project_db)
    result = invoke(runner, project_db, "undo")

    assert result.exit_code == 1
    assert "changed since by 'bob'" in result.stderr
    assert all_codings(project_db) == before


def test_undo_nothing_to_undo(runner: CliRunner, project_db: Path) -> None:
    result = invoke(runner, project_db, "undo")

    assert result.exit_code == 1
    assert "no change left to undo" in result.stderr


def test_undo_dry_run_changes_nothing(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    before = all_codings(project_db)
    result = invoke(runner, project_db, "undo", "--dry-run")

    assert result.exit_code == 0
    assert "Would undo 'code add'" in result.stdout
    assert all_codings(project_db) == before


def test_undo_is_logged(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    invoke(runner, project_db, "undo")
    entries = json.loads(invoke(runner, project_db, "log", "--format", "json").stdout)

    assert [e["command"] for e in entries[:2]] == ["undo", "code add"]
    assert entries[1]["undone_by"] == entries[0]["batch"]


def test_history_tables_added_to_old_database(
    runner: CliRunner, project_db: Path
) -> None:
    connection = sqlite3.connect(project_db)
    with connection:
        connection.execute("DROP TABLE audit_log")
        connection.execute("DROP TABLE review_state")
    connection.close()
    result = add(
        runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1"
    )

    assert result.exit_code == 0, result.output
    assert rows(project_db, "SELECT count(*) FROM audit_log") == [(1,)]


# Memos


@pytest.fixture
def editor(tmp_path: Path) -> Callable[[str], str]:
    """Return a function that makes an $EDITOR command appending a line to the file it opens."""

    def make(line: str) -> str:
        script = tmp_path / "editor.py"
        script.write_text(
            textwrap.dedent(
                f"""\
                import sys
                with open(sys.argv[1], "a", encoding="utf-8") as handle:
                    handle.write({line!r} + "\\n")
                """
            ),
            encoding="utf-8",
        )
        return f'"{sys.executable}" "{script}"'

    return make


def editor_env(command: str) -> dict[str, str]:
    # click prefers $VISUAL to $EDITOR, so both name the test editor.
    return {"EDITOR": command, "VISUAL": command}


MEMO_SUBJECTS = [
    pytest.param([], ("project", None), id="project"),
    pytest.param(["--source", "E01"], ("source", "E01"), id="source"),
    pytest.param(["--code", "target.veto"], ("code", "target.veto"), id="code"),
]


@pytest.mark.parametrize(("args", "subject"), MEMO_SUBJECTS)
def test_memo_add_subject(
    runner: CliRunner,
    project_db: Path,
    args: list[str],
    subject: tuple[str, str | None],
) -> None:
    result = invoke(runner, project_db, "memo", "add", *args, "--text", "A thought.")

    assert result.exit_code == 0, result.output
    assert rows(project_db, "SELECT about, about_id, coder, text FROM memos") == [
        (*subject, "alice", "A thought.")
    ]


def test_memo_on_coding(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "3")
    invoke(runner, project_db, "memo", "add", "--coding", "1", "--text", "Clear case.")
    listed = json.loads(
        invoke(
            runner, project_db, "memo", "list", "--about", "coding", "--format", "json"
        ).stdout
    )

    assert [(m["about_id"], m["text"], m["coding"]) for m in listed] == [
        ("1", "Clear case.", f"strategy.reframing: {SENTENCE_3}")
    ]


MEMO_ERRORS = [
    pytest.param(["--source", "E99"], 1, "Source 'E99' not found", id="unknown-source"),
    pytest.param(["--code", "nope"], 1, "Code 'nope' not found", id="unknown-code"),
    pytest.param(["--coding", "99"], 1, "Coding #99 not found", id="unknown-coding"),
    pytest.param(
        ["--source", "E01", "--code", "target"], 2, "at most one of", id="two-subjects"
    ),
    pytest.param(["--text", "   "], 1, "The memo is empty", id="empty-text"),
    # A shell hands undecodable bytes such as $'\xff' to Python as a lone surrogate.
    pytest.param(["--text", "note \udcff"], 1, "not valid text (position 6)", id="undecodable-byte"),
]


@pytest.mark.parametrize(("args", "status", "message"), MEMO_ERRORS)
def test_memo_add_bad_input(
    runner: CliRunner, project_db: Path, args: list[str], status: int, message: str
) -> None:
    if "--text" not in args:
        args = [*args, "--text", "note"]
    result = invoke(runner, project_db, "memo", "add", *args)

    assert result.exit_code == status
    assert message in result.stderr


def test_memo_add_in_editor(
    runner: CliRunner, project_db: Path, editor: Callable[[str], str]
) -> None:
    result = invoke(
        runner,
        project_db,
        "memo",
        "add",
        "--source",
        "Z01",
        env=editor_env(editor("Written in the editor.")),
    )

    assert result.exit_code == 0, result.output
    assert rows(project_db, "SELECT text FROM memos") == [("Written in the editor.",)]


def test_memo_edit_in_editor(
    runner: CliRunner, project_db: Path, editor: Callable[[str], str]
) -> None:
    invoke(runner, project_db, "memo", "add", "--text", "First line.")
    result = invoke(
        runner,
        project_db,
        "memo",
        "edit",
        "1",
        env=editor_env(editor("Second line.")),
        coder="bob",
    )

    assert result.exit_code == 0, result.output
    assert rows(project_db, "SELECT text, coder FROM memos") == [
        ("First line.\nSecond line.", "alice")
    ]
    assert rows(
        project_db, "SELECT coder FROM audit_log WHERE command = 'memo edit'"
    ) == [("bob",)]


def test_memo_edit_unknown(runner: CliRunner, project_db: Path) -> None:
    result = invoke(runner, project_db, "memo", "edit", "5", "--text", "x")

    assert result.exit_code == 1
    assert "Memo #5 not found" in result.stderr


def test_memo_remove_then_undo(runner: CliRunner, project_db: Path) -> None:
    invoke(
        runner, project_db, "memo", "add", "--code", "target", "--text", "Keep this."
    )
    before = rows(project_db, "SELECT * FROM memos")
    invoke(runner, project_db, "memo", "remove", "1")
    invoke(runner, project_db, "undo")

    assert rows(project_db, "SELECT * FROM memos") == before


def test_memo_list_filters_by_coder(runner: CliRunner, project_db: Path) -> None:
    invoke(runner, project_db, "memo", "add", "--text", "by alice")
    invoke(runner, project_db, "memo", "add", "--text", "by bob", coder="bob")
    listed = json.loads(
        invoke(
            runner, project_db, "memo", "list", "--coder", "bob", "--format", "json"
        ).stdout
    )

    assert [m["text"] for m in listed] == ["by bob"]


def test_memo_editor_closed_unsaved(runner: CliRunner, project_db: Path) -> None:
    unchanged = f'"{sys.executable}" -c pass'
    result = invoke(runner, project_db, "memo", "add", env=editor_env(unchanged))

    assert result.exit_code == 1
    assert "closed without saving" in result.stderr
    assert rows(project_db, "SELECT count(*) FROM memos") == [(0,)]


def test_memo_edit_unsaved_keeps_text(runner: CliRunner, project_db: Path) -> None:
    invoke(runner, project_db, "memo", "add", "--text", "First line.")
    unchanged = f'"{sys.executable}" -c pass'
    result = invoke(runner, project_db, "memo", "edit", "1", env=editor_env(unchanged))

    assert result.exit_code == 0
    assert "not changed" in result.stdout
    assert rows(project_db, "SELECT text FROM memos") == [("First line.",)]


def test_memo_remove_unknown(runner: CliRunner, project_db: Path) -> None:
    result = invoke(runner, project_db, "memo", "remove", "3")

    assert result.exit_code == 1
    assert "Memo #3 not found" in result.stderr


def test_segments_unknown_source(runner: CliRunner, project_db: Path) -> None:
    result = invoke(runner, project_db, "code", "segments", "E99")

    assert result.exit_code == 1
    assert "Source 'E99' not found" in result.stderr


def test_log_bad_table(runner: CliRunner, project_db: Path) -> None:
    result = invoke(runner, project_db, "log", "--table", "sources")

    assert result.exit_code == 2
    assert "Invalid value for '--table'" in result.stderr


def test_log_batch_filter(runner: CliRunner, project_db: Path) -> None:
    add(runner, project_db, "E01", "--code", "strategy.reframing", "--segment", "1")
    add(runner, project_db, "E01", "--code", "target.veto", "--segment", "5")
    batch = rows(
        project_db,
        "SELECT batch_id FROM audit_log WHERE command = 'code add' ORDER BY id",
    )[0][0]
    result = invoke(runner, project_db, "log", "--batch", batch, "--format", "json")

    assert [entry["row"] for entry in json.loads(result.stdout)] == ["1"]
