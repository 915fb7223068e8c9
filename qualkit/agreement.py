"""Inter-coder agreement: units of analysis, reliability data and coefficients.

A coder codes a unit with code X when the coder's counted codings of X
cover at least one character of the unit, or at least ``min_overlap`` of
its characters when that share is set. Counted codings have a status in
``statuses`` (accepted by default: manual codings and reviewed
suggestions). A coder who has no coding at all in a source, of any code or
status, did not code that source: the coder's value for each unit of that
source is missing, not "absent".

Coefficients come from the ``krippendorff`` package (alpha) and
statsmodels' ``inter_rater`` module (Cohen's and Fleiss' kappa). Percent
agreement is the share of agreeing coder pairs over every pair of coders
who both coded a unit.
"""

from __future__ import annotations

import logging
import math
import unicodedata
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import krippendorff
import numpy as np
import pandas as pd
import sqlite_utils
from statsmodels.stats.inter_rater import cohens_kappa, fleiss_kappa

from qualkit import store
from qualkit.coding import require_code, source_text
from qualkit.errors import NotFoundError, QualkitError

log = logging.getLogger(__name__)

UNITS = ("sentence", "turn", "source", "character")
COEFFICIENTS = ("percent", "cohen", "fleiss", "alpha")
LEVELS = ("nominal", "ordinal", "interval", "ratio")
VALUE_LEVELS = ("ordinal", "interval", "ratio")
DEFAULT_STATUSES = ("accepted",)
AUTOCODE_CODER = "autocode"
# The meta key listing the coders that 'qualkit adjudicate' wrote, as a JSON
# list. They are left out of the default coders, so a consensus is compared
# with the coders it came from only when --coder names it.
CONSENSUS_META_KEY = "consensus_coders"
POOLED = "(pooled)"
DEFAULT_SEED = 20240607
DEFAULT_CONFIDENCE = 0.95
# An upper bound that stops a mistyped count from running for days. The
# sample project took 36 s of CPU for 1,000 replicates (docs/agreement.md),
# so this limit means about an hour there.
MAX_REPLICATES = 100_000
# Pooled rows stack every (unit, code) pair. Above this many cells (coders x
# units x codes) they are left out to bound memory.
# NOTE: an estimate: each copy of the stacked data takes 8 bytes a cell, and
# grouping the units by pattern makes a few copies.
MAX_POOLED_CELLS = 20_000_000
RESULT_COLUMNS = [
    "code",
    "coefficient",
    "value",
    "ci_low",
    "ci_high",
    "units",
    "coders",
    "note",
]


@dataclass(frozen=True)
class Selection:
    """The coders, codes, sources, codings and units that an agreement run compares.

    ``coders`` are matched without regard to case. Empty ``coders`` means
    every coder with codings except ``autocode``, the consensus coders that
    adjudication wrote and ``exclude_coders``. ``codes`` include their
    child codes, each reported on its own. ``assume_coded`` treats every
    selected coder as having coded every compared source.
    """

    unit: str = "sentence"
    coders: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    statuses: tuple[str, ...] = DEFAULT_STATUSES
    min_overlap: float = 0.0
    assume_coded: bool = False
    exclude_coders: tuple[str, ...] = ()


@dataclass
class ReliabilityData:
    """Per code, each coder's judgement of each unit.

    ``presence[code]`` and ``values[code]`` have one row per coder and one
    column per unit. Presence is 1.0 (coded), 0.0 (not coded) or NaN (the
    coder did not code the unit's source). Values are the ``value`` of the
    coding that overlaps the unit most, or NaN.
    """

    unit: str
    coders: list[str]
    coder_names: dict[str, tuple[str, ...]]
    codes: list[str]
    sources: list[str]
    texts: dict[str, str]
    unit_source: np.ndarray
    unit_start: np.ndarray
    unit_end: np.ndarray
    unit_position: np.ndarray
    coded: np.ndarray
    presence: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    missing: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n_units(self) -> int:
        """The number of units."""
        return len(self.unit_start)

    def codes_with_values(self) -> list[str]:
        """Return the codes for which any coder's coding carries a value."""
        return [code for code in self.codes if np.isfinite(self.values[code]).any()]

    def unit_id(self, index: int) -> str:
        """Return a unit's stable id: SOURCE:KIND:POSITION, SOURCE:source or SOURCE:START-END."""
        source = self.sources[self.unit_source[index]]
        if self.unit == "source":
            return f"{source}:source"
        if self.unit == "character":
            return f"{source}:{self.unit_start[index]}-{self.unit_end[index]}"
        return f"{source}:{self.unit}:{self.unit_position[index]}"


# Coders -----------------------------------------------------------------------


def fold_coder_name(name: str) -> str:
    """Return the form in which two coder names are compared.

    Names match after Unicode NFKC normalization, case folding and trimming,
    so "José" typed as one or as two code points, "ＢＯＢ" typed in
    full-width mode and "bob" each name one coder.
    """
    folded = unicodedata.normalize("NFKC", name).casefold()
    return unicodedata.normalize("NFKC", folded).strip()


def consensus_coders(db: sqlite_utils.Database) -> list[str]:
    """Return the coder names that adjudication has written consensus codings as."""
    import json

    stored = store.get_meta(db, CONSENSUS_META_KEY)
    return list(json.loads(stored)) if stored else []


def resolve_coders(
    db: sqlite_utils.Database,
    requested: tuple[str, ...] | list[str] = (),
    exclude: tuple[str, ...] | list[str] = (),
) -> dict[str, tuple[str, ...]]:
    """Map each compared coder's display name to the spellings stored in ``codings.coder``.

    Names are compared case-insensitively, so "Alice" and "alice" are one
    coder. Raises NotFoundError for a requested coder without codings and
    QualkitError when fewer than two coders remain.
    """
    spellings: dict[str, list[tuple[str, int]]] = {}
    for name, count in db.execute(
        "SELECT coder, count(*) FROM codings GROUP BY coder ORDER BY coder"
    ):
        spellings.setdefault(fold_coder_name(name), []).append((name, count))

    def display(folded: str) -> str:
        # The most frequent spelling, then the first in sort order.
        return min(spellings[folded], key=lambda item: (-item[1], item[0]))[0]

    chosen: dict[str, tuple[str, ...]] = {}
    if requested:
        for name in requested:
            folded = fold_coder_name(name)
            if folded not in spellings:
                known = ", ".join(display(f) for f in sorted(spellings)) or "none"
                raise NotFoundError(
                    f"Coder {name!r} has no codings in this project. Coders with codings: "
                    f"{known}. Check the spelling of --coder."
                )
            if name.strip() not in chosen:
                chosen[name.strip()] = tuple(n for n, _ in spellings[folded])
    else:
        skipped = {AUTOCODE_CODER}
        skipped |= {fold_coder_name(name) for name in consensus_coders(db)}
        skipped |= {fold_coder_name(name) for name in exclude}
        for folded in sorted(spellings):
            if folded not in skipped:
                chosen[display(folded)] = tuple(n for n, _ in spellings[folded])
    folded_names = [fold_coder_name(name) for name in chosen]
    if len(set(folded_names)) != len(folded_names):
        raise QualkitError(
            f"The coders {', '.join(chosen)} name the same coder twice (names are compared "
            "without regard to case). Pass each coder once with --coder."
        )
    if len(chosen) < 2:
        found = ", ".join(repr(name) for name in chosen) or "none"
        raise QualkitError(
            f"Agreement needs at least two coders, but only {found} can be compared. "
            "Import the other coders' work ('qualkit merge') or pass two or more "
            "--coder options (autocode and consensus coders count only when named)."
        )
    return chosen


# Units and codings ------------------------------------------------------------


def _select_codes(
    db: sqlite_utils.Database,
    selection: Selection,
    coder_spellings: list[str],
    sources: list[str],
) -> list[str]:
    """Return the codes to compare, in codebook order.

    Without ``selection.codes``, these are the codes the coders applied. A
    named code is always compared, and its child codes only when applied.
    """
    applied = [
        row[0]
        for row in db.execute(
            "SELECT DISTINCT c.code_id FROM codings c LEFT JOIN codes k ON k.id = c.code_id "
            f"WHERE c.coder IN ({_marks(coder_spellings)}) "
            f"AND c.status IN ({_marks(selection.statuses)}) "
            f"AND c.source_id IN ({_marks(sources)}) ORDER BY k.position, c.code_id",
            [*coder_spellings, *selection.statuses, *sources],
        )
    ]
    if not selection.codes:
        return applied
    found: list[str] = []
    for code in selection.codes:
        require_code(db, code, active=False)
        for (code_id,) in db.execute(
            "SELECT id FROM codes WHERE id = ? OR id LIKE ? ESCAPE '\\' "
            "ORDER BY position, id",
            [code, code.replace("_", "\\_") + ".%"],
        ):
            if code_id not in found and (code_id == code or code_id in applied):
                found.append(code_id)
    return found


def _marks(values: Any) -> str:
    return ", ".join("?" for _ in values) or "NULL"


def _select_sources(
    db: sqlite_utils.Database, selection: Selection, coder_spellings: list[str]
) -> list[str]:
    if selection.sources:
        for source in selection.sources:
            source_text(db, source)
        return list(dict.fromkeys(selection.sources))
    rows = db.execute(
        f"SELECT DISTINCT source_id FROM codings WHERE coder IN ({_marks(coder_spellings)}) "
        "ORDER BY source_id",
        coder_spellings,
    ).fetchall()
    return [row[0] for row in rows]


def _source_units(
    db: sqlite_utils.Database, unit: str, source: str, text: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the start offsets, end offsets and positions of a source's units."""
    if unit == "source":
        return np.array([0]), np.array([len(text)]), np.array([0])
    if unit == "character":
        starts = np.arange(len(text))
        return starts, starts + 1, starts
    kinds = ("sentence",) if unit == "sentence" else ("turn", "paragraph")
    rows = db.execute(
        f"SELECT start_offset, end_offset, position FROM segments WHERE source_id = ? "
        f"AND kind IN ({_marks(kinds)}) ORDER BY position",
        [source, *kinds],
    ).fetchall()
    array = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return array[:, 0], array[:, 1], array[:, 2]


def _coverage_counts(
    spans: list[tuple[int, int]], length: int, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Count, per unit, the characters that any of ``spans`` covers."""
    steps = np.zeros(length + 1, dtype=np.int64)
    for start, end in spans:
        steps[start] += 1
        steps[end] -= 1
    covered = np.cumsum(steps[:-1]) > 0
    running = np.concatenate([[0], np.cumsum(covered)])
    return running[ends] - running[starts]


def _best_values(
    codings: list[tuple[int, int, float]], starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Return per unit the value of the valued coding overlapping it most (earliest coding on ties)."""
    best = np.full(len(starts), np.nan)
    best_overlap = np.zeros(len(starts), dtype=np.int64)
    for start, end, value in codings:
        overlap = np.clip(np.minimum(ends, end) - np.maximum(starts, start), 0, None)
        better = overlap > best_overlap
        best[better] = value
        best_overlap[better] = overlap[better]
    return best


def load_reliability_data(
    db: sqlite_utils.Database, selection: Selection
) -> ReliabilityData:
    """Build the reliability data of ``selection``: units, coders, codes and judgements.

    Raises QualkitError when there are fewer than two coders, no units or no
    codes to compare.
    """
    if selection.unit not in UNITS:
        raise QualkitError(
            f"Unknown unit {selection.unit!r}. Use one of: {', '.join(UNITS)}."
        )
    if not 0 <= selection.min_overlap <= 1:
        raise QualkitError(
            f"--min-overlap {selection.min_overlap} is outside 0 to 1. Give the share of a "
            "unit's characters that a coding must cover, e.g. 0.5, or 0 for any overlap."
        )
    coder_names = resolve_coders(db, selection.coders, selection.exclude_coders)
    coders = list(coder_names)
    spellings = [name for names in coder_names.values() for name in names]
    sources = _select_sources(db, selection, spellings)
    coded = _coded_sources(db, coder_names, sources, selection.assume_coded)
    missing = [
        (coder, source)
        for i, coder in enumerate(coders)
        for j, source in enumerate(sources)
        if not coded[i, j]
    ]
    unused = [source for j, source in enumerate(sources) if not coded[:, j].any()]
    if unused:
        log.warning("No compared coder coded %s, so it is left out.", ", ".join(unused))
    sources = [source for j, source in enumerate(sources) if coded[:, j].any()]
    coded = coded[:, coded.any(axis=0)]
    for coder, source in missing:
        if source in sources:
            log.warning(
                "%s has no coding in source %s, so its units are missing data for %s.",
                coder,
                source,
                coder,
            )
    codes = _select_codes(db, selection, spellings, sources) if sources else []

    texts = {source: source_text(db, source) for source in sources}
    per_source = [_source_units(db, selection.unit, s, texts[s]) for s in sources]
    unit_source = np.concatenate(
        [
            np.full(len(units[0]), j, dtype=np.int64)
            for j, units in enumerate(per_source)
        ]
        or [np.zeros(0, dtype=np.int64)]
    )
    n_units = len(unit_source)
    if n_units == 0 or not codes:
        what = f"{selection.unit} units" if n_units == 0 else "codes"
        raise QualkitError(
            f"No {what} to compare: the coders {', '.join(coders)} have no "
            f"{'/'.join(selection.statuses)} codings in the selected sources, or the "
            "sources have no segments. Check --coder, --source and --code, pass "
            "--include-suggestions to count suggestions, or choose another --unit."
        )

    def stacked(index: int) -> np.ndarray:
        return np.concatenate([units[index] for units in per_source])

    data = ReliabilityData(
        unit=selection.unit,
        coders=coders,
        coder_names=coder_names,
        codes=codes,
        sources=sources,
        texts=texts,
        unit_source=unit_source,
        unit_start=stacked(0),
        unit_end=stacked(1),
        unit_position=stacked(2),
        coded=coded,
        presence={},
        values={},
        missing=[pair for pair in missing if pair[1] in sources],
    )
    _fill_judgements(db, selection, data)
    return data


def _coded_sources(
    db: sqlite_utils.Database,
    coder_names: dict[str, tuple[str, ...]],
    sources: list[str],
    assume_coded: bool,
) -> np.ndarray:
    """Return a coders x sources matrix: True where the coder has any coding in the source."""
    coded = np.full((len(coder_names), len(sources)), assume_coded)
    if assume_coded:
        return coded
    for i, names in enumerate(coder_names.values()):
        found = {
            row[0]
            for row in db.execute(
                f"SELECT DISTINCT source_id FROM codings WHERE coder IN ({_marks(names)})",
                list(names),
            )
        }
        coded[i] = [source in found for source in sources]
    return coded


def _coding_spans(
    db: sqlite_utils.Database,
    selection: Selection,
    data: ReliabilityData,
    coder_index: dict[str, int],
) -> dict[tuple[str, str, int], list[tuple[int, int, Any]]]:
    """Return the counted codings' (start, end, value) per source, code and coder index."""
    spans: dict[tuple[str, str, int], list[tuple[int, int, Any]]] = {}
    spellings = list(coder_index)
    rows = db.execute(
        "SELECT id, source_id, code_id, coder, start_offset, end_offset, value FROM codings "
        f"WHERE coder IN ({_marks(spellings)}) AND status IN ({_marks(selection.statuses)}) "
        f"AND source_id IN ({_marks(data.sources)}) AND code_id IN ({_marks(data.codes)}) "
        "ORDER BY id",
        [*spellings, *selection.statuses, *data.sources, *data.codes],
    )
    non_finite: list[int] = []
    for coding_id, source, code, coder, start, end, value in rows:
        if value is not None and not math.isfinite(value):
            # 'qualkit code add' rejects such values, so they come from a
            # damaged file or another tool. They would make every value
            # alpha of the code undefined without saying why.
            non_finite.append(coding_id)
            value = None
        spans.setdefault((source, code, coder_index[coder]), []).append(
            (start, end, value)
        )
    if non_finite:
        log.warning(
            "Codings %s carry a value that is not a finite number. Each is treated as "
            "missing. Set a number with 'qualkit code remove' and 'qualkit code add "
            "--value N'.",
            ", ".join(f"#{coding_id}" for coding_id in non_finite),
        )
    return spans


def _fill_judgements(
    db: sqlite_utils.Database, selection: Selection, data: ReliabilityData
) -> None:
    """Fill ``data.presence`` and ``data.values`` from the counted codings."""
    n_coders, n_units = len(data.coders), data.n_units
    coder_index = {
        name: i for i, names in enumerate(data.coder_names.values()) for name in names
    }
    for code in data.codes:
        data.presence[code] = np.zeros((n_coders, n_units), dtype=np.float64)
        data.values[code] = np.full((n_coders, n_units), np.nan)
    spans = _coding_spans(db, selection, data, coder_index)
    for j, source in enumerate(data.sources):
        columns = np.flatnonzero(data.unit_source == j)
        starts, ends = data.unit_start[columns], data.unit_end[columns]
        length = len(data.texts[source])
        for code in data.codes:
            for i in range(n_coders):
                found = spans.get((source, code, i))
                if not found:
                    continue
                covered = _coverage_counts(
                    [(s, e) for s, e, _ in found], length, starts, ends
                )
                needed = np.maximum(1, np.ceil(selection.min_overlap * (ends - starts)))
                if data.unit in ("source", "character"):
                    needed = np.ones_like(needed)
                present = covered >= needed
                data.presence[code][i, columns] = present
                valued = [(s, e, float(v)) for s, e, v in found if v is not None]
                if valued:
                    best = _best_values(valued, starts, ends)
                    data.values[code][i, columns] = np.where(present, best, np.nan)
    missing_mask = ~data.coded[:, data.unit_source]
    for code in data.codes:
        data.presence[code][missing_mask] = np.nan


# Coefficients -----------------------------------------------------------------


@dataclass
class UnitSample:
    """Units grouped by their judgement pattern, for the coefficients and the bootstrap.

    ``patterns`` has one row per distinct pattern, one block per code
    (several when pooled) and one column per coder, with NaN for missing
    data. ``counts`` gives how many units share each pattern, and
    ``value_counts`` counts per block how many coders gave each value of
    ``domain``, the layout that ``krippendorff.alpha(value_counts=...)``
    takes. A bootstrap replicate draws new counts, which is the same as
    resampling units with replacement.
    """

    patterns: np.ndarray
    counts: np.ndarray
    domain: np.ndarray
    value_counts: np.ndarray

    @classmethod
    def from_blocks(cls, blocks: list[np.ndarray]) -> UnitSample:
        """Group the units of one or more coders x units matrices (one per code) by pattern."""
        stacked = np.stack(blocks).transpose(2, 0, 1)
        n_units = stacked.shape[0]
        key = np.nan_to_num(stacked.reshape(n_units, -1), nan=-np.inf)
        if n_units:
            _, first, counts = np.unique(
                key, axis=0, return_index=True, return_counts=True
            )
        else:
            first, counts = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        patterns = stacked[first]
        domain = np.unique(patterns[~np.isnan(patterns)])
        value_counts = (
            np.stack(
                [(patterns == value).sum(axis=2) for value in domain], axis=-1
            ).astype(np.int64)
            if len(domain)
            else np.zeros((len(first), len(blocks), 0), dtype=np.int64)
        )
        return cls(patterns, counts.astype(np.int64), domain, value_counts)

    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> UnitSample:
        """Group the units of one coders x units matrix."""
        return cls.from_blocks([np.asarray(matrix, dtype=np.float64)])

    @property
    def n_units(self) -> int:
        """The number of units (not patterns)."""
        return int(self.counts.sum())

    def expanded_value_counts(self, weights: np.ndarray) -> np.ndarray:
        """Return one value-count row per unit and block, each pattern repeated ``weights`` times."""
        repeated = np.repeat(self.value_counts, weights, axis=0)
        return repeated.reshape(-1, len(self.domain))


def sample_percent(sample: UnitSample, weights: np.ndarray) -> float:
    """Return the share of agreeing coder pairs among all pairs of coders who both coded a unit."""
    judged = sample.value_counts.sum(axis=-1)
    agreeing = (sample.value_counts * (sample.value_counts - 1)).sum(axis=-1) / 2
    pairs = judged * (judged - 1) / 2
    compared = (weights[:, None] * pairs).sum()
    return (
        float((weights[:, None] * agreeing).sum() / compared) if compared else math.nan
    )


def sample_cohen(sample: UnitSample, weights: np.ndarray) -> float:
    """Return Cohen's kappa (statsmodels) of two coders' 0/1 judgements over the units both coded."""
    first, second = sample.patterns[..., 0], sample.patterns[..., 1]
    both = ~np.isnan(first) & ~np.isnan(second)
    table = np.zeros((2, 2))
    unit_weights = np.broadcast_to(weights[:, None], first.shape)
    np.add.at(
        table, (first[both].astype(int), second[both].astype(int)), unit_weights[both]
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(cohens_kappa(table, return_results=False))


def sample_fleiss(sample: UnitSample, weights: np.ndarray) -> float:
    """Return Fleiss' kappa (statsmodels) over the units that every coder coded."""
    n_coders = sample.patterns.shape[2]
    table = sample.expanded_value_counts(weights)
    # The subjects x categories table that aggregate_raters would build.
    table = table[table.sum(axis=1) == n_coders]
    if len(table) == 0 or table.shape[1] < 2:
        return math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(fleiss_kappa(table, method="fleiss"))


def sample_alpha(sample: UnitSample, weights: np.ndarray, level: str) -> float:
    """Return Krippendorff's alpha (the krippendorff package), or NaN when it is undefined."""
    domain = sample.domain
    largest = float(np.abs(domain).max()) if len(domain) else 0.0
    if level in ("interval", "ratio") and largest > 0:
        # Interval and ratio alpha do not change when every value is divided
        # by one positive number. Dividing by the largest magnitude keeps the
        # squared differences of values such as 1e200 from overflowing.
        domain = domain / largest
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(
                krippendorff.alpha(
                    value_counts=sample.expanded_value_counts(weights),
                    value_domain=domain,
                    level_of_measurement=level,
                )
            )
    except ValueError:
        # Raised for fewer than two distinct values or no unit with two values.
        return math.nan


def percent_agreement(matrix: np.ndarray) -> float:
    """Return the percent agreement (as a share) of a coders x units matrix."""
    sample = UnitSample.from_matrix(matrix)
    return sample_percent(sample, sample.counts)


def cohen_kappa(matrix: np.ndarray) -> float:
    """Return Cohen's kappa of a 2 x units matrix of 0/1 judgements."""
    sample = UnitSample.from_matrix(matrix)
    return sample_cohen(sample, sample.counts)


def fleiss_kappa_complete(matrix: np.ndarray) -> float:
    """Return Fleiss' kappa of a coders x units matrix over its complete units."""
    sample = UnitSample.from_matrix(matrix)
    return sample_fleiss(sample, sample.counts)


def krippendorff_alpha(matrix: np.ndarray, level: str) -> float:
    """Return Krippendorff's alpha at ``level`` of a coders x units matrix with NaN for missing data."""
    sample = UnitSample.from_matrix(matrix)
    return sample_alpha(sample, sample.counts, level)


@dataclass(frozen=True)
class Coefficient:
    """One coefficient: its name, which units enter it and how it is computed."""

    name: str
    units: str
    compute: Callable[[UnitSample, np.ndarray], float]


def _coefficients(
    selected: tuple[str, ...], n_coders: int, levels: tuple[str, ...]
) -> list[Coefficient]:
    chosen: list[Coefficient] = []
    if "percent" in selected:
        chosen.append(Coefficient("percent_agreement", "pairable", sample_percent))
    if "cohen" in selected and n_coders == 2:
        chosen.append(Coefficient("cohen_kappa", "complete", sample_cohen))
    if "fleiss" in selected:
        chosen.append(Coefficient("fleiss_kappa", "complete", sample_fleiss))
    if "alpha" in selected and "nominal" in levels:
        chosen.append(
            Coefficient(
                "alpha_nominal",
                "pairable",
                lambda sample, weights: sample_alpha(sample, weights, "nominal"),
            )
        )
    return chosen


def _value_coefficients(levels: tuple[str, ...]) -> list[Coefficient]:
    return [
        Coefficient(
            f"alpha_{level}",
            "pairable",
            lambda sample, weights, level=level: sample_alpha(sample, weights, level),
        )
        for level in levels
        if level in VALUE_LEVELS
    ]


def _unit_filter(matrix: np.ndarray, kind: str) -> np.ndarray:
    """Return the columns that enter a coefficient: units with two or more coders, or with all."""
    counts = (~np.isnan(matrix)).sum(axis=0)
    if kind == "complete":
        return counts == len(matrix)
    return counts >= 2


@dataclass(frozen=True)
class BootstrapOptions:
    """Percentile bootstrap settings: replicates (0 for none), seed and confidence level."""

    replicates: int = 0
    seed: int = DEFAULT_SEED
    confidence: float = DEFAULT_CONFIDENCE

    def check(self) -> None:
        """Raise QualkitError for settings that give no usable interval."""
        if self.seed < 0:
            raise QualkitError(
                f"--seed {self.seed} is negative. Give a seed of 0 or more."
            )
        if not 0 < self.confidence < 1:
            raise QualkitError(
                f"--confidence {self.confidence} is outside 0 to 1. Give a level such as 0.95."
            )
        if self.replicates < 0 or self.replicates > MAX_REPLICATES:
            raise QualkitError(
                f"--bootstrap {self.replicates} is outside 0 to {MAX_REPLICATES:,}. "
                "Give a number of replicates such as 1000, or 0 for no intervals."
            )
        fewest = minimum_replicates(self.confidence)
        if 0 < self.replicates < fewest:
            raise QualkitError(
                f"--bootstrap {self.replicates} is too few replicates for a "
                f"{self.confidence:g} interval: each tail needs at least one, so "
                f"give {fewest} or more (1000 is usual), or 0 for no intervals."
            )


def minimum_replicates(confidence: float) -> int:
    """Return the fewest replicates whose percentile interval has a replicate in each tail."""
    # The offset absorbs rounding: 2 / (1 - 0.95) is 40.000000000000036 in floating point.
    return math.ceil(2 / (1 - confidence) - 1e-9)


def _interval(
    coefficient: Coefficient,
    sample: UnitSample,
    options: BootstrapOptions,
    key: str,
) -> tuple[float, float, int]:
    """Return the percentile interval of a coefficient over units resampled with replacement.

    Pooled samples resample whole units with every code's judgement. The
    generator is seeded from the seed and ``key``, so an interval does not
    depend on which other codes ran. The third item counts the replicates
    whose figure was undefined and so left out of the percentiles.
    """
    n_units = sample.n_units
    if options.replicates <= 0 or n_units == 0:
        return math.nan, math.nan, 0
    rng = np.random.default_rng([options.seed, zlib.crc32(key.encode("utf-8"))])
    shares = sample.counts / n_units
    estimates = np.empty(options.replicates)
    for replicate in range(options.replicates):
        weights = rng.multinomial(n_units, shares)
        estimates[replicate] = coefficient.compute(sample, weights)
    finite = estimates[np.isfinite(estimates)]
    left_out = options.replicates - len(finite)
    if len(finite) == 0:
        return math.nan, math.nan, left_out
    tail = (1 - options.confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high), left_out


def _undefined_note(sample: UnitSample) -> str:
    if sample.n_units == 0:
        return "no units coded by enough coders"
    if len(sample.domain) < 2:
        return "undefined: every judgement is the same"
    return "undefined for these data"


def _row(
    code: str,
    coefficient: Coefficient,
    blocks: list[np.ndarray],
    n_coders: int,
    bootstrap: BootstrapOptions,
) -> dict[str, Any]:
    sample = UnitSample.from_blocks(blocks)
    value = coefficient.compute(sample, sample.counts)
    low, high, left_out = (math.nan, math.nan, 0)
    if math.isfinite(value):
        low, high, left_out = _interval(
            coefficient, sample, bootstrap, f"{code}|{coefficient.name}"
        )
    note = "" if math.isfinite(value) else _undefined_note(sample)
    if left_out:
        note = (
            f"{left_out} of {bootstrap.replicates} bootstrap replicates undefined, "
            "left out of the interval"
        )
    return {
        "code": code,
        "coefficient": coefficient.name,
        "value": value,
        "ci_low": low,
        "ci_high": high,
        "units": sample.n_units,
        "coders": n_coders,
        "note": note,
    }


def _check_requests(
    data: ReliabilityData,
    coefficients: tuple[str, ...],
    levels: tuple[str, ...],
    explicit_codes: bool,
) -> None:
    unknown = [c for c in coefficients if c not in COEFFICIENTS]
    if unknown:
        raise QualkitError(
            f"Unknown coefficient {unknown[0]!r}. Use one of: {', '.join(COEFFICIENTS)}."
        )
    if "cohen" in coefficients and len(data.coders) != 2:
        raise QualkitError(
            f"Cohen's kappa compares exactly two coders, but {len(data.coders)} are selected "
            f"({', '.join(data.coders)}). Pick two with --coder A --coder B, or use "
            "--coefficient fleiss or --coefficient alpha for more coders."
        )
    requested = [level for level in levels if level in VALUE_LEVELS]
    if not requested:
        return
    valued = set(data.codes_with_values())
    without = [code for code in data.codes if code not in valued]
    if not valued or (explicit_codes and without):
        names = ", ".join(without) if without else ", ".join(data.codes)
        raise QualkitError(
            f"{requested[0].capitalize()} alpha needs numbers on the codings, but no counted "
            f"coding of {names} carries a value. Add values with 'qualkit code add ... "
            "--value N', or drop --level " + " --level ".join(requested) + "."
        )


def compute_agreement(
    data: ReliabilityData,
    *,
    coefficients: tuple[str, ...] = COEFFICIENTS,
    levels: tuple[str, ...] | None = None,
    bootstrap: BootstrapOptions | None = None,
    explicit: bool = False,
    explicit_codes: bool = False,
) -> pd.DataFrame:
    """Return one row per code and coefficient, then the pooled rows.

    Without ``levels``, alpha is nominal for every code and also ordinal,
    interval and ratio for codes whose codings carry values. ``explicit``
    means the caller named the coefficients, so Cohen's kappa with more than
    two coders raises instead of being left out. ``explicit_codes`` means the
    caller named the codes, so a value level for a code without values raises.
    """
    bootstrap = bootstrap or BootstrapOptions()
    bootstrap.check()
    chosen_levels = levels or LEVELS
    if explicit or levels:
        _check_requests(
            data,
            coefficients if explicit else (),
            tuple(levels or ()),
            explicit_codes,
        )
    n_coders = len(data.coders)
    nominal = _coefficients(coefficients, n_coders, chosen_levels)
    valued = _value_coefficients(chosen_levels) if "alpha" in coefficients else []
    with_values = set(data.codes_with_values())
    rows: list[dict[str, Any]] = []
    for code in data.codes:
        presence = data.presence[code]
        for coefficient in nominal:
            matrix = presence[:, _unit_filter(presence, coefficient.units)]
            rows.append(_row(code, coefficient, [matrix], n_coders, bootstrap))
        if code not in with_values:
            continue
        values = data.values[code]
        for coefficient in valued:
            matrix = values[:, _unit_filter(values, coefficient.units)]
            rows.append(_row(code, coefficient, [matrix], n_coders, bootstrap))
    rows.extend(_pooled_rows(data, nominal, bootstrap))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def _pooled_rows(
    data: ReliabilityData, nominal: list[Coefficient], bootstrap: BootstrapOptions
) -> list[dict[str, Any]]:
    """Return the pooled rows: every (unit, code) pair is one unit of 0/1 data."""
    n_coders, n_codes = len(data.coders), len(data.codes)
    if n_codes < 2 or not nominal:
        return []
    cells = n_coders * data.n_units * n_codes
    if cells > MAX_POOLED_CELLS:
        log.warning(
            "Pooled figures left out: %d coders x %d units x %d codes exceed %d cells. "
            "Pass fewer --code options or a larger --unit.",
            n_coders,
            data.n_units,
            n_codes,
            MAX_POOLED_CELLS,
        )
        return []
    rows = []
    # Missing data are the same for every code, so one unit filter serves all blocks.
    first = data.presence[data.codes[0]]
    for coefficient in nominal:
        keep = _unit_filter(first, coefficient.units)
        blocks = [data.presence[code][:, keep] for code in data.codes]
        rows.append(_row(POOLED, coefficient, blocks, n_coders, bootstrap))
    return rows


# Unit patterns (for disagreements and adjudication) ------------------------------


@dataclass
class UnitJudgement:
    """The codes each coder applied to one unit, or to one run of characters.

    ``by_coder[coder]`` maps each code the coder applied to its value
    (None without one), or is None when the coder did not code the source.
    """

    unit_id: str
    source_id: str
    start: int
    end: int
    position: int | None
    by_coder: dict[str, dict[str, float | None] | None]

    def disputed(self) -> list[str]:
        """Return the codes on which the coders who coded the unit differ, in presence or value."""
        judged = [codes for codes in self.by_coder.values() if codes is not None]
        if len(judged) < 2:
            return []
        all_codes = sorted({code for codes in judged for code in codes})
        disputed = []
        for code in all_codes:
            applied = [code in codes for codes in judged]
            values = {codes[code] for codes in judged if code in codes}
            if not all(applied) or len(values) > 1:
                disputed.append(code)
        return disputed


def _judgement_at(
    data: ReliabilityData, column: int
) -> dict[str, dict[str, float | None] | None]:
    result: dict[str, dict[str, float | None] | None] = {}
    for i, coder in enumerate(data.coders):
        if not data.coded[i, data.unit_source[column]]:
            result[coder] = None
            continue
        applied: dict[str, float | None] = {}
        for code in data.codes:
            if data.presence[code][i, column] == 1:
                value = data.values[code][i, column]
                applied[code] = float(value) if np.isfinite(value) else None
        result[coder] = applied
    return result


def unit_judgements(data: ReliabilityData) -> Iterator[UnitJudgement]:
    """Yield every unit on which some coder applied a code, in source and offset order.

    With character units, consecutive characters on which every coder's
    codes and values are the same form one run, reported as one unit.
    """
    if data.unit == "character":
        yield from _character_runs(data)
        return
    any_code = np.zeros(data.n_units, dtype=bool)
    for code in data.codes:
        any_code |= np.nan_to_num(data.presence[code]).any(axis=0)
    for column in np.flatnonzero(any_code):
        yield UnitJudgement(
            unit_id=data.unit_id(column),
            source_id=data.sources[data.unit_source[column]],
            start=int(data.unit_start[column]),
            end=int(data.unit_end[column]),
            position=None if data.unit == "source" else int(data.unit_position[column]),
            by_coder=_judgement_at(data, column),
        )


def _character_runs(data: ReliabilityData) -> Iterator[UnitJudgement]:
    for j, source in enumerate(data.sources):
        columns = np.flatnonzero(data.unit_source == j)
        if len(columns) == 0:
            continue
        layers = []
        for code in data.codes:
            layers.append(np.nan_to_num(data.presence[code][:, columns], nan=-1.0))
            layers.append(np.nan_to_num(data.values[code][:, columns], nan=-np.inf))
        signature = np.vstack(layers)
        applied = np.vstack(
            [np.nan_to_num(data.presence[code][:, columns]) for code in data.codes]
        ).any(axis=0)
        changes = (
            np.flatnonzero((signature[:, 1:] != signature[:, :-1]).any(axis=0)) + 1
        )
        bounds = np.concatenate([[0], changes, [len(columns)]])
        for first, last in pairwise(bounds):
            if not applied[first]:
                continue
            start = int(data.unit_start[columns[first]])
            end = int(data.unit_start[columns[last - 1]]) + 1
            yield UnitJudgement(
                unit_id=f"{source}:{start}-{end}",
                source_id=source,
                start=start,
                end=end,
                position=None,
                by_coder=_judgement_at(data, int(columns[first])),
            )


# Disagreements -------------------------------------------------------------------

QUOTE_WIDTH = 200
NOT_CODED = "(source not coded)"


def shorten_quote(text: str, width: int = QUOTE_WIDTH) -> str:
    """Collapse whitespace and cut the middle of a long quote, keeping its start and end."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    keep = (width - 3) // 2
    return f"{flat[:keep].rstrip()} … {flat[-keep:].lstrip()}"


def format_codes(codes: dict[str, float | None] | None) -> str:
    """Return a coder's codes on a unit as "a, b=2", or a placeholder for a missing coder."""
    if codes is None:
        return NOT_CODED
    return ", ".join(
        code if value is None else f"{code}={value:g}"
        for code, value in sorted(codes.items())
    )


def list_disagreements(
    data: ReliabilityData, quote_width: int = QUOTE_WIDTH
) -> pd.DataFrame:
    """Return one row per disagreeing unit: its id, source, span, disputed codes, each coder's codes and quote.

    The ``decision`` column is empty, for 'qualkit adjudicate --decisions'.
    """
    records = []
    for judgement in unit_judgements(data):
        disputed = judgement.disputed()
        if not disputed:
            continue
        record: dict[str, Any] = {
            "unit_id": judgement.unit_id,
            "source": judgement.source_id,
            "start": judgement.start,
            "end": judgement.end,
            "disputed": ", ".join(disputed),
        }
        for coder in data.coders:
            record[coder] = format_codes(judgement.by_coder[coder])
        text = data.texts[judgement.source_id][judgement.start : judgement.end]
        record["quote"] = shorten_quote(text, quote_width)
        record["decision"] = ""
        records.append(record)
    columns = [
        "unit_id",
        "source",
        "start",
        "end",
        "disputed",
        *data.coders,
        "quote",
        "decision",
    ]
    return pd.DataFrame(records, columns=columns)
