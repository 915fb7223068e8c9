"""Tests for qualkit.plots and the --figures option of the scores commands."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from qualkit.cli import cli
from qualkit.errors import PanelError
from qualkit.negotiability import rank_changes, summarize, typology
from qualkit.plots import plot_mean_cv, plot_rank_changes, plot_typology, save_figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_TAG = "{http://www.w3.org/2000/svg}svg"

VALUES = pd.DataFrame(
    [
        ("a", "A", 2011, 30), ("a", "B", 2011, 20), ("a", "C", 2011, 10),
        ("a", "A", 2012, 20), ("a", "B", 2012, 30), ("a", "C", 2012, 10),
        ("b", "A", 2011, 1), ("b", "B", 2011, 2), ("b", "C", 2011, 3),
        ("b", "A", 2012, 1), ("b", "B", 2012, 2), ("b", "C", 2012, 3),
    ],
    columns=["target", "unit", "year", "value"],
)
POINTS = pd.DataFrame([("a", 2011, 4.0), ("b", 2011, 2.0)], columns=["target", "year", "points"])
DIRECTIONS = {"a": True, "b": True}


def assert_figure_files(paths: list[Path], stem: str) -> None:
    assert [path.name for path in paths] == [f"{stem}.svg", f"{stem}.png"]
    assert paths[1].read_bytes().startswith(PNG_SIGNATURE)
    assert ElementTree.parse(paths[0]).getroot().tag == SVG_TAG


def test_mean_cv_chart(tmp_path: Path) -> None:
    summary = summarize(VALUES, POINTS, DIRECTIONS)
    paths = plot_mean_cv(summary, tmp_path, labels={"a": "Target A"})

    assert_figure_files(paths, "mean_cv")
    assert "Target A" in paths[0].read_text(encoding="utf-8")


def test_typology_chart(tmp_path: Path) -> None:
    table = typology(summarize(VALUES, POINTS, DIRECTIONS))
    paths = plot_typology(table, tmp_path, priority_cut=3.0, negotiability_cut=0.5)

    assert_figure_files(paths, "typology")
    assert "cut at 3" in paths[0].read_text(encoding="utf-8")


def test_rank_chart(tmp_path: Path) -> None:
    changes = rank_changes(VALUES, DIRECTIONS)
    paths = plot_rank_changes(changes, "a", tmp_path)

    assert_figure_files(paths, "ranks_a")


def test_rank_chart_unknown_target(tmp_path: Path) -> None:
    with pytest.raises(PanelError, match="no rank changes for target 'z'"):
        plot_rank_changes(rank_changes(VALUES, DIRECTIONS), "z", tmp_path)


def test_svg_is_reproducible(tmp_path: Path) -> None:
    summary = summarize(VALUES, POINTS, DIRECTIONS)
    first = plot_mean_cv(summary, tmp_path / "one", formats=["svg"])[0]
    second = plot_mean_cv(summary, tmp_path / "two", formats=["svg"])[0]

    assert first.read_bytes() == second.read_bytes()


def test_unknown_format_raises(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    with pytest.raises(PanelError, match="unknown figure format"):
        save_figure(Figure(), tmp_path, "x", ["jpg"])


# --figures on the sample


@pytest.fixture(scope="module")
def figures_run(sample_project: object, tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    folder = tmp_path_factory.mktemp("figures") / "interviews_sample"
    shutil.copytree(sample_project.folder, folder)
    out = folder / "figures"
    result = CliRunner().invoke(
        cli,
        ["--project", str(folder), "scores", "typology", "--figures", str(out), "--format", "csv"],
        prog_name="qualkit",
    )
    return result, out


def test_typology_command_writes_figure(figures_run: tuple[Result, Path]) -> None:
    result, out = figures_run

    assert result.exit_code == 0, result.stderr
    assert sorted(path.name for path in out.iterdir()) == ["typology.png", "typology.svg"]
    assert f"Wrote {out / 'typology.svg'}" in result.stderr


def test_cov_command_writes_figure(sample_project: object, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--project", str(sample_project.folder), "scores", "cov", "--by", "target", "--figures", str(tmp_path)],
        prog_name="qualkit",
    )

    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "mean_cv.svg").is_file()
    assert (tmp_path / "mean_cv.png").is_file()
