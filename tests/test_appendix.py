"""Tests of the appendix tables and their HTML, Markdown, LaTeX and Word files.

Projects are real SQLite files under tmp_path. The hostile text is put in
places that the tables print: a code's example, a target's name and a
province. Each format is checked for the escaped source text. Where a
parser exists (HTML, Word), the displayed text is checked too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import docx
import pandas as pd
import pytest
import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from qualkit import store
from qualkit.appendix import (
    appendix_tables,
    interview_groups,
    load_regression,
    store_regression,
    write_appendix,
)
from qualkit.cases import import_manifest
from qualkit.errors import InputError
from qualkit.redaction import Redactor
from qualkit.tables import Text, latex, markdown

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "<script>alert(1)</script> & 100% of_the {budget} C:\\temp"
HOSTILE_HTML = (
    "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 100% of_the {budget} C:\\temp"
)
HOSTILE_MARKDOWN = r"\<script\>alert(1)\</script\> \& 100% of\_the \{budget\} C:\\temp"
HOSTILE_LATEX = (
    r"\textless{}script\textgreater{}alert(1)\textless{}/script\textgreater{} \& 100\% "
    r"of\_the \{budget\} C:\textbackslash{}temp"
)
NAME = "Zhang Wei"
NAME_ZH = "张伟"
FORMATS = ("html", "md", "tex", "docx")


def build_project(
    path: Path, *, example: str = HOSTILE, target_name: str = "Imports and exports"
) -> sqlite_utils.Database:
    """Write a project with two interviews, three codes, one scored target and four codings."""
    db = store.open_database(path)
    now = store.utc_now()

    codes = [
        (
            "strategy",
            None,
            "Bargaining strategy",
            "A way to obtain suitable targets.",
            example,
        ),
        (
            "strategy.reframing",
            "strategy",
            "Target reframing",
            f"Counting a project under a category; see {NAME}.",
            "Lawns as green area.",
        ),
        (
            "target.nonnegotiable",
            None,
            "Target cannot be bargained",
            "No room to talk.",
            f"{NAME_ZH}说没得谈。",
        ),
    ]
    for position, (code_id, parent, label, definition, code_example) in enumerate(
        codes
    ):
        db["codes"].insert(
            {
                "id": code_id,
                "parent_id": parent,
                "label": label,
                "definition": definition,
                "when_to_use": "When the respondent says so.",
                "example": code_example,
                "position": position,
                "codebook_id": "test",
                "codebook_version": "2.0.0",
            }
        )

    for case_id, province, level, group in (
        ("A01", "Hunan", "city", "1"),
        ("B02", "Guizhou", "province", "2"),
    ):
        db["cases"].insert(
            {
                "id": case_id,
                "province": province,
                "level": level,
                "appendix_group": group,
                "origin": "test",
            }
        )
        db["sources"].insert(
            {
                "id": case_id,
                "case_id": case_id,
                "format": "md",
                "language": "en",
                "text": "y" * 500,
                "content_hash": case_id,
                "imported_at": now,
                "updated_at": now,
            }
        )

    db["targets"].insert(
        {
            "id": "imports",
            "name": target_name,
            "category": "economic",
            "researcher_order": 1,
        }
    )
    db["scores"].insert(
        {
            "target_id": "imports",
            "years": "2011-2015",
            "eligible": 1,
            "units_changed": 11,
            "range_min": -3.0,
            "range_max": 3.0,
            "observed": 23,
            "possible": 52,
            "frequency": 23 / 52,
            "mean_points": 15.5,
            "priority_level": "high",
            "negotiability_level": "less",
            "cell": "less negotiable, high priority",
            "expected_response": "fulfilment or gaming (misreporting)",
        }
    )

    rows = [
        ("A01", 0, 60, "strategy.reframing", "accepted"),
        ("A01", 100, 160, "target.nonnegotiable", "suggested"),
        ("B02", 0, 60, "strategy.reframing", "accepted"),
        ("B02", 200, 260, "strategy", "rejected"),
    ]
    for source_id, start, end, code_id, status in rows:
        cursor = db.execute(
            "INSERT INTO codings (source_id, start_offset, end_offset, quote, code_id, coder, origin, status, "
            "codebook_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'tester', 'manual', ?, '2.0.0', ?, ?)",
            [source_id, start, end, "y" * (end - start), code_id, status, now, now],
        )
        if source_id == "A01" and status == "accepted":
            db["quote_links"].insert(
                {
                    "coding_id": cursor.lastrowid,
                    "target_id": "imports",
                    "alias": "imports",
                    "alias_start": 0,
                    "alias_end": 5,
                    "origin": "manual",
                }
            )
    db.conn.commit()
    return db


@pytest.fixture
def db(tmp_path: Path) -> Any:
    database = build_project(tmp_path / "qualkit.db")
    yield database
    database.close()


class CellTexts(HTMLParser):
    """Collect the text of every <td> and <th>, with <br> read as a line break."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.cells: list[str] = []
        self.scripts = 0
        self._open = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        if tag in ("td", "th"):
            self.cells.append("")
            self._open = True
        if tag == "br" and self._open:
            self.cells[-1] += "\n"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._open = False

    def handle_data(self, data: str) -> None:
        if self._open:
            self.cells[-1] += data


def html_cells(path: Path) -> CellTexts:
    parser = CellTexts()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def docx_cells(path: Path) -> list[list[str]]:
    table = docx.Document(str(path)).tables[0]
    return [[cell.text for cell in row.cells] for row in table.rows]


# Escaping -------------------------------------------------------------------------


def test_hostile_text_html(db: sqlite_utils.Database, tmp_path: Path) -> None:
    write_appendix(db, tmp_path / "out", ("html",))
    path = tmp_path / "out" / "codebook.html"

    parsed = html_cells(path)
    source = path.read_text(encoding="utf-8")

    assert parsed.scripts == 0
    assert HOSTILE in parsed.cells
    assert HOSTILE_HTML in source
    assert "<script>" not in source


def test_hostile_text_html_fragment(db: sqlite_utils.Database, tmp_path: Path) -> None:
    write_appendix(db, tmp_path / "out", ("html",), html_fragment=True)
    source = (tmp_path / "out" / "codebook.html").read_text(encoding="utf-8")

    assert source.startswith('<table class="qualkit-table" id="qualkit-codebook">')
    assert HOSTILE_HTML in source
    assert "<!DOCTYPE" not in source


def test_hostile_text_markdown(db: sqlite_utils.Database, tmp_path: Path) -> None:
    write_appendix(db, tmp_path / "out", ("md",))
    source = (tmp_path / "out" / "codebook.md").read_text(encoding="utf-8")
    row = next(line for line in source.splitlines() if "script" in line)

    assert HOSTILE_MARKDOWN in row
    # Every "|" left unescaped is a column border: six columns, seven borders.
    assert len(re.findall(r"(?<!\\)\|", row)) == 7
    assert "<script>" not in source


def test_markdown_escape_round_trip() -> None:
    escaped = markdown.escape_markdown(HOSTILE + " a|b `c` *d* [e](f) #g ~h")

    assert re.sub(r"\\(.)", r"\1", escaped) == HOSTILE + " a|b `c` *d* [e](f) #g ~h"


def test_hostile_text_latex_source(db: sqlite_utils.Database, tmp_path: Path) -> None:
    write_appendix(db, tmp_path / "out", ("tex",))
    source = (tmp_path / "out" / "codebook.tex").read_text(encoding="utf-8")

    assert HOSTILE_LATEX in source
    assert "<script>" not in source


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a & b", r"a \& b", id="ampersand"),
        pytest.param("50%", r"50\%", id="percent"),
        pytest.param("$5", r"\$5", id="dollar"),
        pytest.param("#3", r"\#3", id="hash"),
        pytest.param("a_b", r"a\_b", id="underscore"),
        pytest.param("{x}", r"\{x\}", id="braces"),
        pytest.param("~", r"\textasciitilde{}", id="tilde"),
        pytest.param("x^2", r"x\textasciicircum{}2", id="caret"),
        pytest.param("a\\b", r"a\textbackslash{}b", id="backslash"),
        pytest.param("[REDACTED]", "{[}REDACTED{]}", id="brackets"),
        pytest.param("张伟说", "张伟说", id="cjk-unchanged"),
    ],
)
def test_latex_escape_each_character(text: str, expected: str) -> None:
    assert latex.escape_latex(text) == expected


def test_latex_cell_starting_with_star() -> None:
    from qualkit.tables import cell

    assert latex.render_cell(cell("*** p < .001"), wrapping=False).startswith("{}*")


def test_latex_files_are_inputtable(db: sqlite_utils.Database, tmp_path: Path) -> None:
    paths = write_appendix(db, tmp_path / "out", ("tex",))

    for path in paths:
        source = path.read_text(encoding="utf-8")
        assert "\\documentclass" not in source, path.name
        assert "\\toprule" in source, path.name
        assert "\\bottomrule" in source, path.name
        assert source.count("\\begin{") == source.count("\\end{"), path.name
        unescaped = source.replace("\\{", "").replace("\\}", "")
        assert unescaped.count("{") == unescaped.count("}"), path.name


def _tex_engine() -> str | None:
    for name in ("xelatex", "lualatex", "pdflatex"):
        if shutil.which(name):
            return name
    return None


def test_latex_compiles(db: sqlite_utils.Database, tmp_path: Path) -> None:
    engine = _tex_engine()
    if engine is None:
        pytest.skip("no TeX engine (xelatex, lualatex or pdflatex) on PATH")
    out = tmp_path / "out"
    paths = write_appendix(db, out, ("tex",))
    cjk = "\\usepackage{xeCJK}\n" if engine == "xelatex" else ""
    inputs = "\n".join(f"\\input{{{path.name}}}" for path in paths)
    (out / "paper.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs,longtable,array}\n"
        f"{cjk}\\begin{{document}}\n{inputs}\n\\end{{document}}\n",
        encoding="utf-8",
    )

    result = subprocess.run(
        [engine, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"],
        cwd=out,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout[-3000:]


def test_hostile_text_word(db: sqlite_utils.Database, tmp_path: Path) -> None:
    write_appendix(db, tmp_path / "out", ("docx",))

    rows = docx_cells(tmp_path / "out" / "codebook.docx")

    assert rows[0] == [
        "Code",
        "Definition",
        "When to use",
        "Example",
        "Codings",
        "Interviews",
    ]
    assert rows[1][3] == HOSTILE


def test_control_characters_dropped(tmp_path: Path) -> None:
    db = build_project(tmp_path / "qualkit.db", example="bell\x07 and null\x00 here")
    write_appendix(db, tmp_path / "out", ("docx", "html"))

    rows = docx_cells(tmp_path / "out" / "codebook.docx")

    assert rows[1][3] == "bell and null here"
    db.close()


# Word files ---------------------------------------------------------------------


def test_docx_rows_and_header(db: sqlite_utils.Database, tmp_path: Path) -> None:
    write_appendix(db, tmp_path / "out", ("docx",))
    document = docx.Document(str(tmp_path / "out" / "interviews.docx"))
    table = document.tables[0]

    header_xml = table.rows[0]._tr.xml
    rows = [[cell.text for cell in row.cells] for row in table.rows]

    assert rows == [
        ["Interview", "Location", "Government level"],
        ["A01", "Hunan", "city"],
        ["B02", "Guizhou", "province"],
    ]
    assert "w:tblHeader" in header_xml
    assert table.rows[1].cells[0].paragraphs[0].runs[0].bold is True
    assert not table.rows[2].cells[0].paragraphs[0].runs[0].bold
    assert document.paragraphs[0].text == "Interviews"


def test_docx_negotiability_row(db: sqlite_utils.Database, tmp_path: Path) -> None:
    write_appendix(db, tmp_path / "out", ("docx",))

    rows = docx_cells(tmp_path / "out" / "negotiability.docx")

    # The published Table 1 row for imports and exports: 2011-2015, 15.5
    # points, 11 cities, range (-3,3), frequency 0.44 (23/52).
    assert rows[1] == [
        "1",
        "Imports and exports",
        "2011-2015",
        "15.5",
        "11",
        "(-3,3)",
        "0.44 (23/52)",
    ]


# Redaction -----------------------------------------------------------------------


def _file_texts(path: Path) -> list[str]:
    if path.suffix != ".docx":
        return [path.read_text(encoding="utf-8")]
    with zipfile.ZipFile(path) as archive:
        return [
            archive.read(name).decode("utf-8")
            for name in archive.namelist()
            if name.endswith((".xml", ".rels"))
        ]


def test_redacted_name_in_no_file(tmp_path: Path) -> None:
    db = build_project(tmp_path / "qualkit.db", target_name=f"Imports of {NAME}'s city")
    (tmp_path / "redact.txt").write_text(
        f"{NAME}\n{NAME_ZH} => [官员]\nGuizhou => [province]\n", encoding="utf-8"
    )
    redactor = Redactor.from_file(tmp_path / "redact.txt")

    paths = write_appendix(db, tmp_path / "out", FORMATS, redactor=redactor)

    assert {path.suffix for path in paths} == {".html", ".md", ".tex", ".docx"}
    for path in paths:
        for text in _file_texts(path):
            assert "zhang" not in text.lower(), path.name
            assert NAME_ZH not in text, path.name
            assert "Guizhou" not in text, path.name
    assert "[官员]说没得谈。" in docx_cells(tmp_path / "out" / "codebook.docx")[3][3]
    db.close()


def test_without_redactor_name_is_kept(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    write_appendix(db, tmp_path / "out", ("md",))

    assert NAME in (tmp_path / "out" / "codebook.md").read_text(encoding="utf-8")


# Tables and options -----------------------------------------------------------------


def test_table_set_without_regression(db: sqlite_utils.Database) -> None:
    tables = appendix_tables(db)

    assert list(tables) == [
        "interviews",
        "negotiability",
        "typology",
        "codebook",
        "frequencies_province",
        "frequencies_level",
    ]


def test_regression_table_after_stored_run(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    # Published Table 2 coefficient on connection for imports and exports:
    # -.183 (.099), N = 68, rho .584.
    frame = pd.DataFrame(
        {
            "term": ["Personal connection", "", "R-squared", "rho", "N"],
            "imports": ["-0.183", "(0.099)", "0.250", "0.584", "68"],
        }
    )
    store_regression(
        db,
        frame,
        names={"imports": "Imports and exports"},
        options={"correlation": "ar1"},
    )

    tables = appendix_tables(db)
    write_appendix(db, tmp_path / "out", ("md",))

    assert load_regression(db)["options"] == {"correlation": "ar1"}
    assert tables["regression"].columns == ("", "Imports and exports")
    assert tables["regression"].plain_rows()[0] == ["Personal connection", "-0.183"]
    assert "Prais-Winsten" in tables["regression"].notes[0]
    assert (tmp_path / "out" / "regression.md").exists()


def test_typology_cells(db: sqlite_utils.Database) -> None:
    rows = appendix_tables(db)["typology"].plain_rows()

    assert rows[1][0] == "Less negotiable"
    assert rows[1][2] == "Fulfilment or gaming (misreporting)\nImports and exports"
    assert rows[0][1] == "Moderate bargaining\nnone"


def test_codebook_counts_skip_rejected(db: sqlite_utils.Database) -> None:
    rows = {
        row[0].split("\n")[1]: row
        for row in appendix_tables(db)["codebook"].plain_rows()
    }

    assert rows["strategy.reframing"][4:] == ["2", "2"]
    assert rows["strategy"][4:] == ["0", "0"]
    assert rows["target.nonnegotiable"][4:] == ["1", "1"]


def test_frequency_tables(db: sqlite_utils.Database) -> None:
    tables = appendix_tables(db)
    by_province = tables["frequencies_province"]
    by_level = tables["frequencies_level"]
    accepted = appendix_tables(db, statuses=("accepted",), count="interviews")[
        "frequencies_province"
    ]

    assert by_province.columns == ("Code", "Guizhou (n=1)", "Hunan (n=1)", "Total")
    assert by_province.plain_rows() == [
        ["strategy.reframing", "1", "1", "2"],
        ["target.nonnegotiable", "0", "1", "1"],
    ]
    assert by_level.columns == ("Code", "province (n=1)", "city (n=1)", "Total")
    assert accepted.plain_rows() == [["strategy.reframing", "1", "1", "2"]]


def test_quoted_interviews_bold(db: sqlite_utils.Database) -> None:
    table = appendix_tables(db)["interviews"]
    chosen = appendix_tables(db, quoted={"B02"})["interviews"]

    assert [run.bold for run in table.rows[0][0]] == [True]
    assert [run.bold for run in table.rows[1][0]] == [False]
    assert [run.bold for run in chosen.rows[1][0]] == [True]


def test_unknown_format_rejected(db: sqlite_utils.Database, tmp_path: Path) -> None:
    with pytest.raises(InputError) as raised:
        write_appendix(db, tmp_path / "out", ("pdf",))

    assert "tex" in raised.value.fix


def test_same_data_same_bytes(db: sqlite_utils.Database, tmp_path: Path) -> None:
    first = {
        path.name: path.read_bytes() for path in write_appendix(db, tmp_path / "one")
    }
    second = {
        path.name: path.read_bytes() for path in write_appendix(db, tmp_path / "two")
    }

    assert first == second


# The sample's interview list ------------------------------------------------------------

# The study's Appendix A: interview numbers sharing a row, with location and
# government level, in the article's order.
APPENDIX_A = [
    (["Z15S03", "Z15F04"], "Zhejiang", "city"),
    (["G15F012"], "Guizhou", "province"),
    (["G15W11", "G73S48"], "Guizhou", "province"),
    (["G15F07", "G7SS03"], "Guizhou", "city"),
    (["G36S64"], "Guizhou", "city"),
    (["G16S011", "G16S012", "G16S013"], "Guizhou", "province"),
    (["G167W101", "G167W102"], "Guizhou", "city"),
    (["S16S011"], "Sichuan", "province"),
    (["J16J141", "J16J142"], "Jiangsu", "province"),
    (["B16S021", "B16S022"], "Beijing", "city"),
    (["G15SS091", "G15SS092"], "Guangdong", "county"),
    (["G20P07"], "Guangdong", "city"),
    (["G15S04"], "Jiangsu", "city"),
    (["S18Y01"], "Shaanxi", "city"),
    (["H19X01", "H19C01"], "Hunan", "city"),
    (["JX20Y01", "JX20Y02"], "Jiangxi", "city"),
]


def test_sample_manifest_grouping(tmp_path: Path) -> None:
    db = store.open_database(tmp_path / "qualkit.db")
    import_manifest(db, ROOT / "interviews_sample" / "interviews.csv")
    db.conn.commit()

    groups = interview_groups(db)
    rows = appendix_tables(db, quoted=set())["interviews"].plain_rows()

    assert [[member["id"] for member in members] for members in groups] == [
        ids for ids, _, _ in APPENDIX_A
    ]
    assert rows == [
        [", ".join(ids), province, level] for ids, province, level in APPENDIX_A
    ]
    db.close()


def test_sample_build_marks_quoted(sample_project: Any, tmp_path: Path) -> None:
    db = store.open_database(sample_project.folder / "qualkit.db", create=False)
    try:
        paths = write_appendix(db, tmp_path / "out", ("md", "docx"))
        table = appendix_tables(db)["interviews"]
    finally:
        db.close()

    bold = {run.text for row in table.rows for run in row[0] if run.bold}
    markdown_text = (tmp_path / "out" / "interviews.md").read_text(encoding="utf-8")

    # Interviews without a transcript have no quotes, so they are never bold.
    assert "Z15F04" not in bold
    assert "G36S64" in bold
    assert "**G36S64**" in markdown_text
    assert len(docx_cells(tmp_path / "out" / "interviews.docx")) == len(APPENDIX_A) + 1
    assert all(path.stat().st_size > 0 for path in paths)


def test_regress_command_stores_table(sample_copy: Path, runner: Any) -> None:
    from qualkit.cli import cli

    result = runner.invoke(
        cli,
        [
            "--project",
            str(sample_copy),
            "scores",
            "regress",
            "--target",
            "imports_exports",
            "--layout",
            "long",
        ],
    )
    db = store.open_database(sample_copy / "qualkit.db", create=False)
    try:
        record = load_regression(db)
        table = appendix_tables(db)["regression"]
    finally:
        db.close()

    assert result.exit_code == 0, result.output
    assert record["columns"] == ["term", "imports_exports"]
    assert record["options"]["correlation"] == "ar1"
    assert table.columns == ("", "Imports and exports")
    assert table.plain_rows()[0][0] == "Personal connection"
    assert table.plain_rows()[-1][0] == "N"


# Escaping round trips -------------------------------------------------------------------

PRINTABLE = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=40
)
LATEX_UNESCAPES = {
    r"\textbackslash{}": "\\",
    r"\textasciitilde{}": "~",
    r"\textasciicircum{}": "^",
    r"\textless{}": "<",
    r"\textgreater{}": ">",
    r"\textbar{}": "|",
    "{[}": "[",
    "{]}": "]",
}


def unescape_latex(source: str) -> str:
    pattern = "|".join(re.escape(item) for item in LATEX_UNESCAPES) + r"|\\([&%$#_{}])"
    return re.sub(
        pattern,
        lambda found: found.group(1) or LATEX_UNESCAPES[found.group()],
        source,
    )


@settings(max_examples=300, deadline=None)
@given(text=PRINTABLE)
def test_latex_escape_round_trip(text: str) -> None:
    escaped = latex.escape_latex(text)

    assert unescape_latex(escaped) == text
    # Outside the escapes, no character that LaTeX interprets is left.
    assert re.search(r"(?<!\\)[&%$#_^~]", escaped) is None


@settings(max_examples=300, deadline=None)
@given(text=PRINTABLE)
def test_markdown_escape_round_trip_any_text(text: str) -> None:
    escaped = markdown.escape_markdown(text)

    assert re.sub(r"\\(.)", r"\1", escaped, flags=re.DOTALL) == text


@settings(max_examples=300, deadline=None)
@given(text=PRINTABLE.filter(lambda value: "\n" not in value))
def test_html_cell_round_trip(text: str) -> None:
    from qualkit.tables import cell
    from qualkit.tables import html as html_tables

    rendered = html_tables.render_cell(cell(Text(text)))

    assert unescape(rendered) == text
    assert "<" not in rendered
