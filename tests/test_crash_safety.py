"""Killing qualkit with SIGKILL mid-command leaves the database old or new, never between.

Each test measures one complete run of a command on a copy of the database,
which gives the command's duration and the content hash of its result. Then
each round copies the database again, starts the command in a subprocess,
sends SIGKILL after a random fraction of the measured duration and checks
that the file passes ``PRAGMA integrity_check`` and contains exactly the old
or the new content (``qualkit.store.content_hash``). The fractions come from a
seeded generator and are spread over the whole run, one stratum per round.

The worker loads Python, qualkit and spaCy before it prints "ready" and runs
the command, so the clock starts with the command itself and most kills
land inside it rather than in interpreter start-up.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlite_utils

from qualkit import store

ROOT = Path(__file__).resolve().parents[1]
V1_FIXTURE = ROOT / "tests" / "data" / "schema_v1.db"

# Rounds per command. Each round costs one worker start-up plus at most the
# command's duration: each test took 10-30 s on 2 cores shared with other jobs.
ROUNDS = 4
SEED = 20240501

WORKER = """\
import sys

command = sys.argv[1]
if command == "cli":
    import os

    from qualkit.cli import cli
    from qualkit.nlp import load_pipeline

    load_pipeline("en")
    print("ready", flush=True)
    cli.main(sys.argv[2:], prog_name="qualkit", standalone_mode=False)
    # Skip the interpreter's slow teardown, so the measured run is the command.
    sys.stdout.flush()
    os._exit(0)
elif command == "open":
    from qualkit import store

    print("ready", flush=True)
    store.open_database(sys.argv[2], create=False).close()
elif command == "split":
    # Two commits for one change: the kind of bug the checks must catch.
    import time

    from qualkit import store

    db = store.open_database(sys.argv[2], create=False)
    print("ready", flush=True)
    with store.transaction(db):
        db["cases"].insert({"id": "FIRST", "origin": "split"})
    print("first committed", flush=True)
    time.sleep(60)
    with store.transaction(db):
        db["cases"].insert({"id": "SECOND", "origin": "split"})
"""

WORDS = (
    "the city asked the province for a lower growth target and we talked the target "
    "down before the ranking came out so our county came second in the ranking of "
    "environmental targets while the veto on safety stayed"
).split()


@dataclass
class Outcome:
    """What a database file held after one killed run."""

    delay: float
    finished: bool
    state: str


def _write_transcripts(folder: Path, count: int, seed: int) -> list[Path]:
    """Write ``count`` English interview transcripts with front matter, made from a seeded generator."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        lines = [
            "---",
            f"id: K{seed % 100:02d}{number:03d}",
            "province: Sichuan",
            "level: city",
            "date: 2016-07-12",
            "language: en",
            "---",
            "",
        ]
        for turn in range(30):
            speaker = "Interviewer" if turn % 2 == 0 else "Respondent"
            sentences = [
                " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))).capitalize() + "."
                for _ in range(3)
            ]
            lines.append(f"{speaker}: {' '.join(sentences)}\n")
        path = folder / f"K{number:03d}.md"
        path.write_text("\n".join(lines), encoding="utf-8")
        paths.append(path)
    return paths


def _copy_database(source: Path, destination: Path) -> Path:
    """Copy a closed database file; it must have no write-ahead log of its own."""
    assert not Path(f"{source}-wal").exists() or Path(f"{source}-wal").stat().st_size == 0
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    return destination


def _hash(path: Path) -> str:
    db = store.open_database(path, create=False)
    try:
        return store.content_hash(db)
    finally:
        db.close()


def _start_worker(*args: str) -> subprocess.Popen[str]:
    """Start the worker script and wait until it has loaded its modules."""
    env = {**os.environ, "QUALKIT_CODER": "crash-test"}
    env.pop("QUALKIT_DB", None)
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = process.stdout.readline()
    if line.strip() != "ready":
        process.kill()
        _, errors = process.communicate()
        pytest.fail(f"worker {args} did not start: {line!r}\n{errors}")
    return process


def _run_to_end(*args: str) -> float:
    """Run the worker to completion; return the seconds from "ready" to exit."""
    process = _start_worker(*args)
    started = time.monotonic()
    _, errors = process.communicate(timeout=120)
    duration = time.monotonic() - started
    assert process.returncode == 0, errors
    return duration


def _kill_after(delay: float, *args: str) -> bool:
    """Run the worker, SIGKILL it ``delay`` seconds after "ready"; return whether it finished first."""
    process = _start_worker(*args)
    try:
        process.wait(timeout=delay)
        finished = True
    except subprocess.TimeoutExpired:
        process.kill()
        finished = False
    process.communicate()
    return finished


def assert_old_or_new(path: Path, before: str, after: str) -> str:
    """Assert the file is sound and contains the ``before`` or ``after`` content; return which."""
    connection = sqlite3.connect(path)
    try:
        integrity = connection.execute("PRAGMA integrity_check").fetchall()
    finally:
        connection.close()
    assert integrity == [("ok",)], f"{path}: integrity_check {integrity}"
    digest = _hash(path)
    assert digest in (before, after), f"{path} holds neither the old nor the new state"
    return "old" if digest == before else "new"


def _measure(tmp_path: Path, base: Path, make_args: Callable[[Path], tuple[str, ...]]) -> tuple[float, Path]:
    """Run the command to the end on a copy of ``base``; return its duration and the finished copy."""
    finished = _copy_database(base, tmp_path / "finished" / base.name)
    return _run_to_end(*make_args(finished)), finished


def _kill_rounds(
    tmp_path: Path,
    base: Path,
    make_args: Callable[[Path], tuple[str, ...]],
    duration: float,
    check: Callable[[Path], str],
) -> list[Outcome]:
    """Kill ROUNDS runs of the command at seeded random points of its measured duration."""
    rng = random.Random(SEED)
    outcomes = []
    for round_number in range(ROUNDS):
        work = _copy_database(base, tmp_path / f"round{round_number}" / base.name)
        delay = duration * (round_number + rng.random()) / ROUNDS
        finished = _kill_after(delay, *make_args(work))
        outcomes.append(Outcome(round(delay, 3), finished, check(work)))
    # The first stratum ends at 1/ROUNDS of the measured run, so at least that
    # round must have been killed, or the test checked only finished runs.
    assert not all(outcome.finished for outcome in outcomes), outcomes
    print(f"{base.name}: {duration:.2f} s per run; {outcomes}")
    return outcomes


# Import and auto-coding ------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A database with 3 imported transcripts, 10 more to import, and a database with all 13."""
    from qualkit.sources import import_sources

    folder = tmp_path_factory.mktemp("corpus")
    first = _write_transcripts(folder / "first", 3, seed=11)
    more = _write_transcripts(folder / "more", 10, seed=12)
    base = folder / "base" / "qualkit.db"
    imported = folder / "imported" / "qualkit.db"
    for path, batches in ((base, [first]), (imported, [first, more])):
        db = store.open_database(path)
        try:
            for paths in batches:
                with store.transaction(db):
                    import_sources(db, paths)
        finally:
            db.close()
    return {"base": base, "more": folder / "more", "imported": imported}


def test_import_killed_leaves_old_or_new(tmp_path: Path, corpus: dict[str, Path]) -> None:
    def args(path: Path) -> tuple[str, ...]:
        return ("cli", "--db", str(path), "import", str(corpus["more"]))

    duration, finished = _measure(tmp_path, corpus["base"], args)
    before = _hash(corpus["base"])
    after = _hash(finished)
    assert before != after
    # The command's result equals the library's import of the same files.
    assert after == _hash(corpus["imported"])

    outcomes = _kill_rounds(
        tmp_path, corpus["base"], args, duration, lambda path: assert_old_or_new(path, before, after)
    )

    assert len(outcomes) == ROUNDS


def test_autocode_killed_leaves_old_or_new(tmp_path: Path, corpus: dict[str, Path]) -> None:
    def args(path: Path) -> tuple[str, ...]:
        return ("cli", "--db", str(path), "autocode", "--codebook", "target_bargaining")

    base = corpus["imported"]
    duration, finished = _measure(tmp_path, base, args)
    before = _hash(base)
    after = _hash(finished)
    assert before != after

    outcomes = _kill_rounds(
        tmp_path, base, args, duration, lambda path: assert_old_or_new(path, before, after)
    )

    assert len(outcomes) == ROUNDS


# Schema upgrade ---------------------------------------------------------------------


def _raw_state(path: Path) -> tuple[str, str, bool]:
    """Return the schema version, content hash and whether codings has ``value``, read without qualkit's upgrade."""
    connection = sqlite3.connect(path)
    try:
        integrity = connection.execute("PRAGMA integrity_check").fetchall()
        assert integrity == [("ok",)], f"{path}: integrity_check {integrity}"
        db = sqlite_utils.Database(connection)
        version = store.get_meta(db, "schema_version")
        has_value = "value" in db["codings"].columns_dict
        return version, store.content_hash(db), has_value
    finally:
        connection.close()


def test_upgrade_killed_leaves_old_or_new(tmp_path: Path) -> None:
    def args(path: Path) -> tuple[str, ...]:
        return ("open", str(path))

    base = _copy_database(V1_FIXTURE, tmp_path / "base" / "qualkit.db")
    old = _raw_state(base)
    duration, upgraded = _measure(tmp_path, base, args)
    new = _raw_state(upgraded)
    upgraded_hash = _hash(upgraded)
    assert old[0] == "1"
    assert new[0] == "2"

    def check(path: Path) -> str:
        state = _raw_state(path)
        assert state in (old, new), f"{path} is at neither schema version 1 nor 2 as expected: {state}"
        # Whatever the kill left, the next open completes the upgrade.
        assert _hash(path) == upgraded_hash
        return "old" if state == old else "new"

    outcomes = _kill_rounds(tmp_path, base, args, duration, check)

    assert len(outcomes) == ROUNDS


# The checks themselves -------------------------------------------------------------


def test_split_commit_is_caught(tmp_path: Path) -> None:
    """A command that commits halfway and is killed between commits fails assert_old_or_new."""
    base = tmp_path / "qualkit.db"
    store.open_database(base).close()
    finished = _copy_database(base, tmp_path / "full" / "qualkit.db")
    db = store.open_database(finished)
    with store.transaction(db):
        db["cases"].insert_all([{"id": "FIRST", "origin": "split"}, {"id": "SECOND", "origin": "split"}])
    db.close()
    before = _hash(base)
    after = _hash(finished)

    process = _start_worker("split", str(base))
    assert process.stdout.readline().strip() == "first committed"
    process.kill()
    process.communicate()

    with pytest.raises(AssertionError, match="neither the old nor the new"):
        assert_old_or_new(base, before, after)
