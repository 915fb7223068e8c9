"""``qualkit import`` on folders and globs, with manifests, options and bad files."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qualkit import store
from qualkit.cli import cli
from qualkit.sources import find_transcripts, import_sources

ENGLISH = "Interviewer: How are the targets set?\n\nRespondent: The province sets them.\n"
CHINESE = (
    "问：你们县里的指标是怎么定下来的？\n\n"
    "答：一般是市里先开会，把任务分下来。我们报的时候总是留一手，不敢全报。"
    "排名的压力很大，年底要考核，我们去年排在第二。\n"
)


def invoke(runner: CliRunner, database: Path, *args: str) -> Result:
    return runner.invoke(cli, ["--db", str(database), "import", *args], prog_name="qualkit")


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def ids(database: Path, table: str = "sources") -> list[str]:
    db = store.open_database(database, create=False)
    try:
        return [row[0] for row in db.execute(f"SELECT id FROM {table} ORDER BY id")]
    finally:
        db.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Transcripts in nested folders, with files an import must skip."""
    root = tmp_path / "transcripts"
    write(root / "A1.md", ENGLISH.replace("province", "city"))
    write(root / "hunan" / "A2.txt", CHINESE, "gb18030")
    write(root / "hunan" / "A3.md", ENGLISH.replace("province", "county"))
    write(root / "hunan" / "~$A3.docx", "lock file")
    write(root / ".hidden.md", ENGLISH)
    write(root / "notes.csv", "id\nA1\n")
    return root


# Paths


def test_folder_searched_recursively(runner: CliRunner, tmp_path: Path, folder: Path) -> None:
    result = invoke(runner, tmp_path / "q.db", str(folder))

    assert result.exit_code == 0, result.stderr
    assert ids(tmp_path / "q.db") == ["A1", "A2", "A3"]


def test_glob_pattern_expanded(runner: CliRunner, tmp_path: Path, folder: Path) -> None:
    result = invoke(runner, tmp_path / "q.db", str(folder / "**" / "*.md"))

    assert result.exit_code == 0, result.stderr
    assert ids(tmp_path / "q.db") == ["A1", "A3"]


def test_find_transcripts_skips_lock_and_hidden(folder: Path) -> None:
    names = [path.name for path in find_transcripts([folder])]

    assert names == ["A1.md", "A2.txt", "A3.md"]


def test_find_transcripts_no_repeats(folder: Path) -> None:
    found = find_transcripts([folder / "A1.md", folder, str(folder / "*.md")])

    assert [path.name for path in found] == ["A1.md", "A2.txt", "A3.md"]


@pytest.mark.parametrize(
    "argument",
    [pytest.param("absent.md", id="missing-file"), pytest.param("nothing/*.md", id="empty-glob")],
)
def test_unmatched_path_usage_error(runner: CliRunner, tmp_path: Path, argument: str) -> None:
    result = invoke(runner, tmp_path / "q.db", str(tmp_path / argument))

    assert result.exit_code == 2
    assert argument.split("/")[0] in result.stderr
    assert result.stdout == ""


def test_progress_counts_every_file(project: Any, folder: Path) -> None:
    steps: list[int] = []
    with store.transaction(project.db):
        import_sources(project.db, find_transcripts([folder]), progress=steps.append)

    assert sum(steps) == 3


# One transaction, or --keep-going


@pytest.fixture
def mixed_folder(folder: Path) -> Path:
    write(folder / "B1.md", "---\nid: B1\nlevel: village\n---\n\n" + ENGLISH)
    write(folder / "B2.txt", "Интервьюер: Как устанавливаются цели?\nРеспондент: Провинция.\n", "cp1251")
    return folder


def test_bad_files_import_nothing(runner: CliRunner, tmp_path: Path, mixed_folder: Path) -> None:
    database = tmp_path / "q.db"
    result = invoke(runner, database, str(mixed_folder))

    assert result.exit_code == 1
    assert "2 files could not be imported" in result.stderr
    assert "B1.md, line 3: level 'village'" in result.stderr
    assert "B2.txt: the encoding could not be determined" in result.stderr
    assert ids(database) == []


def test_keep_going_imports_good_files(runner: CliRunner, tmp_path: Path, mixed_folder: Path) -> None:
    database = tmp_path / "q.db"
    result = invoke(runner, database, "--keep-going", str(mixed_folder))

    assert result.exit_code == 1
    assert "3 added, 0 updated, 0 unchanged." in result.stdout
    assert "Not imported:" in result.stderr
    assert "B1.md" in result.stderr
    assert "B2.txt" in result.stderr
    assert "2 of 5 files were not imported" in result.stderr
    assert ids(database) == ["A1", "A2", "A3"]


def test_keep_going_leaves_no_partial_case(
    runner: CliRunner, tmp_path: Path, mixed_folder: Path
) -> None:
    database = tmp_path / "q.db"
    invoke(runner, database, "--keep-going", str(mixed_folder))

    assert ids(database, "cases") == ["A1", "A2", "A3"]


# Duplicates


def test_duplicate_id_rejected(runner: CliRunner, tmp_path: Path) -> None:
    first = write(tmp_path / "one.md", "---\nid: D1\n---\n\n" + ENGLISH)
    second = write(tmp_path / "two.md", "---\nid: D1\n---\n\n" + CHINESE)
    result = invoke(runner, tmp_path / "q.db", str(first), str(second))

    assert result.exit_code == 1
    assert "interview id 'D1' is also used by" in result.stderr
    assert ids(tmp_path / "q.db") == []


def test_duplicate_content_in_one_run_rejected(runner: CliRunner, tmp_path: Path) -> None:
    first = write(tmp_path / "G01.md", ENGLISH)
    second = write(tmp_path / "G01 copy.txt", ENGLISH)
    result = invoke(runner, tmp_path / "q.db", str(first), str(second))

    assert result.exit_code == 1
    assert "the text is the same as that of" in result.stderr


def test_duplicate_content_of_stored_source_rejected(runner: CliRunner, tmp_path: Path) -> None:
    database = tmp_path / "q.db"
    invoke(runner, database, str(write(tmp_path / "G01.md", ENGLISH)))
    result = invoke(runner, database, str(write(tmp_path / "G02.md", ENGLISH)))

    assert result.exit_code == 1
    assert "source 'G01', already imported" in result.stderr
    assert ids(database) == ["G01"]


# Metadata: manifest, front matter, options


MANIFEST = """\
id,province,level,date,file
W01,Hunan,county,2016-07-12,interview one.docx
W02,Hunan,city,2016-07-13,
"""


def test_manifest_file_column_names_docx(runner: CliRunner, tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Respondent: We talked the targets down.")
    path = tmp_path / "interview one.docx"
    document.save(str(path))
    manifest = write(tmp_path / "interviews.csv", MANIFEST)
    result = invoke(runner, tmp_path / "q.db", "--manifest", str(manifest), str(path))

    assert result.exit_code == 0, result.stderr
    assert ids(tmp_path / "q.db") == ["W01"]


def test_manifest_in_gbk_read(runner: CliRunner, tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "interviews.csv",
        "id,province,level,备注\nW03,湖南,county,县发改委副主任，访谈时间两小时，在办公室进行\n"
        "W04,湖南,city,市考核办主任，访谈时间一小时，在会议室进行\n",
        "gbk",
    )
    transcript = write(tmp_path / "W03.md", CHINESE)
    result = invoke(runner, tmp_path / "q.db", "--manifest", str(manifest), str(transcript))
    db = store.open_database(tmp_path / "q.db", create=False)
    province = db.execute("SELECT province FROM cases WHERE id = 'W03'").fetchone()[0]
    db.close()

    assert result.exit_code == 0, result.stderr
    assert province == "湖南"


def test_options_set_metadata(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path / "recording 7.txt", ENGLISH)
    result = invoke(
        runner, tmp_path / "q.db", "--id", "K07", "--province", "Guizhou", "--level", "city",
        "--date", "2016-07-12", "--language", "en", str(path),
    )
    db = store.open_database(tmp_path / "q.db", create=False)
    row = db.execute("SELECT id, province, level, date, language FROM cases").fetchone()
    db.close()

    assert result.exit_code == 0, result.stderr
    assert row == ("K07", "Guizhou", "city", "2016-07-12", "en")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(("--level", "village"), "level 'village' is not one of", id="level"),
        pytest.param(("--date", "12/07/2016"), "date '12/07/2016' is not an ISO date", id="date"),
        pytest.param(("--language", "fr"), "language 'fr' is not supported", id="language"),
        pytest.param(("--encoding", "klingon"), "unknown encoding 'klingon'", id="encoding"),
    ],
)
def test_invalid_option_usage_error(
    runner: CliRunner, tmp_path: Path, options: tuple[str, str], message: str
) -> None:
    path = write(tmp_path / "O1.md", ENGLISH)
    result = invoke(runner, tmp_path / "q.db", *options, str(path))

    assert result.exit_code == 2
    assert message in result.stderr


def test_id_option_needs_one_file(runner: CliRunner, tmp_path: Path) -> None:
    first = write(tmp_path / "O1.md", ENGLISH)
    second = write(tmp_path / "O2.md", CHINESE)
    result = invoke(runner, tmp_path / "q.db", "--id", "X", str(first), str(second))

    assert result.exit_code == 2
    assert "--id names one interview" in result.stderr


def test_id_option_conflicts_with_front_matter(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path / "O1.md", "---\nid: F1\n---\n\n" + ENGLISH)
    result = invoke(runner, tmp_path / "q.db", "--id", "F2", str(path))

    assert result.exit_code == 1
    assert "'F1' in the front matter, 'F2' in the --id option" in result.stderr


def test_option_conflict_reported(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path / "O1.md", "---\nid: F1\nprovince: Hunan\n---\n\n" + ENGLISH)
    result = invoke(runner, tmp_path / "q.db", "--province", "Hubei", str(path))

    assert result.exit_code == 0, result.stderr
    assert "Conflict: F1 province is 'Hunan' (O1.md) but 'Hubei' in import options" in result.stderr


def test_manifest_conflict_recorded(runner: CliRunner, tmp_path: Path) -> None:
    manifest = write(tmp_path / "interviews.csv", MANIFEST)
    path = write(tmp_path / "W02.md", "---\nid: W02\nlevel: county\n---\n\n" + ENGLISH)
    result = invoke(runner, tmp_path / "q.db", "--manifest", str(manifest), str(path))
    db = store.open_database(tmp_path / "q.db", create=False)
    rows = db.execute("SELECT field, kept_value, other_value FROM metadata_conflicts").fetchall()
    db.close()

    assert result.exit_code == 0, result.stderr
    assert rows == [("level", "city", "county")]


def test_edited_front_matter_updates_own_value(project: Any, tmp_path: Path) -> None:
    path = write(tmp_path / "E1.md", "---\nid: E1\nprovince: Hunan\n---\n\n" + ENGLISH)
    project.import_sources([path])
    write(path, "---\nid: E1\nprovince: Hubei\n---\n\n" + ENGLISH)
    result = project.import_sources([path])

    assert result.conflicts == []
    assert result.metadata_changed
    assert project.db.execute("SELECT province FROM cases").fetchone()[0] == "Hubei"


def test_fixed_conflict_removed(project: Any, tmp_path: Path) -> None:
    manifest = write(tmp_path / "interviews.csv", MANIFEST)
    path = write(tmp_path / "W02.md", "---\nid: W02\nlevel: county\n---\n\n" + ENGLISH)
    project.import_sources([path], manifest=manifest)
    write(path, "---\nid: W02\nlevel: city\n---\n\n" + ENGLISH)
    project.import_sources([path])

    assert project.db["metadata_conflicts"].count == 0


# Encodings from the command line


def test_encoding_option_overrides_detection(runner: CliRunner, tmp_path: Path) -> None:
    text = "Интервьюер: Как устанавливаются цели?\n\nРеспондент: Провинция.\n"
    path = write(tmp_path / "R1.txt", text, "cp1251")
    result = invoke(runner, tmp_path / "q.db", "--encoding", "cp1251", "--language", "en", str(path))
    db = store.open_database(tmp_path / "q.db", create=False)
    stored = db.execute("SELECT text FROM sources").fetchone()[0]
    db.close()

    assert result.exit_code == 0, result.stderr
    assert stored == text


def test_wrong_encoding_option_names_byte(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path / "R1.txt", "Respondent: first line\nsecond line caf\u00e9\n", "cp1252")
    result = invoke(runner, tmp_path / "q.db", "--encoding", "utf-8", str(path))

    assert result.exit_code == 1
    assert "R1.txt, line 2: the file is not valid utf-8 text (byte 38)" in result.stderr


def test_manifest_encoding_option(runner: CliRunner, tmp_path: Path) -> None:
    manifest = write(tmp_path / "interviews.csv", "id,province,level\nW05,湖南,county\n", "big5")
    transcript = write(tmp_path / "W05.md", CHINESE)
    result = invoke(
        runner, tmp_path / "q.db", "--manifest", str(manifest), "--manifest-encoding", "big5",
        str(transcript),
    )
    db = store.open_database(tmp_path / "q.db", create=False)
    province = db.execute("SELECT province FROM cases WHERE id = 'W05'").fetchone()[0]
    db.close()

    assert result.exit_code == 0, result.stderr
    assert province == "湖南"


def test_utf16_without_bom_rejected(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path / "U1.txt", ENGLISH, "utf-16-le")
    result = invoke(runner, tmp_path / "q.db", str(path))

    assert result.exit_code == 1
    assert "--encoding utf-16-le" in result.stderr


def test_utf16_with_bom_accepted(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "U2.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + ENGLISH.replace("\n", "\r\n").encode("utf-16-le"))
    result = invoke(runner, tmp_path / "q.db", str(path))

    assert result.exit_code == 0, result.stderr
    assert ids(tmp_path / "q.db") == ["U2"]


def test_help_names_formats(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["import", "--help"], prog_name="qualkit")

    for suffix in (".docx", ".odt", ".rtf", ".pdf", ".srt", ".vtt"):
        assert suffix in result.stdout
    assert "--keep-going" in result.stdout
