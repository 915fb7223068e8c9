"""Tests for qualkit.negotiability: rank changes, spread, summary and typology.

Expected numbers are worked out by hand in the comments next to each panel.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from qualkit.errors import PanelError
from qualkit.negotiability import (
    NegotiabilityOptions,
    coefficient_of_variation,
    explain,
    options_from_mapping,
    rank_changes,
    standardize,
    summarize,
    typology,
    variation_order,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "interviews_sample"
PANEL = SAMPLE / "panel"


def make_values(rows: list[tuple[str, str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["target", "unit", "year", "value"])


def make_points(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["target", "year", "points"])


def changes_by_unit(changes: pd.DataFrame) -> dict[tuple[int, int, str], float]:
    return {
        (row.from_year, row.to_year, row.unit): row.change
        for row in changes.itertuples()
    }


# Gap panel: three units, no 2013 data, no ties.
#   2011: A 30, B 20, C 10  -> A 1, B 2, C 3
#   2012: A 20, B 30, C 10  -> B 1, A 2, C 3   (A +1, B -1, C 0)
#   2014: A 20, B 10, C 30  -> C 1, A 2, B 3   (A 0, B +2, C -2)
GAP = make_values(
    [
        ("g", "A", 2011, 30),
        ("g", "B", 2011, 20),
        ("g", "C", 2011, 10),
        ("g", "A", 2012, 20),
        ("g", "B", 2012, 30),
        ("g", "C", 2012, 10),
        ("g", "A", 2014, 20),
        ("g", "B", 2014, 10),
        ("g", "C", 2014, 30),
    ]
)

# Missing-unit panel: C has no 2012 value; B and C tie in 2011, C and D in 2014.
#   2011: A 10, B 8, C 8, D 5
#   2012: A 7, B 9, D 6
#   2014: A 10, B 4, C 8, D 8
MISSING = make_values(
    [
        ("m", "A", 2011, 10),
        ("m", "B", 2011, 8),
        ("m", "C", 2011, 8),
        ("m", "D", 2011, 5),
        ("m", "A", 2012, 7),
        ("m", "B", 2012, 9),
        ("m", "D", 2012, 6),
        ("m", "A", 2014, 10),
        ("m", "B", 2014, 4),
        ("m", "C", 2014, 8),
        ("m", "D", 2014, 8),
    ]
)


def test_consecutive_steps_over_missing_year() -> None:
    changes = rank_changes(GAP, {"g": True})

    assert changes_by_unit(changes) == {
        (2011, 2012, "A"): 1,
        (2011, 2012, "B"): -1,
        (2011, 2012, "C"): 0,
        (2012, 2014, "A"): 0,
        (2012, 2014, "B"): 2,
        (2012, 2014, "C"): -2,
    }


def test_adjacent_skips_missing_year() -> None:
    options = NegotiabilityOptions(transitions="adjacent")
    changes = rank_changes(GAP, {"g": True}, options)

    assert changes_by_unit(changes) == {
        (2011, 2012, "A"): 1,
        (2011, 2012, "B"): -1,
        (2011, 2012, "C"): 0,
    }


def test_rank_changes_columns_and_values() -> None:
    changes = rank_changes(GAP, {"g": True})
    first = changes.iloc[0]

    assert list(changes.columns) == [
        "target",
        "from_year",
        "to_year",
        "unit",
        "value_from",
        "value_to",
        "rank_from",
        "rank_to",
        "change",
    ]
    assert (first["unit"], first["value_from"], first["value_to"]) == ("A", 30, 20)
    assert (first["rank_from"], first["rank_to"]) == (1, 2)


def test_lower_is_harder_reverses_ranks() -> None:
    # With lower values harder: 2011 C 1, B 2, A 3; 2012 C 1, A 2, B 3.
    changes = rank_changes(
        GAP, {"g": False}, NegotiabilityOptions(transitions="adjacent")
    )

    assert changes_by_unit(changes) == {
        (2011, 2012, "A"): -1,
        (2011, 2012, "B"): 1,
        (2011, 2012, "C"): 0,
    }


@pytest.mark.parametrize(
    ("transitions", "missing", "expected"),
    [
        pytest.param(
            "consecutive",
            "common",
            # 2011->2012 among A, B, D: A 1->2, B 2->1, D 3->3.
            # 2012->2014 among A, B, D: B 1->3, A 2->1, D 3->2.
            {
                (2011, 2012, "A"): 1,
                (2011, 2012, "B"): -1,
                (2011, 2012, "D"): 0,
                (2012, 2014, "A"): -1,
                (2012, 2014, "B"): 2,
                (2012, 2014, "D"): -1,
            },
            id="consecutive-common",
        ),
        pytest.param(
            "consecutive",
            "each_year",
            # 2011 among all: A 1, B 2, C 2, D 4; 2012: B 1, A 2, D 3, so D moves
            # up only because C is absent. 2014 among all: A 1, C 2, D 2, B 4.
            {
                (2011, 2012, "A"): 1,
                (2011, 2012, "B"): -1,
                (2011, 2012, "D"): -1,
                (2012, 2014, "A"): -1,
                (2012, 2014, "B"): 3,
                (2012, 2014, "D"): -1,
            },
            id="consecutive-each-year",
        ),
        pytest.param(
            "adjacent",
            "common",
            {(2011, 2012, "A"): 1, (2011, 2012, "B"): -1, (2011, 2012, "D"): 0},
            id="adjacent-common",
        ),
        pytest.param(
            "adjacent",
            "each_year",
            {(2011, 2012, "A"): 1, (2011, 2012, "B"): -1, (2011, 2012, "D"): -1},
            id="adjacent-each-year",
        ),
    ],
)
def test_missing_unit_under_each_option(
    transitions: str, missing: str, expected: dict[tuple[int, int, str], float]
) -> None:
    options = NegotiabilityOptions(transitions=transitions, missing=missing)
    changes = rank_changes(MISSING, {"m": True}, options)

    assert changes_by_unit(changes) == expected


# Tie panel, all units present: 2011 A 3, B 2, C 1; 2012 A 2, B 2, C 3.
@pytest.mark.parametrize(
    ("ties", "expected"),
    [
        pytest.param("min", {"A": 1, "B": 0, "C": -2}, id="min"),  # 2012: C 1, A 2, B 2
        pytest.param(
            "average", {"A": 1.5, "B": 0.5, "C": -2}, id="average"
        ),  # A, B 2.5
        pytest.param("max", {"A": 2, "B": 1, "C": -2}, id="max"),  # A 3, B 3
        pytest.param("dense", {"A": 1, "B": 0, "C": -2}, id="dense"),  # C 1, A 2, B 2
        pytest.param(
            "first", {"A": 1, "B": 1, "C": -2}, id="first"
        ),  # by name: A 2, B 3
    ],
)
def test_tie_methods_with_all_units(ties: str, expected: dict[str, float]) -> None:
    values = make_values(
        [
            ("t", "A", 2011, 3),
            ("t", "B", 2011, 2),
            ("t", "C", 2011, 1),
            ("t", "A", 2012, 2),
            ("t", "B", 2012, 2),
            ("t", "C", 2012, 3),
        ]
    )
    changes = rank_changes(values, {"t": True}, NegotiabilityOptions(ties=ties))

    assert dict(zip(changes["unit"], changes["change"], strict=True)) == expected


# The 2011 tie of B and C in MISSING counts under each_year, where C stays in
# the 2011 ranking. 2012 ranks are B 1, A 2, D 3 under every method.
@pytest.mark.parametrize(
    ("ties", "expected"),
    [
        pytest.param("min", {"A": 1, "B": -1, "D": -1}, id="min"),  # B 2, D 4
        pytest.param("average", {"A": 1, "B": -1.5, "D": -1}, id="average"),  # B 2.5
        pytest.param("max", {"A": 1, "B": -2, "D": -1}, id="max"),  # B 3, D 4
        pytest.param("dense", {"A": 1, "B": -1, "D": 0}, id="dense"),  # B 2, D 3
        pytest.param("first", {"A": 1, "B": -1, "D": -1}, id="first"),  # B 2, C 3
    ],
)
def test_tie_methods_with_missing_unit(ties: str, expected: dict[str, float]) -> None:
    options = NegotiabilityOptions(
        ties=ties, missing="each_year", transitions="adjacent"
    )
    changes = rank_changes(MISSING, {"m": True}, options)

    assert dict(zip(changes["unit"], changes["change"], strict=True)) == expected


def test_per_target_overrides_one_target() -> None:
    values = pd.concat([GAP, GAP.assign(target="h")], ignore_index=True)
    adjacent = NegotiabilityOptions(transitions="adjacent")
    changes = rank_changes(values, {"g": True, "h": True}, per_target={"h": adjacent})

    assert len(changes[changes["target"] == "g"]) == 6
    assert len(changes[changes["target"] == "h"]) == 3


def test_coefficient_of_variation_by_hand() -> None:
    # 2011: 2, 4, 6 -> mean 4, squared deviations 4 + 0 + 4 = 8.
    # 2012: 1, 3 -> mean 2, squared deviations 1 + 1 = 2.
    values = make_values(
        [
            ("c", "A", 2011, 2),
            ("c", "B", 2011, 4),
            ("c", "C", 2011, 6),
            ("c", "A", 2012, 1),
            ("c", "B", 2012, 3),
        ]
    )
    sample = coefficient_of_variation(values).set_index("year")
    population = coefficient_of_variation(values, ddof=0).set_index("year")

    assert list(sample.columns) == ["target", "n_units", "mean", "sd", "cv"]
    assert sample.loc[2011, "n_units"] == 3
    assert sample.loc[2011, "mean"] == pytest.approx(4)
    assert sample.loc[2011, "sd"] == pytest.approx(math.sqrt(8 / 2))
    assert sample.loc[2011, "cv"] == pytest.approx(0.5)
    assert sample.loc[2012, "cv"] == pytest.approx(math.sqrt(2) / 2)
    assert population.loc[2011, "cv"] == pytest.approx(math.sqrt(8 / 3) / 4)
    assert population.loc[2012, "cv"] == pytest.approx(0.5)


def test_coefficient_of_variation_undefined_cases() -> None:
    values = make_values(
        [("c", "A", 2011, 5), ("c", "A", 2012, -1), ("c", "B", 2012, 1)]
    )
    table = coefficient_of_variation(values).set_index("year")

    assert math.isnan(table.loc[2011, "sd"])  # one unit: no sample SD
    assert math.isnan(table.loc[2011, "cv"])
    assert math.isnan(table.loc[2012, "cv"])  # mean 0


def test_standardize_by_hand() -> None:
    # 2011: mean 4, SD 2 -> z -1, 0, 1. 2012: mean 2, SD sqrt(2).
    # 2013: both values 5, SD 0 -> z undefined.
    values = make_values(
        [
            ("c", "A", 2011, 2),
            ("c", "B", 2011, 4),
            ("c", "C", 2011, 6),
            ("c", "A", 2012, 1),
            ("c", "B", 2012, 3),
            ("c", "A", 2013, 5),
            ("c", "B", 2013, 5),
        ]
    )
    z = standardize(values).set_index(["year", "unit"])["z"]

    assert z[(2011, "A")] == pytest.approx(-1)
    assert z[(2011, "B")] == pytest.approx(0)
    assert z[(2011, "C")] == pytest.approx(1)
    assert z[(2012, "A")] == pytest.approx(-1 / math.sqrt(2))
    assert z[(2012, "B")] == pytest.approx(1 / math.sqrt(2))
    assert math.isnan(z[(2013, "A")])


def test_summarize_missing_unit_panel() -> None:
    # Default options give 5 of 6 changes (see the consecutive-common case).
    # Points exist for 2013 too, but 2013 has no values, so it is left out.
    points = make_points([("m", 2011, 3.0), ("m", 2012, 4.0), ("m", 2013, 9.0)])
    row = summarize(MISSING, points, {"m": True}).iloc[0]

    assert row["years"] == "2011-2012, 2014"
    assert row["n_years"] == 3
    assert row["n_units"] == 4
    assert row["eligible"]
    assert row["ineligible_reason"] == ""
    assert row["units_changed"] == 3
    assert (row["range_min"], row["range_max"]) == (-1, 2)
    assert (row["observed"], row["possible"]) == (5, 6)
    assert row["frequency"] == pytest.approx(5 / 6)
    assert row["mean_points"] == pytest.approx(3.5)
    assert row["variation_order"] == 1


def test_summarize_each_year_counts_spurious_change() -> None:
    points = make_points([("m", 2011, 3.0)])
    options = NegotiabilityOptions(missing="each_year")
    row = summarize(MISSING, points, {"m": True}, options).iloc[0]

    assert (row["observed"], row["possible"]) == (6, 6)
    assert (row["range_min"], row["range_max"]) == (-1, 3)


def test_summarize_mean_cv_averages_years() -> None:
    values = make_values(
        [
            ("c", "A", 2011, 2),
            ("c", "B", 2011, 4),
            ("c", "C", 2011, 6),
            ("c", "A", 2012, 1),
            ("c", "B", 2012, 3),
            ("c", "C", 2012, 2),
        ]
    )
    # 2011: cv 0.5. 2012: 1, 3, 2 -> mean 2, SD 1, cv 0.5.
    row = summarize(values, make_points([]), {"c": True}).iloc[0]

    assert row["mean_cv"] == pytest.approx(0.5)
    assert math.isnan(row["mean_points"])


def test_eligibility_counts_own_units_only() -> None:
    # Target "b" never has a value for C, so its units are A and B only.
    values = pd.concat(
        [GAP, GAP[GAP["unit"] != "C"].assign(target="b")], ignore_index=True
    )
    summary = summarize(values, make_points([]), {"g": True, "b": True}).set_index(
        "target"
    )

    assert summary.loc["b", "n_units"] == 2
    assert summary.loc["b", "eligible"]
    assert summary.loc["b", "possible"] == 4


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        pytest.param(
            [("x", "A", 2013, 1), ("x", "B", 2013, 2)],
            "values for all 2 units in only 1 year (2013); at least 2 needed",
            id="one-year",
        ),
        pytest.param(
            [
                ("x", "A", 2011, 1),
                ("x", "B", 2011, 2),
                ("x", "A", 2012, 1),
                ("x", "A", 2013, 2),
            ],
            "values for all 2 units in only 1 year (2011); at least 2 needed",
            id="unit-in-one-year",
        ),
        pytest.param(
            [("x", "A", 2011, 1), ("x", "B", 2012, 2)],
            "no year has values for all 2 units; at least 2 needed",
            id="no-full-year",
        ),
    ],
)
def test_ineligible_reasons(
    rows: list[tuple[str, str, int, float]], reason: str
) -> None:
    row = summarize(make_values(rows), make_points([]), {"x": True}).iloc[0]

    assert not row["eligible"]
    assert row["ineligible_reason"] == reason
    assert math.isnan(row["variation_order"])


def test_adjacent_without_pairs_is_ineligible() -> None:
    values = GAP[GAP["year"] != 2012]  # 2011 and 2014 only
    options = NegotiabilityOptions(transitions="adjacent")
    row = summarize(values, make_points([]), {"g": True}, options).iloc[0]

    assert not row["eligible"]
    assert "transitions='adjacent'" in row["ineligible_reason"]
    assert row["possible"] == 0
    assert math.isnan(row["frequency"])


def test_min_years_option() -> None:
    options = NegotiabilityOptions(min_years=3)
    row = summarize(MISSING, make_points([]), {"m": True}, options).iloc[0]

    assert row["ineligible_reason"] == (
        "values for all 4 units in only 2 years (2011, 2014); at least 3 needed"
    )


@pytest.mark.parametrize(
    ("years", "label"),
    [
        ([2011, 2012, 2013], "2011-2013"),
        ([2011, 2013], "2011, 2013"),
        ([2011, 2012, 2015], "2011-2012, 2015"),
        ([2011, 2012, 2014, 2015], "2011-2012, 2014-2015"),
        ([2012], "2012"),
    ],
)
def test_years_label(years: list[int], label: str) -> None:
    values = make_values([("y", "A", year, 1.0) for year in years])
    row = summarize(values, make_points([]), {"y": True}).iloc[0]

    assert row["years"] == label


def make_summary(
    rows: list[tuple[str, bool, float, int, float, float]],
) -> pd.DataFrame:
    columns = [
        "target",
        "eligible",
        "frequency",
        "units_changed",
        "range_min",
        "range_max",
    ]
    return pd.DataFrame(rows, columns=columns)


def test_variation_order_tie_breaks() -> None:
    summary = make_summary(
        [
            ("d", True, 0.5, 3, -1, 1),  # same as "c" on every key: id decides
            ("c", True, 0.5, 3, -1, 1),
            ("b", True, 0.5, 3, -4, 1),  # wider range than c, d
            ("a", True, 0.5, 5, -1, 1),  # more units changed than b, c, d
            ("z", True, 0.9, 1, 0, 1),  # highest frequency
            ("n", False, 1.0, 9, -9, 9),  # ineligible: no position
        ]
    )

    assert variation_order(summary).to_dict() == {
        "z": 1,
        "a": 2,
        "b": 3,
        "c": 4,
        "d": 5,
    }


def typology_summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "target": ["a", "b", "c", "d", "e"],
            "eligible": [True, True, True, True, False],
            "mean_points": [2.0, 10.0, 1.0, 12.0, float("nan")],
            "frequency": [0.8, 0.9, 0.1, 0.2, float("nan")],
        }
    )


@pytest.mark.parametrize(
    ("target", "cell", "response"),
    [
        ("a", "more negotiable, low priority", "moderate bargaining"),
        ("b", "more negotiable, high priority", "intensive bargaining"),
        ("c", "less negotiable, low priority", "neglect"),
        ("d", "less negotiable, high priority", "fulfilment or gaming (misreporting)"),
    ],
)
def test_typology_cells(target: str, cell: str, response: str) -> None:
    # Default cuts: median points 6, median frequency 0.5.
    table = typology(typology_summary()).set_index("target")

    assert "e" not in table.index
    assert table.loc[target, "cell"] == cell
    assert table.loc[target, "expected_response"] == response


def test_typology_value_at_cut_goes_low() -> None:
    table = typology(typology_summary(), priority_cut=10.0, negotiability_cut=0.9)
    row = table.set_index("target").loc["b"]

    assert row["priority_level"] == "low"
    assert row["negotiability_level"] == "less"


def test_typology_without_points_raises() -> None:
    summary = typology_summary()
    summary.loc[0, "mean_points"] = float("nan")

    with pytest.raises(PanelError, match="no points for eligible target"):
        typology(summary)


def test_explain_shows_arithmetic() -> None:
    text = explain(MISSING, "m", {"m": True})

    assert "rank 1 is the highest value" in text
    assert "Ranking 2012 (3 units)" in text
    assert "Transition 2012 -> 2014: 3 units in both years" in text
    assert "B                rank 1 -> 3  change +2" in text
    assert "Range of change: (-1, +2)." in text
    assert text.endswith("observed / possible = 5 / 6 = 0.83.\n")


def test_explain_unknown_target_raises() -> None:
    with pytest.raises(PanelError, match="no rows for target 'nope'"):
        explain(MISSING, "nope", {"m": True})


# Malformed input


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ties": "median"}, "invalid ties option 'median'"),
        ({"transitions": "calendar"}, "invalid transitions option 'calendar'"),
        ({"missing": "drop"}, "invalid missing option 'drop'"),
        ({"min_years": 1}, "invalid min_years 1"),
        ({"cv_ddof": -1}, "invalid cv_ddof -1"),
    ],
)
def test_invalid_option_values(fields: dict[str, object], message: str) -> None:
    with pytest.raises(PanelError, match=message):
        NegotiabilityOptions(**fields)  # type: ignore[arg-type]


def test_options_from_mapping() -> None:
    options = options_from_mapping({"transitions": "adjacent"})

    assert options == NegotiabilityOptions(transitions="adjacent")
    with pytest.raises(PanelError, match="unknown negotiability option"):
        options_from_mapping({"tie": "min"})


def test_missing_column_raises() -> None:
    with pytest.raises(PanelError, match="values is missing column"):
        rank_changes(GAP.drop(columns="year"), {"g": True})


def test_duplicate_target_unit_year_raises() -> None:
    values = pd.concat([GAP, GAP.iloc[[0]]], ignore_index=True)

    with pytest.raises(
        PanelError, match="repeat a target-unit-year.*unit 'A', year 2011"
    ):
        rank_changes(values, {"g": True})


def test_duplicate_points_raise() -> None:
    points = make_points([("g", 2011, 1.0), ("g", 2011, 2.0)])

    with pytest.raises(PanelError, match="repeat a target-year"):
        summarize(GAP, points, {"g": True})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param(GAP.assign(value=float("nan")), "with no value", id="nan-value"),
        pytest.param(GAP.assign(value="high"), "must be numeric", id="text-value"),
        pytest.param(
            GAP.assign(year=2011.5), "not a whole number", id="fractional-year"
        ),
    ],
)
def test_bad_values_raise(values: pd.DataFrame, message: str) -> None:
    with pytest.raises(PanelError, match=message):
        rank_changes(values, {"g": True})


def test_direction_problems_raise() -> None:
    with pytest.raises(PanelError, match="no direction for target 'g'"):
        rank_changes(GAP, {})
    with pytest.raises(PanelError, match="must be True or False"):
        rank_changes(GAP, {"g": "yes"})  # type: ignore[dict-item]


# The sample panel against the published Table 1

# Published rows: target, years, average points, cities with change,
# range (min, max), observed, possible, frequency.
TABLE_1 = [
    ("shanty_town", "2011-2013", 3.5, 14, (-6, 8), 26, 28, 0.93),
    ("public_rental_housing", "2011, 2013", 3.5, 13, (-7, 4), 13, 14, 0.93),
    ("maternity_insurance", "2011-2014", 1.7, 11, (-3, 5), 11, 14, 0.79),
    ("industrial_water", "2011-2013", 4.9, 13, (-4, 7), 22, 28, 0.79),
    ("water_function_zones", "2011-2013", 4.4, 13, (-2, 7), 17, 28, 0.61),
    ("unemployment_insurance", "2011-2012, 2015", 1.7, 11, (-7, 3), 16, 28, 0.57),
    ("work_injury_insurance", "2011-2012, 2014-2015", 1.7, 11, (-4, 4), 16, 28, 0.57),
    (
        "employee_health_insurance",
        "2011-2012, 2014-2015",
        1.7,
        11,
        (-4, 3),
        14,
        28,
        0.50,
    ),
    ("wastewater_treatment", "2012-2013", 3.4, 10, (-3, 3), 10, 14, 0.71),
    ("imports_exports", "2011-2015", 15.5, 11, (-3, 3), 23, 52, 0.44),
    ("refuse_treatment", "2012-2013", 3.4, 6, (-6, 5), 6, 14, 0.43),
    ("pollution_sources", "2012-2013", 4.0, 6, (-1, 1), 6, 14, 0.43),
    ("enterprise_pensions", "2011-2015", 1.7, 11, (-5, 4), 21, 56, 0.38),
    ("pollution_shutdown", "2012-2013", 4.0, 2, (-1, 1), 2, 14, 0.14),
    ("domestic_investment", "2012-2015", 11.4, 3, (-1, 1), 6, 42, 0.14),
    ("pension_subsidy", "2012-2015", 5.3, 4, (-2, 0), 4, 42, 0.10),
    ("fdi", "2011-2015", 8.8, 2, (-1, 1), 4, 56, 0.07),
]

# The published label "2011-2014" cannot go with 11 of 14 possible changes,
# which is one transition: the sample has 2011 and 2014 only.
YEARS_LABEL_DEVIATIONS = {"maternity_insurance": "2011, 2014"}


@pytest.fixture(scope="module")
def sample_summary() -> pd.DataFrame:
    values = pd.read_csv(PANEL / "target_values.csv")
    points = pd.read_csv(PANEL / "target_points.csv")
    targets = yaml.safe_load((SAMPLE / "targets.yaml").read_text(encoding="utf-8"))[
        "targets"
    ]
    directions = {target["id"]: target["higher_is_harder"] for target in targets}
    per_target = {
        target["id"]: options_from_mapping(target["options"])
        for target in targets
        if target.get("options")
    }
    summary = summarize(values, points, directions, per_target=per_target)

    return summary.set_index("target")


@pytest.mark.parametrize("published", TABLE_1, ids=[row[0] for row in TABLE_1])
def test_sample_reproduces_table_1(
    sample_summary: pd.DataFrame, published: tuple[object, ...]
) -> None:
    target, years, points, cities, (low, high), observed, possible, frequency = (
        published
    )
    row = sample_summary.loc[target]

    assert row["eligible"]
    assert row["years"] == YEARS_LABEL_DEVIATIONS.get(target, years)
    assert round(row["mean_points"], 1) == points
    assert row["units_changed"] == cities
    assert row["range_min"] == low
    assert row["range_max"] == high
    assert row["observed"] == observed
    assert row["possible"] == possible
    assert round(row["frequency"], 2) == pytest.approx(frequency)


def test_sample_has_17_of_25_eligible(sample_summary: pd.DataFrame) -> None:
    eligible = set(sample_summary.index[sample_summary["eligible"]])

    assert len(sample_summary) == 25
    assert eligible == {row[0] for row in TABLE_1}


def test_sample_variation_order(sample_summary: pd.DataFrame) -> None:
    # The documented rule: frequency, then units changed, then range width.
    expected = [
        "shanty_town",
        "public_rental_housing",
        "industrial_water",
        "maternity_insurance",
        "wastewater_treatment",
        "water_function_zones",
        "unemployment_insurance",
        "work_injury_insurance",
        "employee_health_insurance",
        "imports_exports",
        "refuse_treatment",
        "pollution_sources",
        "enterprise_pensions",
        "domestic_investment",
        "pollution_shutdown",
        "pension_subsidy",
        "fdi",
    ]
    eligible = sample_summary[sample_summary["eligible"]]

    assert eligible["variation_order"].sort_values().index.tolist() == expected


def test_sample_typology_cells(sample_summary: pd.DataFrame) -> None:
    table = typology(sample_summary.reset_index()).set_index("target")

    assert (
        table.loc["water_function_zones", "expected_response"] == "intensive bargaining"
    )
    assert (
        table.loc["maternity_insurance", "expected_response"] == "moderate bargaining"
    )
    assert table.loc["enterprise_pensions", "expected_response"] == "neglect"
    assert (
        table.loc["fdi", "expected_response"] == "fulfilment or gaming (misreporting)"
    )


def test_build_panel_is_reproducible(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(PANEL / "build_panel.py"), "--output-dir", str(tmp_path)],
        check=True,
    )

    for name in ("target_values.csv", "target_points.csv"):
        assert (tmp_path / name).read_bytes() == (PANEL / name).read_bytes(), name


# Every per-target figure of the MISSING panel (a tie, unit C missing in 2012,
# no data for 2013) under each transition and missing-unit option. The rank
# changes are those of test_missing_unit_under_each_option.
@pytest.mark.parametrize(
    ("transitions", "missing", "units_changed", "low", "high", "observed", "possible"),
    [
        pytest.param("consecutive", "common", 3, -1, 2, 5, 6, id="consecutive-common"),
        pytest.param("consecutive", "each_year", 3, -1, 3, 6, 6, id="consecutive-each-year"),
        pytest.param("adjacent", "common", 2, -1, 1, 2, 3, id="adjacent-common"),
        pytest.param("adjacent", "each_year", 3, -1, 1, 3, 3, id="adjacent-each-year"),
    ],
)
def test_summary_by_hand_under_each_option(
    transitions: str,
    missing: str,
    units_changed: int,
    low: int,
    high: int,
    observed: int,
    possible: int,
) -> None:
    options = NegotiabilityOptions(transitions=transitions, missing=missing)
    points = make_points([("m", 2011, 2.0), ("m", 2012, 3.0), ("m", 2014, 7.0)])
    row = summarize(MISSING, points, {"m": True}, options).iloc[0]
    # Sample CVs: 2011 of 10, 8, 8, 5; 2012 of 7, 9, 6; 2014 of 10, 4, 8, 8.
    cvs = [
        math.sqrt(12.75 / 3) / 7.75,
        math.sqrt((14 / 3) / 2) / (22 / 3),
        math.sqrt(19 / 3) / 7.5,
    ]

    assert row["eligible"]  # 2011 and 2014 have all four units
    assert row["n_units"] == 4
    assert row["units_changed"] == units_changed
    assert (row["range_min"], row["range_max"]) == (low, high)
    assert (row["observed"], row["possible"]) == (observed, possible)
    assert row["frequency"] == pytest.approx(observed / possible)
    assert row["mean_points"] == pytest.approx(4.0)
    assert row["mean_cv"] == pytest.approx(sum(cvs) / 3)


def test_typology_repeats_cuts() -> None:
    table = typology(typology_summary())

    assert set(table["priority_cut"]) == {6.0}
    assert set(table["negotiability_cut"]) == {0.5}


def test_build_covariates_is_reproducible(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(PANEL / "build_covariates.py"), "--output-dir", str(tmp_path)],
        check=True,
        capture_output=True,
    )

    assert (tmp_path / "covariates.csv").read_bytes() == (PANEL / "covariates.csv").read_bytes()


# The commands on the sample


def scores_command(folder: Path, *args: str) -> object:
    from click.testing import CliRunner

    from qualkit.cli import cli

    return CliRunner().invoke(cli, ["--project", str(folder), "scores", *args], prog_name="qualkit")


def test_negotiability_explain_option(sample_project: object) -> None:
    result = scores_command(sample_project.folder, "negotiability", "--explain", "shanty_town")

    assert result.exit_code == 0, result.stderr
    assert "Ranking 2011 (14 units)" in result.stdout
    assert result.stdout.rstrip().endswith("= 26 / 28 = 0.93.")


def test_cov_command_json(sample_project: object) -> None:
    import json

    result = scores_command(sample_project.folder, "cov", "--target", "fdi", "--format", "json")
    rows = json.loads(result.stdout)

    assert result.exit_code == 0, result.stderr
    assert [row["year"] for row in rows] == [2011, 2012, 2013, 2014, 2015]
    assert all(row["n_units"] == 14 for row in rows)


def test_cov_command_by_target_sorted(sample_project: object) -> None:
    import csv
    import io

    result = scores_command(sample_project.folder, "cov", "--by", "target", "--format", "csv")
    means = [float(row["mean_cv"]) for row in csv.DictReader(io.StringIO(result.stdout))]

    assert len(means) == 25
    assert means == sorted(means, reverse=True)


def test_cov_command_standardized(sample_project: object) -> None:
    import csv
    import io

    result = scores_command(sample_project.folder, "cov", "--by", "unit", "--target", "fdi", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    z_2011 = [float(row["z"]) for row in rows if row["year"] == "2011"]

    assert len(z_2011) == 14
    assert sum(z_2011) == pytest.approx(0, abs=1e-9)


def test_typology_command_cuts(sample_copy: Path) -> None:
    import csv
    import io

    result = scores_command(
        sample_copy, "typology", "--priority-cut", "100", "--negotiability-cut", "0", "--format", "csv"
    )
    rows = list(csv.DictReader(io.StringIO(result.stdout)))

    assert result.exit_code == 0, result.stderr
    assert len(rows) == 17
    assert {row["cell"] for row in rows} == {"more negotiable, low priority"}
    assert {row["expected_response"] for row in rows} == {"moderate bargaining"}
