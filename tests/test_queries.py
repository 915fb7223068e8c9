"""Tests of boolean code queries, matrices, keyword in context and the quantitized export.

Every expected number is counted by hand from the fixture below: three
interviews and eleven accepted codings by alice, plus one suggestion and one
rejected coding that the default queries must leave out.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from qualkit.cli import cli
from qualkit.errors import InputError
from qualkit.quantitize import neutralize_cell, stata_names
from qualkit.queries import And, CodeTerm, Not, Or, normalized_text, parse_expression

E01 = """\
---
id: E01
province: Hunan
level: city
---

Interviewer: How are the targets set?

Respondent: We talked the targets down before the meeting. The ranking came out well. We reframed the target as a green project.

Interviewer: And the environment?

Respondent: The environment target is a veto target. Nobody can bargain over it.
"""
# The note and interviewer fields start like spreadsheet formulas.
E02 = """\
---
id: E02
province: Hunan
level: county
note: "=1+2"
interviewer: "@admin"
---

Respondent: We reframed it again. Our ＧＤＰ figure was fine.
"""
Z01 = """\
---
id: Z01
province: Zhejiang
level: county
language: zh
---

问：你们怎么报指标？

答：我们留一手，指标报低一点。环保指标是一票否决的。

问：排名呢？

答：排名很重要，考核指标都看排名。
"""
CODEBOOK = """\
codebook:
  id: study
  version: "1"
codes:
  - id: strategy
    label: Strategy
    definition: A way to bargain.
{leaves}"""
LEAF = """\
  - id: {id}
    label: {id}
    {parent}definition: Code {id}.
    when_to_use: When {id} applies.
    when_not_to_use: When another code applies.
    example: An example of {id}.
"""
PARENTS = ("target", "channel")
LEAVES = {
    "strategy.underpromise": "strategy",
    "strategy.reframing": "strategy",
    "target.environment": "target",
    "target.veto": "target",
    "channel.formal": "channel",
    "tournament": None,
}


def codebook_yaml() -> str:
    parts = []
    for parent in PARENTS:
        parts.append(
            f"  - id: {parent}\n    label: {parent}\n    definition: Parent {parent}.\n"
        )
    for code_id, parent in LEAVES.items():
        parts.append(
            LEAF.format(id=code_id, parent=f"parent: {parent}\n    " if parent else "")
        )
    return CODEBOOK.format(leaves="".join(parts))


def invoke(runner: CliRunner, db: Path, *args: str) -> Result:
    return runner.invoke(
        cli,
        ["--db", str(db), *args],
        prog_name="qualkit",
        env={"QUALKIT_CODER": "alice"},
    )


def sql(db: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(query, params).fetchall()
    finally:
        connection.close()


def span_of(text: str, phrase: str) -> str:
    start = text.index(phrase)
    return f"{start}:{start + len(phrase)}"


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three interviews, the study codebook and the hand-counted codings."""
    folder = tmp_path_factory.mktemp("queries")
    for name, text in (("E01", E01), ("E02", E02), ("Z01", Z01)):
        (folder / f"{name}.md").write_text(text, encoding="utf-8")
    (folder / "codebook.yaml").write_text(codebook_yaml(), encoding="utf-8")
    db = folder / "qualkit.db"
    runner = CliRunner()
    assert (
        invoke(
            runner,
            db,
            "import",
            *(str(folder / f"{n}.md") for n in ("E01", "E02", "Z01")),
        ).exit_code
        == 0
    )
    assert (
        invoke(runner, db, "codebook", "apply", str(folder / "codebook.yaml")).exit_code
        == 0
    )

    e01 = sql(db, "SELECT text FROM sources WHERE id = 'E01'")[0][0]
    e02 = sql(db, "SELECT text FROM sources WHERE id = 'E02'")[0][0]
    z01 = sql(db, "SELECT text FROM sources WHERE id = 'Z01'")[0][0]
    codings = [
        (
            "E01",
            "strategy.reframing",
            span_of(e01, "We reframed the target as a green project."),
        ),  # c1
        (
            "E01",
            "target.environment",
            span_of(e01, "the target as a green project."),
        ),  # c2
        ("E01", "channel.formal", span_of(e01, "a green project.")),  # c3
        (
            "E01",
            "strategy.underpromise",
            span_of(e01, "We talked the targets down before the meeting."),
        ),  # c4
        (
            "E01",
            "target.environment",
            span_of(e01, "The environment target is a veto target."),
        ),  # c5
        (
            "E01",
            "target.veto",
            span_of(
                e01,
                "The environment target is a veto target. Nobody can bargain over it.",
            ),
        ),  # c6
        (
            "E01",
            "strategy.reframing",
            span_of(e01, "Nobody can bargain over it."),
        ),  # c7
        ("E02", "strategy.reframing", span_of(e02, "We reframed it again.")),  # e2
        (
            "Z01",
            "strategy.underpromise",
            span_of(z01, "我们留一手，指标报低一点。"),
        ),  # z1
        ("Z01", "target.environment", span_of(z01, "环保指标是一票否决的。")),  # z2
        ("Z01", "strategy.reframing", span_of(z01, "环保指标是一票否决的。")),  # z3
        ("Z01", "tournament", span_of(z01, "排名很重要，考核指标都看排名。")),  # z4
    ]
    for source, code, span in codings:
        result = invoke(
            runner, db, "code", "add", source, "--code", code, "--span", span
        )
        assert result.exit_code == 0, result.output
    connection = sqlite3.connect(db)
    with connection:
        ranking = e01.index("The ranking came out well.")
        for status, code in (("suggested", "tournament"), ("rejected", "target.veto")):
            connection.execute(
                "INSERT INTO codings (source_id, start_offset, end_offset, quote, code_id, coder, origin, "
                "status, codebook_version, created_at, updated_at) VALUES ('E01', ?, ?, ?, ?, ?, 'auto', ?, '1', 't', 't')",
                (
                    ranking,
                    ranking + 26,
                    "The ranking came out well.",
                    code,
                    "autocode" if status == "suggested" else "alice",
                    status,
                ),
            )
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return db


@pytest.fixture
def db(template_db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "qualkit.db"
    shutil.copyfile(template_db, copy)
    return copy


# The expression parser


PARSED = [
    pytest.param("a", CodeTerm("a"), id="single-code"),
    pytest.param(
        "a AND b OR c",
        Or((And((CodeTerm("a"), CodeTerm("b"))), CodeTerm("c"))),
        id="and-binds-tighter",
    ),
    pytest.param(
        "a AND (b OR c)",
        And((CodeTerm("a"), Or((CodeTerm("b"), CodeTerm("c"))))),
        id="parentheses",
    ),
    pytest.param(
        "NOT a AND b", And((Not(CodeTerm("a")), CodeTerm("b"))), id="not-binds-tightest"
    ),
    pytest.param("not not a", Not(Not(CodeTerm("a"))), id="double-not-any-case"),
    pytest.param(
        "(a)or(b)",
        Or((CodeTerm("a"), CodeTerm("b"))),
        id="no-spaces-around-parentheses",
    ),
]


@pytest.mark.parametrize(("text", "tree"), PARSED)
def test_parse_expression(text: str, tree: Any) -> None:
    assert parse_expression(text) == tree


BAD_EXPRESSIONS = [
    pytest.param("", "the query is empty", id="empty"),
    pytest.param("a AND", "ends where a code or '(' is expected", id="dangling-and"),
    pytest.param("(a OR b", "missing ')'", id="unclosed"),
    pytest.param("a OR b)", "unexpected ')'", id="extra-close"),
    pytest.param("a b", "unexpected 'b'", id="missing-operator"),
    pytest.param("AND a", "found 'AND'", id="leading-operator"),
]


@pytest.mark.parametrize(("text", "message"), BAD_EXPRESSIONS)
def test_bad_expression(text: str, message: str) -> None:
    with pytest.raises(
        InputError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        parse_expression(text)


def test_bad_expression_points_at_token() -> None:
    with pytest.raises(InputError) as raised:
        parse_expression("a AND AND b")

    assert "at character 7" in str(raised.value)
    assert "\n        ^" in str(raised.value)


# Quotes by a boolean expression


def quotes(
    runner: CliRunner, db: Path, expression: str, *args: str
) -> list[tuple[str, str]]:
    result = invoke(
        runner, db, "query", "quotes", expression, *args, "--format", "json"
    )
    assert result.exit_code == 0, result.output
    return [(row["source_id"], row["quote"]) for row in json.loads(result.stdout)]


def test_quotes_overlap_with_not(runner: CliRunner, db: Path) -> None:
    found = quotes(
        runner, db, "strategy.reframing AND target.environment AND NOT channel.formal"
    )

    assert found == [("E01", "the target as"), ("Z01", "环保指标是一票否决的。")]


def test_quotes_overlap_parent_code(runner: CliRunner, db: Path) -> None:
    found = quotes(runner, db, "target AND strategy")

    assert found == [
        ("E01", "the target as a green project."),
        ("E01", "Nobody can bargain over it."),
        ("Z01", "环保指标是一票否决的。"),
    ]


def test_quotes_sentence_unit(runner: CliRunner, db: Path) -> None:
    found = quotes(
        runner,
        db,
        "strategy.reframing AND target.environment AND NOT channel.formal",
        "--unit",
        "sentence",
    )

    assert found == [("Z01", "环保指标是一票否决的。")]


def test_quotes_turn_unit(runner: CliRunner, db: Path) -> None:
    found = quotes(runner, db, "target.veto OR tournament", "--unit", "turn")

    assert found == [
        ("E01", "The environment target is a veto target. Nobody can bargain over it."),
        ("Z01", "排名很重要，考核指标都看排名。"),
    ]


def test_quotes_metadata_filter(runner: CliRunner, db: Path) -> None:
    found = quotes(runner, db, "strategy.reframing", "--where", "level=county")

    assert found == [
        ("E02", "We reframed it again."),
        ("Z01", "环保指标是一票否决的。"),
    ]


def test_quotes_default_excludes_suggestions(runner: CliRunner, db: Path) -> None:
    assert quotes(runner, db, "tournament", "--source", "E01") == []


def test_quotes_status_option(runner: CliRunner, db: Path) -> None:
    found = quotes(runner, db, "tournament", "--source", "E01", "--status", "suggested")

    assert found == [("E01", "The ranking came out well.")]


@pytest.mark.parametrize(
    ("expression", "status", "message"),
    [
        pytest.param(
            "strategy.reframe AND target",
            1,
            "Code 'strategy.reframe' not found",
            id="unknown-code",
        ),
        pytest.param("strategy AND (target", 1, "missing ')'", id="unbalanced"),
    ],
)
def test_quotes_bad_input(
    runner: CliRunner, db: Path, expression: str, status: int, message: str
) -> None:
    result = invoke(runner, db, "query", "quotes", expression)

    assert result.exit_code == status
    assert message in result.stderr


def test_quotes_bad_unit(runner: CliRunner, db: Path) -> None:
    result = invoke(runner, db, "query", "quotes", "strategy", "--unit", "page")

    assert result.exit_code == 2


# Co-occurrence and code-by-attribute matrices


def matrix(runner: CliRunner, db: Path, *args: str) -> dict[str, dict[str, int]]:
    result = invoke(runner, db, "query", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return {row.pop("code"): row for row in json.loads(result.stdout)}


def test_cooccurrence_overlap(runner: CliRunner, db: Path) -> None:
    cells = matrix(runner, db, "cooccurrence")

    assert cells["strategy.reframing"]["target.environment"] == 2
    assert cells["strategy.reframing"]["channel.formal"] == 1
    assert cells["target.environment"]["channel.formal"] == 1
    assert cells["target.environment"]["target.veto"] == 1
    assert cells["target.veto"]["strategy.reframing"] == 1
    assert cells["strategy.underpromise"]["target.environment"] == 0


def test_cooccurrence_overlap_diagonal(runner: CliRunner, db: Path) -> None:
    cells = matrix(runner, db, "cooccurrence")
    diagonal = {code: row[code] for code, row in cells.items()}

    assert diagonal == {
        "strategy.underpromise": 2,
        "strategy.reframing": 4,
        "target.environment": 3,
        "target.veto": 1,
        "channel.formal": 1,
        "tournament": 1,
    }


def test_cooccurrence_sentence(runner: CliRunner, db: Path) -> None:
    cells = matrix(runner, db, "cooccurrence", "--unit", "sentence")

    assert cells["strategy.reframing"]["target.environment"] == 2
    assert cells["target.veto"]["target.veto"] == 2
    assert cells["target.veto"]["strategy.reframing"] == 1
    assert cells["strategy.reframing"]["strategy.reframing"] == 4


def test_cooccurrence_rolled_up(runner: CliRunner, db: Path) -> None:
    cells = matrix(runner, db, "cooccurrence", "--depth", "1")

    assert cells == {
        "strategy": {"strategy": 6, "target": 3, "channel": 1, "tournament": 0},
        "target": {"strategy": 3, "target": 4, "channel": 1, "tournament": 0},
        "channel": {"strategy": 1, "target": 1, "channel": 1, "tournament": 0},
        "tournament": {"strategy": 0, "target": 0, "channel": 0, "tournament": 1},
    }


def test_attributes_by_province(runner: CliRunner, db: Path) -> None:
    cells = matrix(runner, db, "attributes", "--by", "province")

    assert cells["strategy.reframing"] == {"Hunan": 3, "Zhejiang": 1, "total": 4}
    assert cells["target.environment"] == {"Hunan": 2, "Zhejiang": 1, "total": 3}
    assert cells["tournament"] == {"Hunan": 0, "Zhejiang": 1, "total": 1}


def test_attributes_counts_cases(runner: CliRunner, db: Path) -> None:
    cells = matrix(runner, db, "attributes", "--by", "province", "--count", "cases")

    assert cells["strategy.reframing"] == {"Hunan": 2, "Zhejiang": 1, "total": 3}


def test_attributes_by_level_rolled_up(runner: CliRunner, db: Path) -> None:
    cells = matrix(
        runner, db, "attributes", "--by", "level", "--count", "sources", "--depth", "1"
    )

    assert cells["strategy"] == {"city": 1, "county": 2, "total": 3}
    assert cells["target"] == {"city": 1, "county": 1, "total": 2}


def test_attributes_unknown_field(runner: CliRunner, db: Path) -> None:
    result = invoke(runner, db, "query", "attributes", "--by", "religion")

    assert result.exit_code == 1
    assert "unknown metadata field 'religion'" in result.stderr


# Keyword in context


def kwic(runner: CliRunner, db: Path, *args: str) -> list[dict[str, Any]]:
    result = invoke(runner, db, "query", "kwic", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_kwic_chinese_hits(runner: CliRunner, db: Path) -> None:
    hits = kwic(runner, db, "指标")

    assert [(hit["source_id"], hit["offset"]) for hit in hits] == [
        ("Z01", 7),
        ("Z01", 20),
        ("Z01", 29),
        ("Z01", 58),
    ]


def test_kwic_chinese_context(runner: CliRunner, db: Path) -> None:
    hits = kwic(runner, db, "指标", "--width", "3")

    assert (hits[1]["left"], hits[1]["keyword"], hits[1]["right"]) == (
        "一手，",
        "指标",
        "报低一",
    )


def test_kwic_chinese_codes_at_hit(runner: CliRunner, db: Path) -> None:
    hits = kwic(runner, db, "指标")

    assert [hit["codes"] for hit in hits] == [
        "",
        "strategy.underpromise",
        "strategy.reframing, target.environment",
        "tournament",
    ]


def test_kwic_role_filter(runner: CliRunner, db: Path) -> None:
    hits = kwic(runner, db, "指标", "--role", "respondent")

    assert [hit["offset"] for hit in hits] == [20, 29, 58]


def test_kwic_english_ignores_case(runner: CliRunner, db: Path) -> None:
    hits = kwic(runner, db, "THE RANKING", "--width", "5")

    assert [
        (hit["source_id"], hit["left"], hit["keyword"], hit["right"]) for hit in hits
    ] == [("E01", "ing. ", "The ranking", " came")]


def test_kwic_full_width_letters(runner: CliRunner, db: Path) -> None:
    hits = kwic(runner, db, "gdp")

    assert [(hit["source_id"], hit["keyword"]) for hit in hits] == [("E02", "ＧＤＰ")]


def test_kwic_where_filter(runner: CliRunner, db: Path) -> None:
    assert kwic(runner, db, "target", "--where", "province=Zhejiang") == []


def test_kwic_regex(runner: CliRunner, db: Path) -> None:
    hits = kwic(runner, db, r"排名\w", "--regex")

    assert [hit["keyword"] for hit in hits] == ["排名呢", "排名很"]


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        pytest.param(["(unclosed", "--regex"], 1, "does not compile", id="bad-regex"),
        pytest.param(
            ["x*", "--regex"], 1, "matches the empty string", id="empty-regex"
        ),
        pytest.param(["  "], 1, "the search term is empty", id="blank-term"),
        pytest.param(
            ["x", "--source", "E99"], 1, "Source 'E99' not found", id="unknown-source"
        ),
        pytest.param(["x", "--width", "0"], 2, "--width", id="zero-width"),
    ],
)
def test_kwic_bad_input(
    runner: CliRunner, db: Path, args: list[str], status: int, message: str
) -> None:
    result = invoke(runner, db, "query", "kwic", *args)

    assert result.exit_code == status
    assert message in result.stderr


def test_normalized_text_maps_offsets() -> None:
    searched, offsets = normalized_text("Ａß指")

    assert searched == "ass指"
    assert offsets == [0, 1, 1, 2]


# Quantitized export


def exported(runner: CliRunner, db: Path, out: Path, *args: str) -> Path:
    result = invoke(runner, db, "export", "matrix", str(out), *args)
    assert result.exit_code == 0, result.output
    return out


def test_export_csv_counts(runner: CliRunner, db: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(exported(runner, db, tmp_path / "m.csv"), index_col="case_id")

    assert frame["strategy.reframing"].to_dict() == {"E01": 2, "E02": 1, "Z01": 1}
    assert frame["target.veto"].to_dict() == {"E01": 1, "E02": 0, "Z01": 0}
    assert frame["tournament"].to_dict() == {"E01": 0, "E02": 0, "Z01": 1}


def test_export_presence_and_share(runner: CliRunner, db: Path, tmp_path: Path) -> None:
    out = exported(
        runner, db, tmp_path / "m.csv", "--measure", "presence", "--measure", "share"
    )
    frame = pd.read_csv(out, index_col="case_id")
    characters = sql(db, "SELECT length(text) FROM sources WHERE id = 'E01'")[0][0]

    assert frame["target.environment:presence"].to_dict() == {
        "E01": 1,
        "E02": 0,
        "Z01": 1,
    }
    # E01's environment codings cover 30 and 40 characters without overlap.
    assert frame.loc["E01", "target.environment:share"] == pytest.approx(
        70 / characters
    )


def test_export_share_counts_overlap_once(
    runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    out = exported(runner, db, tmp_path / "m.csv", "--measure", "share", "--depth", "1")
    frame = pd.read_csv(out, index_col="case_id")
    characters = sql(db, "SELECT length(text) FROM sources WHERE id = 'E01'")[0][0]

    # target in E01: 137-167, 216-256 and 216-284 cover 30 + 68 characters.
    assert frame.loc["E01", "target"] == pytest.approx(98 / characters)


def test_export_neutralizes_formulas_csv(
    runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    out = exported(
        runner,
        db,
        tmp_path / "m.csv",
        "--attribute",
        "note",
        "--attribute",
        "interviewer",
    )
    frame = pd.read_csv(out, index_col="case_id", dtype=str)

    assert frame.loc["E02", "note"] == "'=1+2"
    assert frame.loc["E02", "interviewer"] == "'@admin"


def test_export_xlsx_cells_are_text(
    runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    out = exported(runner, db, tmp_path / "m.xlsx", "--attribute", "note")
    sheet = openpyxl.load_workbook(out)["matrix"]
    header = [cell.value for cell in sheet[1]]
    e02 = next(row for row in sheet.iter_rows(min_row=2) if row[0].value == "E02")
    note = e02[header.index("note")]

    assert note.value == "'=1+2"
    assert note.data_type == "s"


def test_export_xlsx_numbers_stay_numbers(
    runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    out = exported(runner, db, tmp_path / "m.xlsx")
    frame = pd.read_excel(out, sheet_name="matrix", index_col="case_id")

    assert frame.loc["E01", "strategy.reframing"] == 2


def test_export_stata(runner: CliRunner, db: Path, tmp_path: Path) -> None:
    out = exported(
        runner, db, tmp_path / "m.dta", "--measure", "count", "--measure", "presence"
    )
    frame = pd.read_stata(out, index_col="case_id")
    with pd.io.stata.StataReader(out) as reader:
        labels = reader.variable_labels()

    assert frame["strategy_reframing_count"].to_dict() == {"E01": 2, "E02": 1, "Z01": 1}
    assert labels["strategy_reframing_count"] == "count of strategy.reframing"


def test_export_unknown_suffix(runner: CliRunner, db: Path, tmp_path: Path) -> None:
    result = invoke(runner, db, "export", "matrix", str(tmp_path / "m.ods"))

    assert result.exit_code == 1
    assert "cannot tell the export format" in result.stderr


def test_export_where_limits_cases(runner: CliRunner, db: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(
        exported(runner, db, tmp_path / "m.csv", "--where", "province=Hunan")
    )

    assert list(frame["case_id"]) == ["E01", "E02"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("=SUM(A1)", "'=SUM(A1)", id="equals"),
        pytest.param("+1", "'+1", id="plus"),
        pytest.param("-2", "'-2", id="minus"),
        pytest.param("@x", "'@x", id="at"),
        pytest.param("\tx", "'\tx", id="tab"),
        pytest.param("Hunan", "Hunan", id="plain"),
        pytest.param(-2, -2, id="number"),
    ],
)
def test_neutralize_cell(value: Any, expected: Any) -> None:
    assert neutralize_cell(value) == expected


def test_stata_names_unique_and_short() -> None:
    long = "channel.informal.department.counterpart_bureaus"
    names = stata_names([long + ":count", long + ":share", "9lives", "a.b", "a_b"])

    assert names == {
        long + ":count": "channel_informal_department_coun",
        long + ":share": "channel_informal_department_co_2",
        "9lives": "v_9lives",
        "a.b": "a_b",
        "a_b": "a_b_2",
    }


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        pytest.param(["cooccurrence", "--depth", "0"], 2, "--depth", id="zero-depth"),
        pytest.param(
            ["cooccurrence", "--code", "nope"],
            1,
            "Code 'nope' not found",
            id="unknown-code",
        ),
        pytest.param(
            ["attributes"], 2, "Missing option '--by'", id="attributes-without-field"
        ),
        pytest.param(
            ["attributes", "--by", "level", "--count", "words"],
            2,
            "--count",
            id="bad-count",
        ),
    ],
)
def test_matrix_bad_input(
    runner: CliRunner, db: Path, args: list[str], status: int, message: str
) -> None:
    result = invoke(runner, db, "query", *args)

    assert result.exit_code == status
    assert message in result.stderr
