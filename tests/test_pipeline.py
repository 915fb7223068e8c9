"""Tests of ``qualkit build`` on the bundled sample project, end to end.

The sample is built once per session (conftest.py). Tests that change a
project work on a private copy of the built folder.
"""

from __future__ import annotations

import csv
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qualkit.cli import cli

ROOT = Path(__file__).resolve().parents[1]

# Table 1 of the reference study on bargaining over performance targets in
# Hunan's 14 prefecture-level cities, 2011-2015: the 17 eligible targets in
# the published order, with average points, cities whose rank changed, range
# of rank change, and observed/possible changes. Frequency is printed to two
# decimals in the study.
PUBLISHED_TABLE_1 = [
    (1, "Urban shanty town transformation", 3.5, 14, (-6, 8), 26, 28, "0.93"),
    (2, "New public rental housing", 3.5, 13, (-7, 4), 13, 14, "0.93"),
    (3, "Maternity insurance", 1.7, 11, (-3, 5), 11, 14, "0.79"),
    (4, "Industrial water consumption", 4.9, 13, (-4, 7), 22, 28, "0.79"),
    (5, "Standard-reaching of water function zones", 4.4, 13, (-2, 7), 17, 28, "0.61"),
    (6, "Unemployment insurance", 1.7, 11, (-7, 3), 16, 28, "0.57"),
    (7, "Work injury insurance", 1.7, 11, (-4, 4), 16, 28, "0.57"),
    (8, "Health insurance for employees", 1.7, 11, (-4, 3), 14, 28, "0.50"),
    (9, "Urban wastewater treatment rate", 3.4, 10, (-3, 3), 10, 14, "0.71"),
    (10, "Imports and exports", 15.5, 11, (-3, 3), 23, 52, "0.44"),
    (11, "Urban refuse treatment rate", 3.4, 6, (-6, 5), 6, 14, "0.43"),
    (12, "Control of pollution sources", 4.0, 6, (-1, 1), 6, 14, "0.43"),
    (13, "Enterprise pension funds", 1.7, 11, (-5, 4), 21, 56, "0.38"),
    (14, "Shutdown of pollution projects", 4.0, 2, (-1, 1), 2, 14, "0.14"),
    (15, "Domestic investment", 11.4, 3, (-1, 1), 6, 42, "0.14"),
    (16, "Fiscal subsidy to enterprise pension funds", 5.3, 4, (-2, 0), 4, 42, "0.10"),
    (17, "FDI", 8.8, 2, (-1, 1), 4, 56, "0.07"),
]

BROKEN_TRANSCRIPT = """\
---
id: X16B01
province: Hunan
level: city: county
---

Interviewer: How are targets set?
"""

# Unknown parent on line 12 ("parent: strategi").
BAD_CODEBOOK = """\
codebook:
  id: broken
  version: "1"
codes:
  - id: strategy
    label: Strategy
    definition: A way to bargain.
  - id: strategy.lowball
    label: Lowball
    definition: Asking for a low target.
    when_to_use: A low bid is described.
    parent: strategi
    when_not_to_use: The target was out of reach.
    example: We asked for less.
"""

SCRIPT = "<script>alert(1)</script>"
# One sentence naming a target alias ("tourism revenue", which no sample
# quote mentions, so this quote is shown), a codebook keyword ("lowball")
# and markup that the report must escape.
HOSTILE_TRANSCRIPT = f"""\
---
id: X20T01
province: Hunan
level: city
date: 2020-06-01
language: en
---

Interviewer: How did the tourism targets go?

Respondent: We put in a lowball bid for tourism revenue and typed {SCRIPT} & Co into the form.
"""


def markdown_section(text: str, heading: str) -> str:
    """Return the lines after ``heading`` up to the next heading of any level."""
    start = text.index(heading + "\n") + len(heading) + 1
    following = re.search(r"^#+ ", text[start:], re.MULTILINE)
    return text[start : start + following.start()] if following else text[start:]


def table_rows(section: str) -> list[list[str]]:
    """Split the body rows of the Markdown table in ``section`` into cells."""
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [
        [cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]
    ]


def build(folder: Path) -> Result:
    return CliRunner().invoke(cli, ["build", str(folder)], prog_name="qualkit")


@pytest.fixture(scope="module")
def report_md(sample_project: Any) -> str:
    return (sample_project.folder / "report" / "report.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def negotiability_rows(report_md: str) -> dict[int, list[str]]:
    """The report's negotiability table, keyed by the published row number."""
    rows = table_rows(markdown_section(report_md, "## Negotiability of targets"))
    return {int(row[0]): row for row in rows if row[0]}


@pytest.fixture(scope="module")
def appendix_cells(report_md: str) -> list[str]:
    """The interview ids of the appendix table, bold markers kept."""
    rows = table_rows(markdown_section(report_md, "## Interviews (Appendix A)"))
    return [cell for row in rows for cell in row[0].split(", ")]


# Idempotency


def test_sample_build_succeeds(sample_project: Any) -> None:
    assert sample_project.build.exit_code == 0


def test_sample_build_stderr_empty(sample_project: Any) -> None:
    assert sample_project.build.stderr == ""


def test_second_build_identical(
    sample_project: Any, snapshot_of: Callable[[Path], dict[str, Any]]
) -> None:
    result = build(sample_project.folder)
    second = snapshot_of(sample_project.folder)
    first = sample_project.snapshot

    assert result.exit_code == 0
    assert second["counts"] == first["counts"]
    assert second["content_hash"] == first["content_hash"]
    assert second["reports"].keys() == first["reports"].keys()
    for name, content in first["reports"].items():
        assert second["reports"][name] == content, f"{name} changed"


# Table 1


def test_negotiability_rows_in_published_order(
    negotiability_rows: dict[int, list[str]],
) -> None:
    assert list(negotiability_rows) == [row[0] for row in PUBLISHED_TABLE_1]


@pytest.mark.parametrize(
    ("number", "name", "points", "cities", "span", "observed", "possible", "frequency"),
    [pytest.param(*row, id=f"{row[0]:02d}-{row[1]}") for row in PUBLISHED_TABLE_1],
)
def test_negotiability_row_matches_study(
    negotiability_rows: dict[int, list[str]],
    number: int,
    name: str,
    points: float,
    cities: int,
    span: tuple[int, int],
    observed: int,
    possible: int,
    frequency: str,
) -> None:
    row = negotiability_rows[number]
    # Columns: #, target, years, points, units with change, range, frequency, ...
    shown_frequency, shown_observed, shown_possible = re.fullmatch(
        r"([\d.]+) \((\d+)/(\d+)\)", row[6]
    ).groups()
    shown_span = tuple(int(x) for x in row[5].strip("()").split(","))

    assert row[1].removesuffix("\\*") == name
    assert float(row[3]) == points
    assert int(row[4]) == cities
    assert shown_span == span
    assert (int(shown_observed), int(shown_possible)) == (observed, possible)
    assert shown_frequency == frequency


# Appendix A


def test_appendix_lists_every_interview(
    sample_project: Any, appendix_cells: list[str]
) -> None:
    with (sample_project.folder / "interviews.csv").open(encoding="utf-8") as handle:
        manifest = [row["id"] for row in csv.DictReader(handle)]
    listed = [cell.strip("*") for cell in appendix_cells]

    assert len(manifest) == 27
    assert sorted(listed) == sorted(manifest)


def test_appendix_bold_is_quoted(report_md: str, appendix_cells: list[str]) -> None:
    bold = {cell.strip("*") for cell in appendix_cells if cell.startswith("**")}
    cited = set(re.findall(r"^— Interview \\#(\w+),", report_md, re.MULTILINE))

    assert cited
    assert bold == cited


def test_conflict_in_report(report_md: str) -> None:
    rows = table_rows(markdown_section(report_md, "### Metadata conflicts"))
    conflicts = [row for row in rows if row[0] == "G16S011"]

    assert conflicts == [
        ["G16S011", "province", "Guizhou", "interviews.csv", "Sichuan", "G16S011.md"]
    ]


def test_conflict_in_build_output(sample_project: Any) -> None:
    assert "Metadata conflicts: 1 " in sample_project.build.stdout


# Failed builds


def test_broken_transcript_fails_build(
    sample_copy: Path, hash_of: Callable[[Path], str]
) -> None:
    before = hash_of(sample_copy / "qualkit.db")
    (sample_copy / "transcripts" / "X16B01.md").write_text(
        BROKEN_TRANSCRIPT, encoding="utf-8"
    )

    result = build(sample_copy)

    assert result.exit_code == 1
    assert "X16B01.md, line 4:" in result.stderr
    assert hash_of(sample_copy / "qualkit.db") == before


def test_bad_codebook_fails_build(
    sample_copy: Path, hash_of: Callable[[Path], str]
) -> None:
    before = hash_of(sample_copy / "qualkit.db")
    (sample_copy / "broken_codebook.yaml").write_text(BAD_CODEBOOK, encoding="utf-8")
    config = sample_copy / "qualkit.toml"
    text = config.read_text(encoding="utf-8")
    changed = re.sub(
        r'(?m)^codebook = ".*"$', 'codebook = "broken_codebook.yaml"', text
    )
    assert changed != text, "qualkit.toml of the sample must name a codebook"
    config.write_text(changed, encoding="utf-8")

    result = build(sample_copy)

    assert result.exit_code == 1
    assert "broken_codebook.yaml, line 12:" in result.stderr
    assert "unknown parent 'strategi'" in result.stderr
    assert hash_of(sample_copy / "qualkit.db") == before


# Escaping in reports


@pytest.fixture(scope="module")
def hostile_build(
    sample_project: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A copy of the built sample with a transcript full of markup, rebuilt."""
    folder = tmp_path_factory.mktemp("hostile") / "interviews_sample"
    shutil.copytree(sample_project.folder, folder)
    (folder / "transcripts" / "X20T01.md").write_text(
        HOSTILE_TRANSCRIPT, encoding="utf-8"
    )
    result = build(folder)
    assert result.exit_code == 0, result.stderr
    return folder


def test_hostile_quote_linked(hostile_build: Path) -> None:
    import sqlite3

    connection = sqlite3.connect(hostile_build / "qualkit.db")
    targets = connection.execute(
        "SELECT l.target_id FROM quote_links l JOIN codings c ON c.id = l.coding_id "
        "WHERE c.source_id = 'X20T01' AND c.quote LIKE '%<script>%'"
    ).fetchall()
    connection.close()

    assert ("tourism_revenue",) in targets


def test_html_report_escapes_quote(hostile_build: Path) -> None:
    html = (hostile_build / "report" / "report.html").read_text(encoding="utf-8")

    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html


def test_html_report_has_only_the_bundled_script(hostile_build: Path) -> None:
    # The one script is the bundled table sorter. A quote's <script> text is
    # escaped (test above), so every script element contains exactly that file.
    html = (hostile_build / "report" / "report.html").read_text(encoding="utf-8")
    bundled = (ROOT / "templates" / "report.js").read_text(encoding="utf-8")
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", html, re.IGNORECASE | re.DOTALL)

    assert scripts and all(body.strip() == bundled.strip() for body in scripts)


def test_markdown_report_escapes_quote(hostile_build: Path) -> None:
    markdown = (hostile_build / "report" / "report.md").read_text(encoding="utf-8")

    assert "\\<script\\>alert(1)\\</script\\> \\& Co" in markdown


def test_markdown_report_has_no_script(hostile_build: Path) -> None:
    markdown = (hostile_build / "report" / "report.md").read_text(encoding="utf-8")

    # A backslash before '<' makes Markdown print it as text.
    assert re.search(r"(?<!\\)</?script", markdown, re.IGNORECASE) is None


def test_moved_project_keeps_one_conflict(hostile_build: Path) -> None:
    markdown = (hostile_build / "report" / "report.md").read_text(encoding="utf-8")
    rows = table_rows(markdown_section(markdown, "### Metadata conflicts"))

    assert [row[0] for row in rows] == ["G16S011"]
