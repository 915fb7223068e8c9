"""Messy and hostile inputs found by trying qualkit as a new user.

Each case ends in a clear error naming the file, line or value, with the
database left as it was, or in correct output.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qualkit.cli import cli


def invoke(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(cli, list(args), prog_name="qualkit")


@pytest.fixture
def project(runner: CliRunner, tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    result = invoke(runner, "init", str(folder))
    assert result.exit_code == 0, result.stderr
    return folder


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / "transcripts" / name
    path.write_text(text, encoding="utf-8")
    return path


def test_impossible_date_names_line(runner: CliRunner, project: Path, hash_of: Any) -> None:
    before = hash_of(project / "qualkit.db")
    path = write(project, "a.md", "---\nid: A1\nlevel: city\ndate: 2016-13-45\n---\n\nInterviewer: Hi.\n")
    result = invoke(runner, "--project", str(project), "import", str(path))

    assert result.exit_code == 1
    assert f"{path}, line 4" in result.stderr
    assert "2016-13-45" in result.stderr
    assert "Traceback" not in result.stderr
    assert hash_of(project / "qualkit.db") == before


def test_paragraph_over_spacy_limit_imports(runner: CliRunner, project: Path) -> None:
    # spaCy refuses texts over nlp.max_length (1,000,000 characters) by default.
    sentence = "We asked the province to lower the target for new jobs. "
    body = sentence * (1_100_000 // len(sentence) + 1)
    path = write(project, "long.md", "---\nid: L1\nlanguage: en\n---\n\n" + body + "\n")
    result = invoke(runner, "--project", str(project), "import", str(path))

    assert result.exit_code == 0, result.stderr
    assert "1 added" in result.stdout


def test_misspelt_setting_names_line(runner: CliRunner, project: Path) -> None:
    config = project / "qualkit.toml"
    text = config.read_text(encoding="utf-8").replace('unit = "sentence"', 'unti = "sentence"')
    config.write_text(text, encoding="utf-8")
    line = text[: text.index("unti")].count("\n") + 1
    result = invoke(runner, "build", str(project))

    assert result.exit_code == 1
    assert f"qualkit.toml, line {line}: unknown setting 'unti' in [autocode]" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_unit_value_rejected(runner: CliRunner, project: Path) -> None:
    config = project / "qualkit.toml"
    text = config.read_text(encoding="utf-8").replace('unit = "sentence"', 'unit = "chapter"')
    config.write_text(text, encoding="utf-8")
    result = invoke(runner, "build", str(project))

    assert result.exit_code == 1
    assert "'chapter'" in result.stderr


def test_listing_missing_db_fails(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nosuch" / "dir" / "x.db"
    result = invoke(runner, "--db", str(missing), "sources")

    assert result.exit_code == 1
    assert "not found" in result.stderr
    assert not missing.parent.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("codings", "--code", "nosuch"), "Unknown code 'nosuch'", id="code"),
        pytest.param(("codings", "--source", "NOSUCH"), "Unknown source 'NOSUCH'", id="source"),
        pytest.param(("links", "--target", "nosuch"), "Unknown target 'nosuch'", id="target"),
    ],
)
def test_unknown_filter_id_fails(
    runner: CliRunner, sample_copy: Path, args: tuple[str, ...], message: str
) -> None:
    # A copy, because the command's connection to the database may close
    # (and remove the WAL file) while a later test copies the shared sample.
    result = invoke(runner, "--project", str(sample_copy), *args)

    assert result.exit_code == 1
    assert message in result.stderr


def test_read_only_db_message(runner: CliRunner, sample_copy: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root can write to read-only files, so the case cannot occur")
    database = sample_copy / "qualkit.db"
    database.chmod(0o444)
    sample_copy.chmod(0o555)
    try:
        result = invoke(runner, "--project", str(sample_copy), "sources")
    finally:
        sample_copy.chmod(0o755)
        database.chmod(0o644)

    assert result.exit_code == 1
    assert "write access" in result.stderr


def test_markdown_quotes_are_separate_paragraphs(sample_project: Any) -> None:
    report = (sample_project.folder / "report" / "report.md").read_text(encoding="utf-8")
    lines = report.splitlines()
    citations = [i for i, line in enumerate(lines) if line.startswith("— Interview")]

    assert citations
    for index in citations:
        assert lines[index - 1] == ""
        assert not lines[index - 1].startswith(">")


def test_panel_error_fix_on_own_line(runner: CliRunner, sample_copy: Path) -> None:
    values = sample_copy / "bad.csv"
    values.write_text("target,unit,year,value\nfdi,Changsha,2011,abc\n", encoding="utf-8")
    result = invoke(runner, "--project", str(sample_copy), "scores", "import", str(values))

    assert result.exit_code == 1
    message_lines = result.stderr.strip().splitlines()
    assert re.search(r"line 2: .*'abc'", result.stderr)
    assert message_lines[-1].startswith(("Correct", "Fix"))


def test_accept_and_reject_together_rejected(runner: CliRunner, sample_copy: Path) -> None:
    result = invoke(runner, "--project", str(sample_copy), "review", "--accept", "--reject", "--all")

    assert result.exit_code == 2
    assert "cannot be used together" in result.stderr


def test_deeply_nested_query_clean_error(runner: CliRunner, sample_copy: Path) -> None:
    expression = "(" * 500 + "strategy" + ")" * 500
    result = invoke(runner, "--project", str(sample_copy), "query", "quotes", expression)

    assert result.exit_code == 1
    assert "nested deeper" in result.stderr
    assert "Traceback" not in result.stderr


def test_content_hash_ignores_paths(sample_copy: Path, hash_of: Any) -> None:
    import sqlite3

    before = hash_of(sample_copy / "qualkit.db")
    connection = sqlite3.connect(sample_copy / "qualkit.db")
    with connection:
        connection.execute("UPDATE sources SET path = '/elsewhere/' || id || '.md'")
    connection.close()

    assert hash_of(sample_copy / "qualkit.db") == before


def test_flagged_coding_keeps_whole_words(runner: CliRunner, project: Path) -> None:
    text = "Interviewer: Tell me.\n\nRespondent: Then the leaders come down for an inspection visit.\n"
    path = write(project, "R1.md", "---\nid: R1\nlanguage: en\n---\n\n" + text)
    assert invoke(runner, "--project", str(project), "import", str(path)).exit_code == 0
    assert invoke(runner, "--project", str(project), "autocode").exit_code == 0
    added = invoke(
        runner, "--project", str(project), "code", "add", "R1", "--code", "strategy",
        "--match", "the leaders come down for an inspection", "--coder", "ann",
    )
    assert added.exit_code == 0, added.stderr
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "the leaders come down for an inspection", "the provincial officials visit us for checks"
        ),
        encoding="utf-8",
    )
    assert invoke(runner, "--project", str(project), "import", str(path)).exit_code == 0
    listing = invoke(
        runner, "--project", str(project), "code", "list", "--coder", "ann", "--format", "json"
    )
    quotes = [row["quote"] for row in __import__("json").loads(listing.stdout)]

    assert len(quotes) == 1
    assert re.match(r"^(Then |the |provincial )", quotes[0])


def _write_memos(database: str, writer: str, count: int) -> None:
    import time

    from qualkit import store

    db = store.open_database(database, create=False)
    for index in range(count):
        with store.transaction(db):
            db.execute(
                "INSERT INTO memos (about, coder, text, created_at, updated_at) "
                "VALUES ('project', ?, ?, '', '')",
                [writer, str(index)],
            )
            # Hold the write lock a moment so the other process must wait.
            time.sleep(0.005)
    db.close()


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    import multiprocessing

    from qualkit import store

    database = str(tmp_path / "shared.db")
    store.open_database(database).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_memos, args=(database, name, 60)) for name in ("ann", "bo")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    db = store.open_database(database, create=False)
    counts = dict(db.execute("SELECT coder, count(*) FROM memos GROUP BY coder").fetchall())
    check = db.execute("PRAGMA integrity_check").fetchone()[0]
    db.close()

    assert [worker.exitcode for worker in workers] == [0, 0]
    assert counts == {"ann": 60, "bo": 60}
    assert check == "ok"


@pytest.mark.parametrize(
    ("front_matter_id", "message"),
    [
        pytest.param("0123", "read as a int", id="octal-looking-number"),
        pytest.param("1.10", "read as a float", id="decimal-number"),
        pytest.param('"a\\nb"', "characters other than", id="newline"),
        pytest.param('"../etc"', "characters other than", id="path"),
    ],
)
def test_unusable_ids_rejected(
    runner: CliRunner, project: Path, front_matter_id: str, message: str
) -> None:
    path = write(project, "x.md", f"---\nid: {front_matter_id}\n---\n\nInterviewer: Hi.\n")
    result = invoke(runner, "--project", str(project), "import", str(path))

    assert result.exit_code == 1
    assert message in result.stderr
    assert f"{path}, line 2" in result.stderr


def test_detected_language_stored_on_case(runner: CliRunner, project: Path) -> None:
    import sqlite3

    path = write(project, "plain.md", "Interviewer: Did the city bargain?\n\nRespondent: Yes, hard.\n")
    assert invoke(runner, "--project", str(project), "import", str(path)).exit_code == 0
    connection = sqlite3.connect(project / "qualkit.db")
    language = connection.execute("SELECT language FROM cases WHERE id = 'plain'").fetchone()[0]
    connection.close()

    assert language == "en"


def test_negative_span_not_swapped(runner: CliRunner, sample_copy: Path) -> None:
    result = invoke(
        runner, "--project", str(sample_copy), "code", "add", "G16S011",
        "--code", "strategy", "--span", "10:-1", "--coder", "ann",
    )

    assert result.exit_code in (1, 2)
    assert "Did you mean" not in result.stderr


def test_manifest_unclosed_quote_rejected(runner: CliRunner, project: Path) -> None:
    manifest = project / "interviews.csv"
    manifest.write_text('id,province,level\nA1,"Hunan,city\nA2,Hunan,city\n', encoding="utf-8")
    path = write(project, "A2.md", "---\nid: A2\n---\n\nInterviewer: Hi.\n")
    result = invoke(runner, "--project", str(project), "import", str(path), "--manifest", str(manifest))

    assert result.exit_code == 1
    assert "unclosed double quote" in result.stderr


# Hostile files and values found by fuzzing. Each case failed before its fix.


def _docx_bytes(text: str) -> bytes:
    import io

    import docx

    document = docx.Document()
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _odt_bytes(text: str) -> bytes:
    import io

    from odf.opendocument import OpenDocumentText
    from odf.text import P

    document = OpenDocumentText()
    document.text.addElement(P(text=text))
    buffer = io.BytesIO()
    document.write(buffer)
    return buffer.getvalue()


def _replace_member(archive_bytes: bytes, member: str, content: str) -> bytes:
    import io
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(archive_bytes))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for info in source.infolist():
            data = content.encode("utf-8") if info.filename == member else source.read(info)
            archive.writestr(info, data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("make", "name"),
    [pytest.param(_docx_bytes, "a Word document", id="docx"), pytest.param(_odt_bytes, "an OpenDocument text", id="odt")],
)
def test_office_file_renamed_to_txt_read(
    runner: CliRunner, project: Path, caplog: pytest.LogCaptureFixture, make: Any, name: str
) -> None:
    path = project / "transcripts" / "renamed.txt"
    path.write_bytes(make("Interviewer: Did the county bargain?"))
    result = invoke(runner, "--project", str(project), "import", str(path))

    assert result.exit_code == 0, result.stderr
    assert f"the file is {name}" in caplog.text
    assert "NUL" not in caplog.text + result.stderr
    assert "UTF-16" not in caplog.text + result.stderr


def test_old_word_file_renamed_to_txt_named(runner: CliRunner, project: Path) -> None:
    from qualkit.readers.common import OLE2_SIGNATURE

    path = project / "transcripts" / "old.txt"
    path.write_bytes(OLE2_SIGNATURE + bytes(600))
    result = invoke(runner, "--project", str(project), "import", str(path))

    assert result.exit_code == 1
    assert "old binary Office file" in result.stderr
    assert "UTF-16" not in result.stderr


def test_zip_renamed_to_txt_named(runner: CliRunner, project: Path) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "Interviewer: Hi.")
    path = project / "transcripts" / "bundle.txt"
    path.write_bytes(buffer.getvalue())
    result = invoke(runner, "--project", str(project), "import", str(path))

    assert result.exit_code == 1
    assert "a zip archive, not text" in result.stderr


@pytest.mark.parametrize(
    ("make", "suffix"),
    [
        pytest.param(_docx_bytes, ".docx", id="docx"),
        pytest.param(_odt_bytes, ".odt", id="odt"),
        pytest.param(_docx_bytes, ".txt", id="docx-renamed-txt"),
    ],
)
def test_truncated_office_file_called_damaged(
    runner: CliRunner, project: Path, hash_of: Any, make: Any, suffix: str
) -> None:
    data = make("Interviewer: Hi. " * 200)
    path = project / "transcripts" / f"cut{suffix}"
    path.write_bytes(data[: len(data) * 2 // 3])
    before = hash_of(project / "qualkit.db")
    result = invoke(runner, "--project", str(project), "import", str(path))

    assert result.exit_code == 1
    assert "damaged or truncated" in result.stderr
    assert "not a zip archive" not in result.stderr
    assert hash_of(project / "qualkit.db") == before


@pytest.mark.parametrize(
    "front_matter",
    [
        pytest.param("x: " + "[" * 3000 + "]" * 3000, id="flow-lists"),
        pytest.param("x:\n" + "".join("  " * depth + "-\n" for depth in range(1, 300)), id="block-lists"),
        pytest.param("x: " + "{a: " * 2000 + "1" + "}" * 2000, id="flow-mappings"),
    ],
)
def test_deeply_nested_front_matter_rejected(
    runner: CliRunner, project: Path, hash_of: Any, front_matter: str
) -> None:
    path = write(project, "deep.md", f"---\nid: D1\n{front_matter}\n---\n\nInterviewer: Hi.\n")
    before = hash_of(project / "qualkit.db")
    result = invoke(runner, "--project", str(project), "import", str(path))

    assert result.exit_code == 1
    assert "nested deeper than 100 levels" in result.stderr
    assert "Traceback" not in result.stderr
    assert not isinstance(result.exception, RecursionError)
    assert hash_of(project / "qualkit.db") == before


def test_alias_bomb_front_matter_rejected(runner: CliRunner, project: Path, hash_of: Any) -> None:
    # Each level repeats the one before nine times: 9**7 values from 300 bytes.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 7):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    path = write(project, "bomb.md", "---\nid: B1\n" + "\n".join(lines) + "\n---\n\nInterviewer: Hi.\n")
    before = hash_of(project / "qualkit.db")
    result = invoke(runner, "--project", str(project), "import", str(path))

    assert result.exit_code == 1
    assert "counting the values of an alias again" in result.stderr
    assert hash_of(project / "qualkit.db") == before


def test_collection_as_yaml_key_rejected(runner: CliRunner, project: Path) -> None:
    path = write(project, "key.md", "---\nid: K1\n? [a, b]\n: 1\n---\n\nInterviewer: Hi.\n")
    result = invoke(runner, "--project", str(project), "import", str(path))

    assert result.exit_code == 1
    assert f"{path}, line 3" in result.stderr
    assert "a key must be a single value" in result.stderr


def test_nul_in_yaml_names_line(tmp_path: Path) -> None:
    from qualkit.errors import InputError
    from qualkit.yamlfile import load_yaml

    path = tmp_path / "codebook.yaml"
    path.write_text("codebook:\n  id: x\ncodes:\n  - id: a\x00b\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_yaml(path)

    assert caught.value.line == 4
    assert "U+0000" in caught.value.message
    assert "\n" not in caught.value.message


def test_huge_yaml_value_shortened(tmp_path: Path) -> None:
    from qualkit.errors import InputError
    from qualkit.yamlfile import load_yaml

    path = tmp_path / "big.yaml"
    path.write_text("a: " + "9" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_yaml(path)

    assert len(str(caught.value)) < 400


def test_deeply_nested_codebook_rejected(tmp_path: Path) -> None:
    from qualkit.codebook import load_codebook
    from qualkit.errors import CodebookError, InputError

    path = tmp_path / "deep.yaml"
    path.write_text("codebook:\n  id: deep\n  version: '1'\ncodes: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises((CodebookError, InputError)) as caught:
        load_codebook(path)

    assert "nested deeper" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param("<text:section>" * 400 + "<text:p>x</text:p>" + "</text:section>" * 400, "nested deeper", id="nested-sections"),
        pytest.param("<text:p>" + "<text:span>" * 3000 + "x" + "</text:span>" * 3000 + "</text:p>", "nested deeper", id="nested-spans"),
        pytest.param('<text:p>a<text:s text:c="999999999"/>b</text:p>', "space count", id="huge-space-run"),
        pytest.param('<text:p>a<text:s text:c="abc"/>b</text:p>', "space count", id="space-run-not-number"),
    ],
)
def test_hostile_odt_body_rejected(tmp_path: Path, body: str, message: str) -> None:
    import io
    import zipfile

    from qualkit.errors import TranscriptError
    from qualkit.readers import read_document

    data = _odt_bytes("PLACEHOLDER")
    content = zipfile.ZipFile(io.BytesIO(data)).read("content.xml").decode("utf-8")
    content = re.sub(r"<text:p[^>]*>PLACEHOLDER</text:p>", lambda _match: body, content)
    path = tmp_path / "hostile.odt"
    path.write_bytes(_replace_member(data, "content.xml", content))
    with pytest.raises(TranscriptError) as caught:
        read_document(path)

    assert message in str(caught.value)


def test_rtf_huge_unicode_escape_rejected(tmp_path: Path) -> None:
    from qualkit.errors import TranscriptError
    from qualkit.readers import read_document

    path = tmp_path / "big.rtf"
    path.write_bytes(b"{\\rtf1\\ansi Interviewer: \\u99999999999? hi}")
    with pytest.raises(TranscriptError) as caught:
        read_document(path)

    assert "not a readable RTF file" in str(caught.value)


def test_nul_removed_from_rtf_text(tmp_path: Path) -> None:
    from qualkit.transcripts import read_transcript

    path = tmp_path / "nul.rtf"
    path.write_bytes(b"{\\rtf1\\ansi Interviewer: hi\x00 there}")
    transcript = read_transcript(path)

    assert "\x00" not in transcript.text
    assert "Interviewer: hi there" in transcript.text
    assert any("NUL" in warning for warning in transcript.warnings)


def test_stray_parenthesis_named(runner: CliRunner, sample_copy: Path) -> None:
    result = invoke(runner, "--project", str(sample_copy), "query", "quotes", "strategy OR tournament)")

    assert result.exit_code == 1
    assert "with no matching '('" in result.stderr
    assert "needs AND or OR" not in result.stderr
    assert "at character 23" in result.stderr


def test_bulk_accept_nothing_matched(runner: CliRunner, sample_copy: Path, row_count: Any, hash_of: Any) -> None:
    database = sample_copy / "qualkit.db"
    log_rows = row_count(database, "audit_log")
    before = hash_of(database)
    result = invoke(
        runner, "--project", str(sample_copy), "review", "--accept",
        "--where", "level=nosuchlevel", "--coder", "ann",
    )

    assert result.exit_code == 1
    assert "No suggestions match these filters" in result.stderr
    assert "batch" not in result.stdout
    assert row_count(database, "audit_log") == log_rows
    assert hash_of(database) == before


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@"])
def test_csv_listing_neutralizes_formulas(runner: CliRunner, project: Path, prefix: str) -> None:
    import csv
    import io

    formula = prefix + "HYPERLINK(1)"
    path = write(project, "F1.md", f"---\nid: F1\nprovince: '{formula}'\n---\n\nInterviewer: Hi.\n")
    assert invoke(runner, "--project", str(project), "import", str(path)).exit_code == 0
    listing = invoke(runner, "--project", str(project), "sources", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(listing.stdout)))

    assert listing.exit_code == 0, listing.stderr
    assert rows[0]["province"] == "'" + formula


def test_csv_listing_quotes_neutralized(runner: CliRunner, project: Path) -> None:
    import csv
    import io

    text = "Interviewer: Tell me.\n\nRespondent: =SUM(A1:A9) was the total they asked for.\n"
    path = write(project, "Q1.md", "---\nid: Q1\nlanguage: en\n---\n\n" + text)
    assert invoke(runner, "--project", str(project), "import", str(path)).exit_code == 0
    assert invoke(runner, "--project", str(project), "autocode").exit_code == 0
    added = invoke(
        runner, "--project", str(project), "code", "add", "Q1", "--code", "strategy",
        "--match", "=SUM(A1:A9) was the total", "--coder", "ann",
    )
    assert added.exit_code == 0, added.stderr
    listing = invoke(runner, "--project", str(project), "code", "list", "--format", "csv")
    as_json = invoke(runner, "--project", str(project), "code", "list", "--format", "json")
    rows = list(csv.DictReader(io.StringIO(listing.stdout)))

    assert rows[0]["quote"] == "'=SUM(A1:A9) was the total"
    assert __import__("json").loads(as_json.stdout)[0]["quote"] == "=SUM(A1:A9) was the total"


def test_csv_frame_neutralizes_whitespace_prefixes(capsys: pytest.CaptureFixture[str]) -> None:
    import csv
    import io

    import pandas as pd

    from qualkit.cli.common import echo_frame

    frame = pd.DataFrame({"quote": ["\tHYPERLINK(1)", "\rHYPERLINK(1)", "plain"], "count": [-1, 2, 3]})
    echo_frame(frame, "csv")
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out, newline="")))

    assert [row["quote"] for row in rows] == ["'\tHYPERLINK(1)", "'\rHYPERLINK(1)", "plain"]
    assert [row["count"] for row in rows] == ["-1", "2", "3"]


def test_table_listing_escapes_terminal_controls(runner: CliRunner, project: Path) -> None:
    path = write(project, "E1.md", "---\nid: E1\nprovince: \"a\\e]0;owned\\ab\"\n---\n\nInterviewer: Hi.\n")
    assert invoke(runner, "--project", str(project), "import", str(path)).exit_code == 0
    listing = invoke(runner, "--project", str(project), "sources")

    assert listing.exit_code == 0, listing.stderr
    assert "\x1b" not in listing.stdout
    assert "\x07" not in listing.stdout
    assert "a\\x1b]0;owned\\x07b" in listing.stdout


@pytest.mark.parametrize("target", ["../../escaped", "a/b", "a\\b", "nul\x00byte", "..", ".hidden", "x" * 400])
def test_rank_figure_stays_in_folder(tmp_path: Path, target: str) -> None:
    import pandas as pd

    from qualkit.plots import plot_rank_changes

    folder = tmp_path / "figures" / "inner"
    changes = pd.DataFrame(
        {
            "target": [target, target],
            "unit": ["Changsha", "Zhuzhou"],
            "from_year": [2011, 2011],
            "to_year": [2012, 2012],
            "rank_from": [1, 2],
            "rank_to": [2, 1],
        }
    )
    paths = plot_rank_changes(changes, target, folder, formats=["svg"])

    assert len(paths) == 1
    assert paths[0].parent == folder
    assert paths[0].exists()
    assert len(paths[0].name) <= 110
    assert sorted(path.name for path in tmp_path.rglob("*") if path.is_file()) == [paths[0].name]


def test_figure_names_differ_per_target(tmp_path: Path) -> None:
    from qualkit.plots import safe_file_stem

    assert safe_file_stem("ranks_fdi") == "ranks_fdi"
    assert safe_file_stem("ranks_a/b") != safe_file_stem("ranks_a_b")
    assert safe_file_stem("ranks_a/b") != safe_file_stem("ranks_a\\b")


def test_manifest_huge_cell_rejected(runner: CliRunner, project: Path, hash_of: Any) -> None:
    manifest = project / "interviews.csv"
    manifest.write_text("id,province\nA1," + "x" * 200_000 + "\n", encoding="utf-8")
    path = write(project, "A1.md", "Interviewer: Hi.\n")
    before = hash_of(project / "qualkit.db")
    result = invoke(runner, "--project", str(project), "import", str(path), "--manifest", str(manifest))

    assert result.exit_code == 1
    assert "invalid CSV" in result.stderr
    assert "field larger than field limit" in result.stderr
    assert hash_of(project / "qualkit.db") == before


@pytest.mark.parametrize("stem", ["a\nb", "a\x1b[2Jb", " ", "."])
def test_unsafe_file_name_id_rejected(runner: CliRunner, project: Path, hash_of: Any, stem: str) -> None:
    path = write(project, f"{stem}.md", "Interviewer: Hi.\n")
    before = hash_of(project / "qualkit.db")
    result = invoke(runner, "--project", str(project), "import", str(path))

    assert result.exit_code == 1
    assert "contains a control character or a path separator" in result.stderr
    assert "\x1b" not in result.stderr
    assert hash_of(project / "qualkit.db") == before


def test_file_name_with_space_still_imports(runner: CliRunner, project: Path) -> None:
    path = write(project, "Interview 1.md", "Interviewer: Hi.\n")
    result = invoke(runner, "--project", str(project), "import", str(path))

    assert result.exit_code == 0, result.stderr
    assert "1 added" in result.stdout


def test_codebook_invalid_utf8_names_line(tmp_path: Path) -> None:
    from qualkit.codebook import load_codebook
    from qualkit.errors import CodebookError

    path = tmp_path / "latin1.yaml"
    path.write_bytes("codebook:\n  id: x\ncodes:\n  - id: caf\xe9\n".encode("latin-1"))
    with pytest.raises(CodebookError) as caught:
        load_codebook(path)

    assert caught.value.line == 4
    assert "not valid UTF-8" in caught.value.message


REGEX_CODEBOOK = """\
codebook:
  id: regex
  version: "1"
codes:
  - id: strategy
    label: Bargaining strategy
    definition: A way a lower level tries to obtain targets that suit it.
    when_to_use: The respondent describes bargaining.
    when_not_to_use: No bargaining is described.
    example: We talked the targets down.
    rules:
      en:
        regex: ['{expression}']
"""


@pytest.mark.parametrize("expression", [r"(a+)+$", r"(\w+\s?)*done", r"(?:x|(\s*\w+))+$"])
def test_backtracking_regex_rejected(tmp_path: Path, expression: str) -> None:
    import time

    from qualkit.codebook import load_codebook
    from qualkit.errors import CodebookError

    path = tmp_path / "codebook.yaml"
    path.write_text(REGEX_CODEBOOK.format(expression=expression), encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(CodebookError) as caught:
        load_codebook(path)

    assert caught.value.line == 13
    assert "exponential time" in caught.value.message
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("expression", [r"(?:\d+,)+\d+", r"\bover-?(?:fulfil|achiev)\w*", r"(?:ab)+"])
def test_repeated_group_with_separator_accepted(tmp_path: Path, expression: str) -> None:
    from qualkit.codebook import load_codebook

    path = tmp_path / "codebook.yaml"
    path.write_text(REGEX_CODEBOOK.format(expression=expression), encoding="utf-8")
    codebook = load_codebook(path)

    assert codebook.codes["strategy"].rules["en"].regex == (expression,)


def test_huge_front_matter_rejected(runner: CliRunner, project: Path, hash_of: Any) -> None:
    import time

    keys = "".join(f"k{index}: v\n" for index in range(20_000))
    path = write(project, "big.md", "---\nid: BIG\n" + keys + "---\n\nInterviewer: Hi.\n")
    before = hash_of(project / "qualkit.db")
    started = time.perf_counter()
    result = invoke(runner, "--project", str(project), "import", str(path))

    assert result.exit_code == 1
    assert "over the limit of 100,000" in result.stderr
    assert time.perf_counter() - started < 10
    assert hash_of(project / "qualkit.db") == before


def test_pdf_unknown_filter_rejected(tmp_path: Path) -> None:
    from fpdf import FPDF

    from qualkit.errors import TranscriptError
    from qualkit.readers import read_document

    document = FPDF()
    document.add_page()
    document.set_font("Helvetica", size=12)
    document.cell(0, 8, "Interviewer: How were the targets set?")
    data = bytes(document.output())
    assert b"/Filter /FlateDecode" in data
    path = tmp_path / "filter.pdf"
    path.write_bytes(data.replace(b"/Filter /FlateDecode", b"/Filter .FlateDecode"))
    with pytest.raises(TranscriptError) as caught:
        read_document(path)

    assert "not a readable PDF file" in str(caught.value)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        pytest.param("aliases: [fdi, investment]", "'aliases' of target 'fdi' must be a mapping", id="aliases-list"),
        pytest.param("aliases: {en: 5}", "'aliases' of target 'fdi' must be a mapping", id="aliases-number"),
        pytest.param("aliases: {en: [[fdi]]}", "'aliases' of target 'fdi' must be a mapping", id="aliases-nested"),
        pytest.param("options: [1]", "'options' of target 'fdi' must be a mapping", id="options-list"),
        pytest.param("options: min", "'options' of target 'fdi' must be a mapping", id="options-text"),
        pytest.param("higher_is_harder: 'no'", "must be true or false without quotes", id="quoted-boolean"),
        pytest.param("order: first", "'order' of target 'fdi' must be a whole number", id="order-text"),
        pytest.param("name: {en: FDI}", "'name' of target 'fdi' must be text", id="name-mapping"),
    ],
)
def test_target_field_types_checked(tmp_path: Path, field: str, message: str) -> None:
    from qualkit.errors import InputError
    from qualkit.targets import load_targets

    path = tmp_path / "targets.yaml"
    path.write_text(f"targets:\n  - id: fdi\n    {field}\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_targets(path)

    assert message in caught.value.message
    assert caught.value.line == 3


@pytest.mark.parametrize(
    ("old_line", "new_line", "message", "line"),
    [
        pytest.param("    rules:", "    parent: []\n    rules:", "unknown parent []", 11, id="parent-list"),
        pytest.param("    rules:", "    parent: {a: 1}\n    rules:", "unknown parent", 11, id="parent-mapping"),
        pytest.param(
            "    example: We talked the targets down.", "    example: [a, b]",
            "'example' of 'strategy' must be text", 10, id="example-list",
        ),
    ],
)
def test_code_field_types_checked(
    tmp_path: Path, old_line: str, new_line: str, message: str, line: int
) -> None:
    from qualkit.codebook import load_codebook
    from qualkit.errors import CodebookError

    text = REGEX_CODEBOOK.format(expression="bargain")
    assert old_line + "\n" in text
    path = tmp_path / "codebook.yaml"
    path.write_text(text.replace(old_line + "\n", new_line + "\n"), encoding="utf-8")
    with pytest.raises(CodebookError) as caught:
        load_codebook(path)

    assert message in caught.value.message
    assert caught.value.line == line


@pytest.mark.parametrize("year", ["99999999999999999999", "፩፪፫፬", "0", "20111"])
def test_panel_year_must_have_four_digits(tmp_path: Path, year: str) -> None:
    from qualkit import store
    from qualkit.errors import PanelError
    from qualkit.panel import import_panel_files
    from qualkit.targets import load_targets, store_targets

    db = store.open_database(tmp_path / "panel.db")
    with store.transaction(db):
        store_targets(db, load_targets(Path(__file__).parents[1] / "interviews_sample" / "targets.yaml"))
    values = tmp_path / "values.csv"
    values.write_text(f"target,unit,year,value\nshanty_town,Changsha,{year},5\n", encoding="utf-8")
    before = store.content_hash(db)
    with pytest.raises(PanelError) as caught, store.transaction(db):
        import_panel_files(db, [values])
    after = store.content_hash(db)
    db.close()

    assert "is not a four-digit year" in str(caught.value)
    assert after == before


def test_query_caret_under_wide_characters() -> None:
    from qualkit.errors import InputError
    from qualkit.queries import parse_expression

    with pytest.raises(InputError) as caught:
        parse_expression("策略\tAND\n)")
    lines = caught.value.message.splitlines()

    # 策略 takes four terminal columns, then a space, AND and a space.
    assert lines[1] == "  策略 AND )"
    assert lines[2] == "  " + " " * 9 + "^"


@pytest.mark.parametrize("data", [b"PK\x03\x04", b"PK\x05\x06" + bytes(18)], ids=["zip-header-only", "empty-zip"])
def test_damaged_excel_panel_rejected(tmp_path: Path, data: bytes) -> None:
    from qualkit.errors import PanelError
    from qualkit.panel_files import read_table

    path = tmp_path / "values.xlsx"
    path.write_bytes(data)
    with pytest.raises(PanelError) as caught:
        read_table(path)

    assert str(path) in str(caught.value)


def test_docx_with_foreign_root_rejected(tmp_path: Path) -> None:
    import io
    import zipfile

    from qualkit.errors import TranscriptError
    from qualkit.readers import read_document

    data = _docx_bytes("Interviewer: Hi.")
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml").decode("utf-8")
    renamed = xml.replace("<w:document ", "<w:documenx ").replace("</w:document>", "</w:documenx>")
    path = tmp_path / "foreign.docx"
    path.write_bytes(_replace_member(data, "word/document.xml", renamed))
    with pytest.raises(TranscriptError) as caught:
        read_document(path)

    assert "does not contain a Word document" in str(caught.value)


def test_odt_unknown_xml_encoding_rejected(tmp_path: Path) -> None:
    import io
    import zipfile

    from qualkit.errors import TranscriptError
    from qualkit.readers import read_document

    data = _odt_bytes("Interviewer: Hi.")
    xml = zipfile.ZipFile(io.BytesIO(data)).read("content.xml").decode("utf-8")
    path = tmp_path / "encoding.odt"
    path.write_bytes(_replace_member(data, "content.xml", xml.replace("encoding='UTF-8'", "encoding='TTF-8'")))
    with pytest.raises(TranscriptError) as caught:
        read_document(path)

    assert "not a readable OpenDocument file" in str(caught.value)


def test_odt_unsupported_zip_version_rejected(tmp_path: Path) -> None:
    import struct

    from qualkit.errors import TranscriptError
    from qualkit.readers import read_document

    data = bytearray(_odt_bytes("Interviewer: Hi."))
    # Raise "version needed to extract" (offset 6) of every central directory entry to 8.4.
    position = data.find(b"PK\x01\x02")
    while position != -1:
        struct.pack_into("<H", data, position + 6, 84)
        position = data.find(b"PK\x01\x02", position + 4)
    path = tmp_path / "version.odt"
    path.write_bytes(bytes(data))
    with pytest.raises(TranscriptError) as caught:
        read_document(path)

    assert "zip file version 8.4" in str(caught.value)


@pytest.mark.parametrize(("make", "suffix"), [(_docx_bytes, ".docx"), (_odt_bytes, ".odt"), (_odt_bytes, ".txt")])
def test_zip_member_password_flag_rejected(tmp_path: Path, make: Any, suffix: str) -> None:
    import struct

    from qualkit.errors import TranscriptError
    from qualkit.readers import read_document

    data = bytearray(make("Interviewer: Hi."))
    # Set the "encrypted" bit (bit 0 of the flags at offset 8) in every central directory entry.
    position = data.find(b"PK\x01\x02")
    while position != -1:
        flags = struct.unpack_from("<H", data, position + 8)[0]
        struct.pack_into("<H", data, position + 8, flags | 1)
        position = data.find(b"PK\x01\x02", position + 4)
    path = tmp_path / f"locked{suffix}"
    path.write_bytes(bytes(data))
    with pytest.raises(TranscriptError) as caught:
        read_document(path)

    assert "encrypted" in str(caught.value)


def test_excel_bad_directory_offset_rejected(tmp_path: Path) -> None:
    import io
    import struct

    import openpyxl

    from qualkit.errors import PanelError
    from qualkit.panel_files import read_table

    workbook = openpyxl.Workbook()
    workbook.active.append(["target", "unit", "year", "value"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    data = bytearray(buffer.getvalue())
    # Claim the central directory starts 16 MiB later than it does, so zipfile
    # computes a negative offset for the members and the seek raises OSError.
    end_record = data.rfind(b"PK\x05\x06")
    offset = struct.unpack_from("<I", data, end_record + 16)[0]
    struct.pack_into("<I", data, end_record + 16, offset + (1 << 24))
    path = tmp_path / "values.xlsx"
    path.write_bytes(bytes(data))
    with pytest.raises(PanelError) as caught:
        read_table(path)

    assert "not a readable Excel file" in str(caught.value)


def test_matrix_export_quotes_carriage_return(tmp_path: Path) -> None:
    # pandas quotes a field containing "\n" but not one containing a bare
    # "\r", which spreadsheet readers take as a row break.
    import csv

    import pandas as pd

    from qualkit.quantitize import CaseCodeMatrix, export_matrix

    frame = pd.DataFrame({"case": ["A1", "A2"], "province": ["Hu\rnan", "Guizhou"], "strategy": [1, 0]})
    columns = {"case": (None, None), "province": (None, None), "strategy": ("strategy", "presence")}
    matrix = CaseCodeMatrix(frame=frame, columns=columns)
    path = export_matrix(matrix, tmp_path / "m.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))

    assert [row["province"] for row in rows] == ["Hu\rnan", "Guizhou"]
