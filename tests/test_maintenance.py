"""``qualkit backup`` and ``qualkit check`` on real database files.

The project used here is tests/data/schema_v1.db upgraded to the current
schema: two interviews, codings by a coder and by auto-coding, memos on
every kind of row, quote-target links and a panel.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner, Result

from qualkit import maintenance, store
from qualkit.cli import cli
from qualkit.errors import StoreError

V1_FIXTURE = Path(__file__).resolve().parent / "data" / "schema_v1.db"

# Inserts one project memo per transaction until the file named by the
# second argument exists.
MEMO_WRITER = """\
import sys
from pathlib import Path

from qualkit import store

db = store.open_database(sys.argv[1], create=False)
stop = Path(sys.argv[2])
written = 0
while not stop.exists():
    with store.transaction(db):
        db.execute(
            "INSERT INTO memos (about, coder, text, created_at, updated_at) "
            "VALUES ('project', 'writer', ?, '2024-01-01', '2024-01-01')",
            [f"memo {written}"],
        )
    written += 1
    if written == 1:
        print("writing", flush=True)
db.close()
print(written, flush=True)
"""


@pytest.fixture(scope="module")
def upgraded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "qualkit.db"
    shutil.copyfile(V1_FIXTURE, path)
    store.open_database(path, create=False).close()
    return path


@pytest.fixture
def db_path(upgraded_template: Path, tmp_path: Path) -> Path:
    """A private copy of the upgraded project database."""
    path = tmp_path / "project" / "qualkit.db"
    path.parent.mkdir()
    shutil.copyfile(upgraded_template, path)
    return path


def _invoke(db_path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", str(db_path), *args])


def _hash(path: Path) -> str:
    db = store.open_database(path, create=False)
    try:
        return store.content_hash(db)
    finally:
        db.close()


@pytest.fixture
def raw(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection with foreign keys off, to damage the file as a bug or crash could."""
    connection = sqlite3.connect(db_path, isolation_level=None)
    connection.execute("PRAGMA foreign_keys = OFF")
    yield connection
    connection.close()


# Backup ----------------------------------------------------------------------


def test_backup_copy_matches(db_path: Path, tmp_path: Path) -> None:
    destination = tmp_path / "copy.db"

    result = _invoke(db_path, "backup", str(destination))

    assert result.exit_code == 0, result.output
    assert f"Wrote {destination}" in result.stdout
    connection = sqlite3.connect(destination)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()
    assert _hash(destination) == _hash(db_path)


def test_backup_keeps_every_table(db_path: Path, tmp_path: Path) -> None:
    destination = tmp_path / "copy.db"
    _invoke(db_path, "backup", str(destination))

    with sqlite3.connect(db_path) as original, sqlite3.connect(destination) as copy:
        tables = [row[0] for row in original.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            original_rows = original.execute(f"SELECT * FROM [{table}] ORDER BY rowid").fetchall()
            copied_rows = copy.execute(f"SELECT * FROM [{table}] ORDER BY rowid").fetchall()
            assert copied_rows == original_rows, table


def test_backup_leaves_no_temporary_file(db_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()

    _invoke(db_path, "backup", str(folder / "copy.db"))

    assert sorted(path.name for path in folder.iterdir()) == ["copy.db"]


def test_backup_refuses_existing_file(db_path: Path, tmp_path: Path) -> None:
    destination = tmp_path / "copy.db"
    destination.write_bytes(b"last week's copy")

    result = _invoke(db_path, "backup", str(destination))

    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert "--force" in result.stderr
    assert destination.read_bytes() == b"last week's copy"


def test_backup_force_replaces_file(db_path: Path, tmp_path: Path) -> None:
    destination = tmp_path / "copy.db"
    destination.write_bytes(b"last week's copy")

    result = _invoke(db_path, "backup", str(destination), "--force")

    assert result.exit_code == 0, result.output
    assert _hash(destination) == _hash(db_path)


def test_backup_into_folder(db_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()

    result = _invoke(db_path, "backup", str(folder))

    assert result.exit_code == 0, result.output
    assert _hash(folder / "qualkit.db") == _hash(db_path)


def test_backup_onto_database_refused(db_path: Path) -> None:
    before = _hash(db_path)

    result = _invoke(db_path, "backup", str(db_path), "--force")

    assert result.exit_code == 1
    assert "is the project database itself" in result.stderr
    assert _hash(db_path) == before


def test_backup_missing_folder_refused(db_path: Path, tmp_path: Path) -> None:
    result = _invoke(db_path, "backup", str(tmp_path / "nowhere" / "copy.db"))

    assert result.exit_code == 1
    assert "not found" in result.stderr


def test_backup_refuses_open_destination(db_path: Path, tmp_path: Path) -> None:
    """Replacing a database that has a write-ahead log would pair the log with the wrong file."""
    destination = tmp_path / "copy.db"
    destination.write_bytes(b"a database in use")
    Path(f"{destination}-wal").write_bytes(b"frames")

    result = _invoke(db_path, "backup", str(destination), "--force")

    assert result.exit_code == 1
    assert "write-ahead log" in result.stderr
    assert destination.read_bytes() == b"a database in use"


def test_backup_failed_verification_writes_nothing(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted: list[int] = []
    real_counts = maintenance._row_counts

    def counts_that_drift(db: sqlite_utils.Database) -> dict[str, int]:
        counts = real_counts(db)
        counted.append(1)
        # The second call counts the copy: pretend it lost a memo.
        if len(counted) == 2:
            counts["memos"] -= 1
        return counts

    monkeypatch.setattr(maintenance, "_row_counts", counts_that_drift)
    destination = tmp_path / "copy.db"

    result = _invoke(db_path, "backup", str(destination))

    assert result.exit_code == 1
    assert "other row counts" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["project"]


def _wait_for_memos(db: sqlite_utils.Database, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while db.execute("SELECT count(*) FROM memos").fetchone()[0] < count:
        assert time.monotonic() < deadline, f"the writer did not reach {count} memos"
        time.sleep(0.02)


def test_backup_while_another_process_writes(db_path: Path, tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    env = {**os.environ}
    env.pop("QUALKIT_DB", None)
    writer = subprocess.Popen(
        [sys.executable, "-c", MEMO_WRITER, str(db_path), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert writer.stdout.readline().strip() == "writing", writer.stderr.read()
        db = store.open_database(db_path, create=False)
        copies: list[maintenance.BackupResult] = []
        try:
            for number in range(3):
                # Wait until the writer has added a memo since the last copy.
                seen = copies[-1].row_counts["memos"] if copies else 4
                _wait_for_memos(db, seen + 1)
                copies.append(maintenance.backup_database(db, tmp_path / f"copy{number}.db"))
        finally:
            db.close()
    finally:
        stop.touch()
        output, errors = writer.communicate(timeout=60)

    assert writer.returncode == 0, errors
    memo_counts = [copy.row_counts["memos"] for copy in copies]
    # The fixture has 4 memos; the writer added more before and between the copies.
    assert memo_counts[0] > 4
    assert memo_counts == sorted(set(memo_counts)), memo_counts
    assert memo_counts[-1] <= 4 + int(output)
    for copy in copies:
        assert _hash(copy.path) == copy.content_hash


# Check -------------------------------------------------------------------------


def _findings(db_path: Path) -> list[dict[str, str]]:
    result = _invoke(db_path, "check", "--format", "json")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def _first_coding(raw: sqlite3.Connection) -> int:
    return raw.execute("SELECT min(id) FROM codings").fetchone()[0]


def test_check_sound_database(db_path: Path) -> None:
    result = _invoke(db_path, "check", "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    assert "No problems found" in result.stderr


def test_check_exit_status_on_problem(db_path: Path, raw: sqlite3.Connection) -> None:
    raw.execute("UPDATE codings SET quote = 'not in the text' WHERE id = ?", [_first_coding(raw)])

    result = _invoke(db_path, "check")

    assert result.exit_code == 1
    assert "1 problems found" in result.stderr


def test_check_quote_mismatch(db_path: Path, raw: sqlite3.Connection) -> None:
    coding = _first_coding(raw)
    raw.execute("UPDATE codings SET quote = 'not in the text' WHERE id = ?", [coding])

    findings = _findings(db_path)

    assert [(f["check"], f["table"], f["row_id"]) for f in findings] == [("quote_mismatch", "codings", str(coding))]


def test_check_coding_past_end(db_path: Path, raw: sqlite3.Connection) -> None:
    coding = _first_coding(raw)
    raw.execute("UPDATE codings SET end_offset = 1000000 WHERE id = ?", [coding])

    findings = _findings(db_path)

    assert [(f["check"], f["table"], f["row_id"]) for f in findings] == [("offset_past_end", "codings", str(coding))]
    assert "ends past the end of source" in findings[0]["detail"]


def test_check_coding_without_source(db_path: Path, raw: sqlite3.Connection) -> None:
    coding = _first_coding(raw)
    raw.execute("UPDATE codings SET source_id = 'GONE' WHERE id = ?", [coding])

    findings = _findings(db_path)

    assert ("orphan", "codings", str(coding)) in [(f["check"], f["table"], f["row_id"]) for f in findings]
    assert any("source_id = 'GONE' not found in sources" in f["detail"] for f in findings)


def test_check_link_without_coding(db_path: Path, raw: sqlite3.Connection) -> None:
    coding_id, target_id = raw.execute("SELECT coding_id, target_id FROM quote_links LIMIT 1").fetchone()
    raw.execute("DELETE FROM codings WHERE id = ?", [coding_id])

    findings = _findings(db_path)

    rows = [(f["check"], f["table"], f["row_id"]) for f in findings]
    assert ("orphan", "quote_links", f"{coding_id}/{target_id}") in rows


@pytest.mark.parametrize(
    ("about", "about_id", "table"),
    [
        pytest.param("source", "GONE", "sources", id="source"),
        pytest.param("code", "no.such.code", "codes", id="code"),
        pytest.param("coding", "999999", "codings", id="coding"),
    ],
)
def test_check_memo_about_missing_row(
    db_path: Path, raw: sqlite3.Connection, about: str, about_id: str, table: str
) -> None:
    memo = raw.execute(
        "INSERT INTO memos (about, about_id, coder, text, created_at, updated_at) "
        "VALUES (?, ?, 'alice', 'orphaned', '2024-01-01', '2024-01-01')",
        [about, about_id],
    ).lastrowid

    findings = _findings(db_path)

    assert [(f["check"], f["table"], f["row_id"]) for f in findings] == [("orphan", "memos", str(memo))]
    assert f"which is not in {table}" in findings[0]["detail"]


def _two_sentences_of_one_turn(raw: sqlite3.Connection) -> tuple[int, int, int]:
    """Return the ids of two neighbouring sentences in one turn and the first one's end."""
    return raw.execute(
        "SELECT a.id, b.id, a.end_offset FROM segments a JOIN segments b "
        "ON b.parent_id = a.parent_id AND b.position = a.position + 1 "
        "WHERE a.kind = 'sentence' ORDER BY a.id LIMIT 1"
    ).fetchone()


def test_check_segment_overlap(db_path: Path, raw: sqlite3.Connection) -> None:
    first, second, first_end = _two_sentences_of_one_turn(raw)
    raw.execute("UPDATE segments SET start_offset = ? WHERE id = ?", [first_end - 1, second])

    findings = _findings(db_path)

    assert [(f["check"], f["table"], f["row_id"]) for f in findings] == [("segment_overlap", "segments", str(second))]
    assert f"overlaps sentence {first}" in findings[0]["detail"]


def test_check_sentence_outside_turn(db_path: Path, raw: sqlite3.Connection) -> None:
    sentence, parent_start = raw.execute(
        "SELECT s.id, t.start_offset FROM segments s JOIN segments t ON t.id = s.parent_id "
        "WHERE s.kind = 'sentence' AND s.position = 0 AND t.start_offset > 0 ORDER BY s.id LIMIT 1"
    ).fetchone()
    raw.execute("UPDATE segments SET start_offset = ? WHERE id = ?", [parent_start - 1, sentence])

    findings = _findings(db_path)

    rows = [(f["check"], f["table"], f["row_id"]) for f in findings]
    assert ("segment_outside_parent", "segments", str(sentence)) in rows


def test_check_damaged_index(db_path: Path, raw: sqlite3.Connection) -> None:
    root = raw.execute("SELECT rootpage FROM sqlite_master WHERE name = 'codings_source'").fetchone()[0]
    page_size = raw.execute("PRAGMA page_size").fetchone()[0]
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    # Zero 100 bytes of the index's cells, as a failing disk might.
    with open(db_path, "r+b") as file:
        file.seek(root * page_size - 200)
        file.write(bytes(100))

    findings = _findings(db_path)

    assert {f["check"] for f in findings} == {"integrity", "skipped"}
    assert any("missing from index codings_source" in f["detail"] for f in findings)


def test_check_schema_version(db_path: Path) -> None:
    connection = sqlite3.connect(db_path)
    db = sqlite_utils.Database(connection)
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    connection.commit()
    try:
        findings = maintenance.check_database(db)
    finally:
        connection.close()

    assert findings[["check", "table", "row_id"]].values.tolist() == [["schema_version", "meta", "schema_version"]]


def test_check_csv_columns(db_path: Path, raw: sqlite3.Connection) -> None:
    raw.execute("UPDATE codings SET quote = 'not in the text' WHERE id = ?", [_first_coding(raw)])

    result = _invoke(db_path, "check", "--format", "csv")

    assert result.stdout.splitlines()[0] == "check,table,row_id,detail"
    assert len(result.stdout.splitlines()) == 2


def test_check_library_on_locked_file(db_path: Path) -> None:
    """check only reads, so it runs while another connection holds the write lock."""
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        db = store.open_database(db_path, create=False, busy_timeout=0)
        try:
            findings = maintenance.check_database(db)
        finally:
            db.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert findings.empty


def test_backup_inside_transaction_refused(db_path: Path, tmp_path: Path) -> None:
    db = store.open_database(db_path, create=False)
    try:
        with pytest.raises(StoreError, match="open transaction"), store.transaction(db):
            maintenance.backup_database(db, tmp_path / "copy.db")
    finally:
        db.close()


# Check --fix -------------------------------------------------------------------


def test_fix_sound_database_changes_nothing(db_path: Path) -> None:
    before = _hash(db_path)

    result = _invoke(db_path, "check", "--fix")

    assert result.exit_code == 0, result.output
    assert "0 repairs made" in result.stderr
    assert _hash(db_path) == before


def test_fix_restores_quote(db_path: Path, raw: sqlite3.Connection) -> None:
    coding = _first_coding(raw)
    quote = raw.execute("SELECT quote FROM codings WHERE id = ?", [coding]).fetchone()[0]
    raw.execute("UPDATE codings SET quote = 'not in the text' WHERE id = ?", [coding])

    result = _invoke(db_path, "check", "--fix")

    assert result.exit_code == 0, result.output
    assert f"Fixed codings {coding} (quote_mismatch)" in result.stderr
    assert raw.execute("SELECT quote, needs_review FROM codings WHERE id = ?", [coding]).fetchone() == (quote, 1)


def test_fix_is_undone_by_undo(db_path: Path, raw: sqlite3.Connection) -> None:
    coding = _first_coding(raw)
    raw.execute("UPDATE codings SET quote = 'not in the text' WHERE id = ?", [coding])
    _invoke(db_path, "check", "--fix")

    result = _invoke(db_path, "undo", "--coder", "qualkit")

    assert result.exit_code == 0, result.output
    assert raw.execute("SELECT quote FROM codings WHERE id = ?", [coding]).fetchone()[0] == "not in the text"


def test_fix_deletes_orphan_link(db_path: Path, raw: sqlite3.Connection) -> None:
    coding_id, target_id = raw.execute("SELECT coding_id, target_id FROM quote_links LIMIT 1").fetchone()
    raw.execute("DELETE FROM codings WHERE id = ?", [coding_id])

    result = _invoke(db_path, "check", "--fix")

    assert result.exit_code == 0, result.output
    remaining = raw.execute("SELECT count(*) FROM quote_links WHERE coding_id = ?", [coding_id]).fetchone()[0]
    assert remaining == 0
    assert f"Fixed quote_links {coding_id}/{target_id}" in result.stderr


def test_fix_keeps_codings_and_memos(db_path: Path, raw: sqlite3.Connection) -> None:
    """A source deleted behind qualkit's back: derived rows go, the coders' rows stay and are reported."""
    source = "G167W101"
    codings = raw.execute("SELECT count(*) FROM codings WHERE source_id = ?", [source]).fetchone()[0]
    raw.execute("DELETE FROM sources WHERE id = ?", [source])

    result = _invoke(db_path, "check", "--fix", "--format", "json")

    assert result.exit_code == 1
    left = json.loads(result.stdout)
    assert raw.execute("SELECT count(*) FROM codings WHERE source_id = ?", [source]).fetchone()[0] == codings
    assert raw.execute("SELECT count(*) FROM segments WHERE source_id = ?", [source]).fetchone()[0] == 0
    assert raw.execute("SELECT count(*) FROM autocode_state WHERE source_id = ?", [source]).fetchone()[0] == 0
    assert raw.execute("SELECT count(*) FROM memos WHERE about_id = ?", [source]).fetchone()[0] == 1
    assert {(f["check"], f["table"]) for f in left} == {("orphan", "codings"), ("orphan", "memos")}
    assert sum(1 for f in left if f["table"] == "codings") == codings


def test_fix_refuses_damaged_file(db_path: Path, raw: sqlite3.Connection) -> None:
    root = raw.execute("SELECT rootpage FROM sqlite_master WHERE name = 'codings_source'").fetchone()[0]
    page_size = raw.execute("PRAGMA page_size").fetchone()[0]
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    with open(db_path, "r+b") as file:
        file.seek(root * page_size - 200)
        file.write(bytes(100))
    before = db_path.read_bytes()

    result = _invoke(db_path, "check", "--fix")

    assert result.exit_code == 1
    assert "integrity check" in result.stderr
    assert "changed nothing" in result.stderr
    assert db_path.read_bytes() == before
