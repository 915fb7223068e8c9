"""Prais-Winsten regression with panel-corrected standard errors (Beck and Katz).

The estimator follows Stata's ``xtpcse``:

1. OLS of the dependent variable on the regressors.
2. With ``correlation="ar1"`` or ``"psar1"``, an AR(1) coefficient is
   estimated from the OLS residuals of each unit. The data are then
   Prais-Winsten transformed within unit: the first year of a run of
   consecutive years is scaled by sqrt(1 - rho^2), and each later year is
   quasi-differenced. OLS is run again on the result. ``ar1`` uses one rho
   for all units, the mean of the units' rhos weighted by their numbers of
   consecutive-year pairs. ``psar1`` uses each unit's own rho.
3. The covariance of the coefficients is the Beck-Katz sandwich
   ``(X'X)^-1 X' (Sigma kron I) X (X'X)^-1`` on the data of the last step,
   where ``Sigma`` is the units' contemporaneous covariance of residuals.

docs/regression.md lists the Stata options these defaults correspond to.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm
from scipy import stats

from qualkit.errors import PanelError
from qualkit.negotiability import standardize
from qualkit.panel_files import MAX_LISTED_ERRORS, UnitAliases, canonical_unit, parse_number, parse_year, read_table

log = logging.getLogger(__name__)

CORRELATIONS = ("independent", "ar1", "psar1")
RHO_TYPES = ("regress", "freg", "tscorr", "dw", "theil", "nagar")
PANEL_STRUCTURES = ("correlated", "hetonly", "independent")
INTERCEPT = "Intercept"
STAR_LEVELS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))
# L(name) in a formula is the one-year lag of the column name within its unit.
_LAG_CALL = re.compile(r"\bL\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)")


@dataclass(frozen=True)
class PanelRegression:
    """A fitted Prais-Winsten / PCSE regression.

    ``rho`` is the common AR(1) coefficient under ``ar1`` and None otherwise;
    ``unit_rhos`` contains each unit's estimate under ``ar1`` and ``psar1``.
    ``r_squared`` is that of the regression in the last step, so for ``ar1``
    and ``psar1`` it is computed on the transformed data. ``sigma_periods`` is
    the number of periods behind each element of ``Sigma`` (the smallest one
    under ``pairwise``).
    """

    dependent: str
    correlation: str
    params: pd.Series
    cov_params: pd.DataFrame
    rho: float | None
    unit_rhos: pd.Series
    r_squared: float
    nobs: int
    n_units: int
    n_periods: int
    balanced: bool
    sigma_periods: int

    @property
    def bse(self) -> pd.Series:
        """Panel-corrected standard errors."""
        return pd.Series(np.sqrt(np.diag(self.cov_params)), index=self.params.index)

    @property
    def zvalues(self) -> pd.Series:
        """Coefficients divided by their standard errors."""
        return self.params / self.bse

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values from the standard normal distribution, as xtpcse reports."""
        return pd.Series(2 * stats.norm.sf(np.abs(self.zvalues)), index=self.params.index)

    def coefficients(self) -> pd.DataFrame:
        """Return coefficient, standard error, z, p-value and stars per regressor."""
        table = pd.DataFrame(
            {
                "coef": self.params,
                "se": self.bse,
                "z": self.zvalues,
                "p": self.pvalues,
            }
        )
        table["stars"] = [significance_stars(p) for p in table["p"]]
        table.index.name = "term"

        return table.reset_index()


def significance_stars(p_value: float) -> str:
    """Return '***' below .001, '**' below .01, '*' below .05, else ''."""
    for level, stars in STAR_LEVELS:
        if p_value < level:
            return stars

    return ""


def lagged(
    data: pd.DataFrame, columns: Iterable[str], *, unit: str = "unit", time: str = "year"
) -> pd.DataFrame:
    """Add ``L.<column>``, the column's value for the same unit one year earlier.

    The lag is NaN when the unit has no row for the year before, so a gap is
    never bridged by the previous row.
    """
    frame = data.copy()
    for column in columns:
        _require_columns(frame, (column, unit, time))
        previous = frame[[unit, time, column]].copy()
        previous[time] = previous[time] + 1
        previous = previous.rename(columns={column: f"L.{column}"})
        frame = frame.drop(columns=[f"L.{column}"], errors="ignore")
        frame = frame.merge(previous, on=[unit, time], how="left")

    return frame


def prais_winsten_pcse(
    data: pd.DataFrame,
    formula: str | None = None,
    *,
    dependent: str | None = None,
    regressors: Sequence[str] = (),
    lags: Iterable[str] = (),
    unit: str = "unit",
    time: str = "year",
    correlation: str = "ar1",
    rhotype: str = "regress",
    pairwise: bool = False,
    constant: bool = True,
    panels: str = "correlated",
    np1: bool = False,
    nmk: bool = False,
) -> PanelRegression:
    """Fit a linear panel model by Prais-Winsten with panel-corrected SEs.

    Give either a patsy ``formula`` or ``dependent`` and ``regressors``. In a
    formula such as ``"y ~ x + np.log(L(z))"``, ``L(name)`` is the
    within-unit one-year lag of a column. ``regressors`` are column names,
    and ``L.name`` is the lag of a column listed in ``lags``. Rows with a missing value in any model
    variable are dropped. ``rhotype`` names how each unit's rho is estimated
    from its OLS residuals, as in Stata (see ``_unit_rhos``). ``pairwise``
    estimates each element of ``Sigma`` from the periods two units share,
    instead of the periods that all units share. ``panels`` is "correlated"
    (full ``Sigma``), "hetonly" (Stata's ``hetonly``: a variance per unit, no
    covariances) or "independent" (Stata's ``independent``: one variance).
    ``np1`` weights the units' rhos by their numbers of years instead of
    pairs when ``ar1`` averages them; ``nmk`` scales the covariance by
    N / (N - k).

    Raises PanelError for invalid input, collinear regressors, a rho that
    cannot be estimated or is not inside (-1, 1), and an unbalanced panel
    without a period common to all units (unless ``pairwise``).
    """
    _check_option("correlation", correlation, CORRELATIONS)
    _check_option("rhotype", rhotype, RHO_TYPES)
    _check_option("panels", panels, PANEL_STRUCTURES)
    frame = _panel_frame(data, unit, time)
    y, x = _design(frame, formula, dependent, regressors, lags, unit, time, constant)
    frame = frame.loc[y.index].sort_values([unit, time])
    y, x = y.loc[frame.index], x.loc[frame.index]
    units, years = frame[unit].to_numpy(), frame[time].to_numpy()
    _check_design(x)

    rho: float | None = None
    unit_rhos = pd.Series(dtype=float, name="rho")
    if correlation != "independent":
        residuals = sm.OLS(y.to_numpy(), x.to_numpy()).fit().resid
        unit_rhos, pairs = _unit_rhos(residuals, units, years, rhotype, x.shape[1])
        if correlation == "ar1":
            weights = pd.Series(units).value_counts()[unit_rhos.index] if np1 else pairs
            rho = float(np.average(unit_rhos, weights=weights))
            used = pd.Series(rho, index=pd.unique(units))
        else:
            used = unit_rhos
        _check_rhos(used, rho)
        y = pd.Series(_transform(y.to_numpy(), units, years, used), index=y.index)
        x = pd.DataFrame(
            _transform(x.to_numpy(), units, years, used), index=x.index, columns=x.columns
        )

    fit = sm.OLS(y.to_numpy(), x.to_numpy()).fit()
    sigma, sigma_periods = _contemporaneous_covariance(fit.resid, units, years, pairwise)
    sigma = _restrict_sigma(sigma, fit.resid, units, panels)
    cov = _pcse_covariance(x.to_numpy(), units, years, sigma)
    if nmk:
        # NOTE: Stata's manual says only "normalized by N - k rather than N";
        # scaling the whole covariance by N / (N - k) is our reading of it.
        cov = cov * len(y) / (len(y) - x.shape[1])
    counts = pd.Series(units).value_counts()

    return PanelRegression(
        dependent=str(y.name or dependent or "y"),
        correlation=correlation,
        params=pd.Series(fit.params, index=x.columns),
        cov_params=pd.DataFrame(cov, index=x.columns, columns=x.columns),
        rho=rho,
        unit_rhos=unit_rhos,
        r_squared=_r_squared(y.to_numpy(), fit.resid),
        nobs=len(y),
        n_units=len(counts),
        n_periods=len(np.unique(years)),
        balanced=bool(counts.nunique() == 1 and len(counts) * len(np.unique(years)) == len(y)),
        sigma_periods=sigma_periods,
    )


def regression_table(
    models: Mapping[str, PanelRegression],
    *,
    labels: Mapping[str, str] | None = None,
    digits: int = 3,
) -> pd.DataFrame:
    """Lay out fitted models side by side as in a journal's regression table.

    Each regressor takes two rows: the coefficient with stars (* p < .05,
    ** p < .01, *** p < .001) and the standard error in parentheses. Then come
    R-squared, rho (the common AR(1) coefficient, blank otherwise) and N.
    ``labels`` renames regressors; the intercept is labelled "Constant".
    """
    labels = {INTERCEPT: "Constant", **(labels or {})}
    terms: list[str] = []
    for model in models.values():
        terms += [term for term in model.params.index if term not in terms]
    if INTERCEPT in terms:
        terms = [term for term in terms if term != INTERCEPT] + [INTERCEPT]

    index: list[str] = []
    cells: dict[str, list[str]] = {name: [] for name in models}
    for term in terms:
        index += [labels.get(term, term), ""]
        for name, model in models.items():
            if term in model.params.index:
                table = model.coefficients().set_index("term")
                coef = f"{table.loc[term, 'coef']:.{digits}f}{table.loc[term, 'stars']}"
                se = f"({table.loc[term, 'se']:.{digits}f})"
            else:
                coef, se = "", ""
            cells[name] += [coef, se]
    index += ["R-squared", "rho", "N"]
    for name, model in models.items():
        rho = "" if model.rho is None else f"{model.rho:.{digits}f}"
        cells[name] += [f"{model.r_squared:.{digits}f}", rho, str(model.nobs)]

    table = pd.DataFrame(cells, index=index)
    table.index.name = "term"

    return table.reset_index()


# Checks and the design matrix


def _check_option(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise PanelError(f"invalid {name} {value!r}.", fix=f"Use one of: {', '.join(choices)}.")


def _require_columns(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise PanelError(
            f"the data have no column(s) {', '.join(missing)}.",
            fix=f"Available columns: {', '.join(map(str, frame.columns))}.",
        )


def _panel_frame(data: pd.DataFrame, unit: str, time: str) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise PanelError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    _require_columns(data, (unit, time))
    frame = data.reset_index(drop=True)
    years = pd.to_numeric(frame[time], errors="coerce")
    invalid = years.isna() | (years % 1 != 0)
    if invalid.any():
        raise PanelError(
            f"column {time} must hold whole years, got {frame.loc[invalid, time].iloc[0]!r}."
        )
    frame[time] = years.astype("int64")
    duplicated = frame.duplicated([unit, time], keep=False)
    if duplicated.any():
        first = frame[duplicated].iloc[0]
        raise PanelError(
            f"{int(duplicated.sum())} rows repeat a {unit}-{time}, "
            f"e.g. {first[unit]!r} in {first[time]}.",
            fix=f"Keep one row per {unit} and {time}.",
        )

    return frame


def _design(
    frame: pd.DataFrame,
    formula: str | None,
    dependent: str | None,
    regressors: Sequence[str],
    lags: Iterable[str],
    unit: str,
    time: str,
    constant: bool,
) -> tuple[pd.Series, pd.DataFrame]:
    """Build y and X, dropping rows with a missing value in any model variable."""
    if (formula is None) == (dependent is None):
        raise PanelError("give either a formula or a dependent variable, not both or neither.")

    if formula is not None:
        lagged_names = sorted(set(_LAG_CALL.findall(formula)))
        data = lagged(frame, lagged_names, unit=unit, time=time)
        rewritten = _LAG_CALL.sub(lambda match: f'Q("L.{match.group(1)}")', formula)
        if not constant:
            rewritten += " - 1"
        try:
            y, x = patsy.dmatrices(rewritten, data, NA_action="drop", return_type="dataframe")
        except (patsy.PatsyError, NameError, KeyError, TypeError, ValueError) as error:
            raise PanelError(f"invalid formula {formula!r}: {error}") from None
        x.columns = [re.sub(r'Q\("(L\.[^"]+)"\)', r"\1", str(name)) for name in x.columns]
        return y.iloc[:, 0].rename(str(y.columns[0])), x

    data = lagged(frame, list(lags), unit=unit, time=time)
    names = list(regressors)
    _require_columns(data, [dependent, *names])
    model = data[[dependent, *names]].apply(pd.to_numeric, errors="coerce")
    for column in [dependent, *names]:
        text = data[column][model[column].isna() & data[column].notna()]
        if len(text):
            raise PanelError(f"column {column} must be numeric, got {text.iloc[0]!r}.")
    model = model.dropna()
    x = model[names].astype(float)
    if constant:
        x.insert(0, INTERCEPT, 1.0)

    return model[dependent].astype(float), x


def _check_design(x: pd.DataFrame) -> None:
    if len(x) <= x.shape[1]:
        raise PanelError(
            f"{len(x)} complete observation(s) for {x.shape[1]} coefficient(s).",
            fix="Use fewer regressors or more data; lags drop each unit's first year.",
        )
    rank = np.linalg.matrix_rank(x.to_numpy())
    if rank < x.shape[1]:
        constant = [name for name in x.columns if x[name].nunique() <= 1]
        hint = f" Constant column(s): {', '.join(constant)}." if constant else ""
        raise PanelError(
            f"the regressors are collinear (rank {rank} of {x.shape[1]}).{hint}",
            fix="Drop a regressor that is a combination of the others.",
        )


# Prais-Winsten


def _consecutive(units: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Mark rows whose unit also has a row for the year before (data sorted)."""
    follows = np.zeros(len(units), dtype=bool)
    follows[1:] = (units[1:] == units[:-1]) & (years[1:] == years[:-1] + 1)

    return follows


def _unit_rhos(
    residuals: np.ndarray, units: np.ndarray, years: np.ndarray, rhotype: str, k: int
) -> tuple[pd.Series, pd.Series]:
    """Estimate each unit's AR(1) coefficient from pairs of consecutive years.

    Returns the rhos and the number of pairs behind each. The estimators are
    those of Stata's ``_crcar1`` (help _crcar1), with T the unit's number of
    years and k the number of coefficients:

    - regress: B of e_t = B e_(t-1), a regression without a constant;
    - freg: B of e_t = B e_(t+1);
    - tscorr: sum of e_t e_(t-1) over the pairs / sum of e_t^2 over all years;
    - dw: 1 - DW / 2;
    - theil: tscorr (T - k) / T;
    - nagar: (dw T^2 + k^2) / (T^2 - k^2).
    """
    follows = _consecutive(units, years)
    rhos, pairs = {}, {}
    for name in pd.unique(units):
        rows = np.flatnonzero(units == name)
        current = rows[follows[rows]]
        if len(current) == 0:
            continue
        rho = _rho(residuals[current], residuals[current - 1], residuals[rows], rhotype, k)
        if rho is None:
            continue
        rhos[name] = rho
        pairs[name] = len(current)
    if not rhos:
        raise PanelError(
            "no unit has values in two consecutive years, so rho cannot be estimated.",
            fix="Use correlation='independent', or data with consecutive years.",
        )

    return pd.Series(rhos, name="rho"), pd.Series(pairs, name="pairs")


def _rho(
    later: np.ndarray, earlier: np.ndarray, every: np.ndarray, rhotype: str, k: int
) -> float | None:
    """Return one unit's rho from its residual pairs, or None when a denominator is 0."""
    products = float(np.sum(later * earlier))
    total = float(np.sum(every**2))
    years = len(every)
    if rhotype in ("regress", "freg"):
        denominator = float(np.sum((earlier if rhotype == "regress" else later) ** 2))
        return products / denominator if denominator else None
    if total == 0:
        return None
    if rhotype == "tscorr":
        return products / total
    if rhotype == "theil":
        return products / total * (years - k) / years
    durbin_watson = float(np.sum((later - earlier) ** 2)) / total
    if rhotype == "dw":
        return 1 - durbin_watson / 2
    if years**2 == k**2:
        return None
    return ((1 - durbin_watson / 2) * years**2 + k**2) / (years**2 - k**2)


def _check_rhos(rhos: pd.Series, common: float | None) -> None:
    if common is not None and not -1 < common < 1:
        raise PanelError(
            f"the common rho {common:.3f} is not inside (-1, 1), so the "
            "Prais-Winsten transform is undefined.",
            fix="Use rhotype='tscorr' (--rhotype tscorr) or correlation='independent'.",
        )
    outside = rhos[(rhos <= -1) | (rhos >= 1)]
    if len(outside):
        listed = ", ".join(f"{unit} {rho:.3f}" for unit, rho in outside.items())
        raise PanelError(
            f"rho must lie inside (-1, 1) for the Prais-Winsten transform; got {listed}.",
            fix="Use rhotype='tscorr', or correlation='ar1' for one common rho.",
        )


def _transform(
    values: np.ndarray, units: np.ndarray, years: np.ndarray, rhos: pd.Series
) -> np.ndarray:
    """Prais-Winsten transform rows within unit.

    Under psar1, a unit without two consecutive years has no rho of its own
    and is left as it is (rho 0).
    """
    matrix = values.reshape(len(values), -1).astype(float)
    rho = pd.Series(units).map(rhos).fillna(0.0).to_numpy()[:, None]
    follows = _consecutive(units, years)
    out = matrix * np.sqrt(1 - rho**2)
    shifted = np.vstack([np.zeros((1, matrix.shape[1])), matrix[:-1]])
    out[follows] = matrix[follows] - rho[follows] * shifted[follows]

    return out.reshape(values.shape)


# Panel-corrected covariance


def _contemporaneous_covariance(
    residuals: np.ndarray, units: np.ndarray, years: np.ndarray, pairwise: bool
) -> tuple[pd.DataFrame, int]:
    """Estimate Sigma, the covariance of two units' residuals in the same year."""
    grid = (
        pd.DataFrame({"unit": units, "year": years, "e": residuals})
        .pivot(index="year", columns="unit", values="e")
    )
    if not pairwise:
        common = grid.dropna()
        if common.empty:
            raise PanelError(
                "no year has residuals for every unit, so Sigma cannot be estimated casewise.",
                fix="Use pairwise=True (--pairwise) to use the years each pair of units shares.",
            )
        matrix = common.to_numpy()
        sigma = matrix.T @ matrix / len(common)
        return pd.DataFrame(sigma, index=grid.columns, columns=grid.columns), len(common)

    present = grid.notna().to_numpy().astype(float)
    filled = grid.fillna(0.0).to_numpy()
    shared = present.T @ present
    if (shared == 0).any():
        raise PanelError(
            "two units share no year, so their covariance cannot be estimated.",
            fix="Drop units without overlapping years.",
        )
    sigma = filled.T @ filled / shared

    return pd.DataFrame(sigma, index=grid.columns, columns=grid.columns), int(shared.min())


def _restrict_sigma(
    sigma: pd.DataFrame, residuals: np.ndarray, units: np.ndarray, panels: str
) -> pd.DataFrame:
    """Apply Stata's ``hetonly`` or ``independent`` to the estimated Sigma.

    Under both, the variances use every year of a unit, not only the
    periods common to all units, as they need no pairing across units.
    """
    if panels == "correlated":
        return sigma
    frame = pd.DataFrame({"unit": units, "e2": residuals**2})
    if panels == "hetonly":
        variances = frame.groupby("unit")["e2"].mean().reindex(sigma.index)
    else:
        variances = pd.Series(frame["e2"].mean(), index=sigma.index)

    return pd.DataFrame(np.diag(variances.to_numpy()), index=sigma.index, columns=sigma.columns)


def _pcse_covariance(
    x: np.ndarray, units: np.ndarray, years: np.ndarray, sigma: pd.DataFrame
) -> np.ndarray:
    """Return (X'X)^-1 (sum over years of X_t' Sigma_t X_t) (X'X)^-1."""
    bread = np.linalg.inv(x.T @ x)
    position = {name: index for index, name in enumerate(sigma.index)}
    matrix = sigma.to_numpy()
    meat = np.zeros((x.shape[1], x.shape[1]))
    for year in np.unique(years):
        rows = np.flatnonzero(years == year)
        present = [position[name] for name in units[rows]]
        block = matrix[np.ix_(present, present)]
        meat += x[rows].T @ block @ x[rows]

    return bread @ meat @ bread


def _r_squared(y: np.ndarray, residuals: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return 1 - float(np.sum(residuals**2)) / total if total > 0 else float("nan")


# The validation regression: standardized target values on covariates

COVARIATE_COLUMNS = ("unit", "year", "connection", "gdp_per_capita", "revenue", "population")
LOGGED_COVARIATES = ("gdp_per_capita", "revenue", "population")
VALIDATION_REGRESSORS = (
    "connection",
    "L.log_gdp_per_capita",
    "L.log_revenue",
    "L.log_population",
    "post",
)
VALIDATION_LABELS = {
    "connection": "Personal connection",
    "L.log_gdp_per_capita": "GDP per capita (log, t-1)",
    "L.log_revenue": "Revenue (log, t-1)",
    "L.log_population": "Population (log, t-1)",
    "post": "Post-period dummy",
}


def read_covariates(path: str | Path, aliases: UnitAliases | None = None) -> pd.DataFrame:
    """Read a covariates CSV or Excel file: unit, year, connection, and three sizes.

    ``connection`` must be 0 or 1; ``gdp_per_capita``, ``revenue`` and
    ``population`` must be positive numbers, because the model takes their
    logs. An empty cell is a missing value. Unit names go through
    ``aliases`` when given. Raises PanelError listing every invalid row.
    """
    table = read_table(path, required=COVARIATE_COLUMNS)
    records, errors = [], []
    seen: dict[tuple[str, int], int] = {}
    for line, row in table.rows:
        where = f"{table.line_word} {line}"
        unit, problem = canonical_unit(row.get("unit", ""), aliases)
        year = parse_year(row.get("year", ""))
        if problem is None and year is None:
            problem = f"year {row.get('year', '')!r} is not a whole number"
        record: dict[str, object] = {"unit": unit, "year": year}
        for column in COVARIATE_COLUMNS[2:]:
            if problem is not None:
                break
            text = row.get(column, "")
            number = parse_number(text) if text else float("nan")
            if number is None:
                problem = f"{column} {text!r} is not a number"
            elif column == "connection" and text and number not in (0, 1):
                problem = f"connection {text!r} must be 0 or 1"
            elif column in LOGGED_COVARIATES and text and number <= 0:
                problem = f"{column} {text!r} must be positive (its log is taken)"
            record[column] = number
        if problem is None and (unit, year) in seen:
            problem = f"duplicate of {table.line_word} {seen[(unit, year)]}"
        if problem is not None:
            errors.append(f"{where}: {problem}")
            continue
        seen[(unit, year)] = line
        records.append(record)
    if errors:
        raise PanelError(
            f"{len(errors)} invalid row(s):\n  " + "\n  ".join(errors[:MAX_LISTED_ERRORS]),
            path=path,
            fix="Correct the rows of the covariates file.",
        )

    return pd.DataFrame(records, columns=list(COVARIATE_COLUMNS))


def validation_data(
    values: pd.DataFrame,
    covariates: pd.DataFrame,
    target: str,
    *,
    post_year: int = 2013,
    ddof: int = 1,
) -> pd.DataFrame:
    """Join one target's standardized values with lagged log covariates.

    Returns one row per unit-year with a value: ``z`` (the value standardized
    within its year), ``connection``, ``L.log_<size>`` for the three sizes in
    the year before, and ``post`` (1 after ``post_year``). Covariates of the
    year before the first value year are needed for the lags.
    """
    rows = values[values["target"] == target]
    if rows.empty:
        raise PanelError(f"no values for target {target!r}.")
    z = standardize(rows, ddof=ddof)[["unit", "year", "z"]]
    sizes = covariates.copy()
    for column in LOGGED_COVARIATES:
        sizes[f"log_{column}"] = np.log(sizes[column])
    sizes = lagged(sizes, [f"log_{column}" for column in LOGGED_COVARIATES])
    keep = ["unit", "year", "connection"] + [f"L.log_{c}" for c in LOGGED_COVARIATES]
    data = z.merge(sizes[keep], on=["unit", "year"], how="left")
    data["post"] = (data["year"] > post_year).astype(int)
    _warn_missing_lags(data, target)

    return data


def _warn_missing_lags(data: pd.DataFrame, target: str) -> None:
    """Log how many rows with a value lack a lagged covariate, and their years.

    The regression drops those rows, which usually means that the covariates
    file has no rows for the year before the first value year.
    """
    lag_columns = [f"L.log_{column}" for column in LOGGED_COVARIATES]
    missing = data[data["z"].notna() & data[lag_columns].isna().any(axis=1)]
    if missing.empty:
        return
    years = ", ".join(str(year) for year in sorted(missing["year"].unique()))
    log.warning(
        "target %s: %d row(s) left out of the regression because the covariates of the "
        "year before are missing (value years %s). Add the covariates of the years before "
        "to the covariates file.",
        target,
        len(missing),
        years,
    )


def fit_validation(
    data: pd.DataFrame,
    *,
    correlation: str = "ar1",
    rhotype: str = "regress",
    pairwise: bool = False,
    panels: str = "correlated",
    np1: bool = False,
    nmk: bool = False,
) -> tuple[PanelRegression, list[str]]:
    """Regress ``z`` on the validation regressors of ``validation_data``.

    A regressor without variation among the complete rows (the post-period
    dummy of a target whose years all fall before the cut, say) would be
    collinear with the intercept, so it is left out. Returns the fit and the
    names left out.
    """
    complete = data.dropna(subset=["z", *VALIDATION_REGRESSORS])
    constant = [name for name in VALIDATION_REGRESSORS if complete[name].nunique() <= 1]
    used = [name for name in VALIDATION_REGRESSORS if name not in constant]
    fit = prais_winsten_pcse(
        data,
        dependent="z",
        regressors=used,
        correlation=correlation,
        rhotype=rhotype,
        pairwise=pairwise,
        panels=panels,
        np1=np1,
        nmk=nmk,
    )

    return fit, constant
