"""Hostile input for the evidence report, its figures, templates, redaction and
``qualkit triangulate``.

Each test is a regression test for one finding of a hostile-input review.
The inputs are control characters in the data, names with invisible
characters inside them, and dollar signs that matplotlib reads as mathtext.
Others are templates that reach outside Jinja's sandbox and invalid
SOURCE_DATE_EPOCH values. A small project is built once per module, and
tests that change it work on a copy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from qualkit import store
from qualkit.cli import cli
from qualkit.errors import InputError, QualkitError
from qualkit.redaction import Redactor
from qualkit.report import markdown_escape_block, render_report
from qualkit.report_evidence import transcript_markdown
from qualkit.report_figures import report_figures

CONFIG = """\
[project]
title = "Hostile input"
database = "qualkit.db"
codebook = "target_bargaining"
targets = "targets.yaml"

[import]
transcripts = ["transcripts/*.md"]

[scores]
values = ["values.csv"]
points = ["points.csv"]

[report]
redact = "redact.txt"
"""

# The first target's name contains a listed name, so every output that shows
# target names must redact it. Both targets have panel values, so the report
# draws its figures.
TARGETS = """\
targets:
  - id: tourism_revenue
    name: Tourism revenue of Zhang Wei's county
    category: economic
    aliases:
      en: [tourism revenue]
  - id: fdi
    name: FDI
    category: economic
    aliases:
      en: [foreign investment]
"""
VALUES = "target,unit,year,value\n" + "".join(
    f"{target},{unit},{year},{value}\n"
    for target, rows in {
        "tourism_revenue": [("A", 2011, 10), ("B", 2011, 20), ("C", 2011, 30),
                            ("A", 2012, 30), ("B", 2012, 20), ("C", 2012, 10)],
        "fdi": [("A", 2011, 5), ("B", 2011, 6), ("C", 2011, 7),
                ("A", 2012, 5), ("B", 2012, 6), ("C", 2012, 8)],
    }.items()
    for unit, year, value in rows
)
POINTS = "target,year,points\ntourism_revenue,2011,2\ntourism_revenue,2012,2\nfdi,2011,4\nfdi,2012,4\n"

# ESC, BEL, VT, FF and DEL in a quoted sentence, and the listed name with a
# soft hyphen (U+00AD) inside it.
TRANSCRIPT = """\
---
id: X20H01
province: Hunan
level: city
date: 2020-06-01
language: en
---

Interviewer: How did the tourism targets go?

Respondent: We put in a lowball bid for tourism revenue \x1b[2J\x07 with \x0b\x0c\x7f care, as Zh\u00adang Wei told us.

Respondent: The lowball bid for tourism revenue was agreed.
"""

REDACTION_LIST = "Zhang Wei\n张伟\n"
CONTROL_CHARACTERS = "\x07\x0b\x0c\x1b\x7f"


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="qualkit", env=env)


def assert_clean_error(result: Result) -> None:
    """Assert that a command failed with a message, not a traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def hostile_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile") / "project"
    (folder / "transcripts").mkdir(parents=True)
    (folder / "qualkit.toml").write_text(CONFIG, encoding="utf-8")
    (folder / "targets.yaml").write_text(TARGETS, encoding="utf-8")
    (folder / "redact.txt").write_text(REDACTION_LIST, encoding="utf-8")
    (folder / "values.csv").write_text(VALUES, encoding="utf-8")
    (folder / "points.csv").write_text(POINTS, encoding="utf-8")
    (folder / "transcripts" / "X20H01.md").write_text(TRANSCRIPT, encoding="utf-8")
    result = invoke("build", str(folder))
    assert result.exit_code == 0, result.stderr
    result = invoke(
        "--project", str(folder), "memo", "add", "--coder", "tester",
        "--text", "First paragraph.\n\n---\n\n1. not a list\n\n+ not a list either",
    )
    assert result.exit_code == 0, result.stderr
    result = invoke("--project", str(folder), "report")
    assert result.exit_code == 0, result.stderr
    return folder


@pytest.fixture
def hostile_copy(hostile_project: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    shutil.copytree(hostile_project, folder)
    return folder


def use_template(folder: Path, name: str, text: str) -> None:
    """Put a template into the project's own template folder and name it in qualkit.toml."""
    templates = folder / "tpl"
    templates.mkdir(exist_ok=True)
    (templates / name).write_text(text, encoding="utf-8")
    config = folder / "qualkit.toml"
    if 'templates = "tpl"' in config.read_text(encoding="utf-8"):
        return
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            'redact = "redact.txt"', 'redact = "redact.txt"\ntemplates = "tpl"'
        ),
        encoding="utf-8",
    )


# Control characters and lone surrogates


def test_report_drops_control_characters(hostile_project: Path) -> None:
    for name in ("report.html", "report.md"):
        text = (hostile_project / "report" / name).read_text(encoding="utf-8")
        assert "lowball bid" in text
        for character in CONTROL_CHARACTERS:
            assert character not in text, f"{character!r} in {name}"


def test_report_drops_lone_surrogates(hostile_project: Path, tmp_path: Path) -> None:
    db = store.open_database(hostile_project / "qualkit.db", create=False)

    paths = render_report(db, tmp_path, formats=("html", "md"), title="Study \ud800 title")

    for path in paths:
        assert "Study  title" in path.read_text(encoding="utf-8")


# Redaction


@pytest.mark.parametrize(
    "text",
    [
        "Zh\u00adang Wei",  # soft hyphen
        "Zhang\u200bWei",  # zero-width space in place of the space
        "Zhang \u200bWei",
        "Zhang\u2060 Wei",  # word joiner
        "Z\u200dhang\u200cWei",  # zero-width joiner and non-joiner
        "\ufeffZhang Wei\u200e",
        "张\u200b伟",
    ],
)
def test_literal_matches_across_invisible_characters(text: str) -> None:
    redactor = Redactor.from_lines(["Zhang Wei", "张伟"])

    assert redactor.apply(f"met {text} today").count("[REDACTED]") == 1
    assert "Wei" not in redactor.apply(text)
    assert "伟" not in redactor.apply(text)


def test_invisible_characters_keep_word_boundary() -> None:
    redactor = Redactor.from_lines(["word:Li"])

    assert redactor.apply("po\u00adlicy") == "po\u00adlicy"
    assert redactor.apply("Mr Li\u200b.") == "Mr [REDACTED]\u200b."


def test_report_redacts_name_with_soft_hyphen(hostile_project: Path) -> None:
    for name in ("report.html", "report.md"):
        text = (hostile_project / "report" / name).read_text(encoding="utf-8")
        assert "ang Wei" not in text, name
        assert "Zh\u00ad" not in text, name


@pytest.mark.parametrize("expression", [r"\b", "(?=Z)", "(?<=a)", "$", r"(?m)^"])
def test_zero_width_expression_rejected(expression: str) -> None:
    with pytest.raises(InputError, match="matches the empty string"):
        Redactor.from_lines([f"re:{expression}"])


def test_triangulate_applies_project_redaction(hostile_project: Path) -> None:
    for output_format in ("csv", "json", "table"):
        result = invoke("--project", str(hostile_project), "triangulate", "--format", output_format)

        assert result.exit_code == 0, result.stderr
        assert "Zhang" not in result.stdout, output_format
        assert "[REDACTED]" in result.stdout, output_format


def test_triangulate_redact_option(hostile_project: Path, tmp_path: Path) -> None:
    redaction_list = tmp_path / "other.txt"
    redaction_list.write_text("re:Tourism\\s+\\w+ => [target]\n", encoding="utf-8")

    result = invoke(
        "--project", str(hostile_project), "triangulate", "--format", "json",
        "--redact", str(redaction_list),
    )

    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    names = {row["target"]: row["name"] for row in rows}
    assert names["tourism_revenue"] == "[target] of Zhang Wei's county"


# Figures


def test_report_draws_figures_for_dollar_names(hostile_copy: Path) -> None:
    # Two dollar signs: matplotlib would parse "\\frac{1}{" as mathtext and fail.
    db = store.open_database(hostile_copy / "qualkit.db", create=False)
    db.execute("UPDATE targets SET name = ? WHERE id = 'fdi'", ["FDI ($\\frac{1}{$)"])
    db.conn.commit()
    db.conn.close()

    result = invoke("--project", str(hostile_copy), "report", "--format", "html")

    assert result.exit_code == 0, result.stderr
    html = (hostile_copy / "report" / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/svg+xml;base64,") == 2
    assert "FDI ($\\frac{1}{$)" in html


def test_figure_labels_with_dollar_signs() -> None:
    names = {"a": r"Price $\frac{1}{$ of land", "b": "From $5 to $10"}
    eligible = [
        {"target_id": "a", "mean_points": 2.0, "frequency": 0.4},
        {"target_id": "b", "mean_points": 3.0, "frequency": 0.6},
    ]
    scores = [{"target_id": "a", "mean_cv": 0.2}, {"target_id": "b", "mean_cv": 0.5}]
    cuts = {"priority": 2.5, "negotiability": 0.5}

    figures = report_figures(eligible, scores, cuts, names, Redactor.none())

    assert [figure["id"] for figure in figures] == ["figure-typology", "figure-mean-cv"]


# Markdown


def test_markdown_block_markers_escaped() -> None:
    markdown_it = pytest.importorskip("markdown_it")
    text = "---\n\n1. first\n\n+ plus\n\n- minus\n\n= equals\n\n12) twelve"

    html = markdown_it.MarkdownIt("commonmark").render(markdown_escape_block(text))

    for tag in ("<hr", "<ol", "<ul", "<h1", "<h2"):
        assert tag not in html, html
    assert html.count("<p>") == 6


def test_transcript_lines_keep_markers_as_text() -> None:
    markdown_it = pytest.importorskip("markdown_it")
    pieces = [{"text": "1. first line\n- second line\n---", "codes": [], "anchors": []}]

    html = markdown_it.MarkdownIt("commonmark").render(transcript_markdown(pieces))

    for tag in ("<hr", "<ol", "<ul"):
        assert tag not in html, html


def test_memo_markers_escaped_in_report(hostile_project: Path) -> None:
    text = (hostile_project / "report" / "report.md").read_text(encoding="utf-8")

    assert "\n\\---\n" in text
    assert "\n1\\. not a list" in text
    assert "\n\\+ not a list either" in text


# Templates


def test_template_include_outside_folder(hostile_copy: Path) -> None:
    for include in ("../qualkit.toml", "/etc/hostname", "missing.j2"):
        use_template(hostile_copy, "report.md.j2", f'Start\n{{% include "{include}" %}}\n')

        result = invoke("--project", str(hostile_copy), "report", "--format", "md")

        assert_clean_error(result)
        assert "report.md.j2, line 2" in result.stderr
        assert "not in the templates folder" in result.stderr


def test_template_sandbox_blocks_python_internals(hostile_copy: Path) -> None:
    use_template(
        hostile_copy, "report.md.j2", "{{ cycler.__init__.__globals__.os.getcwd() }}\n"
    )

    result = invoke("--project", str(hostile_copy), "report", "--format", "md")

    assert_clean_error(result)
    assert "report.md.j2, line 1" in result.stderr
    assert "sandbox" in result.stderr


def test_template_sandbox_limits_range(hostile_copy: Path) -> None:
    use_template(hostile_copy, "report.md.j2", "{{ range(10**9) | list | length }}\n")

    result = invoke("--project", str(hostile_copy), "report", "--format", "md")

    assert_clean_error(result)
    assert "report.md.j2, line 1" in result.stderr


def test_bundled_templates_render_in_sandbox(hostile_project: Path) -> None:
    html = (hostile_project / "report" / "report.html").read_text(encoding="utf-8")

    assert "Evidence by target" in html


def test_template_syntax_error_one_full_stop(hostile_copy: Path) -> None:
    use_template(hostile_copy, "report.md.j2", "{% macro x() %}\n")

    result = invoke("--project", str(hostile_copy), "report", "--format", "md")

    assert_clean_error(result)
    assert "'macro'. Correct the template" in " ".join(result.stderr.split())
    assert ".." not in result.stderr


# Time of rendering


@pytest.mark.parametrize("value", ["abc", "1e9", "-5", "99999999999999", "17000000.5"])
def test_invalid_source_date_epoch(
    value: str, hostile_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    db = store.open_database(hostile_project / "qualkit.db", create=False)

    with pytest.raises(QualkitError, match="SOURCE_DATE_EPOCH"):
        render_report(db, tmp_path, formats=("md",))
    assert not (tmp_path / "report.md").exists()


def test_valid_source_date_epoch(
    hostile_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    db = store.open_database(hostile_project / "qualkit.db", create=False)

    render_report(db, tmp_path, formats=("md",))

    assert "Rendered at 2023-11-14T22:13:20Z" in (tmp_path / "report.md").read_text(encoding="utf-8")
