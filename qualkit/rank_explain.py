"""Plain-text explanation of one target's rankings and rank changes.

``qualkit.negotiability.explain`` computes the rankings and changes; this
module only lays them out, so that a reader can redo every count by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from qualkit.negotiability import NegotiabilityOptions


@dataclass(frozen=True)
class ExplanationInput:
    """What the explanation shows for one target.

    ``rankings`` maps each year to the units' values and ranks (two Series
    indexed by unit). ``changes`` has the rows of ``rank_changes`` for the
    target, and ``statistics`` the counts that ``summarize`` reports.
    """

    target: str
    higher_is_harder: bool
    options: NegotiabilityOptions
    years_label: str
    n_units: int
    ineligible_reason: str
    rankings: dict[int, tuple[pd.Series, pd.Series]]
    changes: pd.DataFrame
    statistics: dict[str, float]


def render_explanation(data: ExplanationInput) -> str:
    """Lay out the options, each year's ranking, each transition and the totals."""
    lines = _header(data)
    for year, (values, ranks) in data.rankings.items():
        lines += _ranking(year, values, ranks)
    for (from_year, to_year), rows in data.changes.groupby(
        ["from_year", "to_year"], sort=True
    ):
        lines += _transition(from_year, to_year, rows, data.options)
    lines += _totals(data.changes, data.statistics)

    return "\n".join(lines) + "\n"


def format_number(number: float) -> str:
    """Format a rank or value without a trailing '.0'."""
    return f"{number:g}" if float(number).is_integer() else f"{number:.4g}"


def format_change(change: float) -> str:
    """Format a rank change with its sign, and 0 without one."""
    return "0" if change == 0 else f"{change:+g}"


def _header(data: ExplanationInput) -> list[str]:
    direction = "highest" if data.higher_is_harder else "lowest"
    options = data.options
    reason = data.ineligible_reason
    status = "eligible" if not reason else f"not eligible: {reason}"

    return [
        f"Target {data.target}: rank 1 is the {direction} value.",
        f"Options: ties={options.ties}, transitions={options.transitions}, "
        f"missing={options.missing}, min_years={options.min_years}.",
        f"Years with data: {data.years_label}; units: {data.n_units}; {status}.",
    ]


def _ranking(year: int, values: pd.Series, ranks: pd.Series) -> list[str]:
    ordered = sorted(ranks.index, key=lambda unit: (ranks[unit], unit))
    lines = ["", f"Ranking {year} ({len(ordered)} units): rank, unit, value"]
    for unit in ordered:
        rank, value = format_number(ranks[unit]), format_number(values[unit])
        lines.append(f"  {rank:>5}  {unit:<16} {value}")

    return lines


def _transition(
    from_year: int, to_year: int, rows: pd.DataFrame, options: NegotiabilityOptions
) -> list[str]:
    scope = (
        "ranks among these units only"
        if options.missing == "common"
        else "ranks as above"
    )
    moved = rows[rows["change"] != 0]
    lines = [
        "",
        f"Transition {from_year} -> {to_year}: "
        f"{len(rows)} units in both years ({scope}).",
    ]
    for row in moved.itertuples():
        lines.append(
            f"  {row.unit:<16} rank {format_number(row.rank_from)} -> "
            f"{format_number(row.rank_to)}  change {format_change(row.change)}"
        )
    lines.append(f"  {len(moved)} of {len(rows)} units changed rank.")

    return lines


def _totals(changes: pd.DataFrame, statistics: dict[str, float]) -> list[str]:
    if not statistics["possible"]:
        return ["", "No transition to compare, so no frequency of change."]

    low = format_change(statistics["range_min"])
    high = format_change(statistics["range_max"])
    return [
        "",
        f"Units with any change: {statistics['units_changed']} "
        f"of {changes['unit'].nunique()}.",
        f"Range of change: ({low}, {high}).",
        f"Frequency: observed / possible = {statistics['observed']} / "
        f"{statistics['possible']} = {statistics['frequency']:.2f}.",
    ]
