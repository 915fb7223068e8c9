"""Tests of joint displays, meta-inferences, quote selection and the key quote flag.

Each test builds a real SQLite project under tmp_path with a few cases,
coded passages linked to targets and rows of the scores table, written
directly so that every count in a display is known in advance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner

from qualkit import store
from qualkit.cli import cli
from qualkit.errors import InputError, NotFoundError, QualkitError
from qualkit.redaction import Redactor
from qualkit.triangulation import (
    CONVERGENT,
    DIVERGENT,
    NO_EVIDENCE,
    QUALITATIVE_ONLY,
    QUANTITATIVE_ONLY,
    TriangulationRules,
    joint_displays,
    set_key_quote,
)

CODES = [
    "strategy",
    "strategy.underpromise",
    "channel",
    "channel.informal",
    "channel.informal.inspection",
    "channel.nonnegotiable_weight",
    "target",
    "target.economic",
    "target.nonnegotiable",
]
CASES = [
    ("C1", "Guizhou", "city"),
    ("C2", "Guizhou", "province"),
    ("C3", "Hunan", "city"),
    ("C4", "Jiangxi", "county"),
]
LONG_TEXT = "We went to the province and argued the number down, and in the end they gave us a lower figure."


class Project:
    """A project database with helpers to add passages and scores."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = store.open_database(path)
        now = store.utc_now()
        for position, code_id in enumerate(CODES):
            self.db["codes"].insert(
                {
                    "id": code_id,
                    "parent_id": code_id.rpartition(".")[0] or None,
                    "label": code_id.replace(".", " "),
                    "definition": f"Definition of {code_id}.",
                    "position": position,
                    "codebook_id": "test",
                    "codebook_version": "1",
                }
            )
        for case_id, province, level in CASES:
            self.db["cases"].insert(
                {
                    "id": case_id,
                    "province": province,
                    "level": level,
                    "appendix_group": None,
                    "origin": "test",
                }
            )
            self.db["sources"].insert(
                {
                    "id": case_id,
                    "case_id": case_id,
                    "format": "md",
                    "language": "en",
                    "text": "x" * 2000,
                    "content_hash": case_id,
                    "imported_at": now,
                    "updated_at": now,
                }
            )
        self.next_offset = 0

    def target(self, target_id: str, name: str | None = None) -> None:
        self.db["targets"].insert(
            {"id": target_id, "name": name or target_id, "category": "economic"},
            ignore=True,
        )

    def passage(
        self,
        target_id: str,
        case_id: str,
        codes: list[str],
        *,
        status: str = "accepted",
        text: str = LONG_TEXT,
        key_quote: bool = False,
    ) -> list[int]:
        """Code one new span of ``case_id`` with ``codes`` and link each coding to the target."""
        self.target(target_id)
        start = self.next_offset
        self.next_offset += len(text) + 1
        now = store.utc_now()
        ids = []
        for code_id in codes:
            cursor = self.db.execute(
                "INSERT INTO codings (source_id, start_offset, end_offset, quote, code_id, coder, origin, "
                "status, codebook_version, key_quote, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, 'tester', 'manual', ?, '1', ?, ?, ?)",
                [
                    case_id,
                    start,
                    start + len(text),
                    text,
                    code_id,
                    status,
                    int(key_quote),
                    now,
                    now,
                ],
            )
            ids.append(cursor.lastrowid)
            self.db["quote_links"].insert(
                {
                    "coding_id": cursor.lastrowid,
                    "target_id": target_id,
                    "alias": target_id,
                    "alias_start": start,
                    "alias_end": start + 1,
                    "origin": "manual",
                }
            )
        self.db.conn.commit()
        return ids

    def score(
        self,
        target_id: str,
        *,
        level: str | None,
        frequency: float = 0.5,
        eligible: bool = True,
    ) -> None:
        self.target(target_id)
        self.db["scores"].insert(
            {
                "target_id": target_id,
                "years": "2011-2013",
                "eligible": int(eligible),
                "ineligible_reason": None if eligible else "values for one year only",
                "observed": 14,
                "possible": 28,
                "frequency": frequency,
                "mean_points": 3.5,
                "mean_cv": 0.4,
                "priority_level": "low" if eligible else None,
                "negotiability_level": level if eligible else None,
                "cell": f"{level} negotiable, low priority" if eligible else None,
                "expected_response": "moderate bargaining" if eligible else None,
            }
        )
        self.db.conn.commit()


@pytest.fixture
def project(tmp_path: Path) -> Any:
    built = Project(tmp_path / "qualkit.db")
    yield built
    built.db.close()


def display_of(
    db: sqlite_utils.Database, target_id: str, **options: Any
) -> dict[str, Any]:
    displays = {
        display["target_id"]: display for display in joint_displays(db, **options)
    }
    return displays[target_id]


# Meta-inferences ---------------------------------------------------------------


def test_convergent_more_and_bargaining(project: Project) -> None:
    project.score("housing", level="more", frequency=0.93)
    project.passage("housing", "C1", ["channel.informal.inspection", "target.economic"])
    project.passage("housing", "C3", ["strategy.underpromise"])

    display = display_of(project.db, "housing")

    assert display["meta_inference"] == CONVERGENT
    assert "agrees with" in display["rule"]
    assert "2 interview(s) describe bargaining" in display["rule"]


def test_convergent_less_and_nonnegotiable(project: Project) -> None:
    project.score("fdi", level="less", frequency=0.07)
    project.passage("fdi", "C2", ["target.nonnegotiable", "target.economic"])

    display = display_of(project.db, "fdi")

    assert display["meta_inference"] == CONVERGENT
    assert display["qualitative"]["stance"] == "non-negotiable"


def test_divergent_less_but_bargained(project: Project) -> None:
    project.score("imports", level="less", frequency=0.44)
    project.passage("imports", "C1", ["channel.informal.inspection"])
    project.passage("imports", "C4", ["strategy"])

    display = display_of(project.db, "imports")

    assert display["meta_inference"] == DIVERGENT
    assert "contradicts" in display["rule"]


def test_divergent_when_interviews_split(project: Project) -> None:
    project.score("water", level="more", frequency=0.79)
    project.passage("water", "C1", ["strategy"])
    project.passage("water", "C2", ["strategy"])
    project.passage("water", "C3", ["target.nonnegotiable"])
    project.passage("water", "C4", ["target.nonnegotiable"])

    display = display_of(project.db, "water")

    assert display["qualitative"]["stance"] == "split"
    assert display["meta_inference"] == DIVERGENT
    assert "split" in display["rule"]


def test_qualitative_only_without_score(project: Project) -> None:
    project.passage("stability", "C1", ["target.nonnegotiable"])

    display = display_of(project.db, "stability")

    assert display["meta_inference"] == QUALITATIVE_ONLY
    assert "no score" in display["rule"]


def test_qualitative_only_when_ineligible(project: Project) -> None:
    project.score("tourism", level=None, eligible=False)
    project.passage("tourism", "C1", ["strategy"])
    project.passage("tourism", "C2", ["channel"])

    display = display_of(project.db, "tourism")

    assert display["meta_inference"] == QUALITATIVE_ONLY
    assert "values for one year only" in display["rule"]


def test_quantitative_only_below_threshold(project: Project) -> None:
    project.score("pensions", level="less", frequency=0.38)
    project.passage("pensions", "C1", ["strategy"])

    display = display_of(project.db, "pensions")

    assert display["meta_inference"] == QUANTITATIVE_ONLY
    assert display["qualitative"]["bargaining_interviews"] == 1
    assert "too few interviews" in display["rule"]


def test_no_evidence_either_way(project: Project) -> None:
    project.score("culture", level=None, eligible=False)

    display = display_of(project.db, "culture")

    assert display["meta_inference"] == NO_EVIDENCE


def test_threshold_changes_inference(project: Project) -> None:
    project.score("pensions", level="less", frequency=0.38)
    project.passage("pensions", "C1", ["strategy"])
    rules = TriangulationRules(min_bargaining_interviews=1)

    display = display_of(project.db, "pensions", rules=rules)

    assert display["meta_inference"] == DIVERGENT
    assert "thresholds: 1 and 1" in display["rule"]


def test_negotiability_cut_overrides_level(project: Project) -> None:
    project.score("imports", level="less", frequency=0.44)
    project.passage("imports", "C1", ["strategy"])
    project.passage("imports", "C2", ["strategy"])
    rules = TriangulationRules(negotiability_cut=0.4)

    display = display_of(project.db, "imports", rules=rules)

    assert display["quantitative"]["negotiability"] == "more"
    assert display["meta_inference"] == CONVERGENT
    assert "cut 0.40" in display["rule"]


def test_weight_code_not_counted_as_bargaining(project: Project) -> None:
    project.score("gdp", level="less", frequency=0.1)
    project.passage("gdp", "C1", ["channel.nonnegotiable_weight"])
    project.passage("gdp", "C2", ["channel.nonnegotiable_weight"])

    display = display_of(project.db, "gdp")

    assert display["qualitative"]["bargaining_interviews"] == 0
    assert display["meta_inference"] == QUANTITATIVE_ONLY


def test_rejected_and_unselected_statuses_ignored(project: Project) -> None:
    project.score("housing", level="more")
    project.passage("housing", "C1", ["strategy"], status="rejected")
    project.passage("housing", "C2", ["strategy"], status="suggested")

    every = display_of(project.db, "housing")
    accepted_only = display_of(project.db, "housing", statuses=("accepted",))

    assert every["qualitative"]["bargaining_interviews"] == 1
    assert accepted_only["qualitative"]["bargaining_interviews"] == 0


def test_unscored_unlinked_target_omitted(project: Project) -> None:
    project.target("unused")
    project.score("housing", level="more")

    ids = [display["target_id"] for display in joint_displays(project.db)]

    assert ids == ["housing"]


# Qualitative counts ------------------------------------------------------------


def test_levels_provinces_and_codes_counted(project: Project) -> None:
    project.passage("housing", "C1", ["channel.informal.inspection", "target.economic"])
    project.passage("housing", "C1", ["channel.informal.inspection"])
    project.passage("housing", "C2", ["strategy.underpromise"])
    project.passage("housing", "C3", ["channel.informal.inspection"])
    project.passage("housing", "C4", ["target.nonnegotiable"])

    qualitative = display_of(project.db, "housing")["qualitative"]

    assert qualitative["interviews"] == 4
    assert qualitative["bargaining_interviews"] == 3
    assert qualitative["nonnegotiable_interviews"] == 1
    assert qualitative["provinces"] == [
        {"value": "Guizhou", "interviews": 2},
        {"value": "Hunan", "interviews": 1},
    ]
    assert qualitative["levels"] == [
        {"value": "city", "interviews": 2},
        {"value": "province", "interviews": 1},
    ]
    assert qualitative["channels"] == [
        {
            "code": "channel.informal.inspection",
            "label": "channel informal inspection",
            "interviews": 2,
            "passages": 3,
        }
    ]
    assert qualitative["strategies"][0]["code"] == "strategy.underpromise"


def test_quantitative_side_copied_from_scores(project: Project) -> None:
    project.score("housing", level="more", frequency=0.93)

    quantitative = display_of(project.db, "housing")["quantitative"]

    assert quantitative["frequency"] == 0.93
    assert (quantitative["observed"], quantitative["possible"]) == (14, 28)
    assert quantitative["priority"] == 3.5
    assert quantitative["cell"] == "more negotiable, low priority"
    assert quantitative["expected_response"] == "moderate bargaining"


# Quote selection --------------------------------------------------------------


def test_key_quote_ranks_first(project: Project) -> None:
    project.passage("housing", "C1", ["strategy", "channel.informal.inspection"])
    project.passage(
        "housing", "C2", ["target.economic"], status="suggested", key_quote=True
    )

    quotes = display_of(project.db, "housing")["quotes"]

    assert quotes[0]["source_id"] == "C2"
    assert quotes[0]["key_quote"] is True


def test_accepted_before_suggested(project: Project) -> None:
    project.passage("housing", "C1", ["strategy", "channel"], status="suggested")
    project.passage("housing", "C2", ["strategy"], status="accepted")

    quotes = display_of(project.db, "housing")["quotes"]

    assert [quote["source_id"] for quote in quotes] == ["C2", "C1"]


def test_more_evidence_codes_first(project: Project) -> None:
    project.passage("housing", "C1", ["strategy"])
    project.passage("housing", "C2", ["strategy", "channel.informal.inspection"])

    quotes = display_of(project.db, "housing")["quotes"]

    assert quotes[0]["source_id"] == "C2"


def test_quote_length_bounds(project: Project) -> None:
    project.passage("housing", "C1", ["strategy"], text="Too short.")
    project.passage("housing", "C2", ["strategy"])

    quotes = display_of(project.db, "housing")["quotes"]

    assert quotes[0]["source_id"] == "C2"


def test_per_interview_cap_and_limit(project: Project) -> None:
    for _ in range(4):
        project.passage("housing", "C1", ["strategy"])
    project.passage("housing", "C2", ["strategy"])

    display = display_of(project.db, "housing", quotes_per_target=5)
    limited = display_of(project.db, "housing", quotes_per_target=1)

    assert [quote["source_id"] for quote in display["quotes"]] == ["C1", "C1", "C2"]
    assert display["quote_count"] == 5
    assert len(limited["quotes"]) == 1


def test_quote_fields_and_citation(project: Project) -> None:
    ids = project.passage("housing", "C1", ["strategy", "target.economic"])

    quote = display_of(project.db, "housing")["quotes"][0]

    assert quote["coding_ids"] == ids
    assert quote["codes"] == ["strategy", "target.economic"]
    assert quote["evidence_codes"] == ["strategy"]
    assert quote["text"] == LONG_TEXT
    assert quote["end"] - quote["start"] == len(LONG_TEXT)
    assert quote["case"]["province"] == "Guizhou"
    assert (
        quote["citation"]
        == "Interview with a city-level official in Guizhou province (Interview #C1)"
    )


def test_custom_citation_and_callable(project: Project) -> None:
    project.passage("housing", "C3", ["strategy"])

    by_format = display_of(
        project.db, "housing", citation="#{id} ({province}, {level})"
    )
    by_function = display_of(
        project.db, "housing", citation=lambda case: f"case {case['id']}"
    )

    assert by_format["quotes"][0]["citation"] == "#C3 (Hunan, city)"
    assert by_function["quotes"][0]["citation"] == "case C3"


def test_invalid_citation_format(project: Project) -> None:
    project.passage("housing", "C3", ["strategy"])

    with pytest.raises(InputError) as raised:
        joint_displays(project.db, citation="{name}")

    assert "{province}" in raised.value.fix


def test_redactor_applied_to_quote_and_citation(project: Project) -> None:
    project.passage(
        "housing",
        "C1",
        ["strategy"],
        text="Secretary Zhang Wei argued the housing figure down with us.",
    )
    redactor = Redactor.from_lines(["Zhang Wei", "Guizhou => [province]"])

    quote = display_of(project.db, "housing", redactor=redactor)["quotes"][0]

    assert "Zhang" not in quote["text"]
    assert (
        quote["citation"]
        == "Interview with a city-level official in [province] province (Interview #C1)"
    )


# Rules ------------------------------------------------------------------------


def test_rules_from_mapping(project: Project) -> None:
    rules = TriangulationRules.from_mapping(
        {"min_bargaining_interviews": 3, "nonnegotiable_codes": ["x.y"]}
    )

    assert rules.min_bargaining_interviews == 3
    assert rules.nonnegotiable_codes == ("x.y",)


def test_rules_single_code_string() -> None:
    rules = TriangulationRules.from_mapping({"bargaining_codes": "strategy"})

    assert rules.bargaining_codes == ("strategy",)


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"min_interviews": 2}, id="unknown-key"),
        pytest.param({"min_bargaining_interviews": 0}, id="zero-threshold"),
        pytest.param({"negotiability_cut": 1.5}, id="cut-above-one"),
        pytest.param(
            {"min_quote_chars": 50, "max_quote_chars": 10}, id="bounds-reversed"
        ),
    ],
)
def test_invalid_rules_rejected(values: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        TriangulationRules.from_mapping(values)


# Key quote flag -----------------------------------------------------------------


def test_set_key_quote_logged_and_undone(project: Project) -> None:
    from qualkit.audit import undo_last

    coding_id = project.passage("housing", "C1", ["strategy"])[0]

    changed = set_key_quote(project.db, coding_id, coder="ann")
    again = set_key_quote(project.db, coding_id, coder="ann")
    logged = project.db.execute(
        "SELECT coder, command, action, row_id FROM audit_log WHERE table_name = 'codings'"
    ).fetchall()

    assert changed is True
    assert again is False
    assert logged == [("ann", "code key-quote", "update", str(coding_id))]
    with store.transaction(project.db):
        undo_last(project.db, "ann")
    flag = project.db.execute(
        "SELECT key_quote FROM codings WHERE id = ?", [coding_id]
    ).fetchone()[0]
    assert flag == 0


def test_key_quote_on_rejected_coding(project: Project) -> None:
    coding_id = project.passage("housing", "C1", ["strategy"], status="rejected")[0]

    with pytest.raises(QualkitError, match="rejected"):
        set_key_quote(project.db, coding_id, coder="ann")


def test_key_quote_unknown_coding(project: Project) -> None:
    with pytest.raises(NotFoundError):
        set_key_quote(project.db, 999, coder="ann")


# Commands ---------------------------------------------------------------------


def test_cli_key_quote_on_and_off(runner: CliRunner, project: Project) -> None:
    coding_id = project.passage("housing", "C1", ["strategy"])[0]
    base = [
        "--db",
        str(project.path),
        "code",
        "key-quote",
        str(coding_id),
        "--coder",
        "ann",
    ]

    set_result = runner.invoke(cli, base)
    off_result = runner.invoke(cli, [*base, "--off"])

    assert set_result.exit_code == 0, set_result.output
    assert f"set on coding #{coding_id}" in set_result.stdout
    assert off_result.exit_code == 0, off_result.output
    assert f"cleared on coding #{coding_id}" in off_result.stdout
    flag = project.db.execute(
        "SELECT key_quote FROM codings WHERE id = ?", [coding_id]
    ).fetchone()[0]
    assert flag == 0


def test_cli_key_quote_unknown_id(runner: CliRunner, project: Project) -> None:
    result = runner.invoke(
        cli, ["--db", str(project.path), "code", "key-quote", "999", "--coder", "ann"]
    )

    assert result.exit_code == 1
    assert "Coding #999 not found" in result.stderr


def test_cli_triangulate_json(runner: CliRunner, project: Project) -> None:
    project.score("housing", level="more")
    project.passage("housing", "C1", ["strategy"])
    project.passage("housing", "C2", ["strategy"])
    project.score("fdi", level="less")

    result = runner.invoke(
        cli, ["--db", str(project.path), "triangulate", "--format", "json"]
    )
    rows = {row["target"]: row for row in json.loads(result.stdout)}
    looser = runner.invoke(
        cli,
        [
            "--db",
            str(project.path),
            "triangulate",
            "--format",
            "json",
            "--min-bargaining-interviews",
            "3",
        ],
    )
    looser_rows = {row["target"]: row for row in json.loads(looser.stdout)}

    assert result.exit_code == 0, result.output
    assert rows["housing"]["meta_inference"] == CONVERGENT
    assert rows["fdi"]["meta_inference"] == QUANTITATIVE_ONLY
    assert rows["housing"]["rule"].startswith("Quantitatively more negotiable")
    assert looser_rows["housing"]["meta_inference"] == QUANTITATIVE_ONLY


def test_sample_project_meta_inferences(sample_project: Any) -> None:
    db = store.open_database(sample_project.folder / "qualkit.db", create=False)
    try:
        displays = {display["target_id"]: display for display in joint_displays(db)}
    finally:
        db.close()

    # The sample's interviews describe talks over shanty-town money in two
    # cities, and the table ranks the target first (0.93 = 26/28, as in the
    # published Table 1), so the two sides agree.
    assert displays["shanty_town"]["meta_inference"] == CONVERGENT
    assert displays["shanty_town"]["quantitative"]["observed"] == 26
    assert displays["social_stability"]["meta_inference"] == QUALITATIVE_ONLY
    assert all(display["rule"] for display in displays.values())


def test_cli_triangulate_reads_config(runner: CliRunner, project: Project) -> None:
    project.score("housing", level="more")
    project.passage("housing", "C1", ["strategy"])
    project.passage("housing", "C2", ["strategy"])
    (project.path.parent / "qualkit.toml").write_text(
        '[project]\ndatabase = "qualkit.db"\n\n[triangulation]\nmin_bargaining_interviews = 3\n',
        encoding="utf-8",
    )
    base = ["--project", str(project.path.parent), "triangulate", "--format", "json"]

    from_config = runner.invoke(cli, base)
    overridden = runner.invoke(cli, [*base, "--min-bargaining-interviews", "2"])

    assert from_config.exit_code == 0, from_config.output
    assert json.loads(from_config.stdout)[0]["meta_inference"] == QUANTITATIVE_ONLY
    assert json.loads(overridden.stdout)[0]["meta_inference"] == CONVERGENT


def test_cli_triangulate_bad_config(runner: CliRunner, project: Project) -> None:
    (project.path.parent / "qualkit.toml").write_text(
        '[project]\ndatabase = "qualkit.db"\n\n[triangulation]\nmin_interviews = 3\n',
        encoding="utf-8",
    )

    result = runner.invoke(cli, ["--project", str(project.path.parent), "triangulate"])

    assert result.exit_code == 1
    assert "min_interviews" in result.stderr
    assert "qualkit.toml" in result.stderr
