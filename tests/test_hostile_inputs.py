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
    runner: CliRunner, sample_project: Any, args: tuple[str, ...], message: str
) -> None:
    result = invoke(runner, "--project", str(sample_project.folder), *args)

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
