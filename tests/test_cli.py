"""Tests of the ``qualkit`` command line through click's CliRunner."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qualkit import store
from qualkit.cli import cli

VALID_TRANSCRIPT = """\
---
id: C16V01
province: Hunan
level: city
---

Interviewer: How are targets set?

Respondent: The province sets them.
"""
# "village", on line 4, is not one of the default levels.
INVALID_LEVEL_TRANSCRIPT = """\
---
id: C16V02
province: Hunan
level: village
---

Respondent: We talked the target down.
"""
TARGETS = """\
targets:
  - id: shanty_town
    name: Urban shanty town transformation
    category: social_welfare
"""
# Line 3 has a value that is not a number, and line 5 repeats line 4's unit-year.
BAD_VALUES = """\
target,unit,year,value
shanty_town,Changsha,2011,24278
shanty_town,Changsha,2012,about 13000
shanty_town,Zhuzhou,2011,13454
shanty_town,Zhuzhou,2011,13455
"""


def invoke(runner: CliRunner, *args: str, **kwargs: Any) -> Result:
    return runner.invoke(cli, list(args), prog_name="qualkit", **kwargs)


def help_commands(stdout: str) -> list[str]:
    """Return the lines of the Commands section of a --help output."""
    lines = stdout.split("Commands:\n", 1)[1].splitlines()
    return [line for line in lines if line.strip()]


# Help


def test_help_exits_zero(runner: CliRunner) -> None:
    assert invoke(runner, "--help").exit_code == 0


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in sorted(cli.commands)])
def test_help_lists_command_once(runner: CliRunner, name: str) -> None:
    lines = help_commands(invoke(runner, "--help").stdout)

    assert len([line for line in lines if line.split()[0] == name]) == 1


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in sorted(cli.commands)])
def test_help_summary_complete(runner: CliRunner, name: str) -> None:
    lines = help_commands(invoke(runner, "--help").stdout)
    line = next((line for line in lines if line.split()[0] == name), "")

    assert len(line.split()) > 1
    assert not line.endswith("...")


def test_help_one_line_per_command(runner: CliRunner) -> None:
    lines = help_commands(invoke(runner, "--help").stdout)

    assert len(lines) == len(cli.commands)


# init and database selection


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("qualkit.toml", id="config"),
        pytest.param("qualkit.db", id="database"),
    ],
)
def test_init_creates_file(runner: CliRunner, tmp_path: Path, name: str) -> None:
    folder = tmp_path / "study"
    result = invoke(runner, "init", str(folder))

    assert result.exit_code == 0
    assert (folder / name).is_file()


def test_init_twice_fails(runner: CliRunner, tmp_path: Path) -> None:
    invoke(runner, "init", str(tmp_path / "study"))
    result = invoke(runner, "init", str(tmp_path / "study"))

    assert result.exit_code == 1
    assert "already exists" in result.stderr


@pytest.fixture
def transcript(tmp_path: Path) -> Path:
    path = tmp_path / "C16V01.md"
    path.write_text(VALID_TRANSCRIPT, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "selection",
    [pytest.param("option", id="db-option"), pytest.param("env", id="QUALKIT_DB")],
)
def test_database_selected(
    runner: CliRunner,
    tmp_path: Path,
    transcript: Path,
    row_count: Callable[[Path, str], int],
    selection: str,
) -> None:
    chosen = tmp_path / "chosen.db"
    empty_folder = tmp_path / "no-project"
    empty_folder.mkdir()
    if selection == "option":
        result = invoke(
            runner,
            "--project",
            str(empty_folder),
            "--db",
            str(chosen),
            "import",
            str(transcript),
        )
    else:
        result = invoke(
            runner,
            "--project",
            str(empty_folder),
            "import",
            str(transcript),
            env={"QUALKIT_DB": str(chosen)},
        )

    assert result.exit_code == 0
    assert row_count(chosen, "sources") == 1


def test_db_option_overrides_environment(
    runner: CliRunner,
    tmp_path: Path,
    transcript: Path,
    row_count: Callable[[Path, str], int],
) -> None:
    from_option = tmp_path / "option.db"
    from_env = tmp_path / "env.db"
    result = invoke(
        runner,
        "--project",
        str(tmp_path),
        "--db",
        str(from_option),
        "import",
        str(transcript),
        env={"QUALKIT_DB": str(from_env)},
    )

    assert result.exit_code == 0
    assert row_count(from_option, "sources") == 1
    assert not from_env.exists()


def test_db_option_overrides_project(
    runner: CliRunner, sample_project: Any, tmp_path: Path
) -> None:
    other = tmp_path / "other.db"
    store.open_database(other).close()
    result = invoke(
        runner,
        "--project",
        str(sample_project.folder),
        "--db",
        str(other),
        "sources",
        "--format",
        "json",
    )

    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_no_project_no_db_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(
        runner, "--project", str(tmp_path), "sources", env={"QUALKIT_DB": None}
    )

    assert result.exit_code == 2
    assert "no database given" in result.stderr


# import


def test_import_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "absent.md"
    result = invoke(runner, "--db", str(tmp_path / "q.db"), "import", str(missing))

    assert result.exit_code == 2
    assert "absent.md" in result.stderr
    assert result.stdout == ""


@pytest.fixture
def invalid_import(
    runner: CliRunner, tmp_path: Path, transcript: Path
) -> tuple[Result, Path, Path]:
    """Import a valid and an invalid transcript together."""
    invalid = tmp_path / "C16V02.md"
    invalid.write_text(INVALID_LEVEL_TRANSCRIPT, encoding="utf-8")
    database = tmp_path / "q.db"
    result = invoke(
        runner,
        "--project",
        str(tmp_path),
        "--db",
        str(database),
        "import",
        str(transcript),
        str(invalid),
    )
    return result, invalid, database


def test_import_invalid_level_exit(invalid_import: tuple[Result, Path, Path]) -> None:
    result, _, _ = invalid_import

    assert result.exit_code == 1


def test_import_invalid_level_message(
    invalid_import: tuple[Result, Path, Path],
) -> None:
    result, invalid, _ = invalid_import

    assert f"{invalid}, line 4:" in result.stderr
    assert "level 'village'" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "table", [pytest.param(t, id=t) for t in ("sources", "cases", "segments")]
)
def test_import_invalid_level_stores_nothing(
    invalid_import: tuple[Result, Path, Path],
    row_count: Callable[[Path, str], int],
    table: str,
) -> None:
    _, _, database = invalid_import

    assert row_count(database, table) == 0


# scores import


@pytest.fixture
def bad_values_import(runner: CliRunner, tmp_path: Path) -> tuple[Result, Path]:
    folder = tmp_path / "study"
    assert invoke(runner, "init", str(folder)).exit_code == 0
    (folder / "targets.yaml").write_text(TARGETS, encoding="utf-8")
    values = folder / "values.csv"
    values.write_text(BAD_VALUES, encoding="utf-8")
    result = invoke(runner, "--project", str(folder), "scores", "import", str(values))
    return result, folder


def test_scores_import_bad_rows_exit(bad_values_import: tuple[Result, Path]) -> None:
    result, _ = bad_values_import

    assert result.exit_code == 1


@pytest.mark.parametrize(
    "problem",
    [
        pytest.param("line 3: value 'about 13000' is not a number", id="non-numeric"),
        pytest.param("line 5: duplicate of line 4", id="duplicate-unit-year"),
    ],
)
def test_scores_import_lists_bad_line(
    bad_values_import: tuple[Result, Path], problem: str
) -> None:
    result, _ = bad_values_import

    assert problem in result.stderr


def test_scores_import_stores_nothing(
    bad_values_import: tuple[Result, Path], row_count: Callable[[Path, str], int]
) -> None:
    _, folder = bad_values_import

    assert row_count(folder / "qualkit.db", "target_values") == 0


# Listings on the built sample


@pytest.fixture(scope="module")
def negotiability_csv(
    sample_project: Any, tmp_path_factory: pytest.TempPathFactory
) -> Result:
    # The command stores the scores it computes, so it runs on a copy.
    folder = tmp_path_factory.mktemp("scores") / "interviews_sample"
    shutil.copytree(sample_project.folder, folder)
    return invoke(
        CliRunner(),
        "--project",
        str(folder),
        "scores",
        "negotiability",
        "--format",
        "csv",
    )


def test_negotiability_csv_exit(negotiability_csv: Result) -> None:
    assert negotiability_csv.exit_code == 0
    assert negotiability_csv.stderr == ""


def test_negotiability_csv_rows(negotiability_csv: Result) -> None:
    rows = list(csv.DictReader(io.StringIO(negotiability_csv.stdout)))

    assert len(rows) == 17


def test_negotiability_csv_first_target(negotiability_csv: Result) -> None:
    rows = list(csv.DictReader(io.StringIO(negotiability_csv.stdout)))

    assert rows[0]["name"] == "Urban shanty town transformation"


def test_negotiability_csv_whole_numbers(negotiability_csv: Result) -> None:
    first = next(csv.DictReader(io.StringIO(negotiability_csv.stdout)))

    assert first["researcher_order"] == "1"
    assert first["range_min"] == "-6"
    assert first["range_max"] == "8"


@pytest.fixture(scope="module")
def explain_result(sample_project: Any) -> Result:
    return invoke(
        CliRunner(),
        "--project",
        str(sample_project.folder),
        "scores",
        "explain",
        "shanty_town",
    )


def test_explain_exit(explain_result: Result) -> None:
    assert explain_result.exit_code == 0


@pytest.mark.parametrize(
    "year", [pytest.param(y, id=str(y)) for y in (2011, 2012, 2013)]
)
def test_explain_prints_ranking(explain_result: Result, year: int) -> None:
    assert f"Ranking {year} (14 units)" in explain_result.stdout


@pytest.mark.parametrize(
    "transition",
    [
        pytest.param("2011 -> 2012", id="2011-2012"),
        pytest.param("2012 -> 2013", id="2012-2013"),
    ],
)
def test_explain_prints_transition(explain_result: Result, transition: str) -> None:
    assert f"Transition {transition}" in explain_result.stdout


def test_explain_unknown_target(runner: CliRunner, sample_project: Any) -> None:
    result = invoke(
        runner, "--project", str(sample_project.folder), "scores", "explain", "no_such"
    )

    assert result.exit_code == 1
    assert "No values for target 'no_such'" in result.stderr


@pytest.fixture(scope="module")
def codings_json(sample_project: Any) -> Result:
    return invoke(
        CliRunner(),
        "--project",
        str(sample_project.folder),
        "codings",
        "--format",
        "json",
    )


def test_codings_json_valid(codings_json: Result) -> None:
    rows = json.loads(codings_json.stdout)

    assert isinstance(rows, list)
    assert len(rows) > 0


def test_codings_json_fields(codings_json: Result) -> None:
    first = json.loads(codings_json.stdout)[0]

    assert {
        "source_id",
        "start_offset",
        "end_offset",
        "code_id",
        "status",
        "quote",
    } <= set(first)


def test_codings_json_stderr_empty(codings_json: Result) -> None:
    assert codings_json.stderr == ""


@pytest.fixture(scope="module")
def shanty_town_links(sample_project: Any) -> tuple[Result, list[str]]:
    result = invoke(
        CliRunner(),
        "--project",
        str(sample_project.folder),
        "links",
        "--target",
        "shanty_town",
    )
    connection = sqlite3.connect(sample_project.folder / "qualkit.db")
    quotes = [
        row[0]
        for row in connection.execute(
            "SELECT c.quote FROM quote_links l JOIN codings c ON c.id = l.coding_id "
            "WHERE l.target_id = 'shanty_town'"
        )
    ]
    connection.close()
    return result, quotes


def test_links_exit(shanty_town_links: tuple[Result, list[str]]) -> None:
    result, _ = shanty_town_links

    assert result.exit_code == 0


def test_links_lists_every_quote(shanty_town_links: tuple[Result, list[str]]) -> None:
    result, quotes = shanty_town_links
    missing = [quote for quote in quotes if quote.strip()[:40] not in result.stdout]

    assert quotes
    assert missing == []


def test_links_only_target(shanty_town_links: tuple[Result, list[str]]) -> None:
    result, quotes = shanty_town_links
    rows = result.stdout.splitlines()[1:]

    assert len(rows) == len(quotes)
    assert all(row.split()[0] == "shanty_town" for row in rows)
