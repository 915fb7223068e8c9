"""Figures of the negotiability analysis, written as SVG and PNG.

The figures are matplotlib ``Figure`` objects that are never shown, so PNG
files are drawn by the Agg renderer and no display or pyplot state is used.
Each function writes one figure in every format asked for and returns the
paths written. SVG files carry no creation date and a fixed hash salt, so
the same input gives the same file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from qualkit.errors import PanelError

FORMATS = ("svg", "png")
PNG_DPI = 150

# File names keep ASCII letters, digits, "_", "-" and "." and replace any
# other character, so an id such as "../x" or one with "/", "\\" or NUL
# cannot name a file outside the output folder. 100 characters stay under
# the 255-byte name limit of common file systems with room for a suffix.
_UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9_.-]")
MAX_STEM_LENGTH = 100


def safe_file_stem(name: str) -> str:
    """Return ``name`` as a file name stem that stays inside its folder.

    A name that needs changing gets the first 8 hex digits of its SHA-256,
    so two ids that differ only in replaced characters get different files.
    """
    stem = _UNSAFE_IN_FILE_NAME.sub("_", name).lstrip(".")
    if stem == name and 0 < len(stem) <= MAX_STEM_LENGTH:
        return stem
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{stem[: MAX_STEM_LENGTH - 9]}-{digest}".lstrip("-")


def save_figure(
    figure: Figure, folder: str | Path, stem: str, formats: Iterable[str] = FORMATS
) -> list[Path]:
    """Write ``figure`` as ``folder/stem.<format>`` for each format.

    ``stem`` passes through ``safe_file_stem``, so the files stay in ``folder``.
    """
    chosen = list(formats)
    unknown = [name for name in chosen if name not in FORMATS]
    if unknown:
        raise PanelError(
            f"unknown figure format(s) {', '.join(unknown)}.",
            fix=f"Use {' or '.join(FORMATS)}.",
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = safe_file_stem(stem)
    paths = []
    with matplotlib.rc_context({"svg.hashsalt": "qualkit"}):
        for name in chosen:
            path = folder / f"{stem}.{name}"
            metadata = {"Date": None} if name == "svg" else None
            figure.savefig(path, format=name, dpi=PNG_DPI, metadata=metadata)
            paths.append(path)

    return paths


def plot_mean_cv(
    summary: pd.DataFrame,
    folder: str | Path,
    *,
    labels: Mapping[str, str] | None = None,
    formats: Iterable[str] = FORMATS,
) -> list[Path]:
    """Draw a horizontal bar chart of each target's mean coefficient of variation.

    ``summary`` needs the columns ``target`` and ``mean_cv``; bars are sorted
    from the widest spread at the top. Targets without a mean CV are left out.
    """
    _require(summary, ("target", "mean_cv"))
    data = summary.dropna(subset=["mean_cv"]).sort_values("mean_cv")
    names = [_label(target, labels) for target in data["target"]]
    figure = Figure(figsize=(7, 0.35 * len(data) + 1.2))
    axes = figure.subplots()
    axes.barh(names, data["mean_cv"], color="#4878a8")
    axes.set_xlabel("Mean coefficient of variation across units (SD / mean)")
    axes.set_title("Spread of assigned values across units")
    figure.tight_layout()

    return save_figure(figure, folder, "mean_cv", formats)


def plot_typology(
    table: pd.DataFrame,
    folder: str | Path,
    *,
    priority_cut: float,
    negotiability_cut: float,
    labels: Mapping[str, str] | None = None,
    formats: Iterable[str] = FORMATS,
) -> list[Path]:
    """Plot priority against negotiability with the cut lines and a label per point.

    ``table`` is the output of ``qualkit.negotiability.typology``; the cuts
    are the ones that produced it.
    """
    _require(table, ("target", "priority", "negotiability"))
    figure = Figure(figsize=(7.5, 5.5))
    axes = figure.subplots()
    axes.scatter(table["priority"], table["negotiability"], color="#4878a8", zorder=3)
    for row in table.itertuples():
        axes.annotate(
            _label(row.target, labels),
            (row.priority, row.negotiability),
            xytext=(4, 3),
            textcoords="offset points",
            fontsize=7,
        )
    axes.axvline(priority_cut, color="grey", linestyle="--", linewidth=1)
    axes.axhline(negotiability_cut, color="grey", linestyle="--", linewidth=1)
    axes.set_xlabel(f"Priority: mean points (cut at {priority_cut:g})")
    axes.set_ylabel(f"Negotiability: frequency of rank change (cut at {negotiability_cut:.2f})")
    axes.set_title("Priority x negotiability typology")
    figure.tight_layout()

    return save_figure(figure, folder, "typology", formats)


def plot_rank_changes(
    changes: pd.DataFrame,
    target: str,
    folder: str | Path,
    *,
    title: str | None = None,
    formats: Iterable[str] = FORMATS,
) -> list[Path]:
    """Draw a bump chart of one target's unit ranks across its years.

    ``changes`` is the output of ``qualkit.negotiability.rank_changes``. Each
    transition is drawn with the ranks it compared. Under ``missing="common"``
    a year can therefore show two rankings, one per neighbouring year, and
    then a unit's segments do not join. Rank 1, the hardest target, is at the
    top.
    """
    _require(changes, ("target", "unit", "from_year", "to_year", "rank_from", "rank_to"))
    rows = changes[changes["target"] == target]
    if rows.empty:
        raise PanelError(
            f"no rank changes for target {target!r}.",
            fix="The target needs values for some unit in two compared years.",
        )
    figure = Figure(figsize=(7.5, 5.5))
    axes = figure.subplots()
    colors = matplotlib.colormaps["tab20"]
    for index, (unit, segments) in enumerate(rows.groupby("unit", sort=True)):
        color = colors(index % 20)
        for segment in segments.itertuples():
            axes.plot(
                [segment.from_year, segment.to_year],
                [segment.rank_from, segment.rank_to],
                marker="o",
                color=color,
            )
        last = segments.iloc[-1]
        axes.annotate(
            unit,
            (last["to_year"], last["rank_to"]),
            xytext=(5, 0),
            textcoords="offset points",
            fontsize=7,
            va="center",
        )
    years = sorted(set(rows["from_year"]) | set(rows["to_year"]))
    axes.set_xticks(years)
    axes.invert_yaxis()
    axes.set_xlabel("Year")
    axes.set_ylabel("Rank (1 = hardest target)")
    axes.set_title(title or f"Ranks of units: {target}")
    figure.tight_layout()

    return save_figure(figure, folder, f"ranks_{target}", formats)


def _label(target: str, labels: Mapping[str, str] | None) -> str:
    return labels.get(target, target) if labels else target


def _require(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise PanelError(f"the table has no column(s) {', '.join(missing)}.")
