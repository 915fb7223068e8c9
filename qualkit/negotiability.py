"""Negotiability of performance targets, measured by year-to-year rank changes.

For each target and year the units (cities) are ranked by the value they were
assigned, rank 1 being the hardest target. Between two years with data, a
unit's rank change is ``rank_to - rank_from``. A negative change means the unit
was given a relatively harder target than before, and a positive one a
relatively easier target. A target whose ranks change often is read as more negotiable.

All functions take and return pandas DataFrames. The method, its options and
their defaults are described in docs/negotiability.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from qualkit.errors import PanelError
from qualkit.rank_explain import ExplanationInput, render_explanation

TIE_METHODS = ("min", "average", "max", "dense", "first")
TRANSITION_RULES = ("consecutive", "adjacent")
MISSING_RULES = ("common", "each_year")

VALUE_COLUMNS = ("target", "unit", "year", "value")
POINT_COLUMNS = ("target", "year", "points")
CHANGE_COLUMNS = tuple(
    "target from_year to_year unit value_from value_to rank_from rank_to change".split()
)
CV_COLUMNS = ("target", "year", "n_units", "mean", "sd", "cv")
SUMMARY_COLUMNS = tuple(
    """target years n_years n_units eligible ineligible_reason units_changed
    range_min range_max observed possible frequency mean_points mean_cv
    variation_order""".split()
)
TYPOLOGY_COLUMNS = tuple(
    """target priority negotiability priority_level negotiability_level cell
    expected_response priority_cut negotiability_cut""".split()
)
EXPECTED_RESPONSES = {
    ("more", "low"): "moderate bargaining",
    ("more", "high"): "intensive bargaining",
    ("less", "low"): "neglect",
    ("less", "high"): "fulfilment or gaming (misreporting)",
}


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise PanelError(
            f"invalid {name} option {value!r}.",
            fix=f"Use one of: {', '.join(choices)}.",
        )


def _check_integer(name: str, value: object, minimum: int) -> None:
    is_integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not is_integer or value < minimum:
        raise PanelError(
            f"invalid {name} {value!r}.", fix=f"Use an integer of at least {minimum}."
        )


@dataclass(frozen=True)
class NegotiabilityOptions:
    """Choices that decide how rank changes are counted.

    ties: pandas rank method for equal values ("min", "average", "max",
        "dense", "first"). "first" breaks ties by unit name.
    transitions: "consecutive" pairs each year with the target's next year
        with data, so 2011 -> 2013 counts when 2012 is missing. "adjacent"
        keeps only calendar-adjacent pairs such as 2011 -> 2012.
    missing: "common" ranks both years of a transition among the units present
        in both. "each_year" ranks each year among all units present that year.
    min_years: number of years with a value for every unit of the target that
        a target needs to be eligible.
    cv_ddof: delta degrees of freedom of the standard deviation in the
        coefficient of variation.
    """

    ties: str = "min"
    transitions: str = "consecutive"
    missing: str = "common"
    min_years: int = 2
    cv_ddof: int = 1

    def __post_init__(self) -> None:
        _check_choice("ties", self.ties, TIE_METHODS)
        _check_choice("transitions", self.transitions, TRANSITION_RULES)
        _check_choice("missing", self.missing, MISSING_RULES)
        _check_integer("min_years", self.min_years, minimum=2)
        _check_integer("cv_ddof", self.cv_ddof, minimum=0)


def options_from_mapping(
    overrides: Mapping[str, object],
    base: NegotiabilityOptions = NegotiabilityOptions(),
) -> NegotiabilityOptions:
    """Build options from ``base`` with some fields replaced, as in targets.yaml.

    Raises PanelError for a field name that NegotiabilityOptions lacks
    or for an invalid value.
    """
    known = {option.name for option in fields(NegotiabilityOptions)}
    unknown = sorted(str(name) for name in overrides if name not in known)
    if unknown:
        raise PanelError(
            f"unknown negotiability option(s): {', '.join(unknown)}.",
            fix=f"Use only: {', '.join(sorted(known))}.",
        )

    return replace(base, **dict(overrides))  # type: ignore[arg-type]


def rank_changes(
    values: pd.DataFrame,
    directions: Mapping[str, bool],
    options: NegotiabilityOptions = NegotiabilityOptions(),
    per_target: Mapping[str, NegotiabilityOptions] | None = None,
) -> pd.DataFrame:
    """Compute every unit's rank change in every transition of every target.

    Returns one row per target, transition and unit present in both years,
    sorted by target, from_year and unit. ``per_target`` replaces ``options``
    for the targets it names, and its entries for targets without values are
    ignored.
    """
    frame = _validate_values(values)
    _check_directions(frame, directions)
    parts = [
        _target_changes(
            group, directions[target], _options_for(target, options, per_target)
        )
        for target, group in frame.groupby("target", sort=True)
    ]

    return _concat_changes(parts)


def coefficient_of_variation(values: pd.DataFrame, ddof: int = 1) -> pd.DataFrame:
    """Compute each target-year's spread across units as sd / mean.

    ``sd`` uses ``ddof`` delta degrees of freedom. ``sd`` is NaN when a year
    has ``ddof`` units or fewer, and ``cv`` is NaN when ``sd`` is NaN or the
    mean is 0. A negative mean gives a negative ``cv``.
    """
    _check_integer("ddof", ddof, minimum=0)
    frame = _validate_values(values)
    grouped = frame.groupby(["target", "year"], sort=True)["value"]
    table = grouped.agg(n_units="count", mean="mean").reset_index()
    table["sd"] = grouped.std(ddof=ddof).to_numpy()
    table["cv"] = table["sd"] / table["mean"].where(table["mean"] != 0)

    return table.loc[:, list(CV_COLUMNS)]


def standardize(values: pd.DataFrame, ddof: int = 1) -> pd.DataFrame:
    """Standardize each value within its target-year as (value - mean) / SD.

    Returns a checked copy of ``values``, sorted by target, year and unit, with
    the column ``z`` added. The SD uses ``ddof`` delta degrees of freedom, 1 by
    default as in the sample standard deviation. ``z`` is NaN when the SD is 0
    or undefined.
    """
    _check_integer("ddof", ddof, minimum=0)
    frame = _validate_values(values)
    grouped = frame.groupby(["target", "year"])["value"]
    mean = grouped.transform("mean")
    sd = grouped.transform(lambda column: column.std(ddof=ddof))
    frame["z"] = (frame["value"] - mean) / sd.where(sd != 0)

    return frame


def summarize(
    values: pd.DataFrame,
    points: pd.DataFrame,
    directions: Mapping[str, bool],
    options: NegotiabilityOptions = NegotiabilityOptions(),
    per_target: Mapping[str, NegotiabilityOptions] | None = None,
) -> pd.DataFrame:
    """Summarize rank changes, points and spread for every target with values.

    Returns one row per target, sorted by target. Ineligible targets keep their
    counts for inspection, but their ``variation_order`` is NaN.
    """
    frame = _validate_values(values)
    point_frame = _validate_points(points)
    _check_directions(frame, directions)

    rows = []
    for target, group in frame.groupby("target", sort=True):
        target_options = _options_for(target, options, per_target)
        changes = _target_changes(group, directions[target], target_options)
        target_points = point_frame[point_frame["target"] == target]
        rows.append(_summary_row(target, group, changes, target_points, target_options))

    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    order = variation_order(summary)
    summary["variation_order"] = summary["target"].map(order).astype(float)

    return summary


def variation_order(summary: pd.DataFrame) -> pd.Series:
    """Order eligible targets from most to least varying.

    The rule sorts by frequency (highest first), then units with a change
    (most first), then range width ``range_max - range_min`` (widest first),
    then target id. Returns the positions 1, 2, ... indexed by target.
    """
    _require_columns(
        summary,
        ("target", "eligible", "frequency", "units_changed", "range_min", "range_max"),
        "summary",
    )
    eligible = summary[summary["eligible"].astype(bool)]
    ranked = eligible.assign(range_width=eligible["range_max"] - eligible["range_min"])
    ranked = ranked.sort_values(
        ["frequency", "units_changed", "range_width", "target"],
        ascending=[False, False, False, True],
        kind="mergesort",
    )
    positions = range(1, len(ranked) + 1)

    return pd.Series(
        positions, index=ranked["target"].to_numpy(), name="variation_order"
    )


def typology(
    summary: pd.DataFrame,
    priority_cut: float | None = None,
    negotiability_cut: float | None = None,
) -> pd.DataFrame:
    """Place each eligible target in the priority x negotiability typology.

    Priority is ``mean_points`` and negotiability is ``frequency``. Each cut
    defaults to the median over eligible targets, and the table repeats the
    cuts used. A value above the cut is "high" or "more". A value equal to
    the cut or below it is "low" or "less". Raises PanelError when an
    eligible target has no points.
    """
    _require_columns(
        summary, ("target", "eligible", "mean_points", "frequency"), "summary"
    )
    eligible = summary[summary["eligible"].astype(bool)]
    without_points = eligible.loc[eligible["mean_points"].isna(), "target"].tolist()
    if without_points:
        raise PanelError(
            f"no points for eligible target(s) {', '.join(without_points)}.",
            fix="Add their rows to the points table.",
        )

    priority = eligible["mean_points"].astype(float)
    negotiability = eligible["frequency"].astype(float)
    if priority_cut is None:
        priority_cut = float(priority.median())
    if negotiability_cut is None:
        negotiability_cut = float(negotiability.median())

    table = pd.DataFrame(
        {
            "target": eligible["target"].to_numpy(),
            "priority": priority.to_numpy(),
            "negotiability": negotiability.to_numpy(),
            "priority_level": np.where(priority > priority_cut, "high", "low"),
            "negotiability_level": np.where(
                negotiability > negotiability_cut, "more", "less"
            ),
        }
    )
    levels = list(
        zip(table["negotiability_level"], table["priority_level"], strict=True)
    )
    table["cell"] = [
        f"{negotiable} negotiable, {important} priority"
        for negotiable, important in levels
    ]
    table["expected_response"] = [EXPECTED_RESPONSES[level] for level in levels]
    table["priority_cut"], table["negotiability_cut"] = priority_cut, negotiability_cut

    return table.loc[:, list(TYPOLOGY_COLUMNS)]


def explain(
    values: pd.DataFrame,
    target: str,
    directions: Mapping[str, bool],
    options: NegotiabilityOptions = NegotiabilityOptions(),
) -> str:
    """Write out one target's rankings, counted changes and summary arithmetic.

    The text is laid out by ``qualkit.rank_explain``. Raises PanelError when
    ``values`` has no rows for ``target``.
    """
    frame = _validate_values(values)
    group = frame[frame["target"] == target]
    if group.empty:
        raise PanelError(
            f"values has no rows for target {target!r}.",
            fix="Check the target id against the panel.",
        )
    _check_directions(group, directions)

    higher_is_harder = directions[target]
    years = sorted(int(year) for year in group["year"].unique())
    rankings = {
        int(year): (
            rows.set_index("unit")["value"],
            _rank(rows.set_index("unit")["value"], higher_is_harder, options.ties),
        )
        for year, rows in group.groupby("year", sort=True)
    }
    changes = _target_changes(group, higher_is_harder, options)

    return render_explanation(
        ExplanationInput(
            target=target,
            higher_is_harder=higher_is_harder,
            options=options,
            years_label=_years_label(years),
            n_units=int(group["unit"].nunique()),
            ineligible_reason=_ineligible_reason(group, options),
            rankings=rankings,
            changes=changes,
            statistics=_change_statistics(changes),
        )
    )


# Input checks


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], label: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise PanelError(
            f"{label} must be a pandas DataFrame, got {type(frame).__name__}."
        )
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise PanelError(
            f"{label} is missing column(s) {', '.join(missing)}.",
            fix=f"Give it the columns {', '.join(columns)}.",
        )


def _validate_values(values: pd.DataFrame) -> pd.DataFrame:
    """Return a checked copy of ``values`` with str ids, int years, float values."""
    frame = _validate_frame(values, VALUE_COLUMNS, "values")

    return frame.sort_values(["target", "year", "unit"]).reset_index(drop=True)


def _validate_points(points: pd.DataFrame) -> pd.DataFrame:
    """Return a checked copy of ``points`` with str ids, int years, float points."""
    return _validate_frame(points, POINT_COLUMNS, "points")


def _validate_frame(
    frame: pd.DataFrame, columns: tuple[str, ...], label: str
) -> pd.DataFrame:
    """Check a values or points table, whose last column contains the numbers."""
    _require_columns(frame, columns, label)
    checked = frame.loc[:, list(columns)].copy()
    for column in columns:
        empty = int(checked[column].isna().sum())
        if empty:
            raise PanelError(
                f"{label} has {empty} row(s) with no {column}.",
                fix="Drop those rows: leave a missing observation out, not as NaN.",
            )

    for column in ("target", "unit"):
        if column in checked.columns:
            checked[column] = checked[column].astype(str)
    checked["year"] = _integer_years(checked["year"], label)
    checked[columns[-1]] = _finite_numbers(checked[columns[-1]], columns[-1], label)

    keys = list(columns[:-1])
    duplicated = checked.duplicated(keys, keep=False)
    if duplicated.any():
        first = checked[duplicated].iloc[0]
        example = ", ".join(
            f"{key} {first[key]}" if key == "year" else f"{key} {first[key]!r}"
            for key in keys
        )
        raise PanelError(
            f"{label} has {int(duplicated.sum())} rows that repeat a "
            f"{'-'.join(keys)}, e.g. {example}.",
            fix=f"Keep one row per {', '.join(keys)}.",
        )

    return checked


def _integer_years(years: pd.Series, label: str) -> pd.Series:
    numeric = pd.to_numeric(years, errors="coerce")
    if numeric.isna().any() or (numeric % 1 != 0).any():
        bad = years[numeric.isna() | (numeric % 1 != 0)].iloc[0]
        raise PanelError(
            f"{label} has a year that is not a whole number: {bad!r}.",
            fix="Give years as integers such as 2011.",
        )

    return numeric.astype("int64")


def _finite_numbers(column: pd.Series, name: str, label: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(column):
        raise PanelError(
            f"{label} column {name} must be numeric, got True/False values."
        )
    numbers = pd.to_numeric(column, errors="coerce").astype(float)
    not_numbers = numbers.isna()
    if not_numbers.any():
        raise PanelError(
            f"{label} column {name} must be numeric, "
            f"got {column[not_numbers].iloc[0]!r}.",
            fix="Correct the value or drop the row.",
        )
    if not np.isfinite(numbers).all():
        raise PanelError(
            f"{label} column {name} contains an infinite value.",
            fix="Drop the row or correct the value.",
        )

    return numbers


def _check_directions(frame: pd.DataFrame, directions: Mapping[str, bool]) -> None:
    for target in sorted(frame["target"].unique()):
        if target not in directions:
            raise PanelError(
                f"no direction for target {target!r}.",
                fix="Give higher_is_harder (True or False) for every target.",
            )
        if not isinstance(directions[target], (bool, np.bool_)):
            raise PanelError(
                f"direction of target {target!r} must be True or False, "
                f"got {directions[target]!r}."
            )


def _options_for(
    target: str,
    options: NegotiabilityOptions,
    per_target: Mapping[str, NegotiabilityOptions] | None,
) -> NegotiabilityOptions:
    if per_target is not None and target in per_target:
        return per_target[target]

    return options


# Ranks and changes


def _rank(year_values: pd.Series, higher_is_harder: bool, ties: str) -> pd.Series:
    """Rank units (the index) so that rank 1 is the hardest value."""
    by_unit = year_values.sort_index()  # makes ties="first" break ties by unit name

    return by_unit.rank(method=ties, ascending=not higher_is_harder)


def _transitions(years: list[int], rule: str) -> list[tuple[int, int]]:
    pairs = list(zip(years[:-1], years[1:], strict=True))
    if rule == "adjacent":
        pairs = [(first, second) for first, second in pairs if second == first + 1]

    return pairs


def _target_changes(
    group: pd.DataFrame, higher_is_harder: bool, options: NegotiabilityOptions
) -> pd.DataFrame:
    """Compute the rank changes of one target from ``group``, its rows only."""
    by_year = {
        int(year): rows.set_index("unit")["value"]
        for year, rows in group.groupby("year", sort=True)
    }
    target = str(group["target"].iloc[0])
    parts = []
    for from_year, to_year in _transitions(sorted(by_year), options.transitions):
        before, after = by_year[from_year], by_year[to_year]
        common = before.index.intersection(after.index).sort_values()
        if options.missing == "common":
            before, after = before.loc[common], after.loc[common]

        rank_from = _rank(before, higher_is_harder, options.ties).loc[common]
        rank_to = _rank(after, higher_is_harder, options.ties).loc[common]
        part = pd.DataFrame(
            {
                "target": target,
                "from_year": from_year,
                "to_year": to_year,
                "unit": common.to_numpy(),
                "value_from": before.loc[common].to_numpy(),
                "value_to": after.loc[common].to_numpy(),
                "rank_from": rank_from.to_numpy(dtype=float),
                "rank_to": rank_to.to_numpy(dtype=float),
            }
        )
        part["change"] = part["rank_to"] - part["rank_from"]
        parts.append(part)

    return _concat_changes(parts)


def _concat_changes(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        empty = pd.DataFrame(columns=list(CHANGE_COLUMNS), dtype=float)
        return empty.astype(
            {"target": str, "unit": str, "from_year": "int64", "to_year": "int64"}
        )

    changes = pd.concat(parts, ignore_index=True)
    changes = changes.sort_values(["target", "from_year", "unit"], kind="mergesort")

    return changes.reset_index(drop=True).loc[:, list(CHANGE_COLUMNS)]


# Summary


def _years_label(years: list[int]) -> str:
    """Label years as runs, e.g. [2011, 2012, 2015] -> "2011-2012, 2015"."""
    runs: list[list[int]] = []
    for year in sorted(years):
        if runs and year == runs[-1][-1] + 1:
            runs[-1].append(year)
        else:
            runs.append([year])

    return ", ".join(
        str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs
    )


def _full_years(group: pd.DataFrame) -> list[int]:
    """Return the years in which every unit with any value for the target has one."""
    n_units = group["unit"].nunique()
    counts = group.groupby("year")["unit"].nunique()

    return sorted(int(year) for year in counts.index[counts == n_units])


def _ineligible_reason(group: pd.DataFrame, options: NegotiabilityOptions) -> str:
    n_units = group["unit"].nunique()
    full_years = _full_years(group)
    if len(full_years) < options.min_years:
        if not full_years:
            found = f"no year has values for all {n_units} units"
        else:
            count = "1 year" if len(full_years) == 1 else f"{len(full_years)} years"
            found = (
                f"values for all {n_units} units in only {count} "
                f"({_years_label(full_years)})"
            )
        return f"{found}; at least {options.min_years} needed"

    years = sorted(int(year) for year in group["year"].unique())
    if not _transitions(years, options.transitions):
        rule = options.transitions
        return f"no pair of years to compare under transitions={rule!r}"

    return ""


def _change_statistics(changes: pd.DataFrame) -> dict[str, float]:
    """Count observed and possible changes, units changed and the range."""
    moved = changes[changes["change"] != 0]
    observed, possible = len(moved), len(changes)

    return {
        "units_changed": int(moved["unit"].nunique()),
        "range_min": float(changes["change"].min()) if possible else np.nan,
        "range_max": float(changes["change"].max()) if possible else np.nan,
        "observed": observed,
        "possible": possible,
        "frequency": observed / possible if possible else np.nan,
    }


def _summary_row(
    target: str,
    group: pd.DataFrame,
    changes: pd.DataFrame,
    target_points: pd.DataFrame,
    options: NegotiabilityOptions,
) -> dict[str, object]:
    years = sorted(int(year) for year in group["year"].unique())
    reason = _ineligible_reason(group, options)
    year_points = target_points.loc[target_points["year"].isin(years), "points"]
    spread = coefficient_of_variation(group, ddof=options.cv_ddof)

    return {
        "target": target,
        "years": _years_label(years),
        "n_years": len(years),
        "n_units": int(group["unit"].nunique()),
        "eligible": reason == "",
        "ineligible_reason": reason,
        **_change_statistics(changes),
        "mean_points": float(year_points.mean()) if len(year_points) else np.nan,
        "mean_cv": float(spread["cv"].mean()),
        "variation_order": np.nan,
    }
