"""Tests of ``qualkit merge``: coders' copies merged back with nothing lost.

Each test starts from one project (an English and a Chinese transcript
imported with the real spaCy pipelines and a small codebook), takes copies
with ``qualkit clone``, codes in them through the CLI, and merges them.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qualkit import store
from qualkit.cli import cli

ENGLISH = """\
---
id: E01
province: Hunan
level: city
---

Interviewer: How are the targets set each year?

Respondent: We negotiate the growth target with the province. The ranking matters a great deal to the mayor. We asked for a lower target and then beat it.

Interviewer: What about pollution?

Respondent: The emissions target cannot be bargained. It is a veto target for every official.
"""
CHINESE = """\
---
id: Z01
province: Zhejiang
level: county
language: zh
---

问：指标是怎么定的？

答：我们先报一个低一点的数字。排名对我们很重要。环保指标是一票否决的。
"""
NEW_SOURCE = """\
---
id: N01
province: Hubei
level: township
---

Respondent: Nobody told us the target until the meeting. We had no room to argue.
"""
CODEBOOK = """\
codebook:
  id: team
  version: "1"
codes:
  - id: strategy
    label: Strategy
    definition: A way a lower level tries to obtain targets that suit it.
  - id: strategy.underpromise
    label: Under-promise
    parent: strategy
    definition: Asking for a low target and then beating it.
    when_to_use: The respondent describes talking a target down.
    when_not_to_use: The target was lowered because it was out of reach.
    example: We asked for a lower target and then beat it.
  - id: tournament
    label: Ranking
    definition: Jurisdictions compared and ranked against each other.
    when_to_use: A ranking is named.
    when_not_to_use: A single result without comparison.
    example: The ranking matters.
  - id: veto
    label: Veto target
    definition: A target whose failure cancels every other success.
    when_to_use: A veto or one-vote rule is named.
    when_not_to_use: An ordinary binding target.
    example: It is a veto target.
"""
EXTRA_CODE = """\
  - id: pressure
    label: Pressure
    definition: Pressure from above.
    when_to_use: The respondent describes pressure.
    when_not_to_use: No pressure is described.
    example: They pushed us.
"""


def invoke(runner: CliRunner, db: Path, *args: str, coder: str | None = None) -> Result:
    env = {"QUALKIT_CODER": coder} if coder else {"QUALKIT_CODER": None}
    return runner.invoke(cli, ["--db", str(db), *args], prog_name="qualkit", env=env)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (
        f"{result.output}\n{result.stderr}\n{result.exception!r}"
    )
    return result


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def content_hash(db: Path) -> str:
    opened = store.open_database(db, create=False)
    try:
        return store.content_hash(opened)
    finally:
        opened.close()


def checkpoint(db: Path) -> None:
    """Move the write-ahead log into the database file, so that copying the file copies the data."""
    connection = sqlite3.connect(db)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def copy_database(source: Path, destination: Path) -> Path:
    """Copy a database file after moving its write-ahead log into it."""
    checkpoint(source)
    shutil.copyfile(source, destination)
    return destination


def add(
    runner: CliRunner,
    db: Path,
    source: str,
    code: str,
    segment: int,
    coder: str,
    *extra: str,
) -> int:
    result = ok(
        invoke(
            runner,
            db,
            "code",
            "add",
            source,
            "--code",
            code,
            "--segment",
            str(segment),
            *extra,
            coder=coder,
        )
    )
    return int(re.search(r"Coding #(\d+)", result.output).group(1))


def clone(
    runner: CliRunner, project: Path, destination: Path, coder: str, *extra: str
) -> Path:
    ok(invoke(runner, project, "clone", str(destination), "--coder", coder, *extra))
    return destination


def merge(runner: CliRunner, target: Path, *args: str) -> Result:
    return invoke(runner, target, "merge", *args)


def merge_json(runner: CliRunner, target: Path, *args: str) -> dict[str, Any]:
    return json.loads(ok(merge(runner, target, *args, "--format", "json")).stdout)


def human_codings(db: Path) -> list[tuple[Any, ...]]:
    """Return every coding that is not an auto-coding suggestion, as comparable content."""
    return rows(
        db,
        "SELECT source_id, start_offset, end_offset, quote, code_id, coder, status, value, key_quote "
        "FROM codings WHERE coder != 'autocode' ORDER BY source_id, start_offset, code_id, coder",
    )


def file_summary(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(row for row in report["files"] if Path(row["file"]).name == name)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with E01 and Z01 imported and the codebook applied, built once."""
    folder = tmp_path_factory.mktemp("merge")
    (folder / "E01.md").write_text(ENGLISH, encoding="utf-8")
    (folder / "Z01.md").write_text(CHINESE, encoding="utf-8")
    (folder / "codebook.yaml").write_text(CODEBOOK, encoding="utf-8")
    db = folder / "project.db"
    runner = CliRunner()
    ok(invoke(runner, db, "import", str(folder / "E01.md"), str(folder / "Z01.md")))
    ok(
        invoke(
            runner, db, "codebook", "apply", str(folder / "codebook.yaml"), coder="lead"
        )
    )
    checkpoint(db)
    return db


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    """A private copy of the template project."""
    copy = tmp_path / "project.db"
    shutil.copyfile(template, copy)
    return copy


@pytest.fixture
def team(runner: CliRunner, project: Path, tmp_path: Path) -> dict[str, Path]:
    """Two coders' blind copies with overlapping codings; coder names differ in case across files.

    "Alice" codes in alice.db, "bob" in bob.db, both on the same sentence
    with the same code. alice_late.db is a later copy in which the same
    person signs as "alice".
    """
    alice = clone(runner, project, tmp_path / "alice.db", "Alice")
    first = add(
        runner, alice, "E01", "strategy", 1, "Alice", "--memo", "Growth is negotiated."
    )
    add(runner, alice, "E01", "tournament", 2, "Alice", "--value", "4")
    add(runner, alice, "Z01", "veto", 3, "Alice")
    ok(
        invoke(
            runner,
            alice,
            "memo",
            "add",
            "--text",
            "Alice's project memo.",
            coder="Alice",
        )
    )
    ok(
        invoke(
            runner,
            alice,
            "memo",
            "add",
            "--coding",
            str(first),
            "--text",
            "Check the province's side.",
            coder="Alice",
        )
    )

    bob = clone(runner, project, tmp_path / "bob.db", "bob")
    add(runner, bob, "E01", "strategy", 1, "bob")
    add(runner, bob, "E01", "tournament", 2, "bob", "--value", "2")
    add(runner, bob, "E01", "veto", 6, "bob")
    ok(
        invoke(
            runner,
            bob,
            "memo",
            "add",
            "--source",
            "E01",
            "--text",
            "Frank about the veto.",
            coder="bob",
        )
    )

    late = clone(runner, alice, tmp_path / "alice_late.db", "alice")
    add(runner, late, "E01", "strategy.underpromise", 3, "alice")
    add(runner, late, "Z01", "tournament", 2, "alice")
    return {"alice": alice, "bob": bob, "late": late}


# Nothing lost ------------------------------------------------------------------


def test_merge_keeps_every_coding_of_every_file(
    runner: CliRunner, project: Path, team: dict[str, Path]
) -> None:
    report = merge_json(
        runner, project, str(team["alice"]), str(team["bob"]), str(team["late"])
    )

    merged = human_codings(project)
    for name, copy in team.items():
        for coding in human_codings(copy):
            folded = [(*row[:5], row[5].casefold(), *row[6:]) for row in merged]
            assert (*coding[:5], coding[5].casefold(), *coding[6:]) in folded, (
                f"{name}: {coding} missing"
            )
    # Alice's three codings appear in both of her files but are stored once.
    assert len(merged) == 3 + 3 + 2
    assert file_summary(report, "alice.db")["codings_added"] == 3
    assert file_summary(report, "bob.db")["codings_added"] == 3
    assert file_summary(report, "alice_late.db")["codings_added"] == 2
    assert file_summary(report, "alice_late.db")["codings_unchanged"] == 3
    assert report["conflicts"] == []


def test_merge_keeps_first_spelling_of_coder(
    runner: CliRunner, project: Path, team: dict[str, Path]
) -> None:
    report = merge_json(
        runner, project, str(team["alice"]), str(team["bob"]), str(team["late"])
    )

    coders = {row[0] for row in rows(project, "SELECT DISTINCT coder FROM codings")}
    assert coders == {"Alice", "bob"}
    late = [
        row for row in report["coders"] if Path(row["file"]).name == "alice_late.db"
    ]
    # The later copy contains Alice's earlier codings under "Alice" and new ones under "alice".
    assert sorted((row["coder_in_file"], row["coder"]) for row in late) == [
        ("Alice", "Alice"),
        ("alice", "Alice"),
    ]
    renamed = next(row for row in late if row["coder_in_file"] == "alice")
    assert "case ignored" in renamed["note"]
    assert renamed["in_target_before"] == 3


def test_merge_keeps_target_spelling_of_coder(
    runner: CliRunner, project: Path, team: dict[str, Path]
) -> None:
    add(runner, project, "Z01", "strategy", 3, "ALICE")

    report = merge_json(runner, project, str(team["alice"]))

    coders = {row[0] for row in rows(project, "SELECT DISTINCT coder FROM codings")}
    assert coders == {"ALICE"}
    assert report["coders"][0]["coder"] == "ALICE"
    assert "the target's spelling kept" in report["coders"][0]["note"]


def test_merge_brings_memos_to_merged_codings(
    runner: CliRunner, project: Path, team: dict[str, Path]
) -> None:
    ok(merge(runner, project, str(team["alice"]), str(team["bob"])))

    memos = rows(
        project,
        "SELECT m.about, m.coder, m.text, c.code_id, c.coder FROM memos m "
        "LEFT JOIN codings c ON m.about = 'coding' AND c.id = CAST(m.about_id AS INTEGER) ORDER BY m.text",
    )
    assert memos == [
        ("project", "Alice", "Alice's project memo.", None, None),
        ("coding", "Alice", "Check the province's side.", "strategy", "Alice"),
        ("source", "bob", "Frank about the veto.", None, None),
        ("coding", "Alice", "Growth is negotiated.", "strategy", "Alice"),
    ]


def test_merge_records_audit_batch_per_file(
    runner: CliRunner, project: Path, team: dict[str, Path]
) -> None:
    report = merge_json(
        runner, project, str(team["alice"]), str(team["bob"]), "--coder", "lead"
    )

    entries = rows(
        project,
        "SELECT command, coder, count(*) FROM audit_log WHERE table_name = 'codings' AND action = 'insert' "
        "GROUP BY command, coder ORDER BY command",
    )
    assert entries == [("merge alice.db", "lead", 3), ("merge bob.db", "lead", 3)]
    batches = rows(
        project,
        "SELECT count(DISTINCT batch_id) FROM audit_log WHERE command LIKE 'merge %'",
    )
    assert batches == [(2,)]
    assert sum(row["codings_added"] for row in report["files"]) == 6


def test_undo_takes_back_last_merged_file(
    runner: CliRunner, project: Path, team: dict[str, Path]
) -> None:
    ok(merge(runner, project, str(team["alice"]), "--coder", "lead"))
    after_alice = content_hash(project)
    ok(merge(runner, project, str(team["bob"]), "--coder", "lead"))

    ok(invoke(runner, project, "undo", coder="lead"))

    assert content_hash(project) == after_alice


def test_merge_twice_adds_nothing(
    runner: CliRunner, project: Path, team: dict[str, Path]
) -> None:
    files = [str(team["alice"]), str(team["bob"]), str(team["late"])]
    ok(merge(runner, project, *files))
    digest = content_hash(project)
    audit_entries = rows(project, "SELECT count(*) FROM audit_log")

    again = merge_json(runner, project, *files)

    assert content_hash(project) == digest
    assert rows(project, "SELECT count(*) FROM audit_log") == audit_entries
    assert [row["codings_added"] for row in again["files"]] == [0, 0, 0]
    assert [row["memos_added"] for row in again["files"]] == [0, 0, 0]
    assert [row["codings_unchanged"] for row in again["files"]] == [3, 3, 5]


def test_dry_run_reports_without_writing(
    runner: CliRunner, project: Path, team: dict[str, Path]
) -> None:
    digest = content_hash(project)
    files = [str(team["alice"]), str(team["bob"])]

    planned = merge_json(runner, project, *files, "--dry-run")

    assert content_hash(project) == digest
    assert rows(
        project, "SELECT count(*) FROM audit_log WHERE command LIKE 'merge %'"
    ) == [(0,)]
    assert planned["dry_run"] is True
    done = merge_json(runner, project, *files)
    assert planned["files"] == done["files"]
    assert planned["coders"] == done["coders"]


def test_merge_skips_autocode_suggestions(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    copy = clone(runner, project, tmp_path / "alice.db", "alice")
    connection = sqlite3.connect(copy)
    with connection:
        connection.execute(
            "INSERT INTO codings (source_id, start_offset, end_offset, quote, code_id, coder, origin, status, "
            "codebook_version, created_at, updated_at) SELECT 'E01', 0, 11, substr(text, 1, 11), 'strategy', "
            "'autocode', 'auto', 'suggested', '1', 'now', 'now' FROM sources WHERE id = 'E01'"
        )
    connection.close()

    report = merge_json(runner, project, str(copy))

    assert report["files"][0]["suggestions_skipped"] == 1
    assert rows(project, "SELECT count(*) FROM codings") == [(0,)]


# Conflicts ---------------------------------------------------------------------


def test_different_value_is_conflict_target_kept(
    runner: CliRunner, project: Path, team: dict[str, Path], tmp_path: Path
) -> None:
    ok(merge(runner, project, str(team["alice"])))
    second = copy_database(team["alice"], tmp_path / "alice_again.db")
    connection = sqlite3.connect(second)
    with connection:
        connection.execute("UPDATE codings SET value = 5 WHERE code_id = 'tournament'")
        connection.execute(
            "UPDATE codings SET status = 'rejected' WHERE code_id = 'veto'"
        )
    connection.close()

    report = merge_json(runner, project, str(second))

    kinds = sorted(
        (row["kind"], row["code_id"], row["action"]) for row in report["conflicts"]
    )
    assert kinds == [
        ("different_decision", "tournament", "kept the target's coding"),
        ("different_decision", "veto", "kept the target's coding"),
    ]
    tournament = next(
        row for row in report["conflicts"] if row["code_id"] == "tournament"
    )
    assert "value: target 4.0, file 5.0" in tournament["detail"]
    assert rows(project, "SELECT value FROM codings WHERE code_id = 'tournament'") == [
        (4.0,)
    ]
    assert rows(project, "SELECT status FROM codings WHERE code_id = 'veto'") == [
        ("accepted",)
    ]
    assert report["files"][0]["codings_conflicting"] == 2


def test_moved_own_coding_is_added_and_flagged(
    runner: CliRunner, project: Path, team: dict[str, Path], tmp_path: Path
) -> None:
    ok(merge(runner, project, str(team["alice"])))
    later = clone(runner, project, tmp_path / "alice_moved.db", "Alice")
    coding_id, start, end = rows(
        later,
        "SELECT id, start_offset, end_offset FROM codings WHERE code_id = 'strategy'",
    )[0]
    ok(
        invoke(
            runner,
            later,
            "code",
            "move",
            str(coding_id),
            "--span",
            f"{start}:{end + 10}",
            coder="Alice",
        )
    )

    report = merge_json(runner, project, str(later))

    spans = rows(
        project,
        "SELECT start_offset, end_offset, needs_review FROM codings WHERE code_id = 'strategy' ORDER BY end_offset",
    )
    assert spans == [(start, end, 0), (start, end + 10, 1)]
    assert [row["kind"] for row in report["conflicts"]] == ["overlaps_own_coding"]
    assert report["conflicts"][0]["action"] == "added, flagged for review"
    assert report["files"][0]["codings_flagged"] == 1


def test_unknown_code_is_reported_not_merged(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    copy = clone(runner, project, tmp_path / "alice.db", "alice")
    codebook = tmp_path / "codebook2.yaml"
    codebook.write_text(
        CODEBOOK.replace('version: "1"', 'version: "2"') + EXTRA_CODE, encoding="utf-8"
    )
    ok(invoke(runner, copy, "codebook", "apply", str(codebook), coder="alice"))
    add(runner, copy, "E01", "pressure", 6, "alice")
    add(runner, copy, "E01", "veto", 6, "alice")

    report = merge_json(runner, project, str(copy))

    assert [
        (row["kind"], row["code_id"], row["action"]) for row in report["conflicts"]
    ] == [("unknown_code", "pressure", "not merged")]
    assert rows(project, "SELECT code_id FROM codings") == [("veto",)]
    assert report["files"][0]["codings_not_merged"] == 1


def test_missing_source_reported_or_added(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    copy = clone(runner, project, tmp_path / "alice.db", "alice")
    (tmp_path / "N01.md").write_text(NEW_SOURCE, encoding="utf-8")
    ok(invoke(runner, copy, "import", str(tmp_path / "N01.md")))
    add(runner, copy, "N01", "strategy", 1, "alice")

    reported = merge_json(runner, project, str(copy))
    assert [(row["kind"], row["source_id"]) for row in reported["conflicts"]] == [
        ("missing_source", "N01")
    ]
    assert reported["files"][0]["sources_missing"] == 1
    assert rows(project, "SELECT count(*) FROM sources WHERE id = 'N01'") == [(0,)]

    added = merge_json(runner, project, str(copy), "--add-missing-sources")
    assert added["conflicts"] == []
    assert added["files"][0]["sources_added"] == 1
    assert human_codings(project) == human_codings(copy)
    segments = "SELECT kind, position, start_offset, end_offset, speaker, role FROM segments WHERE source_id = 'N01' ORDER BY kind, position"
    assert rows(project, segments) == rows(copy, segments)
    assert rows(project, "SELECT province, level FROM cases WHERE id = 'N01'") == [
        ("Hubei", "township")
    ]
    integrity = rows(project, "PRAGMA foreign_key_check")
    assert integrity == []


def test_changed_source_reported_or_reanchored(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    copy = clone(runner, project, tmp_path / "alice.db", "alice")
    edited = tmp_path / "E01.md"
    edited.write_text(
        ENGLISH.replace("with the province", "with the provincial office"),
        encoding="utf-8",
    )
    ok(invoke(runner, copy, "import", str(edited)))
    kept = add(runner, copy, "E01", "veto", 6, "alice")
    changed = add(runner, copy, "E01", "strategy", 1, "alice")
    copy_quotes = dict(rows(copy, "SELECT id, quote FROM codings"))
    assert (
        copy_quotes[changed]
        == "We negotiate the growth target with the provincial office."
    )

    reported = merge_json(runner, project, str(copy))
    assert sorted(row["kind"] for row in reported["conflicts"]) == [
        "changed_source",
        "changed_source",
    ]
    assert rows(project, "SELECT count(*) FROM codings") == [(0,)]

    moved = merge_json(runner, project, str(copy), "--allow-changed-sources")
    codings = {
        row[0]: row[1:]
        for row in rows(project, "SELECT code_id, quote, needs_review FROM codings")
    }
    assert codings["veto"] == (copy_quotes[kept], 0)
    assert codings["strategy"][0] == "We negotiate the growth target with the province."
    assert codings["strategy"][1] == 1
    assert [row["action"] for row in moved["conflicts"]] == [
        "added, flagged for review"
    ]
    memo = rows(project, "SELECT coder, text FROM memos WHERE about = 'coding'")
    assert memo[0][0] == "qualkit"
    assert "provincial office" in memo[0][1]


def test_map_coder_renames_file_coder(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    copy = clone(runner, project, tmp_path / "al.db", "AL")
    add(runner, copy, "E01", "veto", 6, "AL")

    report = merge_json(runner, project, str(copy), "--map-coder", "al=alice")

    assert rows(project, "SELECT coder FROM codings") == [("alice",)]
    assert report["coders"][0]["note"] == "mapped by --map-coder AL=alice"


def test_map_coder_rejects_bad_item(
    runner: CliRunner, project: Path, team: dict[str, Path]
) -> None:
    for item, words in (
        ("alice", "is not OLD=NEW"),
        ("x=autocode", "reserved"),
        ("=bob", "is not OLD=NEW"),
    ):
        result = merge(runner, project, str(team["alice"]), "--map-coder", item)
        assert result.exit_code == 1, item
        assert words in result.stderr, item


TARGETS = """\
targets:
  - id: emissions
    name: Emissions reduction
    category: environment
    aliases:
      en: [emissions target]
"""
VETO_TARGET = """\
  - id: veto_rule
    name: Veto rule
    category: veto
    aliases:
      en: [veto target]
"""


def test_links_follow_merged_codings(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    (tmp_path / "targets.yaml").write_text(TARGETS, encoding="utf-8")
    (tmp_path / "more.yaml").write_text(TARGETS + VETO_TARGET, encoding="utf-8")
    ok(invoke(runner, project, "link", "--targets", str(tmp_path / "targets.yaml")))
    copy = clone(runner, project, tmp_path / "alice.db", "alice")
    add(runner, copy, "E01", "veto", 5, "alice")
    add(runner, copy, "E01", "veto", 6, "alice")
    ok(invoke(runner, copy, "link", "--targets", str(tmp_path / "more.yaml")))
    assert len(rows(copy, "SELECT * FROM quote_links")) == 2

    report = merge_json(runner, project, str(copy))

    links = rows(
        project,
        "SELECT l.target_id, c.quote FROM quote_links l JOIN codings c ON c.id = l.coding_id",
    )
    assert links == [("emissions", "The emissions target cannot be bargained.")]
    assert report["files"][0]["links_added"] == 1
    assert [row["kind"] for row in report["conflicts"]] == ["unknown_target"]
    assert "veto_rule" in report["conflicts"][0]["detail"]


def test_edited_memo_keeps_both_texts(
    runner: CliRunner, project: Path, team: dict[str, Path], tmp_path: Path
) -> None:
    ok(merge(runner, project, str(team["alice"])))
    edited = copy_database(team["alice"], tmp_path / "alice_edited.db")
    connection = sqlite3.connect(edited)
    with connection:
        connection.execute(
            "UPDATE memos SET text = 'Alice revised her project memo.' WHERE about = 'project'"
        )
    connection.close()

    report = merge_json(runner, project, str(edited))

    texts = rows(project, "SELECT text FROM memos WHERE about = 'project' ORDER BY id")
    assert texts == [("Alice's project memo.",), ("Alice revised her project memo.",)]
    assert [row["kind"] for row in report["conflicts"]] == ["memo_edited"]
    assert report["files"][0]["memos_added"] == 1
    assert report["files"][0]["memos_unchanged"] == 2


def test_older_schema_file_merges(
    runner: CliRunner, project: Path, team: dict[str, Path], tmp_path: Path
) -> None:
    older = copy_database(team["bob"], tmp_path / "bob_v1.db")
    connection = sqlite3.connect(older)
    with connection:
        connection.execute("ALTER TABLE codings DROP COLUMN value")
        connection.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    connection.close()

    report = merge_json(runner, project, str(older))

    assert report["files"][0]["codings_added"] == 3
    assert rows(project, "SELECT count(*) FROM codings WHERE value IS NOT NULL") == [
        (0,)
    ]
    assert rows(older, "SELECT value FROM meta WHERE key = 'schema_version'") == [
        ("1",)
    ]


# Atomicity and errors ----------------------------------------------------------


def test_failure_in_last_file_leaves_target_unchanged(
    runner: CliRunner, project: Path, team: dict[str, Path], tmp_path: Path
) -> None:
    broken = copy_database(team["late"], tmp_path / "broken.db")
    connection = sqlite3.connect(broken)
    connection.execute("PRAGMA ignore_check_constraints = ON")
    with connection:
        connection.execute(
            "UPDATE codings SET status = 'maybe' WHERE code_id = 'strategy.underpromise'"
        )
    connection.close()
    digest = content_hash(project)
    audit_entries = rows(project, "SELECT count(*) FROM audit_log")

    result = merge(runner, project, str(team["alice"]), str(team["bob"]), str(broken))

    assert result.exit_code == 1
    assert str(broken) in result.stderr
    assert "CHECK constraint failed" in result.stderr
    assert content_hash(project) == digest
    assert rows(project, "SELECT count(*) FROM audit_log") == audit_entries
    assert rows(project, "PRAGMA integrity_check") == [("ok",)]


@pytest.mark.parametrize(
    "case, words",
    [
        ("missing", "file not found"),
        ("text", "is not a SQLite database"),
        ("other_sqlite", "not a qualkit project"),
        ("newer", "newer qualkit (schema version 99"),
        ("target", "is the target database itself"),
    ],
)
def test_bad_input_names_the_file(
    runner: CliRunner, project: Path, tmp_path: Path, case: str, words: str
) -> None:
    path = tmp_path / f"{case}.db"
    if case == "text":
        path.write_text("coder,code\nalice,veto\n", encoding="utf-8")
    elif case == "other_sqlite":
        connection = sqlite3.connect(path)
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.close()
    elif case == "newer":
        copy_database(project, path)
        connection = sqlite3.connect(path)
        with connection:
            connection.execute(
                "UPDATE meta SET value = '99' WHERE key = 'schema_version'"
            )
        connection.close()
    elif case == "target":
        path = project
    digest = content_hash(project)

    result = merge(runner, project, str(path))

    assert result.exit_code == 1
    assert str(path) in result.stderr
    assert words in result.stderr
    assert content_hash(project) == digest


def test_merge_into_other_database(
    runner: CliRunner, project: Path, team: dict[str, Path], tmp_path: Path
) -> None:
    consensus = clone(runner, project, tmp_path / "consensus.db", "lead")

    result = runner.invoke(
        cli, ["merge", str(team["bob"]), "--into", str(consensus)], prog_name="qualkit"
    )

    ok(result)
    assert rows(consensus, "SELECT DISTINCT coder FROM codings") == [("bob",)]
    assert rows(project, "SELECT count(*) FROM codings") == [(0,)]


def test_merge_into_missing_database_fails(
    runner: CliRunner, team: dict[str, Path], tmp_path: Path
) -> None:
    result = runner.invoke(
        cli,
        ["merge", str(team["bob"]), "--into", str(tmp_path / "none.db")],
        prog_name="qualkit",
    )

    assert result.exit_code == 2
    assert "none.db not found" in result.stderr


# Output ------------------------------------------------------------------------


def test_table_and_csv_output(
    runner: CliRunner, project: Path, team: dict[str, Path]
) -> None:
    table = ok(
        merge(runner, project, str(team["alice"]), str(team["bob"]), "--dry-run")
    )
    assert "Dry run, nothing was changed" in table.output
    assert "codings_added" in table.output
    assert "Coders:" in table.output

    csv = ok(
        merge(
            runner, project, str(team["alice"]), "--format", "csv", "--show", "coders"
        )
    )
    assert csv.output.splitlines()[0].startswith("file,coder_in_file,coder,note")

    mixed = merge(runner, project, str(team["alice"]), "--format", "csv")
    assert mixed.exit_code == 2
    assert "--show" in mixed.stderr


# Crash safety ------------------------------------------------------------------


def _large_copy(runner: CliRunner, project: Path, tmp_path: Path, codings: int) -> Path:
    """Return a copy holding ``codings`` codings of one coder on distinct spans of E01."""
    copy = clone(runner, project, tmp_path / "large.db", "alice")
    text = rows(copy, "SELECT text FROM sources WHERE id = 'E01'")[0][0]
    codes = ["strategy", "strategy.underpromise", "tournament", "veto"]
    spans = [
        (start, start + length)
        for length in range(1, 120)
        for start in range(len(text) - length)
    ]
    values = []
    for index in range(codings):
        start, end = spans[index // len(codes)]
        values.append(
            (
                "E01",
                start,
                end,
                text[start:end],
                codes[index % len(codes)],
                "alice",
                "manual",
                "accepted",
                "1",
                "now",
                "now",
            )
        )
    connection = sqlite3.connect(copy)
    with connection:
        connection.executemany(
            "INSERT INTO codings (source_id, start_offset, end_offset, quote, code_id, coder, origin, status, "
            "codebook_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            values,
        )
    connection.close()
    return copy


def _start_merge(target: Path, large: Path) -> tuple[subprocess.Popen[bytes], float]:
    """Start ``qualkit merge`` and return the process once its transaction has begun, with the time."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qualkit",
            "-v",
            "--db",
            str(target),
            "merge",
            str(large),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    for line in process.stderr:
        if line.startswith(b"INFO: Merging"):
            return process, time.monotonic()
    process.wait()
    pytest.fail(
        f"qualkit merge ended (status {process.returncode}) before it logged the merge"
    )


def test_merge_killed_leaves_old_or_new_state(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    large = _large_copy(runner, project, tmp_path, 10_000)
    checkpoint(project)
    old_hash = content_hash(project)
    reference = copy_database(project, tmp_path / "reference.db")
    process, started = _start_merge(reference, large)
    process.stderr.read()
    assert process.wait() == 0
    duration = time.monotonic() - started
    new_hash = content_hash(reference)
    assert new_hash != old_hash

    # Each run is killed at a random moment between the start of the merge
    # transaction and shortly before its commit.
    chooser = random.Random(8)
    killed_before_commit = 0
    for attempt in range(4):
        target = copy_database(project, tmp_path / f"killed-{attempt}.db")
        process, _ = _start_merge(target, large)
        time.sleep(chooser.uniform(0.0, 0.9) * duration)
        process.kill()
        process.wait()
        process.stderr.close()
        assert rows(target, "PRAGMA integrity_check") == [("ok",)]
        digest = content_hash(target)
        assert digest in (old_hash, new_hash), (
            f"attempt {attempt}: a state between old and new"
        )
        killed_before_commit += digest == old_hash
    assert killed_before_commit > 0, (
        "every kill came after the commit, so the test proved nothing"
    )
