"""Several qualkit processes on one database file: no lost codings, clear lock errors.

The writers are real processes. Each coder process runs ``qualkit code add``
in a loop through the click entry point (``cli.main``), so every coding
opens the database, takes the write lock and commits exactly as the
command does, without paying interpreter start-up per coding.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from qualkit import store
from qualkit.codebook import Codebook
from qualkit.codebook_versions import store_codebook
from qualkit.errors import StoreError
from qualkit.maintenance import check_database
from qualkit.sources import import_sources

# Codings per coder. Two coders at this count finished in 4-10 s on 2 cores
# shared with other jobs.
CODINGS_PER_CODER = 50
# Upper bound for any subprocess in this file, in seconds.
PROCESS_TIMEOUT = 90

CODER_LOOP = """\
import sys
import time

from qualkit.cli import cli

database, coder, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
# Start the loop only on the test's signal, so that both coders overlap.
print("ready", flush=True)
sys.stdin.readline()
print("started", time.time(), flush=True)
for position in range(count):
    cli.main(
        ["--db", database, "code", "add", "S1", "--code", "tournament",
         "--segment", str(position), "--coder", coder],
        prog_name="qualkit",
        standalone_mode=False,
    )
print("finished", time.time(), flush=True)
"""

# Holds the write lock (BEGIN IMMEDIATE) with one uncommitted memo until it
# reads a line on stdin, then commits, or until it is killed.
LOCK_HOLDER = """\
import sqlite3
import sys

connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
connection.execute(
    "INSERT INTO memos (about, coder, text, created_at, updated_at) "
    "VALUES ('project', 'holder', 'written while others read', '2024-01-01', '2024-01-01')"
)
print("locked", flush=True)
sys.stdin.readline()
connection.execute("COMMIT")
print("committed", flush=True)
"""


@pytest.fixture
def shared_db(
    tmp_path: Path,
    make_codebook: Callable[..., Codebook],
    write_transcript: Callable[..., Path],
) -> Path:
    """A database with one source S1 of CODINGS_PER_CODER + 10 sentences and the tiny codebook stored."""
    body = "".join(
        f"Respondent: We came {position} in the ranking that year.\n\n" for position in range(60)
    )
    transcript = write_transcript("S1.md", body, id="S1", language="en", level="city")
    path = tmp_path / "shared.db"
    db = store.open_database(path)
    try:
        with store.transaction(db):
            import_sources(db, [transcript])
            store_codebook(db, make_codebook())
    finally:
        db.close()
    return path


def _environment(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env.pop("QUALKIT_DB", None)
    return env


@pytest.fixture
def lock_holder(shared_db: Path) -> Iterator[subprocess.Popen[str]]:
    """A process that holds the write lock on ``shared_db`` with an uncommitted memo."""
    process = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(shared_db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "locked", process.stderr.read()
    yield process
    if process.poll() is None:
        process.kill()
    process.communicate()


def _release(holder: subprocess.Popen[str]) -> None:
    holder.stdin.write("commit\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "committed"


# Two coders at once ---------------------------------------------------------------


def _start_coder(database: Path, coder: str, count: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", CODER_LOOP, str(database), coder, str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )
    assert process.stdout.readline().strip() == "ready", process.stderr.read()
    return process


def test_two_coders_lose_no_coding(shared_db: Path) -> None:
    coders = ("alice", "bob")
    processes = [_start_coder(shared_db, coder, CODINGS_PER_CODER) for coder in coders]
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    results = [process.communicate(timeout=PROCESS_TIMEOUT) for process in processes]

    for process, (_, errors) in zip(processes, results):
        assert process.returncode == 0, errors
    times: dict[str, list[float]] = {"started": [], "finished": []}
    for output, _ in results:
        for line in output.splitlines():
            event, _, value = line.partition(" ")
            if event in times:
                times[event].append(float(value))
    db = store.open_database(shared_db, create=False)
    try:
        integrity = db.execute("PRAGMA integrity_check").fetchall()
        findings = check_database(db)
        for coder in coders:
            codings = db.execute(
                "SELECT id FROM codings WHERE coder = ? AND code_id = 'tournament' ORDER BY id",
                [coder],
            ).fetchall()
            logged = db.execute(
                "SELECT CAST(row_id AS INTEGER) FROM audit_log WHERE coder = ? AND command = 'code add' "
                "AND table_name = 'codings' AND action = 'insert' ORDER BY 1",
                [coder],
            ).fetchall()
            assert len(codings) == CODINGS_PER_CODER, coder
            assert logged == codings, coder
    finally:
        db.close()
    assert integrity == [("ok",)]
    assert findings.empty, findings.to_string()
    # Both loops ran at the same time: each started before the other finished.
    assert max(times["started"]) < min(times["finished"]), times


def test_coders_code_distinct_sentences(shared_db: Path) -> None:
    """Each coder's loop codes sentences 0..N-1, so the spans must all differ per coder."""
    process = _start_coder(shared_db, "carol", 5)
    _, errors = process.communicate("go\n", timeout=PROCESS_TIMEOUT)

    assert process.returncode == 0, errors
    db = store.open_database(shared_db, create=False)
    try:
        spans = db.execute(
            "SELECT DISTINCT start_offset FROM codings WHERE coder = 'carol'"
        ).fetchall()
    finally:
        db.close()
    assert len(spans) == 5


# Waiting for the lock ---------------------------------------------------------------


def test_lock_timeout_message(shared_db: Path, lock_holder: subprocess.Popen[str]) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "qualkit", "--db", str(shared_db), "code", "add", "S1",
         "--code", "tournament", "--segment", "1", "--coder", "dana"],
        capture_output=True,
        text=True,
        env=_environment(QUALKIT_BUSY_TIMEOUT="1"),
        timeout=PROCESS_TIMEOUT,
    )
    elapsed = time.monotonic() - started

    assert result.returncode == 1
    assert f"Another qualkit process is writing to {shared_db}; waited 1 s." in result.stderr
    assert "Nothing was changed" in result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed >= 1
    _release(lock_holder)
    connection = sqlite3.connect(shared_db)
    try:
        added = connection.execute("SELECT count(*) FROM codings WHERE coder = 'dana'").fetchone()[0]
    finally:
        connection.close()
    assert added == 0


class _WaitingLogged(logging.Handler):
    """Set an event when the store logs that a command waits for the lock."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "Another qualkit process is writing to" in record.getMessage():
            self.event.set()


def test_waits_for_lock_then_writes(
    shared_db: Path,
    lock_holder: subprocess.Popen[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from qualkit.cli import cli

    monkeypatch.setattr(store, "FIRST_LOCK_WAIT", 0.2)
    monkeypatch.setenv("QUALKIT_BUSY_TIMEOUT", "30")
    waiting = _WaitingLogged()
    logging.getLogger("qualkit.store").addHandler(waiting)

    def release_when_waiting() -> None:
        # Release only once the command has logged that it waits, however slow the machine.
        waiting.event.wait(timeout=PROCESS_TIMEOUT)
        _release(lock_holder)

    releaser = threading.Thread(target=release_when_waiting)
    releaser.start()
    try:
        with caplog.at_level(logging.WARNING, logger="qualkit.store"):
            result = CliRunner().invoke(
                cli,
                ["--db", str(shared_db), "code", "add", "S1", "--code", "tournament",
                 "--segment", "2", "--coder", "erin"],
            )
    finally:
        releaser.join()
        logging.getLogger("qualkit.store").removeHandler(waiting)

    assert result.exit_code == 0, result.output
    assert waiting.event.is_set()
    assert "retrying for up to 29.8 s more" in caplog.text


def test_reader_sees_committed_state(
    shared_db: Path, lock_holder: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With WAL a reader neither waits for the writer nor reads its uncommitted rows."""
    from qualkit.cli import cli

    monkeypatch.setenv("QUALKIT_BUSY_TIMEOUT", "0")
    runner = CliRunner()
    arguments = ["--db", str(shared_db), "memo", "list", "--format", "json"]

    during = runner.invoke(cli, arguments)
    _release(lock_holder)
    after = runner.invoke(cli, arguments)

    assert during.exit_code == 0, during.output
    assert json.loads(during.stdout) == []
    assert after.exit_code == 0, after.output
    assert [memo["text"] for memo in json.loads(after.stdout)] == ["written while others read"]


def test_transaction_busy_error_names_file(shared_db: Path, lock_holder: subprocess.Popen[str]) -> None:
    """Opening needs no lock, but the first transaction waits and then raises."""
    db = store.open_database(shared_db, busy_timeout=0.1)
    try:
        with pytest.raises(store.DatabaseBusyError) as raised, store.transaction(db):
            pass
    finally:
        db.close()

    assert raised.value.waited == pytest.approx(0.1)
    assert str(shared_db) in str(raised.value)


# The busy timeout setting ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "milliseconds"),
    [
        pytest.param(None, 30000, id="default"),
        pytest.param("2.5", 2500, id="fraction"),
        pytest.param("0", 0, id="zero"),
    ],
)
def test_busy_timeout_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None, milliseconds: int
) -> None:
    if value is None:
        monkeypatch.delenv("QUALKIT_BUSY_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("QUALKIT_BUSY_TIMEOUT", value)

    db = store.open_database(tmp_path / "qualkit.db")
    try:
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == milliseconds
    finally:
        db.close()


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "1e9"])
def test_busy_timeout_invalid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("QUALKIT_BUSY_TIMEOUT", value)

    with pytest.raises(StoreError, match="QUALKIT_BUSY_TIMEOUT"):
        store.open_database(tmp_path / "qualkit.db")

    assert not (tmp_path / "qualkit.db").exists()
