"""Tests for reading panels into the database: long, wide, Excel, forms, aliases.

Every malformed file must give a report naming its lines and store nothing.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlite_utils
from click.testing import CliRunner, Result

from qualkit import store
from qualkit.cli import cli
from qualkit.errors import PanelError
from qualkit.panel import (
    import_panel_file,
    import_panel_files,
    load_unit_aliases,
    normalize_name,
)
from qualkit.targets import load_targets, store_targets

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_ALIASES = ROOT / "interviews_sample" / "panel" / "unit_aliases.csv"

TARGETS = """\
targets:
  - id: shanty_town
    name: Urban shanty town transformation
    category: social_welfare
    aliases:
      zh: [棚户区改造]
  - id: fdi
    name: FDI
    category: economic
    aliases:
      en: [foreign direct investment]
      zh: [实际利用外资]
"""

# An evaluation form as copied from a PDF: a title row above the header,
# merged category cells left blank, a subtotal per category and a total.
FORM = """\
2013年市州绩效考核指标
类别,考核指标,分值,数据提供单位
经济发展,实际利用外资,9,省商务厅
,地区生产总值,20,省统计局
,小计,29,
社会发展,棚户区改造,3.5,省住建厅
,城镇登记失业率,2.5,省人社厅
,小计,6,
合计,,35,
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = store.open_database(tmp_path / "qualkit.db")
    store_targets(database, load_targets(write(tmp_path, "targets.yaml", TARGETS)))
    yield database
    database.close()


@pytest.fixture(scope="module")
def aliases() -> object:
    return load_unit_aliases(SAMPLE_ALIASES)


def values_of(db: sqlite_utils.Database) -> dict[tuple[str, str, int], float]:
    return {
        (row["target_id"], row["unit"], row["year"]): row["value"]
        for row in db["target_values"].rows
    }


def points_of(db: sqlite_utils.Database) -> dict[tuple[str, int], float]:
    return {(row["target_id"], row["year"]): row["points"] for row in db["target_points"].rows}


# Unit aliases


def test_aliases_map_chinese_names(aliases: object) -> None:
    assert aliases.canonical("长沙市") == "Changsha"
    assert aliases.canonical("湘西土家族苗族自治州") == "Xiangxi"
    assert aliases.canonical(" changsha ") == "Changsha"
    assert aliases.canonical("Wuhan") is None
    assert len(aliases.units) == 14


def test_normalize_name_folds_width_and_case() -> None:
    assert normalize_name("ＣＨＡＮＧＳＨＡ  City") == "changsha city"


def test_alias_for_two_units_raises(tmp_path: Path) -> None:
    path = write(tmp_path, "aliases.csv", "unit,alias\nChangsha,长沙\nZhuzhou,长沙\n")

    with pytest.raises(PanelError, match="line 3: '长沙' is already an alias of 'Changsha'"):
        load_unit_aliases(path)


# Long values


def test_long_values_normalize_units(db: sqlite_utils.Database, tmp_path: Path, aliases: object) -> None:
    path = write(
        tmp_path,
        "values.csv",
        "target,unit,year,value\nshanty_town,长沙市,2011,24278\nshanty_town,Zhuzhou City,2011,\"13,454\"\n",
    )
    result = import_panel_file(db, path, aliases=aliases)

    assert result.kind == "values"
    assert result.stored == 2
    assert values_of(db) == {
        ("shanty_town", "Changsha", 2011): 24278.0,
        ("shanty_town", "Zhuzhou", 2011): 13454.0,
    }


def test_long_values_unknown_unit_line(db: sqlite_utils.Database, tmp_path: Path, aliases: object) -> None:
    path = write(tmp_path, "values.csv", "target,unit,year,value\nshanty_town,Wuhan,2011,5\n")

    with pytest.raises(PanelError, match="line 2: unknown unit 'Wuhan'"):
        import_panel_file(db, path, aliases=aliases)
    assert db["target_values"].count == 0


def test_alias_duplicate_unit_year(db: sqlite_utils.Database, tmp_path: Path, aliases: object) -> None:
    # 长沙市 and Changsha are one unit, so the second row repeats the first.
    path = write(
        tmp_path,
        "values.csv",
        "target,unit,year,value\nshanty_town,长沙市,2011,1\nshanty_town,Changsha,2011,2\n",
    )

    with pytest.raises(PanelError, match="line 3: duplicate of line 2"):
        import_panel_file(db, path, aliases=aliases)


def test_target_named_by_alias(db: sqlite_utils.Database, tmp_path: Path) -> None:
    path = write(tmp_path, "values.csv", "target,unit,year,value\n棚户区改造,A,2011,1\n")
    import_panel_file(db, path)

    assert values_of(db) == {("shanty_town", "A", 2011): 1.0}


def test_skip_invalid_stores_valid_rows(db: sqlite_utils.Database, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "values.csv",
        "target,unit,year,value\nshanty_town,A,2011,1\nshanty_town,B,2011,many\nno_such,A,2011,3\n",
    )
    result = import_panel_file(db, path, skip_invalid=True)

    assert result.stored == 1
    assert result.skipped == [
        "line 3: value 'many' is not a number",
        "line 4: unknown target 'no_such' (declare it in targets.yaml)",
    ]


def test_error_in_one_file_stores_no_file(db: sqlite_utils.Database, tmp_path: Path) -> None:
    good = write(tmp_path, "good.csv", "target,unit,year,value\nshanty_town,A,2011,1\n")
    bad = write(tmp_path, "bad.csv", "target,unit,year,value\nshanty_town,A,2011,x\n")

    with pytest.raises(PanelError) as raised:
        import_panel_files(db, [good, bad])

    assert f"{bad}:" in str(raised.value)
    assert "line 2: value 'x' is not a number" in str(raised.value)
    assert db["target_values"].count == 0


# Wide values, CSV and Excel


WIDE = """\
target,unit,2011,2012年,2013
shanty_town,长沙市,24278,13158,
shanty_town,株洲,13454,,9000
"""


def test_wide_csv(db: sqlite_utils.Database, tmp_path: Path, aliases: object) -> None:
    result = import_panel_file(db, write(tmp_path, "wide.csv", WIDE), aliases=aliases)

    assert result.stored == 4
    assert values_of(db) == {
        ("shanty_town", "Changsha", 2011): 24278.0,
        ("shanty_town", "Changsha", 2012): 13158.0,
        ("shanty_town", "Zhuzhou", 2011): 13454.0,
        ("shanty_town", "Zhuzhou", 2013): 9000.0,
    }


def test_wide_excel(db: sqlite_utils.Database, tmp_path: Path, aliases: object) -> None:
    path = tmp_path / "wide.xlsx"
    frame = pd.DataFrame(
        [["长沙市", 24278, 13158], ["株洲市", 13454, None]], columns=["unit", 2011, 2012]
    )
    frame.to_excel(path, index=False)
    result = import_panel_file(db, path, aliases=aliases, target="shanty_town")

    assert result.stored == 3
    assert values_of(db)[("shanty_town", "Zhuzhou", 2011)] == 13454.0


def test_wide_excel_reports_rows(db: sqlite_utils.Database, tmp_path: Path) -> None:
    path = tmp_path / "wide.xlsx"
    frame = pd.DataFrame([["A", 1], ["B", "n.a."]], columns=["unit", 2011])
    frame.to_excel(path, index=False)

    with pytest.raises(PanelError, match="row 3, column 2011: value 'n.a.' is not a number"):
        import_panel_file(db, path, target="shanty_town")
    assert db["target_values"].count == 0


def test_wide_without_target_needs_option(db: sqlite_utils.Database, tmp_path: Path) -> None:
    path = write(tmp_path, "wide.csv", "unit,2011\nA,1\n")

    with pytest.raises(PanelError, match="--target"):
        import_panel_file(db, path)


def test_wide_duplicate_unit(db: sqlite_utils.Database, tmp_path: Path) -> None:
    path = write(tmp_path, "wide.csv", "unit,2011,2012\nA,1,2\nA,3,\n")

    with pytest.raises(PanelError, match="line 3, column 2011: duplicate of line 2"):
        import_panel_file(db, path, target="shanty_town")


# Evaluation forms


def test_form_stores_points_of_known_targets(db: sqlite_utils.Database, tmp_path: Path) -> None:
    result = import_panel_file(db, write(tmp_path, "form.csv", FORM), year=2013)

    assert result.kind == "form"
    assert points_of(db) == {("fdi", 2013): 9.0, ("shanty_town", 2013): 3.5}
    assert result.unlinked == ["line 4: 地区生产总值", "line 7: 城镇登记失业率"]
    assert "total: categories add up to 35" in result.checks


def test_form_subtotal_mismatch_per_category(db: sqlite_utils.Database, tmp_path: Path) -> None:
    broken = FORM.replace(",地区生产总值,20,", ",地区生产总值,18,").replace(",城镇登记失业率,2.5,", ",城镇登记失业率,3,")

    with pytest.raises(PanelError) as raised:
        import_panel_file(db, write(tmp_path, "form.csv", broken), year=2013, skip_invalid=True)

    message = str(raised.value)
    assert "category '经济发展' (line 5): items add up to 27, subtotal 29, difference -2" in message
    assert "category '社会发展' (line 8): items add up to 6.5, subtotal 6, difference +0.5" in message
    assert db["target_points"].count == 0


def test_form_total_mismatch(db: sqlite_utils.Database, tmp_path: Path) -> None:
    broken = FORM.replace("合计,,35,", "合计,,40,")

    with pytest.raises(PanelError, match=r"total \(line 9\): categories add up to 35, stated total 40, difference -5"):
        import_panel_file(db, write(tmp_path, "form.csv", broken), year=2013)


def test_form_year_column(db: sqlite_utils.Database, tmp_path: Path) -> None:
    text = "category,item,points,provider,year\neconomic,FDI,9,commerce,2014\neconomic,subtotal,9,,2014\n"
    import_panel_file(db, write(tmp_path, "form.csv", text))

    assert points_of(db) == {("fdi", 2014): 9.0}


def test_form_without_year_raises(db: sqlite_utils.Database, tmp_path: Path) -> None:
    with pytest.raises(PanelError, match="line 3: no year for this form"):
        import_panel_file(db, write(tmp_path, "form.csv", FORM))


def test_form_points_with_suffix(db: sqlite_utils.Database, tmp_path: Path) -> None:
    text = "category,item,points\neconomic,FDI,９分\neconomic,subtotal,9分\n"
    import_panel_file(db, write(tmp_path, "form.csv", text), year=2013)

    assert points_of(db) == {("fdi", 2013): 9.0}


def test_unrecognized_header(db: sqlite_utils.Database, tmp_path: Path) -> None:
    with pytest.raises(PanelError, match="no header row found"):
        import_panel_file(db, write(tmp_path, "odd.csv", "a,b\n1,2\n"))


# The command


@pytest.fixture
def study(runner: CliRunner, tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    assert runner.invoke(cli, ["init", str(folder)], prog_name="qualkit").exit_code == 0
    write(folder, "targets.yaml", TARGETS)
    config = folder / "qualkit.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "[scores]\n", f'[scores]\nunit_aliases = "{SAMPLE_ALIASES.as_posix()}"\n'
        ),
        encoding="utf-8",
    )
    return folder


@pytest.fixture
def invoke_in(runner: CliRunner, study: Path) -> Callable[..., Result]:
    def invoke(*args: str) -> Result:
        return runner.invoke(cli, ["--project", str(study), "scores", *args], prog_name="qualkit")

    return invoke


def test_import_command_wide_with_config_aliases(
    invoke_in: Callable[..., Result], study: Path, row_count: Callable[[Path, str], int]
) -> None:
    result = invoke_in("import", str(write(study, "wide.csv", WIDE)), "--format", "csv")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1].split(",")[1:4] == ["values", "4", "0"]
    assert row_count(study / "qualkit.db", "target_values") == 4


def test_import_command_bad_form_stores_nothing(
    invoke_in: Callable[..., Result], study: Path, row_count: Callable[[Path, str], int]
) -> None:
    values = write(study, "values.csv", "target,unit,year,value\nshanty_town,长沙市,2013,1\n")
    form = write(study, "form.csv", FORM.replace(",小计,6,", ",小计,7,"))
    result = invoke_in("import", str(values), str(form), "--year", "2013")

    assert result.exit_code == 1
    assert "difference -1" in result.stderr
    assert row_count(study / "qualkit.db", "target_values") == 0
    assert row_count(study / "qualkit.db", "target_points") == 0


def test_import_command_text_value_stores_nothing(
    invoke_in: Callable[..., Result], study: Path, row_count: Callable[[Path, str], int]
) -> None:
    path = write(study, "values.csv", "target,unit,year,value\nshanty_town,长沙,2011,1\nshanty_town,株洲,2011,about 3\n")
    result = invoke_in("import", str(path))

    assert result.exit_code == 1
    assert "line 3: value 'about 3' is not a number" in result.stderr
    assert row_count(study / "qualkit.db", "target_values") == 0


def test_import_command_reports_unlinked_items(invoke_in: Callable[..., Result], study: Path) -> None:
    result = invoke_in("import", str(write(study, "form.csv", FORM)), "--year", "2013")

    assert result.exit_code == 0, result.stderr
    assert "no target named by line 4: 地区生产总值" in result.stderr
