"""Regression tests for errors and warnings of qualkit's command-line workflow.

Each test runs a qualkit command on real files and a real SQLite database
under tmp_path, and checks the error, warning or stored result.
"""

from __future__ import annotations

import logging
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qualkit.cli import cli
from qualkit.errors import InputError
from qualkit.targets import load_targets

CITIES = ("Changsha", "Zhuzhou", "Xiangtan", "Hengyang", "Yueyang")


def invoke(runner: CliRunner, project: Path, *args: str) -> Result:
    return runner.invoke(cli, ["--project", str(project), *args], prog_name="qualkit")


@pytest.fixture
def new_project(runner: CliRunner, tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    result = runner.invoke(cli, ["init", str(folder)], prog_name="qualkit")
    assert result.exit_code == 0, result.stderr
    return folder


@pytest.fixture
def fdi_project(new_project: Path) -> Path:
    """A new project whose targets file declares the target fdi."""
    targets = "targets:\n  - {id: fdi, name: Foreign direct investment}\n"
    (new_project / "targets.yaml").write_text(targets, encoding="utf-8")
    return new_project


def stored_value(project: Path, sql: str, *parameters: Any) -> Any:
    with sqlite3.connect(project / "qualkit.db") as connection:
        row = connection.execute(sql, parameters).fetchone()
    return None if row is None else row[0]


# Redaction lists without terms

EMPTY_LISTS = {"empty": "", "comments": "# only comments\n\n   \n# names go here\n"}


@pytest.mark.parametrize("content", EMPTY_LISTS.values(), ids=EMPTY_LISTS.keys())
def test_report_redact_without_terms(runner: CliRunner, new_project: Path, content: str) -> None:
    names = new_project / "names.txt"
    names.write_text(content, encoding="utf-8")
    out = new_project / "rep"
    result = invoke(runner, new_project, "report", "--out", str(out), "--redact", str(names))

    assert result.exit_code == 1
    assert "names.txt" in result.stderr
    assert "has no terms" in result.stderr
    assert not out.exists()


def test_config_redact_without_terms(runner: CliRunner, new_project: Path) -> None:
    (new_project / "names.txt").write_text("# to fill in\n", encoding="utf-8")
    config = new_project / "qualkit.toml"
    text = config.read_text(encoding="utf-8")
    assert '# redact = "redact.txt"' in text
    config.write_text(text.replace('# redact = "redact.txt"', 'redact = "names.txt"'), encoding="utf-8")
    out = new_project / "rep"
    result = invoke(runner, new_project, "report", "--out", str(out))

    assert result.exit_code == 1
    assert "names.txt" in result.stderr
    assert "has no terms" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "command",
    [("triangulate",), ("report", "appendix", "--out", "appendix"), ("export", "matrix", "matrix.csv")],
    ids=["triangulate", "appendix", "export"],
)
def test_other_outputs_redact_without_terms(
    runner: CliRunner, new_project: Path, command: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(new_project)
    (new_project / "names.txt").write_text("\n\n", encoding="utf-8")
    result = invoke(runner, new_project, *command, "--redact", "names.txt")

    assert result.exit_code == 1
    assert "names.txt" in result.stderr
    assert "has no terms" in result.stderr
    assert not (new_project / "appendix").exists()
    assert not (new_project / "matrix.csv").exists()


# Front matter values that are lists or mappings

COLLECTION_VALUES = {
    "province-list": ("province", "province: [Hunan, Hubei]"),
    "level-list": ("level", "level:\n  - city\n  - county"),
    "date-mapping": ("date", "date: {year: 2016, month: 5}"),
    "language-list": ("language", "language: [en, zh]"),
}


@pytest.mark.parametrize("field, lines", COLLECTION_VALUES.values(), ids=COLLECTION_VALUES.keys())
def test_front_matter_collection_rejected(
    runner: CliRunner, new_project: Path, hash_of: Any, field: str, lines: str
) -> None:
    path = new_project / "transcripts" / "b.md"
    path.write_text(f"---\nid: F2\n{lines}\n---\n\nInterviewer: Hi.\nRespondent: Yes.\n", encoding="utf-8")
    before = hash_of(new_project / "qualkit.db")
    result = invoke(runner, new_project, "import", str(path))

    assert result.exit_code == 1
    assert f"{path}, line 3: {field} is a" in result.stderr
    assert "single value" in result.stderr
    assert "Traceback" not in result.stderr
    assert hash_of(new_project / "qualkit.db") == before


# Aliases in targets.yaml


def write_targets(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "alias, problem",
    [('""', "is empty"), ('"   "', "is empty"), ('"("', "has no letter or digit"), ('"-/"', "has no letter or digit")],
)
def test_unusable_alias_rejected(tmp_path: Path, alias: str, problem: str) -> None:
    path = write_targets(
        tmp_path,
        "targets:\n"
        "  - id: t1\n"
        "    name: Target one\n"
        "    aliases:\n"
        "      en:\n"
        "        - first\n"
        f"        - {alias}\n",
    )
    with pytest.raises(InputError) as caught:
        load_targets(path)

    message = str(caught.value)
    assert f"{path}, line 7:" in message
    assert "'t1'" in message
    assert problem in message


def test_alias_shared_by_two_targets(tmp_path: Path) -> None:
    path = write_targets(
        tmp_path,
        "targets:\n"
        "  - id: t1\n"
        "    name: Target one\n"
        "    aliases: {en: [a, target]}\n"
        "  - id: t2\n"
        "    name: Target two\n"
        "    aliases:\n"
        "      en:\n"
        "        - FDI\n"
        "        - Target\n",
    )
    with pytest.raises(InputError) as caught:
        load_targets(path)

    message = str(caught.value)
    assert f"{path}, line 10:" in message
    assert "'t1' (line 4)" in message
    assert "'t2'" in message


def test_shared_alias_checked_per_language(tmp_path: Path) -> None:
    path = write_targets(
        tmp_path,
        "targets:\n"
        "  - {id: t1, name: Target one, aliases: {en: [fdi]}}\n"
        "  - {id: t2, name: Target two, aliases: {zh: [fdi]}}\n",
    )

    targets = load_targets(path)

    assert [target.id for target in targets] == ["t1", "t2"]


def test_alias_repeated_in_one_target_accepted(tmp_path: Path) -> None:
    path = write_targets(tmp_path, "targets:\n  - {id: t1, name: Target one, aliases: {en: [fdi, FDI]}}\n")

    assert load_targets(path)[0].aliases["en"] == ("Target one", "fdi", "FDI")


# Panel values replaced by a later import


def test_replaced_panel_value_warned(
    runner: CliRunner, fdi_project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    panel = fdi_project / "panel"
    panel.mkdir()
    first = panel / "values.csv"
    first.write_text("target,unit,year,value\nfdi,Changsha,2010,7\nfdi,Changsha,2011,921\n", encoding="utf-8")
    second = panel / "c.csv"
    second.write_text("target,unit,year,value\nfdi,Changsha,2011,5\n", encoding="utf-8")
    assert invoke(runner, fdi_project, "scores", "import", str(first)).exit_code == 0

    with caplog.at_level(logging.WARNING, logger="qualkit.panel"):
        result = invoke(runner, fdi_project, "scores", "import", str(second))

    assert result.exit_code == 0, result.stderr
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "target fdi, unit Changsha, year 2011" in warnings[0]
    assert "921 (values.csv, line 3)" in warnings[0]
    assert "replaced by 5 (c.csv, line 2)" in warnings[0]
    value = stored_value(fdi_project, "SELECT value FROM target_values WHERE unit = ? AND year = ?", "Changsha", 2011)
    assert value == 5


def test_replaced_points_warned(runner: CliRunner, fdi_project: Path, caplog: pytest.LogCaptureFixture) -> None:
    panel = fdi_project / "panel"
    panel.mkdir()
    (panel / "points.csv").write_text("target,year,points\nfdi,2011,3\n", encoding="utf-8")
    (panel / "points2.csv").write_text("target,year,points\nfdi,2011,4.5\n", encoding="utf-8")
    assert invoke(runner, fdi_project, "scores", "import", str(panel / "points.csv")).exit_code == 0

    with caplog.at_level(logging.WARNING, logger="qualkit.panel"):
        result = invoke(runner, fdi_project, "scores", "import", str(panel / "points2.csv"))

    assert result.exit_code == 0, result.stderr
    assert "target fdi, year 2011: stored points 3 (points.csv, line 2)" in caplog.text
    assert "replaced by 4.5 (points2.csv, line 2)" in caplog.text


def test_edited_panel_file_not_warned(
    runner: CliRunner, fdi_project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    panel = fdi_project / "panel"
    panel.mkdir()
    values = panel / "values.csv"
    values.write_text("target,unit,year,value\nfdi,Changsha,2011,921\n", encoding="utf-8")
    assert invoke(runner, fdi_project, "scores", "import", str(values)).exit_code == 0
    values.write_text("target,unit,year,value\nfdi,Changsha,2011,922\n", encoding="utf-8")

    with caplog.at_level(logging.WARNING, logger="qualkit.panel"):
        result = invoke(runner, fdi_project, "scores", "import", str(values))

    assert result.exit_code == 0, result.stderr
    assert "replaced" not in caplog.text


# Rows left out of the validation regression


def write_regression_panel(project: Path, first_covariate_year: int) -> Path:
    """Write fdi values for 2011-2013 and covariates from ``first_covariate_year`` to 2013."""
    numbers = random.Random(3)
    values = ["target,unit,year,value"]
    covariates = ["unit,year,connection,gdp_per_capita,revenue,population"]
    for index, city in enumerate(CITIES):
        for year in (2011, 2012, 2013):
            value = 100 + index * 37 + (year - 2011) * 11 + numbers.randint(0, 30)
            values.append(f"fdi,{city},{year},{value}")
        for year in range(first_covariate_year, 2014):
            gdp = 50000 + index * 3000 + year * 7 + numbers.randint(0, 900)
            revenue = 300 + index * 20 + numbers.randint(0, 50)
            population = 600 + index * 30 + numbers.randint(0, 9)
            covariates.append(f"{city},{year},{(index + year) % 2},{gdp},{revenue},{population}")
    (project / "values.csv").write_text("\n".join(values) + "\n", encoding="utf-8")
    path = project / "covariates.csv"
    path.write_text("\n".join(covariates) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("first_covariate_year, warned", [(2011, True), (2010, False)])
def test_regress_warns_missing_lag_year(
    runner: CliRunner,
    fdi_project: Path,
    caplog: pytest.LogCaptureFixture,
    first_covariate_year: int,
    warned: bool,
) -> None:
    covariates = write_regression_panel(fdi_project, first_covariate_year)
    assert invoke(runner, fdi_project, "scores", "import", str(fdi_project / "values.csv")).exit_code == 0

    with caplog.at_level(logging.WARNING, logger="qualkit.regression"):
        result = invoke(
            runner, fdi_project, "scores", "regress", "--covariates", str(covariates),
            "--rhotype", "tscorr", "--target", "fdi",
        )

    assert result.exit_code == 0, result.stderr
    lag_warnings = [record.getMessage() for record in caplog.records if "year before" in record.getMessage()]
    if not warned:
        assert lag_warnings == []
        return
    assert len(lag_warnings) == 1
    assert "target fdi: 5 row(s) left out" in lag_warnings[0]
    assert "value years 2011" in lag_warnings[0]


# An id already stored from another file


A_TEXT = (
    "---\nid: X01\nlevel: city\n---\n\nInterviewer: How do you handle targets?\n"
    "Respondent: We reframe the ecological protection work every year.\n"
)
B_TEXT = (
    "---\nid: X01\nlevel: city\n---\n\nInterviewer: Tell me about pensions.\n"
    "Respondent: All of us pay into the fund, all year.\n"
)


def stored_text(project: Path) -> str:
    return stored_value(project, "SELECT text FROM sources WHERE id = ?", "X01")


@pytest.fixture
def imported_a(runner: CliRunner, new_project: Path) -> Path:
    path = new_project / "transcripts" / "a.md"
    path.write_text(A_TEXT, encoding="utf-8")
    result = invoke(runner, new_project, "import", str(path))
    assert result.exit_code == 0, result.stderr
    return path


def test_same_id_other_file_rejected(
    runner: CliRunner, new_project: Path, imported_a: Path, hash_of: Any
) -> None:
    other = new_project / "other"
    other.mkdir()
    (other / "b.md").write_text(B_TEXT, encoding="utf-8")
    before = hash_of(new_project / "qualkit.db")
    result = invoke(runner, new_project, "import", str(other / "b.md"))

    assert result.exit_code == 1
    assert f"{other / 'b.md'}: interview id 'X01' is already stored from {imported_a}" in result.stderr
    assert "--replace" in result.stderr
    assert hash_of(new_project / "qualkit.db") == before
    assert "ecological protection" in stored_text(new_project)


def test_same_id_other_file_keep_going(runner: CliRunner, new_project: Path, imported_a: Path) -> None:
    (new_project / "b.md").write_text(B_TEXT, encoding="utf-8")
    result = invoke(runner, new_project, "import", "--keep-going", str(new_project / "b.md"))

    assert result.exit_code == 1
    assert "already stored from" in result.stderr
    assert "ecological protection" in stored_text(new_project)


def test_same_id_other_file_replace(runner: CliRunner, new_project: Path, imported_a: Path) -> None:
    (new_project / "b.md").write_text(B_TEXT, encoding="utf-8")
    result = invoke(runner, new_project, "import", "--replace", str(new_project / "b.md"))

    assert result.exit_code == 0, result.stderr
    assert "0 added, 1 updated" in result.stdout
    assert "pay into the fund" in stored_text(new_project)


def test_edited_file_reimported(runner: CliRunner, new_project: Path, imported_a: Path) -> None:
    imported_a.write_text(A_TEXT + "Respondent: And the water targets too.\n", encoding="utf-8")
    result = invoke(runner, new_project, "import", str(imported_a))

    assert result.exit_code == 0, result.stderr
    assert "0 added, 1 updated" in result.stdout
    assert "water targets" in stored_text(new_project)


def test_moved_file_with_same_name_updates(runner: CliRunner, new_project: Path, imported_a: Path) -> None:
    moved = new_project / "transcripts" / "done" / "a.md"
    moved.parent.mkdir()
    moved.write_text(A_TEXT + "Respondent: One more line.\n", encoding="utf-8")
    result = invoke(runner, new_project, "import", str(moved))

    assert result.exit_code == 0, result.stderr
    assert "One more line" in stored_text(new_project)


def test_same_text_other_file_accepted(runner: CliRunner, new_project: Path, imported_a: Path) -> None:
    copy = new_project / "copy.md"
    copy.write_text(A_TEXT, encoding="utf-8")
    result = invoke(runner, new_project, "import", str(copy))

    assert result.exit_code == 0, result.stderr
    assert "1 unchanged" in result.stdout


# Suggestions flagged by re-anchoring, then produced again by their rule


def test_autocode_clears_flag_of_reconfirmed_suggestions(runner: CliRunner, new_project: Path) -> None:
    transcript = new_project / "transcripts" / "R1.md"
    transcript.parent.mkdir(exist_ok=True)
    body = (
        "---\nid: R1\nlanguage: en\n---\n\nInterviewer: How do you handle the targets?\n\n"
        "Respondent: We bargain over the shanty town target every year. "
        "We negotiate with the province about the quota every year.\n"
    )
    transcript.write_text(body, encoding="utf-8")
    assert invoke(runner, new_project, "import", str(transcript)).exit_code == 0
    assert invoke(runner, new_project, "autocode").exit_code == 0
    suggestions = "SELECT count(*) FROM codings WHERE coder = 'autocode'"
    flagged = "SELECT count(*) FROM codings WHERE coder = 'autocode' AND needs_review = 1"
    assert stored_value(new_project, suggestions) > 0

    transcript.write_text(body.replace("every year", "each and every year"), encoding="utf-8")
    assert invoke(runner, new_project, "import", str(transcript)).exit_code == 0
    assert stored_value(new_project, flagged) > 0
    result = invoke(runner, new_project, "autocode")

    assert result.exit_code == 0, result.stderr
    assert stored_value(new_project, flagged) == 0
    assert stored_value(
        new_project,
        "SELECT count(*) FROM codings c JOIN sources s ON s.id = c.source_id "
        "WHERE substr(s.text, c.start_offset + 1, c.end_offset - c.start_offset) != c.quote",
    ) == 0
