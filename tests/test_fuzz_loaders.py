"""Fuzzing of the loaders for codebooks, targets, manifests, panel files and queries.

Each loader gets damaged copies of a valid file or generated tables of
awkward cells, and must either load or raise a ``QualkitError``. Panel
imports that fail must leave the database as it was, and stored values
must be finite numbers. The boolean query parser must round-trip the
queries that a small renderer writes.

The budget is fixed and derandomized for CI; QUALKIT_FUZZ_EXAMPLES raises it.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from qualkit import store
from qualkit.cases import read_manifest
from qualkit.codebook import load_codebook, resolve_codebook_path
from qualkit.errors import InputError, QualkitError
from qualkit.panel import import_panel_files
from qualkit.panel_files import load_unit_aliases, read_table
from qualkit.queries import And, CodeTerm, Not, Or, parse_expression
from qualkit.targets import load_targets, store_targets

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "interviews_sample"
EXAMPLES = int(os.environ.get("QUALKIT_FUZZ_EXAMPLES", "30"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

CODEBOOK_TEXT = resolve_codebook_path("target_bargaining").read_text(encoding="utf-8")
TARGETS_TEXT = (SAMPLE / "targets.yaml").read_text(encoding="utf-8")

# Text that means something to YAML or to the validators: indentation,
# anchors and aliases, tags, flow collections, duplicate keys, control
# characters, and values of the wrong type.
YAML_PIECES = [
    "\n", "  ", "\t", "- ", ": ", "? ", "&a ", "*a", "!!python/object:os.system ", "!!binary ",
    "{", "}", "[", "]", "'", '"', "#", "\x00", "\x1b", "\ufeff", "id: x\n", "id: x\nid: y\n",
    "keywords: [", "patterns: [{LOWER: {REGEX: '(a+)+$'}}]", "regex: ['(']", "parent: nosuch\n",
    "- id: strategy\n", "~", "null", "1e999", "2016-13-45", "<<: *a", "\u2028", "😀",
]


@st.composite
def damaged_text(draw: st.DrawFn, text: str, pieces: list[str]) -> str:
    """Apply one to five edits: delete lines, repeat lines, insert pieces, cut the text."""
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 5))):
        index = draw(st.integers(0, max(len(lines) - 1, 0)))
        edit = draw(st.sampled_from(["delete", "repeat", "insert", "replace", "truncate"]))
        if edit == "delete" and lines:
            del lines[index : index + draw(st.integers(1, 8))]
        elif edit == "repeat" and lines:
            lines[index:index] = lines[index : index + draw(st.integers(1, 8))]
        elif edit in ("insert", "replace") and lines:
            line = lines[index]
            column = draw(st.integers(0, len(line)))
            piece = draw(st.one_of(st.sampled_from(pieces), st.text(max_size=8)))
            end = column + (draw(st.integers(0, 10)) if edit == "replace" else 0)
            lines[index] = line[:column] + piece + line[end:]
        elif edit == "truncate":
            del lines[index:]
    return "".join(lines)


def _outcome(error: QualkitError | None) -> None:
    event("loaded" if error is None else f"rejected: {type(error).__name__}")


# Codebook and targets ---------------------------------------------------------


# Each loaded codebook compiles its rules with spaCy, so fewer examples are run.
@settings(FUZZ, max_examples=max(EXAMPLES // 2, 10))
@given(text=damaged_text(CODEBOOK_TEXT, YAML_PIECES))
def test_damaged_codebook_fails_cleanly(tmp_path: Path, text: str) -> None:
    path = tmp_path / "codebook.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_codebook(path)
    except QualkitError as error:
        assert isinstance(error, InputError)
        assert error.path == str(path)
        _outcome(error)
        return
    _outcome(None)


@FUZZ
@given(text=damaged_text(TARGETS_TEXT, YAML_PIECES))
def test_damaged_targets_fail_cleanly(tmp_path: Path, text: str) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        targets = load_targets(path)
    except QualkitError as error:
        assert isinstance(error, InputError)
        _outcome(error)
        return
    _outcome(None)
    db = store.open_database(tmp_path / "targets.db")
    try:
        with store.transaction(db):
            store_targets(db, targets)
    finally:
        db.close()


# Any YAML value, so every field also gets the wrong type.
YAML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8), st.dates()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
TARGET_FIELDS = ("id", "name", "category", "higher_is_harder", "order", "options", "note", "aliases")
CODE_FIELDS = ("id", "label", "parent", "definition", "when_to_use", "when_not_to_use", "example", "rules", "replaces")


@st.composite
def mostly_valid(draw: st.DrawFn, fields: tuple[str, ...], valid: dict[str, Any]) -> dict[str, Any]:
    """Draw an entry whose fields are valid, except one to three of any type."""
    entry = dict(valid)
    for key in draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True)):
        entry[key] = draw(YAML_VALUES)
    return entry


@FUZZ
@given(
    entries=st.lists(
        mostly_valid(TARGET_FIELDS, {"id": "fdi", "name": "Foreign direct investment", "category": "economic"}),
        min_size=1,
        max_size=2,
    )
)
def test_mistyped_targets_fail_cleanly(tmp_path: Path, entries: list[dict[str, Any]]) -> None:
    import yaml

    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump({"targets": entries}, allow_unicode=True), encoding="utf-8")
    try:
        load_targets(path)
    except InputError as error:
        _outcome(error)
        return
    _outcome(None)


@FUZZ
@given(
    codes=st.lists(
        mostly_valid(
            CODE_FIELDS,
            {
                "id": "strategy",
                "label": "Bargaining strategy",
                "definition": "A way to obtain targets that suit the lower level.",
                "when_to_use": "Bargaining is described.",
                "when_not_to_use": "No bargaining.",
                "example": "We talked the targets down.",
                "rules": {"en": {"keywords": ["talk down"]}},
            },
        ),
        min_size=1,
        max_size=2,
    ),
    header=st.fixed_dictionaries({"id": st.just("fuzz"), "version": st.one_of(st.just("1"), YAML_VALUES)}),
)
def test_mistyped_codebook_fails_cleanly(
    tmp_path: Path, codes: list[dict[str, Any]], header: dict[str, Any]
) -> None:
    import yaml

    path = tmp_path / "codebook.yaml"
    path.write_text(yaml.safe_dump({"codebook": header, "codes": codes}, allow_unicode=True), encoding="utf-8")
    try:
        load_codebook(path)
    except InputError as error:
        _outcome(error)
        return
    _outcome(None)


@FUZZ
@given(data=st.binary(max_size=512))
def test_random_bytes_codebook_fail_cleanly(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "codebook.yaml"
    path.write_bytes(data)
    with pytest.raises(QualkitError):
        load_codebook(path)


# Tables: manifest, panel files, unit aliases -------------------------------------

CELLS = [
    "", " ", "Changsha", "长沙市", "Zhuzhou", "Changsha City", "shanty_town", "Urban shanty town transformation",
    "fdi", "nosuch", "2011", "2012", "2011年", "２０１２", "1e308", "1e309", "-1e309", "inf", "-inf", "nan",
    "NaN", "1,234", "1,234.5", "12,34", "-", "—", "0", "-0", "3.5分", "3 points", "subtotal", "小计", "total",
    "合计", "=1+1", "@SUM(A1)", '"', "a\nb", "\x00", "\ufeff", "9" * 400, "0x10", "1_000", "Ⅻ", "١٢",
    "city", "county", "Hunan", "2016-05-04", "2016-13-45", "x.md",
]
LAYOUTS = {
    "long": ["target", "unit", "year", "value"],
    "wide": ["target", "unit", "2011", "2012年", "2013"],
    "points": ["target", "year", "points"],
    "form": ["category", "item", "points", "year"],
    "aliases": ["unit", "alias"],
    "manifest": ["id", "province", "level", "date", "file"],
}


@st.composite
def tables(draw: st.DrawFn, layout: str) -> list[list[str]]:
    header = list(LAYOUTS[layout])
    if draw(st.booleans()):
        header.append(draw(st.sampled_from(["extra", "Target", " UNIT ", "value", ""])))
    cell = st.one_of(st.sampled_from(CELLS), st.text(max_size=6))
    rows = draw(st.lists(st.lists(cell, min_size=len(header) - 1, max_size=len(header) + 1), max_size=8))
    return [header, *rows]


def _csv_bytes(rows: list[list[str]], encoding: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode(encoding, errors="replace")


@pytest.fixture
def panel_db(tmp_path: Path) -> Any:
    db = store.open_database(tmp_path / "panel.db")
    with store.transaction(db):
        store_targets(db, load_targets(SAMPLE / "targets.yaml"))
    yield db
    db.close()


@FUZZ
@given(
    layout=st.sampled_from(["long", "wide", "points", "form"]),
    data=st.data(),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]),
)
def test_panel_csv_fails_cleanly(
    panel_db: Any, tmp_path: Path, layout: str, data: st.DataObject, encoding: str
) -> None:
    path = tmp_path / f"{layout}.csv"
    path.write_bytes(_csv_bytes(data.draw(tables(layout), label="rows"), encoding))
    before = store.content_hash(panel_db)
    try:
        with store.transaction(panel_db):
            import_panel_files(panel_db, [path], target="shanty_town", year=2012)
    except QualkitError as error:
        _outcome(error)
        assert store.content_hash(panel_db) == before
        return
    _outcome(None)
    for table, column in (("target_values", "value"), ("target_points", "points")):
        for (number,) in panel_db.execute(f"SELECT {column} FROM {table}"):
            assert isinstance(number, float | int)
            assert math.isfinite(number), (table, number)


# Writing .xlsx files is slow, so fewer examples are run.
@settings(FUZZ, max_examples=max(EXAMPLES // 4, 10))
@given(layout=st.sampled_from(["long", "wide", "points"]), data=st.data())
def test_panel_excel_fails_cleanly(panel_db: Any, tmp_path: Path, layout: str, data: st.DataObject) -> None:
    import openpyxl
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    rows = data.draw(tables(layout), label="rows")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        # openpyxl rejects control characters in cells, which Excel cannot store either.
        sheet.append([ILLEGAL_CHARACTERS_RE.sub("", cell) for cell in row])
    path = tmp_path / f"{layout}.xlsx"
    workbook.save(path)
    before = store.content_hash(panel_db)
    try:
        with store.transaction(panel_db):
            import_panel_files(panel_db, [path], target="shanty_town")
    except QualkitError as error:
        _outcome(error)
        assert store.content_hash(panel_db) == before
        return
    _outcome(None)


def _xlsx_seed() -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["target", "unit", "year", "value"])
    sheet.append(["shanty_town", "Changsha", 2011, 24278])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


XLSX_SEED = _xlsx_seed()


@FUZZ
@given(data=st.data())
def test_damaged_excel_fails_cleanly(tmp_path: Path, data: st.DataObject) -> None:
    damaged = bytearray(XLSX_SEED)
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        position = data.draw(st.integers(0, len(damaged) - 1), label="position")
        if data.draw(st.booleans(), label="truncate"):
            del damaged[position:]
            break
        damaged[position] ^= data.draw(st.integers(1, 255), label="mask")
    path = tmp_path / "damaged.xlsx"
    path.write_bytes(bytes(damaged))
    try:
        read_table(path)
    except QualkitError as error:
        _outcome(error)
        return
    _outcome(None)


@FUZZ
@given(data=st.binary(max_size=1024), suffix=st.sampled_from([".csv", ".xlsx"]))
def test_panel_random_bytes_fail_cleanly(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    try:
        read_table(path)
    except QualkitError as error:
        _outcome(error)
        return
    _outcome(None)


@FUZZ
@given(data=st.data())
def test_unit_aliases_fail_cleanly(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "aliases.csv"
    path.write_bytes(_csv_bytes(data.draw(tables("aliases"), label="rows"), "utf-8"))
    try:
        aliases = load_unit_aliases(path)
    except QualkitError as error:
        _outcome(error)
        return
    _outcome(None)
    for name in aliases.units:
        assert aliases.canonical(name) == name


@FUZZ
@given(data=st.data(), encoding=st.sampled_from(["utf-8", "utf-16", "gb18030", "cp1252"]))
def test_manifest_fails_cleanly(tmp_path: Path, data: st.DataObject, encoding: str) -> None:
    path = tmp_path / "interviews.csv"
    path.write_bytes(_csv_bytes(data.draw(tables("manifest"), label="rows"), encoding))
    try:
        rows = read_manifest(path)
    except QualkitError as error:
        _outcome(error)
        return
    _outcome(None)
    assert all(isinstance(row["id"], str) and row["id"] for row in rows)


# Boolean queries ----------------------------------------------------------------

CODE_IDS = st.from_regex(r"[a-z][a-z0-9_]{0,6}(\.[a-z][a-z0-9_]{0,6}){0,2}", fullmatch=True).filter(
    lambda code: code not in ("and", "or", "not")
)


def _expressions() -> st.SearchStrategy[Any]:
    return st.recursive(
        CODE_IDS.map(CodeTerm),
        lambda inner: st.one_of(
            inner.map(Not),
            st.lists(inner, min_size=2, max_size=4).map(lambda items: And(tuple(items))),
            st.lists(inner, min_size=2, max_size=4).map(lambda items: Or(tuple(items))),
        ),
        max_leaves=12,
    )


def render(node: Any) -> str:
    """Write an expression with every compound operand in parentheses."""
    if isinstance(node, CodeTerm):
        return node.code
    if isinstance(node, Not):
        inner = render(node.operand)
        return f"NOT {inner}" if isinstance(node.operand, (CodeTerm, Not)) else f"NOT ({inner})"
    word = " AND " if isinstance(node, And) else " OR "
    parts = [
        render(operand) if isinstance(operand, (CodeTerm, Not)) else f"({render(operand)})"
        for operand in node.operands
    ]
    return word.join(parts)


@FUZZ
@given(node=_expressions())
def test_query_round_trips(node: Any) -> None:
    assert parse_expression(render(node)) == node


@settings(FUZZ, max_examples=EXAMPLES * 2)
@given(
    text=st.lists(
        st.one_of(st.sampled_from(["(", ")", "AND", "or", "NOT", " ", "\t", "\n", "a", "b.c", "（", "\x00"]), st.text(max_size=4)),
        max_size=20,
    ).map("".join)
)
def test_random_query_fails_cleanly(text: str) -> None:
    try:
        parse_expression(text)
    except InputError as error:
        assert "invalid query at character" in str(error)
