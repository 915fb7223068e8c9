"""Tests of inter-coder agreement and the disagreement report.

Reference values come from published examples, named in each test. The
end-to-end tests code a real project through the CLI: an English and a
Chinese transcript, imported with the real spaCy pipelines. They compare
'qualkit agree' with figures that the test computes from the planned
codings with the textbook formulas, not with the packages qualkit calls.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from qualkit.agreement import (
    cohen_kappa,
    fleiss_kappa_complete,
    krippendorff_alpha,
    percent_agreement,
    shorten_quote,
)
from qualkit.cli import cli

ENGLISH = """\
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
CHINESE = """\
---
id: Z01
province: Zhejiang
level: county
language: zh
---

问：你们怎么报指标？

答：我们留一手，指标报低一点。环保指标是一票否决的。
"""
CODEBOOK = """\
codebook:
  id: study
  version: "1"
codes:
  - id: strategy
    label: Strategy
    definition: Parent code.
  - id: strategy.reframing
    label: Reframing
    parent: strategy
    definition: Reframing a target.
    when_to_use: A local feature is counted under a target.
    when_not_to_use: A new target is asked for.
    example: Golf lawns counted as ecological protection.
  - id: target
    label: Target
    definition: Parent code.
  - id: target.veto
    label: Veto target
    parent: target
    definition: A target whose failure vetoes the evaluation.
    when_to_use: One failure vetoes everything.
    when_not_to_use: An ordinary target.
    example: Social stability.
"""
REFRAMING = "strategy.reframing"
VETO = "target.veto"

# Each coder's codings: (spelling stored, source, code, sentence position, value).
# "Bob", "bob" and "BOB" are one coder; carol never codes Z01.
PLAN = [
    ("alice", "E01", REFRAMING, 1, None),
    ("alice", "E01", REFRAMING, 3, None),
    ("alice", "E01", REFRAMING, 5, None),
    ("alice", "E01", VETO, 5, 3.0),
    ("alice", "Z01", VETO, 1, None),
    ("Bob", "E01", REFRAMING, 1, None),
    ("bob", "E01", REFRAMING, 3, None),
    ("Bob", "E01", REFRAMING, 6, None),
    ("bob", "E01", VETO, 5, 2.0),
    ("BOB", "Z01", VETO, 1, None),
    ("Bob", "Z01", REFRAMING, 2, None),
    ("carol", "E01", REFRAMING, 1, None),
    ("carol", "E01", REFRAMING, 3, None),
    ("carol", "E01", VETO, 5, 3.0),
    ("carol", "E01", VETO, 6, 1.0),
]
CODERS = ("alice", "bob", "carol")


def invoke(runner: CliRunner, db: Path, *args: str, coder: str = "lead") -> Result:
    return runner.invoke(
        cli, ["--db", str(db), *args], prog_name="qualkit", env={"QUALKIT_CODER": coder}
    )


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def checkpoint(db: Path) -> None:
    connection = sqlite3.connect(db)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


@pytest.fixture(scope="module")
def coded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with E01 and Z01 imported, the codebook applied and PLAN coded, built once."""
    folder = tmp_path_factory.mktemp("agreement")
    (folder / "E01.md").write_text(ENGLISH, encoding="utf-8")
    (folder / "Z01.md").write_text(CHINESE, encoding="utf-8")
    (folder / "codebook.yaml").write_text(CODEBOOK, encoding="utf-8")
    db = folder / "qualkit.db"
    runner = CliRunner()
    result = invoke(
        runner, db, "import", str(folder / "E01.md"), str(folder / "Z01.md")
    )
    assert result.exit_code == 0, result.output
    result = invoke(runner, db, "codebook", "apply", str(folder / "codebook.yaml"))
    assert result.exit_code == 0, result.output
    for coder, source, code, position, value in PLAN:
        args = ["code", "add", source, "--code", code, "--segment", str(position)]
        if value is not None:
            args += ["--value", str(value)]
        result = invoke(runner, db, *args, coder=coder)
        assert result.exit_code == 0, result.output
    checkpoint(db)
    return db


@pytest.fixture
def coded_db(coded_template: Path, tmp_path: Path) -> Path:
    """A private copy of the coded template."""
    copy = tmp_path / "qualkit.db"
    shutil.copyfile(coded_template, copy)
    return copy


# Independent formulas for the expected figures ------------------------------------


def nominal_alpha(matrix: np.ndarray) -> float:
    """Krippendorff's nominal alpha from the coincidence matrix (Krippendorff 2011, section C)."""
    values = sorted({v for v in matrix.ravel() if not math.isnan(v)})
    index = {v: i for i, v in enumerate(values)}
    coincidences = np.zeros((len(values), len(values)))
    for column in matrix.T:
        present = [v for v in column if not math.isnan(v)]
        if len(present) < 2:
            continue
        for a, b in (
            (a, b)
            for i, a in enumerate(present)
            for j, b in enumerate(present)
            if i != j
        ):
            coincidences[index[a], index[b]] += 1 / (len(present) - 1)
    n = coincidences.sum()
    marginals = coincidences.sum(axis=1)
    observed = coincidences.sum() - np.trace(coincidences)
    expected = (n * n - (marginals**2).sum()) / (n - 1)
    return 1 - observed / expected


def two_coder_kappa(first: list[float], second: list[float]) -> float:
    """Cohen's kappa, (po - pe) / (1 - pe), over the units both coders coded."""
    pairs = [
        (a, b) for a, b in zip(first, second) if not (math.isnan(a) or math.isnan(b))
    ]
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    first_yes = sum(a for a, _ in pairs) / n
    second_yes = sum(b for _, b in pairs) / n
    chance = first_yes * second_yes + (1 - first_yes) * (1 - second_yes)
    return (observed - chance) / (1 - chance)


def fleiss(matrix: np.ndarray) -> float:
    """Fleiss' kappa (Fleiss 1971) over the units every coder coded."""
    complete = matrix[:, ~np.isnan(matrix).any(axis=0)]
    raters, units = complete.shape
    yes = complete.sum(axis=0)
    counts = np.column_stack([raters - yes, yes])
    agreement = ((counts * (counts - 1)).sum(axis=1) / (raters * (raters - 1))).mean()
    shares = counts.sum(axis=0) / (units * raters)
    chance = (shares**2).sum()
    return (agreement - chance) / (1 - chance)


def pairwise_percent(matrix: np.ndarray) -> float:
    agreeing = compared = 0
    for first, second in combinations(matrix, 2):
        for a, b in zip(first, second):
            if not (math.isnan(a) or math.isnan(b)):
                compared += 1
                agreeing += a == b
    return agreeing / compared


def units_of(db: Path, unit: str) -> list[tuple[str, int, int]]:
    """Return (source, start, end) of every unit, in the order qualkit compares them."""
    if unit == "source":
        return [
            (s, 0, len(t))
            for s, t in rows(db, "SELECT id, text FROM sources ORDER BY id")
        ]
    kinds = "('sentence')" if unit == "sentence" else "('turn', 'paragraph')"
    return rows(
        db,
        f"SELECT source_id, start_offset, end_offset FROM segments WHERE kind IN {kinds} "
        "ORDER BY source_id, position",
    )


def planned_spans(db: Path, coder: str, code: str) -> list[tuple[str, int, int]]:
    spans = []
    for spelling, source, planned_code, position, _ in PLAN:
        if spelling.casefold() == coder and planned_code == code:
            spans += rows(
                db,
                "SELECT source_id, start_offset, end_offset FROM segments WHERE source_id = ? "
                "AND kind = 'sentence' AND position = ?",
                (source, position),
            )
    return spans


def coded_sources(coder: str) -> set[str]:
    return {source for spelling, source, *_ in PLAN if spelling.casefold() == coder}


def expected_matrix(
    db: Path, unit: str, code: str, coders: tuple[str, ...] = CODERS
) -> np.ndarray:
    """Build the coders x units 0/1 matrix from PLAN, NaN where a coder skipped the source."""
    if unit == "character":
        units = [
            (source, i, i + 1)
            for source, text in rows(db, "SELECT id, text FROM sources ORDER BY id")
            for i in range(len(text))
        ]
    else:
        units = units_of(db, unit)
    matrix = np.zeros((len(coders), len(units)))
    for i, coder in enumerate(coders):
        spans = planned_spans(db, coder, code)
        for j, (source, start, end) in enumerate(units):
            if source not in coded_sources(coder):
                matrix[i, j] = math.nan
            else:
                matrix[i, j] = any(
                    s == source and a < end and b > start for s, a, b in spans
                )
    return matrix


def agree_json(
    runner: CliRunner, db: Path, *args: str
) -> dict[tuple[str, str], dict[str, Any]]:
    result = invoke(runner, db, "agree", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return {(row["code"], row["coefficient"]): row for row in json.loads(result.stdout)}


# Published reference values ----------------------------------------------------------

# Krippendorff, K. (2011). Computing Krippendorff's Alpha-Reliability.
# Annenberg School for Communication, University of Pennsylvania,
# https://repository.upenn.edu/asc_papers/43. The example of 4 observers and
# 12 units with missing data: rows are observers A to D, and NaN is a unit the
# observer did not code. The published alphas are nominal 0.743, ordinal
# 0.815, interval 0.849 and ratio 0.797.
RELIABILITY_DATA = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
        [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
    ]
)


@pytest.mark.parametrize(
    ("level", "published"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_alpha_matches_krippendorff_2011(level: str, published: float) -> None:
    # Published values: Krippendorff (2011), the same example at each level.
    assert round(krippendorff_alpha(RELIABILITY_DATA, level), 3) == published


def test_nominal_alpha_formula_matches_reference() -> None:
    # The test's own coincidence-matrix formula must give the published 0.743
    # (Krippendorff 2011), so it can check qualkit's figures below.
    assert round(nominal_alpha(RELIABILITY_DATA), 3) == 0.743


def test_cohen_kappa_wikipedia_example() -> None:
    # Wikipedia, "Cohen's kappa", simple example: 50 grant proposals read by
    # readers A and B; both yes 20, A yes and B no 5, A no and B yes 10,
    # both no 15. Observed agreement 0.7, chance agreement 0.5, kappa 0.4.
    first = [1.0] * 20 + [1.0] * 5 + [0.0] * 10 + [0.0] * 15
    second = [1.0] * 20 + [0.0] * 5 + [1.0] * 10 + [0.0] * 15
    matrix = np.array([first, second])

    assert cohen_kappa(matrix) == pytest.approx(0.4)
    assert percent_agreement(matrix) == pytest.approx(0.7)


# The example of Fleiss, J. L. (1971), Measuring nominal scale agreement
# among many raters, Psychological Bulletin 76(5): 30 patients, each given
# one of 5 diagnoses by 6 psychiatrists. These are the "diagnoses" data of
# R's irr package, whose kappam.fleiss gives 0.4302445, the reference that
# statsmodels' own tests check fleiss_kappa against.
DIAGNOSES = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]  # fmt: skip


def test_fleiss_kappa_fleiss_1971() -> None:
    matrix = np.array(DIAGNOSES, dtype=float).T

    assert fleiss_kappa_complete(matrix) == pytest.approx(0.4302445, abs=1e-7)


def test_fleiss_equals_formula_on_missing_data() -> None:
    rng = np.random.default_rng(7)
    matrix = (rng.random((4, 40)) < 0.4).astype(float)
    matrix[0, :5] = np.nan

    assert fleiss_kappa_complete(matrix) == pytest.approx(fleiss(matrix))


def test_undefined_alpha_is_nan() -> None:
    assert math.isnan(krippendorff_alpha(np.zeros((2, 5)), "nominal"))


# From codings in a project to the figures ----------------------------------------------


@pytest.mark.parametrize("unit", ["sentence", "turn", "source", "character"])
def test_agree_matches_formulas(runner: CliRunner, coded_db: Path, unit: str) -> None:
    found = agree_json(runner, coded_db, "--unit", unit, "--bootstrap", "0")

    for code in (REFRAMING, VETO):
        matrix = expected_matrix(coded_db, unit, code)
        pairable = matrix[:, (~np.isnan(matrix)).sum(axis=0) >= 2]
        assert found[(code, "percent_agreement")]["value"] == pytest.approx(
            pairwise_percent(matrix)
        )
        if len(np.unique(pairable[~np.isnan(pairable)])) < 2:
            # Every judgement is the same (veto per source), so alpha and kappa are undefined.
            assert found[(code, "alpha_nominal")]["value"] is None
            assert (
                found[(code, "alpha_nominal")]["note"]
                == "undefined: every judgement is the same"
            )
            continue
        assert found[(code, "alpha_nominal")]["value"] == pytest.approx(
            nominal_alpha(pairable)
        )
        if unit != "source":
            assert found[(code, "fleiss_kappa")]["value"] == pytest.approx(
                fleiss(matrix)
            )
        assert found[(code, "alpha_nominal")]["units"] == pairable.shape[1]
        assert found[(code, "alpha_nominal")]["coders"] == 3


def test_agree_pooled_stacks_codes(runner: CliRunner, coded_db: Path) -> None:
    found = agree_json(runner, coded_db, "--bootstrap", "0")
    stacked = np.concatenate(
        [expected_matrix(coded_db, "sentence", code) for code in (REFRAMING, VETO)],
        axis=1,
    )
    pairable = stacked[:, (~np.isnan(stacked)).sum(axis=0) >= 2]

    assert found[("(pooled)", "alpha_nominal")]["value"] == pytest.approx(
        nominal_alpha(pairable)
    )
    assert found[("(pooled)", "fleiss_kappa")]["value"] == pytest.approx(
        fleiss(stacked)
    )


def test_cohen_two_coders_case_insensitive(runner: CliRunner, coded_db: Path) -> None:
    found = agree_json(
        runner, coded_db, "--coder", "ALICE", "--coder", "bob", "--bootstrap", "0"
    )
    matrix = expected_matrix(coded_db, "sentence", REFRAMING, ("alice", "bob"))

    assert found[(REFRAMING, "cohen_kappa")]["value"] == pytest.approx(
        two_coder_kappa(list(matrix[0]), list(matrix[1]))
    )
    assert found[(REFRAMING, "cohen_kappa")]["units"] == 10
    assert found[(REFRAMING, "cohen_kappa")]["coders"] == 2


def test_missing_source_is_missing_data(runner: CliRunner, coded_db: Path) -> None:
    found = agree_json(
        runner, coded_db, "--coder", "alice", "--coder", "carol", "--bootstrap", "0"
    )

    # carol has no coding in Z01, so only E01's seven sentences are compared.
    assert found[(VETO, "cohen_kappa")]["units"] == 7


def test_assume_coded_makes_absence(runner: CliRunner, coded_db: Path) -> None:
    found = agree_json(
        runner,
        coded_db,
        "--coder",
        "alice",
        "--coder",
        "carol",
        "--assume-coded",
        "--bootstrap",
        "0",
    )

    assert found[(VETO, "cohen_kappa")]["units"] == 10


def test_value_alphas_for_valued_code(runner: CliRunner, coded_db: Path) -> None:
    found = agree_json(runner, coded_db, "--bootstrap", "0")
    # Sentence 5 of E01: alice 3, bob 2, carol 3; sentence 6: carol alone (1).
    values = np.array([[3.0], [2.0], [3.0]])

    assert found[(VETO, "alpha_interval")]["value"] == pytest.approx(
        krippendorff_alpha(values, "interval")
    )
    assert (REFRAMING, "alpha_interval") not in found


def test_min_overlap_share(runner: CliRunner, coded_db: Path) -> None:
    # A turn counts only when codings cover half its characters: bob's
    # sentence 6 covers 27 of the 68 characters of the last turn.
    found = agree_json(
        runner,
        coded_db,
        "--unit",
        "turn",
        "--min-overlap",
        "0.5",
        "--code",
        REFRAMING,
        "--bootstrap",
        "0",
    )
    loose = agree_json(
        runner, coded_db, "--unit", "turn", "--code", REFRAMING, "--bootstrap", "0"
    )

    assert (
        found[(REFRAMING, "percent_agreement")]["value"]
        > loose[(REFRAMING, "percent_agreement")]["value"]
    )


def test_parent_code_with_children(runner: CliRunner, coded_db: Path) -> None:
    found = agree_json(runner, coded_db, "--code", "strategy", "--bootstrap", "0")

    # No coder applied the parent itself, so its figures are undefined.
    assert {code for code, _ in found} == {"strategy", REFRAMING, "(pooled)"}
    assert found[("strategy", "alpha_nominal")]["value"] is None
    assert found[("strategy", "percent_agreement")]["value"] == 1.0


def test_bootstrap_reproducible(runner: CliRunner, coded_db: Path) -> None:
    first = agree_json(runner, coded_db, "--bootstrap", "200", "--code", REFRAMING)
    second = agree_json(runner, coded_db, "--bootstrap", "200", "--code", REFRAMING)
    other = agree_json(
        runner, coded_db, "--bootstrap", "200", "--code", REFRAMING, "--seed", "5"
    )
    row = first[(REFRAMING, "alpha_nominal")]

    assert row == second[(REFRAMING, "alpha_nominal")]
    assert row["ci_low"] <= row["value"] <= row["ci_high"]
    assert other[(REFRAMING, "alpha_nominal")]["value"] == row["value"]


def test_suggestions_counted_on_request(runner: CliRunner, coded_db: Path) -> None:
    # A suggestion of the autocode coder joins only when named and asked for.
    connection = sqlite3.connect(coded_db)
    with connection:
        connection.execute(
            "INSERT INTO codings (source_id, start_offset, end_offset, quote, code_id, coder, "
            "origin, status, codebook_version, created_at, updated_at) "
            "SELECT source_id, start_offset, end_offset, '', ?, 'autocode', 'auto', "
            "'suggested', '1', '', '' FROM segments WHERE source_id = 'E01' AND kind = 'sentence' "
            "AND position = 1",
            (REFRAMING,),
        )
    connection.close()
    options = [
        "--coder",
        "alice",
        "--coder",
        "autocode",
        "--code",
        REFRAMING,
        "--bootstrap",
        "0",
    ]
    without = agree_json(runner, coded_db, *options)
    found = agree_json(runner, coded_db, *options, "--include-suggestions")

    # alice codes E01 sentences 1, 3 and 5; autocode suggests sentence 1.
    assert without[(REFRAMING, "percent_agreement")]["value"] == pytest.approx(4 / 7)
    assert found[(REFRAMING, "percent_agreement")]["value"] == pytest.approx(5 / 7)


AGREE_ERRORS = [
    pytest.param(
        ["--coder", "alice", "--coder", "dave"],
        "Coder 'dave' has no codings",
        id="unknown-coder",
    ),
    pytest.param(["--coder", "alice"], "at least two coders", id="one-coder"),
    pytest.param(["--coefficient", "cohen"], "exactly two coders", id="cohen-three"),
    pytest.param(
        ["--code", REFRAMING, "--level", "interval"], "carries a value", id="no-values"
    ),
    pytest.param(
        ["--coder", "alice", "--coder", "Alice"], "same coder twice", id="same-coder"
    ),
    pytest.param(
        ["--unit", "turn", "--source", "nope"],
        "Source 'nope' not found",
        id="unknown-source",
    ),
]


@pytest.mark.parametrize(("args", "message"), AGREE_ERRORS)
def test_agree_errors(
    runner: CliRunner, coded_db: Path, args: list[str], message: str
) -> None:
    result = invoke(runner, coded_db, "agree", *args)

    assert result.exit_code == 1
    assert message in result.stderr


def test_agree_no_units(runner: CliRunner, tmp_path: Path, coded_db: Path) -> None:
    # Codings of two coders that exist only as rejections give no codes to compare.
    connection = sqlite3.connect(coded_db)
    with connection:
        connection.execute("UPDATE codings SET status = 'rejected'")
    connection.close()
    result = invoke(runner, coded_db, "agree")

    assert result.exit_code == 1
    assert "No codes to compare" in result.stderr
    assert "--include-suggestions" in result.stderr


# Disagreements -------------------------------------------------------------------------


def test_disagreements_lists_units(runner: CliRunner, coded_db: Path) -> None:
    result = invoke(runner, coded_db, "disagreements", "--format", "json")
    listed = {row["unit_id"]: row for row in json.loads(result.stdout)}

    assert result.exit_code == 0, result.output
    assert set(listed) == {"E01:sentence:5", "E01:sentence:6", "Z01:sentence:2"}
    assert (
        listed["E01:sentence:5"]["quote"] == "The environment target is a veto target."
    )
    assert listed["E01:sentence:5"]["alice"] == f"{REFRAMING}, {VETO}=3"
    assert listed["E01:sentence:5"]["Bob"] == f"{VETO}=2"
    assert listed["Z01:sentence:2"]["carol"] == "(source not coded)"
    assert listed["Z01:sentence:2"]["disputed"] == REFRAMING


def test_disagreements_csv_has_decision(runner: CliRunner, coded_db: Path) -> None:
    result = invoke(
        runner, coded_db, "disagreements", "--format", "csv", "--unit", "source"
    )
    header = result.stdout.splitlines()[0].split(",")

    assert result.exit_code == 0, result.output
    assert header[0] == "unit_id"
    assert header[-1] == "decision"


def test_disagreements_character_runs(runner: CliRunner, coded_db: Path) -> None:
    result = invoke(
        runner,
        coded_db,
        "disagreements",
        "--unit",
        "character",
        "--format",
        "json",
        "--coder",
        "alice",
        "--coder",
        "bob",
    )
    listed = json.loads(result.stdout)
    sentence_6 = rows(
        coded_db,
        "SELECT start_offset, end_offset FROM segments WHERE source_id = 'E01' "
        "AND kind = 'sentence' AND position = 6",
    )[0]

    assert result.exit_code == 0, result.output
    assert any((row["start"], row["end"]) == sentence_6 for row in listed)


def test_shorten_quote_keeps_ends() -> None:
    text = "start " + "word " * 100 + "finish"
    short = shorten_quote(text, 40)

    assert len(short) <= 40
    assert short.startswith("start")
    assert short.endswith("finish")
    assert shorten_quote("  two\n lines ") == "two lines"


def test_code_add_value_listed(runner: CliRunner, coded_db: Path) -> None:
    result = invoke(
        runner, coded_db, "code", "list", "--coder", "carol", "--format", "json"
    )
    values = sorted(
        row["value"] for row in json.loads(result.stdout) if row["value"] is not None
    )

    assert result.exit_code == 0, result.output
    assert values == [1.0, 3.0]


def test_code_add_rejects_nan_value(runner: CliRunner, coded_db: Path) -> None:
    result = invoke(
        runner,
        coded_db,
        "code",
        "add",
        "E01",
        "--code",
        VETO,
        "--segment",
        "0",
        "--value",
        "nan",
    )

    assert result.exit_code == 1
    assert "not a finite number" in result.stderr
