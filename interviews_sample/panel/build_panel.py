"""Build the synthetic panel of Hunan target values that reproduces Table 1.

Running ``python3 build_panel.py`` rewrites ``target_values.csv`` and
``target_points.csv`` next to this script. ``--output-dir DIR`` writes them
elsewhere. The output is the same on every run, because all randomness comes
from one seeded ``random.Random`` and no value passes through a libm function
(exp, log, pow) whose last digit could differ between platforms.

How a target is built:
1. The units (cities) get a ranking for every year with data. Table 1 targets
   get their rankings from a seeded local search that swaps cities until the
   rank changes match the published counts: observed changes, cities with a
   change and range of change. The other targets get small random swaps.
2. Each year gets a ladder of plausible values, from the hardest (rank 1) to
   the easiest, and the city at rank k receives the k-th value. Ladders are
   strictly ordered, so the ranks of the written values are exactly the
   rankings of step 1, with ties only where a ranking has a tied group.
3. Cities without data in a year are left out of that year's rows.

Nothing here is real data. See README.md beside this script.
"""

from __future__ import annotations

import argparse
import csv
import random
from dataclasses import dataclass, field
from pathlib import Path

SEED = 1402
MAX_SEARCH_STEPS = 400_000
JITTER = 0.03  # relative noise on ladder values before they are rounded
FIRST_YEAR = 2011

CITIES = (
    "Changsha",
    "Zhuzhou",
    "Xiangtan",
    "Hengyang",
    "Shaoyang",
    "Yueyang",
    "Changde",
    "Zhangjiajie",
    "Yiyang",
    "Chenzhou",
    "Yongzhou",
    "Huaihua",
    "Loudi",
    "Xiangxi",
)

# Invented relative sizes that put the cities in a plausible order of economic
# weight. They shape the "size" ladders and the first year's ranking only.
CITY_SIZE = {
    "Changsha": 10.0,
    "Yueyang": 3.9,
    "Changde": 3.7,
    "Hengyang": 3.6,
    "Zhuzhou": 3.2,
    "Chenzhou": 3.0,
    "Shaoyang": 2.5,
    "Xiangtan": 2.4,
    "Yongzhou": 2.3,
    "Huaihua": 2.1,
    "Yiyang": 2.0,
    "Loudi": 1.9,
    "Xiangxi": 1.0,
    "Zhangjiajie": 0.8,
}

# Probability of accepting a search step that moves the rank-change statistics
# further from the goal by 1, 2 or 3. A step that moves further is rejected.
ACCEPT_WORSE = {1: 0.2, 2: 0.04, 3: 0.008}


@dataclass(frozen=True)
class Goal:
    """Published Table 1 counts that a target's rankings must reproduce."""

    observed: int
    units_changed: int
    range_min: int
    range_max: int


@dataclass(frozen=True)
class Ladder:
    """The values a target's cities receive in 2011, hardest first.

    ``hardest`` and ``easiest`` are the values of the rank-1 and the
    last-ranked city. ``shape`` is "size" (values follow CITY_SIZE, so the
    largest city leads) or "linear" (evenly spaced, as for rates).
    ``growth`` scales the whole ladder each year after 2011, and values are
    rounded to ``decimals`` places.
    """

    hardest: float
    easiest: float
    shape: str
    growth: float
    decimals: int


@dataclass(frozen=True)
class TargetSpec:
    """Settings that generate one target's values.

    ``points`` gives the target's weight for each year with data, so its keys
    are the target's years. ``absent`` cities have no value in any year.
    ``missing`` lists the cities without a value in a given year.
    ``tied_rankings`` fixes each year's ranking as groups of tied cities
    instead of searching for strict rankings.
    """

    target: str
    measure: str
    ladder: Ladder
    points: dict[int, float]
    higher_is_harder: bool = True
    goal: Goal | None = None
    adjacent_only: bool = False
    absent: tuple[str, ...] = ()
    missing: dict[int, tuple[str, ...]] = field(default_factory=dict)
    tied_rankings: tuple[tuple[tuple[str, ...], ...], ...] = ()

    @property
    def years(self) -> list[int]:
        """Years with data."""
        return sorted(self.points)

    @property
    def units(self) -> list[str]:
        """Cities with a value in at least one year."""
        return [city for city in CITIES if city not in self.absent]


PERSONS = "insured persons, 10,000 persons"

TABLE_1 = (
    TargetSpec(
        "shanty_town",
        "shanty-town households to renovate",
        Ladder(24000, 2500, "size", growth=0.08, decimals=0),
        points={2011: 3.0, 2012: 4.0, 2013: 3.5},
        goal=Goal(26, 14, -6, 8),
    ),
    TargetSpec(
        "public_rental_housing",
        "public rental dwellings to start",
        Ladder(9000, 800, "size", growth=-0.05, decimals=0),
        points={2011: 3.5, 2013: 3.5},
        goal=Goal(13, 13, -7, 4),
    ),
    TargetSpec(
        "maternity_insurance",
        PERSONS,
        Ladder(95.0, 6.0, "size", growth=0.05, decimals=1),
        points={2011: 1.7, 2014: 1.7},
        goal=Goal(11, 11, -3, 5),
    ),
    TargetSpec(
        "industrial_water",
        "cap on water use per 10,000 yuan of industrial value added, m3",
        Ladder(38.0, 125.0, "size", growth=-0.04, decimals=1),
        points={2011: 5.0, 2012: 5.0, 2013: 4.7},
        higher_is_harder=False,
        goal=Goal(22, 13, -4, 7),
    ),
    TargetSpec(
        "water_function_zones",
        "water function zones meeting their standard, %",
        Ladder(92.0, 62.0, "linear", growth=0.01, decimals=1),
        points={2011: 4.0, 2012: 4.6, 2013: 4.6},
        goal=Goal(17, 13, -2, 7),
    ),
    TargetSpec(
        "unemployment_insurance",
        PERSONS,
        Ladder(68.0, 4.5, "size", growth=0.04, decimals=1),
        points={2011: 2.0, 2012: 1.5, 2015: 1.6},
        goal=Goal(16, 11, -7, 3),
    ),
    TargetSpec(
        "work_injury_insurance",
        PERSONS,
        Ladder(82.0, 5.5, "size", growth=0.05, decimals=1),
        points={2011: 2.0, 2012: 1.5, 2014: 1.5, 2015: 1.8},
        goal=Goal(16, 11, -4, 4),
        adjacent_only=True,
    ),
    TargetSpec(
        "employee_health_insurance",
        PERSONS,
        Ladder(150.0, 12.0, "size", growth=0.03, decimals=1),
        points={2011: 2.0, 2012: 1.6, 2014: 1.6, 2015: 1.6},
        goal=Goal(14, 11, -4, 3),
        adjacent_only=True,
    ),
    TargetSpec(
        "wastewater_treatment",
        "urban wastewater treatment rate, %",
        Ladder(95.0, 75.0, "linear", growth=0.01, decimals=1),
        points={2012: 3.4, 2013: 3.4},
        goal=Goal(10, 10, -3, 3),
    ),
    TargetSpec(
        "imports_exports",
        "imports and exports, 100 million USD",
        Ladder(95.0, 2.1, "size", growth=0.07, decimals=2),
        points={2011: 15.0, 2012: 15.0, 2013: 16.0, 2014: 16.0, 2015: 15.5},
        goal=Goal(23, 11, -3, 3),
        absent=("Zhangjiajie",),
    ),
    TargetSpec(
        "refuse_treatment",
        "urban refuse treatment rate, %",
        Ladder(98.0, 70.0, "linear", growth=0.01, decimals=1),
        points={2012: 3.4, 2013: 3.4},
        goal=Goal(6, 6, -6, 5),
    ),
    TargetSpec(
        "pollution_sources",
        "cut in COD discharge from key pollution sources, %",
        Ladder(4.8, 1.6, "linear", growth=0.0, decimals=2),
        points={2012: 4.0, 2013: 4.0},
        goal=Goal(6, 6, -1, 1),
    ),
    TargetSpec(
        "enterprise_pensions",
        "enterprise pension contributions, 100 million yuan",
        Ladder(140.0, 8.5, "size", growth=0.09, decimals=2),
        points={2011: 2.0, 2012: 1.5, 2013: 1.5, 2014: 1.8, 2015: 1.7},
        goal=Goal(21, 11, -5, 4),
    ),
    TargetSpec(
        "pollution_shutdown",
        "polluting enterprises or production lines to shut down",
        Ladder(60, 5, "linear", growth=0.0, decimals=0),
        points={2012: 4.0, 2013: 4.0},
        goal=Goal(2, 2, -1, 1),
    ),
    TargetSpec(
        "domestic_investment",
        "domestic capital from outside Hunan, 100 million yuan",
        Ladder(850.0, 60.0, "size", growth=0.10, decimals=1),
        points={2012: 11.0, 2013: 11.5, 2014: 11.5, 2015: 11.6},
        goal=Goal(6, 3, -1, 1),
    ),
    TargetSpec(
        "pension_subsidy",
        "fiscal subsidy to enterprise pension funds, 100 million yuan",
        Ladder(6.0, 0.5, "linear", growth=0.05, decimals=1),
        points={2012: 5.0, 2013: 5.5, 2014: 5.5, 2015: 5.2},
        # Each year one or two cities join the tied group just above them. Under
        # ties="min" their rank falls and no rank rises, so the range is (-2, 0).
        tied_rankings=(
            (
                *[("Changsha",), ("Hengyang",), ("Yueyang", "Changde"), ("Zhuzhou",)],
                *[("Chenzhou",), ("Shaoyang",), ("Yongzhou",), ("Xiangtan",)],
                *[("Huaihua", "Yiyang"), ("Loudi",), ("Xiangxi",), ("Zhangjiajie",)],
            ),
            (
                *[("Changsha",), ("Hengyang",), ("Yueyang", "Changde", "Zhuzhou")],
                *[("Chenzhou",), ("Shaoyang",), ("Yongzhou",), ("Xiangtan",)],
                *[("Huaihua", "Yiyang"), ("Loudi",), ("Xiangxi",), ("Zhangjiajie",)],
            ),
            (
                *[("Changsha",), ("Hengyang",), ("Yueyang", "Changde", "Zhuzhou")],
                *[("Chenzhou",), ("Shaoyang",), ("Yongzhou", "Xiangtan")],
                *[("Huaihua", "Yiyang"), ("Loudi",), ("Xiangxi",), ("Zhangjiajie",)],
            ),
            (
                *[("Changsha",), ("Hengyang",), ("Yueyang", "Changde", "Zhuzhou")],
                *[("Chenzhou",), ("Shaoyang",), ("Yongzhou", "Xiangtan")],
                *[("Huaihua", "Yiyang", "Loudi"), ("Xiangxi", "Zhangjiajie")],
            ),
        ),
    ),
    TargetSpec(
        "fdi",
        "foreign direct investment actually used, 100 million USD",
        Ladder(32.0, 0.6, "size", growth=0.08, decimals=2),
        points={2011: 8.0, 2012: 9.0, 2013: 9.0, 2014: 9.0, 2015: 9.0},
        goal=Goal(4, 2, -1, 1),
    ),
)

# Panel targets that Table 1 leaves out, because none has values for every
# one of its cities in two or more years.
NOT_ELIGIBLE = (
    TargetSpec(
        "rural_drinking_water",
        "rural residents given safe drinking water, 10,000 persons",
        Ladder(45.0, 8.0, "size", growth=0.0, decimals=1),
        points={2013: 3.0},
    ),
    TargetSpec(
        "forest_coverage",
        "forest coverage, %",
        Ladder(66.0, 30.0, "linear", growth=0.005, decimals=1),
        points={2011: 4.0, 2012: 4.0, 2013: 4.0, 2014: 4.0, 2015: 4.0},
        missing={year: ("Xiangxi",) for year in (2012, 2013, 2014, 2015)},
    ),
    TargetSpec(
        "energy_intensity",
        "cut in energy use per unit of GDP, %",
        Ladder(4.2, 2.8, "linear", growth=0.0, decimals=2),
        points={2011: 6.0, 2012: 6.0},
        missing={2012: ("Loudi",)},
    ),
    TargetSpec(
        "tourism_revenue",
        "tourism revenue, 100 million yuan",
        Ladder(850.0, 60.0, "size", growth=0.12, decimals=1),
        points={2012: 5.0, 2013: 5.0, 2014: 5.0, 2015: 5.0},
        missing={
            2012: ("Yiyang",),
            2013: ("Loudi",),
            2014: ("Shaoyang",),
            2015: ("Yongzhou",),
        },
    ),
    TargetSpec(
        "fixed_asset_investment",
        "fixed-asset investment, 100 million yuan",
        Ladder(4200.0, 320.0, "size", growth=0.0, decimals=1),
        points={2012: 20.0},
    ),
    TargetSpec(
        "so2_reduction",
        "cut in sulphur dioxide emissions, %",
        Ladder(3.5, 1.2, "linear", growth=0.0, decimals=2),
        points={2011: 4.0, 2015: 4.0},
        missing={2015: ("Shaoyang", "Zhangjiajie", "Yongzhou", "Huaihua", "Xiangxi")},
    ),
    TargetSpec(
        "medical_assistance",
        "urban and rural medical assistance, 10,000 person-times",
        Ladder(12.0, 1.5, "size", growth=0.06, decimals=1),
        points={2013: 2.0, 2014: 2.0},
        missing={2013: ("Changsha", "Zhuzhou"), 2014: ("Hengyang",)},
    ),
    TargetSpec(
        "cultural_industry",
        "cultural industry value added, % of GDP",
        Ladder(7.5, 3.0, "linear", growth=0.0, decimals=2),
        points={2014: 3.0, 2015: 3.0},
        missing={
            2015: tuple(
                city
                for city in CITIES
                if city not in ("Changsha", "Zhuzhou", "Xiangtan")
            )
        },
    ),
)


# Rankings


def transitions(spec: TargetSpec) -> list[tuple[int, int]]:
    """Return index pairs into ``spec.years`` of the years whose ranks are compared."""
    years = spec.years
    pairs = [(index, index + 1) for index in range(len(years) - 1)]
    if spec.adjacent_only:
        pairs = [
            (first, second)
            for first, second in pairs
            if years[second] == years[first] + 1
        ]

    return pairs


def first_ranking(spec: TargetSpec, rng: random.Random) -> list[str]:
    """Order the cities by size, then swap three random neighbours below rank 1."""
    ranking = sorted(spec.units, key=lambda city: -CITY_SIZE[city])
    for _ in range(3):
        index = rng.randrange(1, len(ranking) - 1)
        ranking[index], ranking[index + 1] = ranking[index + 1], ranking[index]

    return ranking


def statistics(rankings: list[list[str]], pairs: list[tuple[int, int]]) -> Goal:
    """Count the rank changes between the given pairs of strict rankings."""
    changes: list[int] = []
    moved: set[str] = set()
    for first, second in pairs:
        position = {city: rank for rank, city in enumerate(rankings[second])}
        for rank, city in enumerate(rankings[first]):
            change = position[city] - rank
            changes.append(change)
            if change:
                moved.add(city)

    observed = sum(1 for change in changes if change)
    return Goal(observed, len(moved), min(changes), max(changes))


def distance(found: Goal, goal: Goal) -> int:
    return (
        abs(found.observed - goal.observed)
        + abs(found.units_changed - goal.units_changed)
        + abs(found.range_min - goal.range_min)
        + abs(found.range_max - goal.range_max)
    )


def search_rankings(spec: TargetSpec, rng: random.Random) -> list[list[str]]:
    """Swap cities in the rankings after the first year until the goal is met.

    Raises RuntimeError when MAX_SEARCH_STEPS are not enough.
    """
    assert spec.goal is not None
    pairs = transitions(spec)
    first = first_ranking(spec, rng)
    rankings = [list(first) for _ in spec.years]
    current = distance(statistics(rankings, pairs), spec.goal)
    for _ in range(MAX_SEARCH_STEPS):
        if current == 0:
            return rankings

        ranking = rankings[rng.randrange(1, len(rankings))]
        i = rng.randrange(len(ranking))
        if rng.random() < 0.5:
            j = min(i + 1, len(ranking) - 1) if i == 0 or rng.random() < 0.5 else i - 1
        else:
            j = rng.randrange(len(ranking))
        ranking[i], ranking[j] = ranking[j], ranking[i]

        proposed = distance(statistics(rankings, pairs), spec.goal)
        if proposed <= current or rng.random() < ACCEPT_WORSE.get(
            proposed - current, 0.0
        ):
            current = proposed
        else:
            ranking[i], ranking[j] = ranking[j], ranking[i]

    raise RuntimeError(
        f"no rankings found for {spec.target} in {MAX_SEARCH_STEPS} steps"
    )


def drifting_rankings(spec: TargetSpec, rng: random.Random) -> list[list[str]]:
    """Make rankings that differ by two random adjacent swaps from year to year."""
    rankings = [first_ranking(spec, rng)]
    for _ in spec.years[1:]:
        ranking = list(rankings[-1])
        for _ in range(2):
            index = rng.randrange(len(ranking) - 1)
            ranking[index], ranking[index + 1] = ranking[index + 1], ranking[index]
        rankings.append(ranking)

    return rankings


def ranked_groups(spec: TargetSpec, rng: random.Random) -> list[list[tuple[str, ...]]]:
    """Return each year's ranking as groups of tied cities, hardest group first."""
    if spec.tied_rankings:
        return [list(groups) for groups in spec.tied_rankings]

    rankings = search_rankings(spec, rng) if spec.goal else drifting_rankings(spec, rng)
    return [[(city,) for city in ranking] for ranking in rankings]


# Values


def growth_factor(growth: float, year: int) -> float:
    """Return (1 + growth) ** (year - 2011), by repeated multiplication."""
    factor = 1.0
    for _ in range(year - FIRST_YEAR):
        factor *= 1.0 + growth
    return factor


def ladder_weights(spec: TargetSpec, levels: int) -> list[float]:
    """Return ``levels`` weights from 1 (hardest) down to 0 (easiest)."""
    even = [1.0 - level / (levels - 1) for level in range(levels)]
    if spec.ladder.shape == "linear" or levels != len(spec.units):
        return even

    # Blending city size with even spacing keeps the largest city ahead without
    # a gap so wide that a change at the top looks absurd.
    sizes = sorted((CITY_SIZE[city] for city in spec.units), reverse=True)
    return [
        0.4 * (size - sizes[-1]) / (sizes[0] - sizes[-1]) + 0.6 * weight
        for size, weight in zip(sizes, even, strict=True)
    ]


def value_ladder(
    spec: TargetSpec, year: int, levels: int, rng: random.Random
) -> list[float]:
    """Draw ``levels`` rounded values, strictly ordered from hardest to easiest."""
    ladder = spec.ladder
    factor = growth_factor(ladder.growth, year)
    raw = []
    for weight in ladder_weights(spec, levels):
        value = ladder.easiest + (ladder.hardest - ladder.easiest) * weight
        raw.append(value * factor * (1.0 + rng.uniform(-JITTER, JITTER)))
    raw.sort(reverse=spec.higher_is_harder)

    # Rounding can make neighbours equal, so each value is nudged one step past
    # the one before. Only the tied groups of a ranking then share a value.
    step = (1.0, 0.1, 0.01)[ladder.decimals]
    if not spec.higher_is_harder:
        step = -step
    values = [round(raw[0], ladder.decimals)]
    for value in raw[1:]:
        value = round(value, ladder.decimals)
        if (values[-1] - value) * step <= 0:
            value = round(values[-1] - step, ladder.decimals)
        values.append(value)

    if min(values) <= 0:
        raise RuntimeError(f"{spec.target} {year}: a value reached zero")
    return values


def target_rows(spec: TargetSpec, rng: random.Random) -> list[tuple[object, ...]]:
    """Generate the (target, unit, year, value) rows of one target."""
    values: dict[tuple[str, int], float] = {}
    for year, groups in zip(spec.years, ranked_groups(spec, rng), strict=True):
        ladder = value_ladder(spec, year, len(groups), rng)
        for group, value in zip(groups, ladder, strict=True):
            for city in group:
                if city not in spec.missing.get(year, ()):
                    values[(city, year)] = value

    decimals = spec.ladder.decimals
    return [
        (spec.target, city, year, f"{values[(city, year)]:.{decimals}f}")
        for city in spec.units
        for year in spec.years
        if (city, year) in values
    ]


def write_csv(
    path: Path, header: tuple[str, ...], rows: list[tuple[object, ...]]
) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def build(output_dir: Path) -> None:
    """Write target_values.csv and target_points.csv into ``output_dir``."""
    rng = random.Random(SEED)
    value_rows: list[tuple[object, ...]] = []
    point_rows: list[tuple[object, ...]] = []
    for spec in TABLE_1 + NOT_ELIGIBLE:
        value_rows += target_rows(spec, rng)
        point_rows += [
            (spec.target, year, f"{spec.points[year]:.1f}") for year in spec.years
        ]

    output_dir.mkdir(parents=True, exist_ok=True)
    write_csv(
        output_dir / "target_values.csv",
        ("target", "unit", "year", "value"),
        value_rows,
    )
    write_csv(
        output_dir / "target_points.csv", ("target", "year", "points"), point_rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="folder to write the two CSV files into (default: this script's folder)",
    )
    build(parser.parse_args().output_dir)


if __name__ == "__main__":
    main()
