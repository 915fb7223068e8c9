"""Tests for qualkit.regression: Prais-Winsten with panel-corrected standard errors.

Reference values:

- Stata's ``xtpcse invest mvalue kstock`` (correlation independent) on
  ``webuse grunfeld``: coefficients .1155622, .2306785, -42.71437 and
  panel-corrected standard errors .0072124, .0278862, 6.780965. The standard
  errors are the Stata output quoted by a statsmodels maintainer in
  statsmodels issue #1207 ("more panel robust, contemporaneous correlation
  xtpcse", https://github.com/statsmodels/statsmodels/issues/1207). With
  correlation independent xtpcse's coefficients are OLS's, and the same OLS
  coefficients appear in Stata's ``reg invest value cap`` output on these
  data in Solomon Negash's Stata companion to Baltagi
  (https://solomonegash.com/econometrics/baltagi/baltagi_panel_data_stata_code.html).
  statsmodels' Grunfeld data without American Steel are Stata's 10 firms.
- For correlation(ar1) no published xtpcse output was found that could be
  checked, so the reference is ``numpy_reference`` below: the estimator
  written out step by step from the formulas in the module docstring (full
  Omega = Sigma kron I_T matrix, explicit loops for rho and the transform).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from statsmodels.datasets import grunfeld

from qualkit.cli import cli
from qualkit.errors import PanelError
from qualkit.regression import (
    lagged,
    prais_winsten_pcse,
    read_covariates,
    regression_table,
    significance_stars,
    validation_data,
)

ROOT = Path(__file__).resolve().parents[1]
PANEL = ROOT / "interviews_sample" / "panel"

# Stata xtpcse invest mvalue kstock (see the module docstring for the sources).
STATA_INDEPENDENT = {
    "params": {"value": 0.1155622, "capital": 0.2306785, "Intercept": -42.71437},
    "bse": {"value": 0.0072124, "capital": 0.0278862, "Intercept": 6.780965},
}


def significant(number: float, digits: int = 3) -> float:
    """Round to ``digits`` significant digits."""
    return float(f"{number:.{digits - 1}e}")


@pytest.fixture(scope="module")
def grunfeld_panel() -> pd.DataFrame:
    data = grunfeld.load_pandas().data
    data = data[data["firm"] != "American Steel"].rename(columns={"firm": "unit"})
    data["year"] = data["year"].astype(int)
    return data.sort_values(["unit", "year"]).reset_index(drop=True)


def numpy_reference(
    data: pd.DataFrame, correlation: str, rhotype: str = "regress"
) -> tuple[np.ndarray, np.ndarray, float | None, np.ndarray]:
    """Compute the estimator on a balanced panel with plain numpy, step by step."""
    units = sorted(data["unit"].unique())
    years = sorted(data["year"].unique())
    n, t = len(units), len(years)
    frame = data.set_index(["unit", "year"])
    y = np.array([[frame.loc[(u, s), "invest"] for s in years] for u in units])
    x = np.array(
        [
            [[1.0, frame.loc[(u, s), "value"], frame.loc[(u, s), "capital"]] for s in years]
            for u in units
        ]
    )

    def ols(y2: np.ndarray, x3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat_x = x3.reshape(n * t, -1)
        beta = np.linalg.solve(flat_x.T @ flat_x, flat_x.T @ y2.reshape(-1))
        return beta, (y2.reshape(-1) - flat_x @ beta).reshape(n, t)

    beta, e = ols(y, x)
    rhos = np.zeros(n)
    rho = None
    if correlation != "independent":
        for i in range(n):
            numerator = sum(e[i, s] * e[i, s - 1] for s in range(1, t))
            if rhotype == "regress":
                denominator = sum(e[i, s - 1] ** 2 for s in range(1, t))
            else:
                denominator = sum(e[i, s] ** 2 for s in range(t))
            rhos[i] = numerator / denominator
        used = rhos.copy()
        if correlation == "ar1":
            rho = float(np.mean(rhos))  # every unit has t - 1 pairs
            used[:] = rho
        y_star, x_star = np.empty_like(y), np.empty_like(x)
        for i in range(n):
            scale = math.sqrt(1 - used[i] ** 2)
            y_star[i, 0], x_star[i, 0] = scale * y[i, 0], scale * x[i, 0]
            for s in range(1, t):
                y_star[i, s] = y[i, s] - used[i] * y[i, s - 1]
                x_star[i, s] = x[i, s] - used[i] * x[i, s - 1]
        y, x = y_star, x_star
        beta, e = ols(y, x)

    sigma = e @ e.T / t
    omega = np.kron(sigma, np.eye(t))
    flat_x = x.reshape(n * t, -1)
    bread = np.linalg.inv(flat_x.T @ flat_x)
    cov = bread @ flat_x.T @ omega @ flat_x @ bread
    return beta, np.sqrt(np.diag(cov)), rho, rhos


# Against Stata


@pytest.mark.parametrize("term", ["value", "capital", "Intercept"])
def test_independent_coefficients_match_stata(grunfeld_panel: pd.DataFrame, term: str) -> None:
    fit = prais_winsten_pcse(grunfeld_panel, "invest ~ value + capital", correlation="independent")

    assert significant(fit.params[term]) == significant(STATA_INDEPENDENT["params"][term])


@pytest.mark.parametrize("term", ["value", "capital", "Intercept"])
def test_independent_pcse_match_stata(grunfeld_panel: pd.DataFrame, term: str) -> None:
    fit = prais_winsten_pcse(grunfeld_panel, "invest ~ value + capital", correlation="independent")

    assert significant(fit.bse[term]) == significant(STATA_INDEPENDENT["bse"][term])


def test_independent_has_no_rho(grunfeld_panel: pd.DataFrame) -> None:
    fit = prais_winsten_pcse(grunfeld_panel, "invest ~ value + capital", correlation="independent")

    assert fit.rho is None
    assert fit.nobs == 200
    assert fit.balanced


# Against the step-by-step reference


# psar1 uses rhotype tscorr: with regress, three firms' rhos exceed 1 on these data.
REFERENCE_CASES = [
    pytest.param("independent", "regress", id="independent"),
    pytest.param("ar1", "regress", id="ar1"),
    pytest.param("ar1", "tscorr", id="ar1-tscorr"),
    pytest.param("psar1", "tscorr", id="psar1-tscorr"),
]


@pytest.mark.parametrize(("correlation", "rhotype"), REFERENCE_CASES)
def test_coefficients_match_numpy_reference(
    grunfeld_panel: pd.DataFrame, correlation: str, rhotype: str
) -> None:
    fit = prais_winsten_pcse(
        grunfeld_panel, "invest ~ value + capital", correlation=correlation, rhotype=rhotype
    )
    beta, _, _, _ = numpy_reference(grunfeld_panel, correlation, rhotype)

    np.testing.assert_allclose(fit.params[["Intercept", "value", "capital"]], beta, rtol=1e-8)


@pytest.mark.parametrize(("correlation", "rhotype"), REFERENCE_CASES)
def test_pcse_match_numpy_reference(
    grunfeld_panel: pd.DataFrame, correlation: str, rhotype: str
) -> None:
    fit = prais_winsten_pcse(
        grunfeld_panel, "invest ~ value + capital", correlation=correlation, rhotype=rhotype
    )
    _, bse, _, _ = numpy_reference(grunfeld_panel, correlation, rhotype)

    np.testing.assert_allclose(fit.bse[["Intercept", "value", "capital"]], bse, rtol=1e-8)


def test_ar1_rho_matches_numpy_reference(grunfeld_panel: pd.DataFrame) -> None:
    fit = prais_winsten_pcse(grunfeld_panel, "invest ~ value + capital")
    _, _, rho, rhos = numpy_reference(grunfeld_panel, "ar1")

    assert fit.rho == pytest.approx(rho, rel=1e-10)
    np.testing.assert_allclose(fit.unit_rhos.sort_index().to_numpy(), rhos, rtol=1e-10)


def test_ar1_values_on_grunfeld(grunfeld_panel: pd.DataFrame) -> None:
    # Recorded from this implementation (equal to numpy_reference) to 3
    # significant digits, so that a change in the method shows up here.
    fit = prais_winsten_pcse(grunfeld_panel, "invest ~ value + capital")

    assert significant(fit.rho) == 0.926
    assert significant(fit.params["value"]) == 0.0938
    assert significant(fit.params["capital"]) == 0.304
    assert significant(fit.bse["value"]) == 0.0133
    assert significant(fit.bse["capital"]) == 0.0641


def test_psar1_rhos_by_hand(grunfeld_panel: pd.DataFrame) -> None:
    fit = prais_winsten_pcse(
        grunfeld_panel, "invest ~ value + capital", correlation="psar1", rhotype="tscorr"
    )
    residuals = prais_winsten_pcse(
        grunfeld_panel, "invest ~ value + capital", correlation="independent"
    )
    # tscorr: sum of e_t * e_(t-1) over the sum of all e_t^2 of the unit.
    frame = grunfeld_panel.copy()
    x = np.column_stack([np.ones(len(frame)), frame["value"], frame["capital"]])
    frame["e"] = frame["invest"] - x @ residuals.params[["Intercept", "value", "capital"]].to_numpy()
    expected = {}
    for unit, rows in frame.groupby("unit"):
        e = rows.sort_values("year")["e"].to_numpy()
        expected[unit] = float(np.sum(e[1:] * e[:-1]) / np.sum(e**2))

    assert fit.rho is None
    for unit, rho in expected.items():
        assert fit.unit_rhos[unit] == pytest.approx(rho, rel=1e-10)


def test_psar1_rho_above_one_raises(grunfeld_panel: pd.DataFrame) -> None:
    with pytest.raises(PanelError, match=r"inside \(-1, 1\)"):
        prais_winsten_pcse(grunfeld_panel, "invest ~ value + capital", correlation="psar1")


# Unbalanced panels


@pytest.fixture(scope="module")
def unbalanced(grunfeld_panel: pd.DataFrame) -> pd.DataFrame:
    # IBM loses 1935-1937 (its panel starts later); GM loses 1945 (a gap).
    drop = ((grunfeld_panel["unit"] == "IBM") & (grunfeld_panel["year"] < 1938)) | (
        (grunfeld_panel["unit"] == "General Motors") & (grunfeld_panel["year"] == 1945)
    )
    return grunfeld_panel[~drop].reset_index(drop=True)


def unbalanced_reference(data: pd.DataFrame, pairwise: bool) -> tuple[np.ndarray, np.ndarray]:
    """OLS with the Beck-Katz sandwich, Omega built element by element."""
    x = np.column_stack([np.ones(len(data)), data["value"], data["capital"]])
    y = data["invest"].to_numpy()
    beta = np.linalg.solve(x.T @ x, x.T @ y)
    e = y - x @ beta
    keys = list(zip(data["unit"], data["year"]))
    residual = dict(zip(keys, e))
    units = sorted(data["unit"].unique())
    years = sorted(data["year"].unique())
    common = [s for s in years if all((u, s) in residual for u in units)]
    sigma = {}
    for a in units:
        for b in units:
            shared = [s for s in years if (a, s) in residual and (b, s) in residual]
            periods = shared if pairwise else common
            sigma[a, b] = sum(residual[a, s] * residual[b, s] for s in periods) / len(periods)
    omega = np.zeros((len(keys), len(keys)))
    for i, (a, s) in enumerate(keys):
        for j, (b, r) in enumerate(keys):
            if s == r:
                omega[i, j] = sigma[a, b]
    bread = np.linalg.inv(x.T @ x)
    return beta, np.sqrt(np.diag(bread @ x.T @ omega @ x @ bread))


@pytest.mark.parametrize("pairwise", [False, True], ids=["casewise", "pairwise"])
def test_unbalanced_pcse_match_reference(unbalanced: pd.DataFrame, pairwise: bool) -> None:
    fit = prais_winsten_pcse(
        unbalanced, "invest ~ value + capital", correlation="independent", pairwise=pairwise
    )
    beta, bse = unbalanced_reference(unbalanced, pairwise)

    assert not fit.balanced
    assert fit.nobs == 196
    np.testing.assert_allclose(fit.params[["Intercept", "value", "capital"]], beta, rtol=1e-8)
    np.testing.assert_allclose(fit.bse[["Intercept", "value", "capital"]], bse, rtol=1e-8)


def test_unbalanced_casewise_uses_common_years(unbalanced: pd.DataFrame) -> None:
    fit = prais_winsten_pcse(unbalanced, "invest ~ value + capital", correlation="independent")

    assert fit.sigma_periods == 16  # 1938-1954 without 1945


def test_unbalanced_ar1_rho_skips_gap(unbalanced: pd.DataFrame) -> None:
    fit = prais_winsten_pcse(unbalanced, "invest ~ value + capital", rhotype="regress")
    ols = prais_winsten_pcse(unbalanced, "invest ~ value + capital", correlation="independent")
    frame = unbalanced.copy()
    x = np.column_stack([np.ones(len(frame)), frame["value"], frame["capital"]])
    frame["e"] = frame["invest"] - x @ ols.params[["Intercept", "value", "capital"]].to_numpy()
    gm = frame[frame["unit"] == "General Motors"].set_index("year")["e"]
    pairs = [(s, s - 1) for s in gm.index if s - 1 in gm.index]
    expected = sum(gm[s] * gm[r] for s, r in pairs) / sum(gm[r] ** 2 for _, r in pairs)

    assert len(pairs) == 17  # 19 years, and the gap removes 1945/1944 and 1946/1945
    assert fit.unit_rhos["General Motors"] == pytest.approx(expected, rel=1e-10)


def test_ar1_common_rho_weights_pairs(unbalanced: pd.DataFrame) -> None:
    fit = prais_winsten_pcse(unbalanced, "invest ~ value + capital")
    pairs = {unit: 19 for unit in fit.unit_rhos.index}
    pairs["IBM"], pairs["General Motors"] = 16, 17
    weights = np.array([pairs[unit] for unit in fit.unit_rhos.index])

    assert fit.rho == pytest.approx(np.average(fit.unit_rhos, weights=weights), rel=1e-12)


# Lags and interfaces


def test_lag_is_within_unit_and_year() -> None:
    data = pd.DataFrame(
        {"unit": ["a", "a", "a", "b", "b"], "year": [2010, 2011, 2013, 2010, 2011], "x": [1.0, 2.0, 3.0, 10.0, 20.0]}
    )
    lags = lagged(data, ["x"]).set_index(["unit", "year"])["L.x"]

    assert math.isnan(lags[("a", 2010)])
    assert lags[("a", 2011)] == 1.0
    assert math.isnan(lags[("a", 2013)])  # 2012 is missing: no bridging
    assert lags[("b", 2011)] == 10.0


def test_formula_and_columns_agree(grunfeld_panel: pd.DataFrame) -> None:
    by_formula = prais_winsten_pcse(grunfeld_panel, "invest ~ value + L(capital)")
    by_columns = prais_winsten_pcse(
        grunfeld_panel, dependent="invest", regressors=["value", "L.capital"], lags=["capital"]
    )

    assert list(by_formula.params.index) == ["Intercept", "value", "L.capital"]
    np.testing.assert_allclose(by_formula.params, by_columns.params, rtol=1e-12)
    np.testing.assert_allclose(by_formula.bse, by_columns.bse, rtol=1e-12)
    assert by_formula.nobs == 190  # each firm's first year has no lag


def test_formula_transforms_lag(grunfeld_panel: pd.DataFrame) -> None:
    fit = prais_winsten_pcse(grunfeld_panel, "invest ~ np.log(L(value))")

    assert "np.log(L.value)" in fit.params.index


# Table layout


def test_regression_table_layout(grunfeld_panel: pd.DataFrame) -> None:
    models = {
        "OLS-PCSE": prais_winsten_pcse(grunfeld_panel, "invest ~ value + capital", correlation="independent"),
        "PW-AR1": prais_winsten_pcse(grunfeld_panel, "invest ~ value + capital"),
    }
    table = regression_table(models, labels={"value": "Market value"}).set_index("term")

    assert list(table.index) == ["Market value", "", "capital", "", "Constant", "", "R-squared", "rho", "N"]
    assert table.iloc[0]["OLS-PCSE"] == "0.116***"
    assert table.iloc[1]["OLS-PCSE"] == "(0.007)"
    assert table.loc["rho", "OLS-PCSE"] == ""
    assert table.loc["rho", "PW-AR1"] == "0.926"
    assert table.loc["N", "PW-AR1"] == "200"
    assert table.loc["R-squared", "OLS-PCSE"] == "0.812"


@pytest.mark.parametrize(
    ("p_value", "stars"), [(0.0009, "***"), (0.001, "**"), (0.009, "**"), (0.01, "*"), (0.049, "*"), (0.05, ""), (0.5, "")]
)
def test_significance_stars(p_value: float, stars: str) -> None:
    assert significance_stars(p_value) == stars


# Invalid input


def test_collinear_regressors_raise(grunfeld_panel: pd.DataFrame) -> None:
    data = grunfeld_panel.assign(double=grunfeld_panel["value"] * 2)

    with pytest.raises(PanelError, match="collinear"):
        prais_winsten_pcse(data, "invest ~ value + double")


def test_duplicate_unit_year_raises(grunfeld_panel: pd.DataFrame) -> None:
    data = pd.concat([grunfeld_panel, grunfeld_panel.iloc[[0]]])

    with pytest.raises(PanelError, match="repeat a unit-year"):
        prais_winsten_pcse(data, "invest ~ value")


def test_text_in_regressor_raises(grunfeld_panel: pd.DataFrame) -> None:
    data = grunfeld_panel.astype({"value": object})
    data.loc[3, "value"] = "n/a"

    with pytest.raises(PanelError, match="column value must be numeric, got 'n/a'"):
        prais_winsten_pcse(data, dependent="invest", regressors=["value"])


def test_invalid_correlation_raises(grunfeld_panel: pd.DataFrame) -> None:
    with pytest.raises(PanelError, match="invalid correlation 'ar2'"):
        prais_winsten_pcse(grunfeld_panel, "invest ~ value", correlation="ar2")


def test_no_consecutive_years_raises() -> None:
    data = pd.DataFrame(
        {"unit": list("aabbcc"), "year": [2011, 2013] * 3, "y": [1.0, 2, 3, 5, 4, 7], "x": [0.5, 1, 2, 2.5, 2, 4]}
    )

    with pytest.raises(PanelError, match="two consecutive years"):
        prais_winsten_pcse(data, "y ~ x")


# Covariates and the validation data


def test_sample_covariates_read_with_aliases() -> None:
    from qualkit.panel import load_unit_aliases

    covariates = read_covariates(PANEL / "covariates.csv", load_unit_aliases(PANEL / "unit_aliases.csv"))

    assert len(covariates) == 14 * 6
    assert set(covariates["year"]) == set(range(2010, 2016))
    assert set(covariates["connection"]) == {0, 1}


def test_covariates_invalid_rows_listed(tmp_path: Path) -> None:
    path = tmp_path / "covariates.csv"
    path.write_text(
        "unit,year,connection,gdp_per_capita,revenue,population\n"
        "A,2011,2,100,10,5\n"
        "A,2012,1,-3,10,5\n"
        "A,2013,1,100,ten,5\n",
        encoding="utf-8",
    )

    with pytest.raises(PanelError) as raised:
        read_covariates(path)

    message = str(raised.value)
    assert "line 2: connection '2' must be 0 or 1" in message
    assert "line 3: gdp_per_capita '-3' must be positive" in message
    assert "line 4: revenue 'ten' is not a number" in message


def test_validation_data_lags_and_post() -> None:
    values = pd.DataFrame(
        {"target": "t", "unit": ["A", "B", "A", "B"], "year": [2013, 2013, 2014, 2014], "value": [1.0, 3.0, 2.0, 6.0]}
    )
    covariates = pd.DataFrame(
        {
            "unit": ["A", "A", "A", "B", "B", "B"],
            "year": [2012, 2013, 2014] * 2,
            "connection": [0, 1, 1, 0, 0, 1],
            "gdp_per_capita": [math.e, math.e**2, 1.0, 1.0, 1.0, 1.0],
            "revenue": [1.0] * 6,
            "population": [1.0] * 6,
        }
    )
    data = validation_data(values, covariates, "t").set_index(["unit", "year"])

    assert data.loc[("A", 2013), "L.log_gdp_per_capita"] == pytest.approx(1.0)
    assert data.loc[("A", 2014), "L.log_gdp_per_capita"] == pytest.approx(2.0)
    assert data.loc[("A", 2013), "connection"] == 1
    assert data.loc[("A", 2013), "post"] == 0
    assert data.loc[("A", 2014), "post"] == 1
    assert data.loc[("A", 2013), "z"] == pytest.approx(-1 / math.sqrt(2))


# The command on the sample


@pytest.fixture(scope="module")
def regress_result(sample_project: object) -> object:
    return CliRunner().invoke(
        cli,
        [
            "--project", str(sample_project.folder), "scores", "regress",
            "--covariates", str(PANEL / "covariates.csv"),
            "--target", "domestic_investment", "--target", "imports_exports",
            "--target", "employee_health_insurance", "--format", "csv",
        ],
        prog_name="qualkit",
    )


def test_regress_command_exit(regress_result: object) -> None:
    assert regress_result.exit_code == 0, regress_result.stderr


def test_regress_command_table2_layout(regress_result: object) -> None:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(regress_result.stdout)))

    assert rows[0] == ["term", "domestic_investment", "imports_exports", "employee_health_insurance"]
    assert rows[1][0] == "Personal connection"
    assert rows[2][1].startswith("(")
    assert rows[2][1].endswith(")")
    assert [row[0] for row in rows[-3:]] == ["R-squared", "rho", "N"]


def test_regress_command_unknown_target(runner: CliRunner, sample_project: object) -> None:
    result = runner.invoke(
        cli,
        ["--project", str(sample_project.folder), "scores", "regress", "--covariates", str(PANEL / "covariates.csv"), "--target", "nope"],
        prog_name="qualkit",
    )

    assert result.exit_code == 1
    assert "No values for target(s) nope" in result.stderr


def test_regress_command_needs_covariates(runner: CliRunner, sample_copy: Path) -> None:
    config = sample_copy / "qualkit.toml"
    lines = config.read_text(encoding="utf-8").splitlines(keepends=True)
    config.write_text("".join(line for line in lines if not line.startswith("covariates")), encoding="utf-8")
    result = runner.invoke(cli, ["--project", str(sample_copy), "scores", "regress"], prog_name="qualkit")

    assert result.exit_code == 2
    assert "No covariates file" in result.stderr


# Stata's other rhotypes and options (formulas from Stata's help _crcar1 and
# [XT] xtpcse), each computed here by hand from the OLS residuals.


def grunfeld_residuals(panel: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each firm's OLS residuals in year order."""
    ols = prais_winsten_pcse(panel, "invest ~ value + capital", correlation="independent")
    x = np.column_stack([np.ones(len(panel)), panel["value"], panel["capital"]])
    frame = panel.assign(e=panel["invest"] - x @ ols.params[["Intercept", "value", "capital"]].to_numpy())
    return {unit: rows.sort_values("year")["e"].to_numpy() for unit, rows in frame.groupby("unit")}


def hand_rho(e: np.ndarray, rhotype: str, k: int = 3) -> float:
    t = len(e)
    products = float(np.sum(e[1:] * e[:-1]))
    dw = float(np.sum(np.diff(e) ** 2) / np.sum(e**2))
    return {
        "regress": products / float(np.sum(e[:-1] ** 2)),
        "freg": products / float(np.sum(e[1:] ** 2)),
        "tscorr": products / float(np.sum(e**2)),
        "dw": 1 - dw / 2,
        "theil": products / float(np.sum(e**2)) * (t - k) / t,
        "nagar": ((1 - dw / 2) * t**2 + k**2) / (t**2 - k**2),
    }[rhotype]


@pytest.mark.parametrize("rhotype", ["regress", "freg", "tscorr", "dw", "theil", "nagar"])
def test_every_rhotype_by_hand(grunfeld_panel: pd.DataFrame, rhotype: str) -> None:
    residuals = grunfeld_residuals(grunfeld_panel)
    fit = prais_winsten_pcse(grunfeld_panel, "invest ~ value + capital", rhotype=rhotype)

    for unit, e in residuals.items():
        assert fit.unit_rhos[unit] == pytest.approx(hand_rho(e, rhotype), rel=1e-9)
    assert fit.rho == pytest.approx(np.mean([hand_rho(e, rhotype) for e in residuals.values()]), rel=1e-9)


def test_np1_weights_rhos_by_years(unbalanced: pd.DataFrame) -> None:
    default = prais_winsten_pcse(unbalanced, "invest ~ value + capital")
    np1 = prais_winsten_pcse(unbalanced, "invest ~ value + capital", np1=True)
    years = unbalanced.groupby("unit").size()[np1.unit_rhos.index]

    assert np1.rho == pytest.approx(float(np.average(np1.unit_rhos, weights=years)), rel=1e-12)
    assert np1.rho != pytest.approx(default.rho, rel=1e-6)


def test_independent_panels_give_ols_covariance_over_n(grunfeld_panel: pd.DataFrame) -> None:
    # Stata's `independent`: Sigma = sigma^2 I with sigma^2 = e'e / N, so the
    # covariance is the usual OLS one with divisor N instead of N - k.
    import statsmodels.formula.api as smf

    fit = prais_winsten_pcse(
        grunfeld_panel, "invest ~ value + capital", correlation="independent", panels="independent"
    )
    ols = smf.ols("invest ~ value + capital", grunfeld_panel).fit()
    n, k = len(grunfeld_panel), 3

    np.testing.assert_allclose(fit.cov_params.to_numpy(), ols.cov_params().to_numpy() * (n - k) / n, rtol=1e-9)


def test_hetonly_uses_each_firms_variance(grunfeld_panel: pd.DataFrame) -> None:
    fit = prais_winsten_pcse(
        grunfeld_panel, "invest ~ value + capital", correlation="independent", panels="hetonly"
    )
    residuals = grunfeld_residuals(grunfeld_panel)
    frame = grunfeld_panel
    x = np.column_stack([np.ones(len(frame)), frame["value"], frame["capital"]])
    variance = frame["unit"].map({unit: float(np.mean(e**2)) for unit, e in residuals.items()}).to_numpy()
    bread = np.linalg.inv(x.T @ x)
    expected = bread @ (x.T * variance) @ x @ bread

    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov_params.to_numpy())), np.sqrt(np.diag(expected))[[0, 1, 2]], rtol=1e-9)


def test_nmk_scales_covariance(grunfeld_panel: pd.DataFrame) -> None:
    plain = prais_winsten_pcse(grunfeld_panel, "invest ~ value + capital")
    nmk = prais_winsten_pcse(grunfeld_panel, "invest ~ value + capital", nmk=True)
    n, k = len(grunfeld_panel), 3

    np.testing.assert_allclose(nmk.cov_params.to_numpy(), plain.cov_params.to_numpy() * n / (n - k), rtol=1e-12)


def test_unknown_panels_option_raises(grunfeld_panel: pd.DataFrame) -> None:
    with pytest.raises(PanelError, match="panels"):
        prais_winsten_pcse(grunfeld_panel, "invest ~ value + capital", panels="spherical")
