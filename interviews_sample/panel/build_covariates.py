"""Build the synthetic city covariates of the sample's validation regression.

Running ``python3 build_covariates.py`` rewrites ``covariates.csv`` next to
this script; ``--output-dir DIR`` writes it elsewhere. The file has one row
per city and year, 2010-2015, so that the one-year lags exist for every year
of the panel (2011-2015):

- ``connection``: 1 when the city's party secretary or mayor was promoted
  under the sitting provincial leader, else 0. Each city starts connected or
  not and switches once at most, in a year drawn at random.
- ``gdp_per_capita``: yuan per person.
- ``revenue``: general budget revenue, 100 million yuan.
- ``population``: resident population, 10,000 persons.

Every number is invented from one seeded ``random.Random`` and plain
arithmetic (no libm calls), so a re-run writes the same bytes on every
platform. Nothing here is real data.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

SEED = 2013
YEARS = range(2010, 2016)

# Invented 2010 levels: GDP per capita (yuan), revenue (100 million yuan),
# population (10,000 persons). Only their order is meant to be plausible.
BASE = {
    "Changsha": (66000, 380.0, 704.0),
    "Zhuzhou": (37000, 110.0, 386.0),
    "Xiangtan": (34000, 85.0, 275.0),
    "Hengyang": (20000, 120.0, 714.0),
    "Shaoyang": (11000, 60.0, 707.0),
    "Yueyang": (29000, 105.0, 548.0),
    "Changde": (24000, 100.0, 572.0),
    "Zhangjiajie": (16000, 30.0, 148.0),
    "Yiyang": (15000, 50.0, 431.0),
    "Chenzhou": (24000, 115.0, 458.0),
    "Yongzhou": (13000, 55.0, 519.0),
    "Huaihua": (14000, 65.0, 474.0),
    "Loudi": (18000, 55.0, 378.0),
    "Xiangxi": (10000, 35.0, 255.0),
}
COLUMNS = ("unit", "year", "connection", "gdp_per_capita", "revenue", "population")


def build_rows(seed: int = SEED) -> list[dict[str, object]]:
    """Return the covariate rows, city by city and year by year."""
    generator = random.Random(seed)
    rows = []
    for city, (gdp, revenue, population) in BASE.items():
        connected = generator.random() < 0.4
        switch_year = generator.choice([*YEARS[1:], None])
        for year in YEARS:
            if switch_year is not None and year == switch_year:
                connected = not connected
            rows.append(
                {
                    "unit": city,
                    "year": year,
                    "connection": int(connected),
                    "gdp_per_capita": round(gdp),
                    "revenue": round(revenue, 1),
                    "population": round(population, 1),
                }
            )
            gdp *= 1 + generator.uniform(0.06, 0.13)
            revenue *= 1 + generator.uniform(0.04, 0.18)
            population *= 1 + generator.uniform(-0.002, 0.008)

    return rows


def write_covariates(folder: Path) -> Path:
    """Write covariates.csv into ``folder`` and return its path."""
    path = folder / "covariates.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(build_rows())

    return path


def main() -> None:
    """Parse the command line and write the file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="folder to write covariates.csv into (default: this script's folder)",
    )
    arguments = parser.parse_args()
    arguments.output_dir.mkdir(parents=True, exist_ok=True)
    print(write_covariates(arguments.output_dir))


if __name__ == "__main__":
    main()
