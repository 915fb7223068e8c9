"""Regression tests of ``qualkit clone`` and ``qualkit merge`` on hostile inputs.

Each test reproduces a fault found by running the commands by hand. The
faults are a coder who only wrote memos, a code that the target's codebook
retired, coder names in another Unicode form or with spaces, damaged or
locked input files, and a clone into a path under a file. Blind clones also
revealed other coders' work in timestamps, audit entries and temporary
files. The project is one English transcript imported with the real spaCy pipeline and
a small codebook, built once per module.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qualkit import clone as clone_module
from qualkit import store
from qualkit.cli import cli

TRANSCRIPT = """\
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
CODES = """\
  - id: strategy
    label: Strategy
    definition: A way a lower level tries to obtain targets that suit it.
    when_to_use: A bargaining move is described.
    when_not_to_use: No move is described.
    example: We talk the target down.
  - id: veto
    label: Veto target
    definition: A target whose failure cancels every other success.
    when_to_use: A veto or one-vote rule is named.
    when_not_to_use: An ordinary binding target.
    example: It is a veto target.
"""
CODEBOOK_V1 = (
    """\
codebook:
  id: hostile
  version: "1"
codes:
"""
    + CODES
    + """\
  - id: tournament
    label: Ranking
    definition: Jurisdictions compared and ranked against each other.
    when_to_use: A ranking is named.
    when_not_to_use: A single result without comparison.
    example: The ranking matters.
"""
)
# Version 2 renames tournament to ranking.
CODEBOOK_V2 = (
    """\
codebook:
  id: hostile
  version: "2"
codes:
"""
    + CODES
    + """\
  - id: ranking
    replaces: tournament
    label: Ranking
    definition: Jurisdictions compared and ranked against each other.
    when_to_use: A ranking is named.
    when_not_to_use: A single result without comparison.
    example: The ranking matters.
"""
)
SECRET = "SECRET-MEMO-OF-ALICE"


def invoke(runner: CliRunner, db: Path, *args: str, coder: str | None = None) -> Result:
    env = {"QUALKIT_CODER": coder} if coder else {"QUALKIT_CODER": None}
    return runner.invoke(cli, ["--db", str(db), *args], prog_name="qualkit", env=env)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (
        f"{result.output}\n{result.stderr}\n{result.exception!r}"
    )
    return result


def failed_cleanly(result: Result) -> None:
    """Assert exit status 1 from the CLI's error handler, not from an uncaught exception."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def execute(db: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    connection = sqlite3.connect(db)
    try:
        with connection:
            connection.execute(sql, params)
    finally:
        connection.close()


def checkpoint(db: Path) -> None:
    connection = sqlite3.connect(db)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def content_hash(db: Path) -> str:
    opened = store.open_database(db, create=False)
    try:
        return store.content_hash(opened)
    finally:
        opened.close()


def add(runner: CliRunner, db: Path, code: str, segment: int, coder: str) -> int:
    result = ok(
        invoke(
            runner,
            db,
            "code",
            "add",
            "E01",
            "--code",
            code,
            "--segment",
            str(segment),
            coder=coder,
        )
    )
    return int(re.search(r"Coding #(\d+)", result.output).group(1))


def clone(runner: CliRunner, project: Path, destination: Path, coder: str) -> Path:
    ok(invoke(runner, project, "clone", str(destination), "--coder", coder))
    return destination


def codings_per_coder(db: Path) -> dict[str, int]:
    return dict(rows(db, "SELECT coder, count(*) FROM codings GROUP BY coder"))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with E01 imported and codebook version 1 applied, built once."""
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "E01.md").write_text(TRANSCRIPT, encoding="utf-8")
    (folder / "v1.yaml").write_text(CODEBOOK_V1, encoding="utf-8")
    (folder / "v2.yaml").write_text(CODEBOOK_V2, encoding="utf-8")
    db = folder / "project.db"
    runner = CliRunner()
    ok(invoke(runner, db, "import", str(folder / "E01.md")))
    ok(invoke(runner, db, "codebook", "apply", str(folder / "v1.yaml"), coder="lead"))
    checkpoint(db)
    return db


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "project.db"
    shutil.copyfile(template, copy)
    return copy


# Coder names -------------------------------------------------------------------


def test_merge_coder_with_only_memos(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    copy = clone(runner, project, tmp_path / "dana.db", "Dana")
    ok(invoke(runner, copy, "memo", "add", "--text", "Only a memo.", coder="Dana"))

    ok(invoke(runner, project, "merge", str(copy)))

    memos = rows(project, "SELECT coder, text FROM memos")
    assert memos == [("Dana", "Only a memo.")]


@pytest.mark.parametrize(
    ("file_spelling", "target_spelling"),
    [
        (unicodedata.normalize("NFD", "Zoë"), unicodedata.normalize("NFC", "Zoë")),
        ("Bob ", "Bob"),
        (" BOB", "Bob"),
    ],
    ids=["nfd-vs-nfc", "trailing-space", "leading-space-and-case"],
)
def test_merge_joins_spellings_of_one_coder(
    runner: CliRunner,
    project: Path,
    tmp_path: Path,
    file_spelling: str,
    target_spelling: str,
) -> None:
    add(runner, project, "veto", 5, target_spelling)
    copy = clone(runner, project, tmp_path / "copy.db", target_spelling)
    add(runner, copy, "strategy", 1, target_spelling)
    # An older qualkit or the Python API may store the name in another form.
    execute(
        copy,
        "UPDATE codings SET coder = ? WHERE coder = ?",
        (file_spelling, target_spelling),
    )

    ok(invoke(runner, project, "merge", str(copy)))

    assert codings_per_coder(project) == {target_spelling: 2}


def test_blind_clone_keeps_own_codings_in_nfd(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    add(runner, project, "veto", 5, unicodedata.normalize("NFC", "Zoë"))

    copy = clone(
        runner, project, tmp_path / "zoe.db", unicodedata.normalize("NFD", "Zoë")
    )

    assert codings_per_coder(copy) == {unicodedata.normalize("NFC", "Zoë"): 1}


# Codebook ----------------------------------------------------------------------


def test_merge_lists_code_retired_in_target(
    runner: CliRunner, template: Path, project: Path, tmp_path: Path
) -> None:
    copy = clone(runner, project, tmp_path / "eve.db", "eve")
    add(runner, copy, "tournament", 2, "eve")
    add(runner, copy, "veto", 5, "eve")
    ok(
        invoke(
            runner,
            project,
            "codebook",
            "apply",
            str(template.parent / "v2.yaml"),
            coder="lead",
        )
    )

    result = ok(
        invoke(runner, project, "merge", str(copy), "--format", "json", "--show", "all")
    )

    assert rows(project, "SELECT code_id FROM codings WHERE coder = 'eve'") == [
        ("veto",)
    ]
    assert '"kind":"unknown_code"' in result.stdout.replace(" ", "")
    assert "dropped or replaced" in result.stdout


# Spans ------------------------------------------------------------------------


def test_merge_checks_span_and_quote(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    copy = clone(runner, project, tmp_path / "bob.db", "bob")
    coding = add(runner, copy, "veto", 5, "bob")
    execute(copy, "UPDATE codings SET quote = 'forged words' WHERE id = ?", (coding,))
    execute(
        copy,
        "INSERT INTO codings (source_id, start_offset, end_offset, quote, code_id, coder, origin, "
        "status, codebook_version, created_at, updated_at) VALUES ('E01', 99990, 99999, 'beyond', "
        "'strategy', 'bob', 'manual', 'accepted', '1', 'now', 'now')",
    )

    result = ok(
        invoke(runner, project, "merge", str(copy), "--format", "json", "--show", "all")
    )

    merged = rows(
        project,
        "SELECT c.start_offset, c.end_offset, c.quote, s.text FROM codings c "
        "JOIN sources s ON s.id = c.source_id WHERE c.coder = 'bob'",
    )
    assert len(merged) == 1
    start, end, quote, text = merged[0]
    assert quote == text[start:end]
    assert '"kind":"invalid_span"' in result.stdout.replace(" ", "")


# Damaged inputs ----------------------------------------------------------------


def test_merge_names_damaged_input(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    copy = clone(runner, project, tmp_path / "broken.db", "bob")
    add(runner, copy, "veto", 5, "bob")
    checkpoint(copy)
    page_size = rows(copy, "PRAGMA page_size")[0][0]
    root_page = rows(copy, "SELECT rootpage FROM sqlite_master WHERE name = 'codings'")[
        0
    ][0]
    with open(copy, "r+b") as handle:
        handle.seek((root_page - 1) * page_size)
        handle.write(b"\xff" * page_size)
    digest = content_hash(project)

    result = invoke(runner, project, "merge", str(copy))

    failed_cleanly(result)
    assert str(copy) in result.stderr
    assert "damaged" in result.stderr
    assert content_hash(project) == digest


def test_merge_names_input_without_memos(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    copy = clone(runner, project, tmp_path / "partial.db", "bob")
    execute(copy, "DROP TABLE memos")

    result = invoke(runner, project, "merge", str(copy))

    failed_cleanly(result)
    assert str(copy) in result.stderr
    assert "memos" in result.stderr


# Clone destinations ------------------------------------------------------------


def test_clone_under_a_file_is_error(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "copies"
    blocker.write_text("not a folder", encoding="utf-8")

    result = invoke(runner, project, "clone", str(blocker / "bob.db"), "--coder", "bob")

    failed_cleanly(result)
    assert str(blocker) in result.stderr
    assert blocker.read_text(encoding="utf-8") == "not a folder"


def test_clone_to_project_wal_is_error(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    wal = Path(f"{project}-wal")

    result = invoke(runner, project, "clone", str(wal), "--coder", "bob", "--force")

    failed_cleanly(result)
    assert str(wal) in result.stderr
    assert rows(project, "PRAGMA integrity_check") == [("ok",)]


def test_clone_removes_stale_partial_file(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    # A process id above the Linux maximum (2**22) cannot be running.
    stale = tmp_path / ".bob.db.99999999.partial"
    stale.write_text(SECRET, encoding="utf-8")

    clone(runner, project, tmp_path / "bob.db", "bob")

    assert not stale.exists()
    assert sorted(path.name for path in tmp_path.glob(".bob.db*")) == []


# Blindness ---------------------------------------------------------------------


def test_blind_clone_hides_decision_time(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    execute(
        project,
        "INSERT INTO codings (source_id, start_offset, end_offset, quote, code_id, coder, origin, "
        "status, codebook_version, rule, created_at, updated_at) "
        "SELECT 'E01', start_offset, end_offset, 'q', 'tournament', 'alice', 'auto', 'rejected', '1', "
        "'keyword ranking', '2026-01-01T00:00:00+00:00', '2026-02-02T00:00:00+00:00' "
        "FROM segments WHERE source_id = 'E01' AND kind = 'sentence' ORDER BY start_offset LIMIT 1",
    )

    copy = clone(runner, project, tmp_path / "carl.db", "carl")

    restored = rows(copy, "SELECT coder, status, created_at, updated_at FROM codings")
    assert restored == [
        (
            "autocode",
            "suggested",
            "2026-01-01T00:00:00+00:00",
            "2026-01-01T00:00:00+00:00",
        )
    ]


def test_blind_clone_never_writes_others_rows(
    runner: CliRunner,
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice_coding = add(runner, project, "veto", 5, "alice")
    ok(
        invoke(
            runner,
            project,
            "memo",
            "add",
            "--coding",
            str(alice_coding),
            "--text",
            SECRET,
            coder="alice",
        )
    )
    checkpoint(project)
    folder = tmp_path / "copies"
    folder.mkdir()
    seen_on_disk: list[str] = []
    leave_out_others = clone_module._leave_out_others

    def leave_out_and_read_disk(
        copy: sqlite3.Connection, coder: str
    ) -> tuple[int, int, int, int]:
        # The moment a killed clone would leave its temporary files behind.
        counts = leave_out_others(copy, coder)
        for path in folder.iterdir():
            if SECRET.encode() in path.read_bytes():
                seen_on_disk.append(path.name)
        return counts

    monkeypatch.setattr(clone_module, "_leave_out_others", leave_out_and_read_disk)

    copy = clone(runner, project, folder / "bob.db", "bob")

    assert seen_on_disk == []
    assert SECRET.encode() not in copy.read_bytes()
    assert codings_per_coder(copy) == {}
    assert [path.name for path in folder.iterdir()] == ["bob.db"]
    assert os.stat(copy).st_size > 0


def test_blind_clone_drops_others_rows_from_own_history(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    bob = clone(runner, project, tmp_path / "bob.db", "bob")
    bob_coding = add(runner, bob, "veto", 5, "bob")
    ok(
        invoke(
            runner,
            bob,
            "memo",
            "add",
            "--coding",
            str(bob_coding),
            "--text",
            SECRET,
            coder="bob",
        )
    )
    # The lead, who also codes as alice, merges bob's copy under her own name.
    ok(invoke(runner, project, "merge", str(bob), "--coder", "alice"))
    add(runner, project, "strategy", 1, "alice")

    copy = clone(runner, project, tmp_path / "alice.db", "alice")

    history = rows(
        copy,
        "SELECT table_name, after FROM audit_log WHERE table_name IN ('codings', 'memos')",
    )
    assert [table for table, _ in history] == ["codings"]
    assert '"coder": "alice"' in history[0][1]
    assert SECRET.encode() not in copy.read_bytes()
    assert b'"bob"' not in copy.read_bytes()


# Locked inputs -----------------------------------------------------------------


def test_merge_names_locked_input(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    copy = clone(runner, project, tmp_path / "busy.db", "bob")
    writer = sqlite3.connect(copy, isolation_level=None)
    try:
        assert writer.execute("PRAGMA journal_mode = DELETE").fetchone() == ("delete",)
        writer.execute("BEGIN EXCLUSIVE")
        writer.execute(
            "INSERT INTO memos (about, coder, text, created_at, updated_at) "
            "VALUES ('project', 'bob', 'not committed', 'now', 'now')"
        )

        result = invoke(runner, project, "merge", str(copy))
    finally:
        writer.close()

    failed_cleanly(result)
    assert str(copy) in result.stderr
    assert "another program is writing to it" in result.stderr
    assert "not a SQLite database" not in result.stderr
