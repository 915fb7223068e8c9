"""REFI-QDA export: schema validity, positions, determinism and the round trip through import.

The schemas are the REFI-QDA 1.0 Codebook.xsd and Project.xsd shipped in
qualkit/refi/schemas (origin in the README there). Positions follow section
10.2 of the REFI-QDA 1.5 specification: Unicode code points from 0.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import sqlite_utils
import xmlschema

from qualkit import store
from qualkit.audit import ChangeRecorder
from qualkit.cli import cli
from qualkit.codebook import load_codebook
from qualkit.codebook_versions import store_codebook
from qualkit.coding import add_coding
from qualkit.memos import add_memo
from qualkit.project import Project
from qualkit.refi import export_codebook, export_project, import_refi
from qualkit.refi.codebook import parse_description, store_code_colours
from qualkit.refi.common import SCHEMA_DIR

NS = {"q": "urn:QDA-XML:project:1.0", "c": "urn:QDA-XML:codebook:1.0"}

CODEBOOK_YAML = """\
codebook:
  id: tiny
  version: "1"
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
  - id: tournament
    label: Ranking of jurisdictions
    definition: Cities compared and ranked against each other.
    when_to_use: The respondent names a ranking or a rank.
    when_not_to_use: A single city's result without comparison.
    example: We came second in the province.
"""

# A Chinese interview with an emoji (an astral code point, two UTF-16 code
# units) before a coded span, and an English one written with CRLF line
# endings, which qualkit stores with LF.
CHINESE_TRANSCRIPT = (
    "---\nid: CN01\nprovince: Hebei\nlevel: city\ndate: 2016-05-01\nlanguage: zh\n"
    "appendix_group: A\ninterviewer: 问\n---\n\n"
    "问：你们怎么定指标？\n\n答：我们留一手 😀，在全省排名第二。\n"
)
ENGLISH_CRLF_TRANSCRIPT = (
    "---\r\nid: EN02\r\nlanguage: en\r\nsector: water\r\n---\r\n\r\n"
    "Q: How did it go?\r\n\r\nA: We talk the target down 🎯 and came second in the ranking.\r\n"
)


def _build(folder: Path) -> Path:
    """Build a small project database with codes, colours, codings, memos and cases."""
    folder.mkdir(parents=True, exist_ok=True)
    transcripts = folder / "transcripts"
    transcripts.mkdir(exist_ok=True)
    (transcripts / "CN01.md").write_text(CHINESE_TRANSCRIPT, encoding="utf-8")
    (transcripts / "EN02.md").write_bytes(ENGLISH_CRLF_TRANSCRIPT.encode("utf-8"))
    (folder / "codebook.yaml").write_text(CODEBOOK_YAML, encoding="utf-8")
    path = folder / "source.db"
    project = Project(path)
    db = project.db
    project.import_sources([transcripts / "CN01.md", transcripts / "EN02.md"])
    with store.transaction(db):
        store_codebook(db, load_codebook(folder / "codebook.yaml"))
        store_code_colours(db, {"tournament": "#1F77B4"})
    chinese = _text(db, "CN01")
    english = _text(db, "EN02")
    with store.transaction(db):
        alice = ChangeRecorder(db, "Alice", "test")
        start = english.index("talk")
        add_coding(
            alice,
            "EN02",
            "strategy.underpromise",
            start,
            start + len("talk the target down 🎯"),
        )
        start = chinese.index("留一手")
        change = add_coding(
            alice, "CN01", "strategy.underpromise", start, start + len("留一手 😀")
        )
        add_memo(alice, "coding", str(change.coding_id), "Emoji inside the quote.")
        add_memo(alice, "project", None, "Two interviews, one in Chinese.")
        add_memo(alice, "code", "tournament", "Rankings come up unprompted.")
        bob = ChangeRecorder(db, "bob", "test")
        start = chinese.index("排名第二")
        add_coding(bob, "CN01", "tournament", start, start + len("排名第二"))
        add_coding(bob, "CN01", "strategy.underpromise", start, start + len("排名第二"))
        add_memo(bob, "source", "CN01", "Recorded in a tea house.")
    project.close()
    return path


def _text(db: sqlite_utils.Database, source_id: str) -> str:
    return db.execute("SELECT text FROM sources WHERE id = ?", [source_id]).fetchone()[
        0
    ]


@pytest.fixture(scope="module")
def built_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small project, built once per module and copied by ``source_db``."""
    return _build(tmp_path_factory.mktemp("refi") / "built")


def copy_database(built: Path, target: Path) -> Path:
    """Copy a closed project database file (its WAL is checkpointed on close)."""
    shutil.copy(built, target)
    return target


@pytest.fixture
def source_db(built_database: Path, tmp_path: Path) -> sqlite_utils.Database:
    """A private copy of the small project, opened."""
    db = store.open_database(copy_database(built_database, tmp_path / "project.db"))
    yield db
    db.close()


def rows(db: sqlite_utils.Database, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in db.execute(sql).fetchall()]


def test_codebook_export_is_valid(
    source_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = export_codebook(source_db, tmp_path / "codebook.qdc")
    schema = xmlschema.XMLSchema(str(SCHEMA_DIR / "Codebook.xsd"))
    schema.validate(str(path))
    root = ElementTree.parse(path).getroot()
    assert root.tag == "{urn:QDA-XML:codebook:1.0}CodeBook"
    top = root.findall("c:Codes/c:Code", NS)
    assert [code.get("name") for code in top] == [
        "Bargaining strategy",
        "Ranking of jurisdictions",
    ]
    child = top[0].find("c:Code", NS)
    assert child is not None
    assert child.get("name") == "Under-promise, over-achieve"
    assert top[1].get("color") == "#1F77B4"
    fields = parse_description(child.find("c:Description", NS).text)
    assert fields.qualkit_id == "strategy.underpromise"
    assert fields.definition == "Asking for a low target and then beating it."
    assert (
        fields.example == "We talked the targets down and came second in the ranking."
    )


def test_project_export_is_valid(
    source_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    summary = export_project(source_db, tmp_path / "project.qdpx", name="refi test")
    assert (summary.sources, summary.codes, summary.codings, summary.cases) == (
        2,
        3,
        4,
        2,
    )
    with zipfile.ZipFile(summary.path) as archive:
        names = archive.namelist()
        document = archive.read("project.qde")
        texts = {
            name: archive.read(name).decode("utf-8")
            for name in names
            if name.startswith("sources/")
        }
    assert names[0] == "project.qde"
    assert len(texts) == 2
    schema = xmlschema.XMLSchema(str(SCHEMA_DIR / "Project.xsd"))
    root = ElementTree.fromstring(document)
    schema.validate(root)
    for source in root.findall("q:Sources/q:TextSource", NS):
        member = "sources/" + source.get("plainTextPath").removeprefix("internal://")
        text = texts[member]
        assert "\r" not in text
        assert text == _text(source_db, source.get("name"))
        for selection in source.findall("q:PlainTextSelection", NS):
            start, end = (
                int(selection.get("startPosition")),
                int(selection.get("endPosition")),
            )
            assert text[start:end] == selection.get("name")
    users = {user.get("name") for user in root.findall("q:Users/q:User", NS)}
    assert users == {"Alice", "bob"}


def test_positions_count_code_points(
    source_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    export_project(source_db, tmp_path / "project.qdpx", name="refi test")
    with zipfile.ZipFile(tmp_path / "project.qdpx") as archive:
        root = ElementTree.fromstring(archive.read("project.qde"))
    chinese = _text(source_db, "CN01")
    ranking = next(
        s
        for s in root.iter("{urn:QDA-XML:project:1.0}PlainTextSelection")
        if s.get("name") == "排名第二"
    )
    # The emoji before the span is one code point but two UTF-16 code units.
    code_point_start = chinese.index("排名第二")
    utf16_start = len(chinese[:code_point_start].encode("utf-16-le")) // 2
    assert utf16_start == code_point_start + 1
    assert int(ranking.get("startPosition")) == code_point_start
    assert int(ranking.get("endPosition")) == code_point_start + 4
    # Two codings of one span share one selection.
    assert len(ranking.findall("q:Coding", NS)) == 2


def test_export_is_deterministic(
    source_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    first = export_project(
        source_db, tmp_path / "first.qdpx", name="refi test"
    ).path.read_bytes()
    second = export_project(
        source_db, tmp_path / "second.qdpx", name="refi test"
    ).path.read_bytes()
    assert first == second
    codebook_first = export_codebook(source_db, tmp_path / "first.qdc").read_bytes()
    codebook_second = export_codebook(source_db, tmp_path / "second.qdc").read_bytes()
    assert codebook_first == codebook_second
    with zipfile.ZipFile(tmp_path / "first.qdpx") as archive:
        assert {info.date_time for info in archive.infolist()} == {
            (1980, 1, 1, 0, 0, 0)
        }


def test_export_leaves_out_suggestions(
    source_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    with store.transaction(source_db):
        source_db["codings"].insert(
            {
                "source_id": "CN01",
                "start_offset": 0,
                "end_offset": 2,
                "quote": _text(source_db, "CN01")[:2],
                "code_id": "tournament",
                "coder": "autocode",
                "origin": "auto",
                "status": "suggested",
                "codebook_version": "1",
                "created_at": "2026-01-01T00:00:00+00:00",
                "updated_at": "2026-01-01T00:00:00+00:00",
            }
        )
    summary = export_project(source_db, tmp_path / "project.qdpx", name="refi test")
    assert summary.codings == 4
    assert summary.codings_not_exported == {"suggested": 1}


CODE_COLUMNS = "id, parent_id, label, definition, when_to_use, when_not_to_use, example, position, active"
SOURCE_COLUMNS = "id, case_id, language, text, content_hash, metadata"
CODING_COLUMNS = "source_id, start_offset, end_offset, quote, code_id, coder, origin, status, created_at"


def _memo_rows(db: sqlite_utils.Database) -> list[tuple[Any, ...]]:
    """Memos with a coding subject written as its span, since coding ids differ between projects."""
    return rows(
        db,
        "SELECT m.about, CASE WHEN m.about = 'coding' THEN c.source_id || ':' || c.start_offset "
        "|| ':' || c.code_id || ':' || c.coder ELSE m.about_id END, m.coder, m.text, m.created_at "
        "FROM memos m LEFT JOIN codings c ON m.about = 'coding' AND c.id = CAST(m.about_id AS INTEGER) "
        "ORDER BY 1, 2, 3, 4",
    )


def test_round_trip_keeps_tables(
    source_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    exported = export_project(
        source_db, tmp_path / "project.qdpx", name="refi test"
    ).path
    target = store.open_database(tmp_path / "fresh.db")
    try:
        report = import_refi(target, exported, coder="importer")
        assert report.counts == {
            "codes": 3,
            "cases": 2,
            "sources": 2,
            "codings": 4,
            "memos": 4,
        }
        assert report.rows == []
        for sql in (
            f"SELECT {CODE_COLUMNS} FROM codes ORDER BY id",
            f"SELECT {SOURCE_COLUMNS} FROM sources ORDER BY id",
            f"SELECT {CODING_COLUMNS} FROM codings ORDER BY source_id, start_offset, code_id, coder",
            "SELECT id, province, level, date, language, appendix_group, attributes FROM cases ORDER BY id",
            (
                "SELECT source_id, kind, position, start_offset, end_offset, speaker, role "
                "FROM segments ORDER BY source_id, kind, position"
            ),
        ):
            assert rows(target, sql) == rows(source_db, sql), sql
        assert _memo_rows(target) == _memo_rows(source_db)
        assert target.execute(
            "SELECT value FROM meta WHERE key = 'refi_code_colours'"
        ).fetchone()[0] == (json.dumps({"tournament": "#1F77B4"}))
        again = export_project(target, tmp_path / "again.qdpx", name="refi test").path
        assert again.read_bytes() == exported.read_bytes()
    finally:
        target.close()


def test_round_trip_codebook_file(
    source_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    exported = export_codebook(source_db, tmp_path / "codebook.qdc")
    target = store.open_database(tmp_path / "fresh.db")
    try:
        report = import_refi(target, exported)
        assert report.counts["codes"] == 3
        sql = f"SELECT {CODE_COLUMNS} FROM codes ORDER BY id"
        assert rows(target, sql) == rows(source_db, sql)
    finally:
        target.close()


def test_import_twice_adds_nothing(
    source_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    exported = export_project(
        source_db, tmp_path / "project.qdpx", name="refi test"
    ).path
    before = store.content_hash(source_db)
    report = import_refi(source_db, exported, coder="importer")
    assert report.counts["sources"] == 0
    assert report.counts["codings"] == 0
    assert report.counts["memos"] == 0
    actions = {
        row.action
        for row in report.rows
        if row.element in ("Code", "TextSource", "Coding")
    }
    assert actions == {"merged"}
    # A note with the same subject, author and text is the same memo.
    after_memos = source_db.execute("SELECT count(*) FROM memos").fetchone()[0]
    assert after_memos == 4
    assert before == store.content_hash(source_db)


def test_cli_export_and_import(
    built_database: Path, tmp_path: Path, runner: Any
) -> None:
    database = copy_database(built_database, tmp_path / "project.db")
    qdpx = tmp_path / "out.qdpx"
    qdc = tmp_path / "out.qdc"
    result = runner.invoke(cli, ["--db", str(database), "refi", "export", str(qdpx)])
    assert result.exit_code == 0, result.output
    assert "2 sources, 3 codes, 4 codings" in result.output
    result = runner.invoke(
        cli, ["--db", str(database), "refi", "export-codebook", str(qdc)]
    )
    assert result.exit_code == 0, result.output
    fresh = tmp_path / "fresh.db"
    result = runner.invoke(
        cli,
        [
            "--db",
            str(fresh),
            "refi",
            "import",
            str(qdpx),
            "--coder",
            "carol",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    connection = sqlite3.connect(fresh)
    try:
        assert connection.execute("SELECT count(*) FROM codings").fetchone()[0] == 4
        batch_coders = connection.execute(
            "SELECT DISTINCT coder FROM audit_log"
        ).fetchall()
        assert batch_coders == [("carol",)]
    finally:
        connection.close()
