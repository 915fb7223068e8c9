"""Shared fixtures: the sample project built once per session, small projects.

Every fixture works on real files under pytest's temporary folders, real
SQLite databases and real spaCy pipelines. Nothing is mocked.
"""

from __future__ import annotations

import shutil
import sqlite3
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qualkit import store
from qualkit.cli import cli
from qualkit.codebook import Codebook, load_codebook, resolve_codebook_path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "interviews_sample"

# Files of a built project that a fresh copy of the sample must not carry.
BUILD_OUTPUTS = (
    "qualkit.db",
    "qualkit.db-wal",
    "qualkit.db-shm",
    "report",
    "__pycache__",
)

# A codebook small enough to read in a test: one parent with one leaf, and a
# second leaf at the top level. Its keywords are filled in by make_codebook.
TINY_CODEBOOK = """\
codebook:
  id: tiny
  version: "{version}"
codes:
  - id: strategy
    label: Bargaining strategy
    definition: A way a lower level tries to obtain targets that suit it.
  - id: strategy.underpromise
    label: Under-promise, over-achieve
    parent: strategy
    definition: Asking for a low target and then beating it.
    when_to_use: The respondent describes talking a target down.
    when_not_to_use: The target was lowered because it was out of reach.
    example: We talked the targets down and came second in the ranking.
    rules:
      en:
        keywords: {underpromise_en}
      zh:
        keywords: {underpromise_zh}
  - id: tournament
    label: Ranking of jurisdictions
    definition: Cities compared and ranked against each other.
    when_to_use: The respondent names a ranking or a rank.
    when_not_to_use: A single city's result without comparison.
    example: We came second in the province.
    rules:
      en:
        keywords: [ranking]
      zh:
        keywords: [排名]
"""


@dataclass
class BuiltSample:
    """The sample project after one ``qualkit build``, and what that build wrote."""

    folder: Path
    build: Result
    snapshot: dict[str, Any]


def _project_snapshot(folder: Path) -> dict[str, Any]:
    """Record a built project's row counts, content hash and report files."""
    db = store.open_database(folder / "qualkit.db", create=False)
    try:
        counts = {table: db[table].count for table in sorted(db.table_names())}
        digest = store.content_hash(db)
    finally:
        db.close()
    reports = {
        path.name: path.read_bytes() for path in sorted((folder / "report").iterdir())
    }

    return {"counts": counts, "content_hash": digest, "reports": reports}


def _database_hash(path: Path) -> str:
    """Return ``qualkit.store.content_hash`` of the database file at ``path``."""
    db = store.open_database(path, create=False)
    try:
        return store.content_hash(db)
    finally:
        db.close()


def _count_rows(path: Path, table: str) -> int:
    """Count a table's rows with plain sqlite3, bypassing qualkit."""
    connection = sqlite3.connect(path)
    try:
        return connection.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0]
    finally:
        connection.close()


@pytest.fixture(autouse=True)
def no_database_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a QUALKIT_DB set in the shell from choosing the tests' database."""
    monkeypatch.delenv("QUALKIT_DB", raising=False)


@pytest.fixture
def snapshot_of() -> Callable[[Path], dict[str, Any]]:
    """Return the function that records a built project's counts, hash and reports."""
    return _project_snapshot


@pytest.fixture
def hash_of() -> Callable[[Path], str]:
    """Return the function that computes a database file's content hash."""
    return _database_hash


@pytest.fixture
def row_count() -> Callable[[Path, str], int]:
    """Return the function that counts a table's rows in a database file."""
    return _count_rows


@pytest.fixture
def runner() -> CliRunner:
    """A click test runner; stdout and stderr are kept apart (click 8.2+)."""
    return CliRunner()


@pytest.fixture(scope="session")
def sample_project(tmp_path_factory: pytest.TempPathFactory) -> BuiltSample:
    """Copy the bundled sample to a temporary folder and build it once.

    Tests that only read may use the folder directly. Tests that write must
    take ``sample_copy`` instead, because test_pipeline compares a second
    build against the snapshot taken here.
    """
    folder = tmp_path_factory.mktemp("session") / "interviews_sample"
    shutil.copytree(SAMPLE_DIR, folder, ignore=shutil.ignore_patterns(*BUILD_OUTPUTS))
    result = CliRunner().invoke(cli, ["build", str(folder)], prog_name="qualkit")
    if result.exit_code != 0:
        pytest.fail(
            f"building the sample failed:\n{result.stderr}\n{result.exception!r}"
        )

    return BuiltSample(folder, result, _project_snapshot(folder))


@pytest.fixture
def sample_copy(sample_project: BuiltSample, tmp_path: Path) -> Path:
    """A private copy of the built sample (database and report included)."""
    folder = tmp_path / "interviews_sample"
    shutil.copytree(sample_project.folder, folder)
    return folder


@pytest.fixture(scope="session")
def bundled_codebook() -> Codebook:
    """The codebook that ships with qualkit, loaded once per session."""
    return load_codebook(resolve_codebook_path("target_bargaining"))


@pytest.fixture(scope="session")
def make_codebook(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Codebook]:
    """Return a function that writes the tiny codebook with given keywords and loads it.

    A codebook is frozen, so one loaded with the same arguments is reused
    and each distinct file is validated by spaCy only once.
    """
    folder = tmp_path_factory.mktemp("codebooks")
    loaded: dict[tuple[Any, ...], Codebook] = {}

    def make(
        underpromise_en: tuple[str, ...] = ("talk the target down",),
        underpromise_zh: tuple[str, ...] = ("留一手",),
        version: str = "1",
    ) -> Codebook:
        key = (underpromise_en, underpromise_zh, version)
        if key not in loaded:
            text = TINY_CODEBOOK.format(
                version=version,
                underpromise_en="[" + ", ".join(underpromise_en) + "]",
                underpromise_zh="[" + ", ".join(underpromise_zh) + "]",
            )
            path = folder / f"tiny-{len(loaded) + 1}.yaml"
            path.write_text(text, encoding="utf-8")
            loaded[key] = load_codebook(path)
        return loaded[key]

    return make


@pytest.fixture
def write_transcript(tmp_path: Path) -> Callable[..., Path]:
    """Return a function that writes a Markdown transcript with front matter.

    ``body`` is dedented; keyword arguments become front matter lines in the
    order given. Without keyword arguments the file has no front matter.
    """
    folder = tmp_path / "transcripts"
    folder.mkdir(exist_ok=True)

    def write(name: str, body: str, **metadata: str) -> Path:
        text = textwrap.dedent(body).lstrip("\n")
        if metadata:
            front = "".join(f"{key}: {value}\n" for key, value in metadata.items())
            text = f"---\n{front}---\n\n{text}"
        path = folder / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Any]:
    """A project on a fresh database file, without a qualkit.toml."""
    from qualkit.project import Project

    opened = Project(tmp_path / "qualkit.db")
    yield opened
    opened.close()
