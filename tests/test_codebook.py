"""Tests for qualkit.codebook: the bundled codebook and errors in bad ones."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from qualkit.codebook import Codebook, load_codebook
from qualkit.errors import CodebookError

REQUIRED_IDS = (
    "strategy.underpromise",
    "strategy.reframing",
    "strategy.risk_minimization",
    "channel.formal.consultation",
    "channel.formal.appeal",
    "channel.informal.inspection",
    "channel.informal.patron",
    "channel.informal.department",
    "target.veto",
    "target.economic",
    "target.social_welfare",
    "target.environment.preservation",
    "target.environment.pollution_control",
)
LEAF_TEXT_FIELDS = ("definition", "when_to_use", "when_not_to_use", "example")

# A valid codebook. Each case below changes one line of it. Line numbers:
#   5 "- id: strategy", 8 "- id: strategy.lowball", 10 "parent:",
#   14 "example:", 18 the regex item, 20 the pattern item.
VALID = """\
codebook:
  id: tiny
  version: "1"
codes:
  - id: strategy
    label: Strategy
    definition: A way to bargain.
  - id: strategy.lowball
    label: Lowball
    parent: strategy
    definition: Asking for a low target.
    when_to_use: A low bid is described.
    when_not_to_use: The target was simply out of reach.
    example: We asked for less.
    rules:
      en:
        keywords: [lowball]
        regex: ['\\blow bid\\b']
        patterns:
          - [{LEMMA: ask}, {LOWER: for}, {LOWER: less}]
      zh:
        keywords: [报低一点]
"""

BAD_CODEBOOKS = [
    pytest.param(
        "    parent: strategy\n",
        "    parent: strategi\n",
        10,
        "unknown parent",
        id="unknown-parent",
    ),
    pytest.param(
        "  - id: strategy.lowball\n",
        "  - id: strategy\n",
        8,
        "duplicate code id",
        id="duplicate-id",
    ),
    pytest.param(
        "    example: We asked for less.\n",
        "    example: We asked for less.\n    label: Lowball again\n",
        15,
        "duplicate key 'label'",
        id="duplicate-yaml-key",
    ),
    pytest.param(
        "['\\blow bid\\b']",
        "['low (bid']",
        18,
        "does not compile",
        id="invalid-regex",
    ),
    pytest.param(
        "[{LEMMA: ask}, {LOWER: for}, {LOWER: less}]",
        "[{NOSUCHATTR: x}]",
        20,
        "spaCy Matcher pattern",
        id="invalid-matcher-pattern",
    ),
    pytest.param(
        "    when_not_to_use: The target was simply out of reach.\n",
        "",
        8,
        "has no when_not_to_use",
        id="leaf-without-when-not-to-use",
    ),
    pytest.param(
        "  - id: strategy.lowball\n",
        "  - id: Strategy.Low-ball\n",
        8,
        "invalid code id",
        id="bad-id-syntax",
    ),
]


def test_bundled_codebook_loads(bundled_codebook: Codebook) -> None:
    assert bundled_codebook.id == "target_bargaining"


@pytest.mark.parametrize("code_id", [pytest.param(i, id=i) for i in REQUIRED_IDS])
def test_bundled_codebook_has_code(bundled_codebook: Codebook, code_id: str) -> None:
    assert code_id in bundled_codebook.codes


@pytest.mark.parametrize("code_id", [pytest.param(i, id=i) for i in REQUIRED_IDS])
def test_required_code_is_leaf(bundled_codebook: Codebook, code_id: str) -> None:
    assert bundled_codebook.is_leaf(code_id)


@pytest.mark.parametrize("field", [pytest.param(f, id=f) for f in LEAF_TEXT_FIELDS])
def test_every_leaf_has_text_field(bundled_codebook: Codebook, field: str) -> None:
    leaves = [
        c for c in bundled_codebook.codes.values() if bundled_codebook.is_leaf(c.id)
    ]
    missing = [code.id for code in leaves if not getattr(code, field)]

    assert missing == []


@pytest.mark.parametrize("language", [pytest.param(x, id=x) for x in ("en", "zh")])
def test_every_leaf_has_rules(bundled_codebook: Codebook, language: str) -> None:
    leaves = [
        c for c in bundled_codebook.codes.values() if bundled_codebook.is_leaf(c.id)
    ]
    missing = [
        code.id
        for code in leaves
        if language not in code.rules or code.rules[language].is_empty()
    ]

    assert missing == []


def test_bundled_codebook_loads_quickly(bundled_codebook: Codebook) -> None:
    # The session fixture has imported spaCy already, so this times the
    # codebook's own checks. Building a spaCy pipeline for each code's
    # patterns once made this load take about 6 s.
    started = time.perf_counter()
    load_codebook(bundled_codebook.path)

    assert time.perf_counter() - started < 2.0


def test_valid_codebook_loads(tmp_path: Path) -> None:
    path = tmp_path / "codebook.yaml"
    path.write_text(VALID, encoding="utf-8")

    assert list(load_codebook(path).codes) == ["strategy", "strategy.lowball"]


@pytest.mark.parametrize(("old", "new", "line", "message"), BAD_CODEBOOKS)
def test_bad_codebook_error(
    tmp_path: Path, old: str, new: str, line: int, message: str
) -> None:
    assert old in VALID, "the case must change a line of VALID"
    path = tmp_path / "codebook.yaml"
    path.write_text(VALID.replace(old, new, 1), encoding="utf-8")

    with pytest.raises(CodebookError) as raised:
        load_codebook(path)

    text = str(raised.value)
    assert str(path) in text
    assert f"line {line}:" in text
    assert message in text


def test_missing_codebook_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    with pytest.raises(CodebookError, match="not found"):
        load_codebook(path)


# Codebook versions: replaces, diff, apply, show, check

TRANSCRIPT = """\
---
id: E01
province: Hunan
level: city
---

Respondent: We asked for a low figure. We called it a green project. We kept some capacity back. The environment target is a veto target.
"""
LEAF_CODE = """\
  - id: {id}
    label: {label}
    parent: {parent}
    definition: {definition}
    when_to_use: When {id} applies.
    when_not_to_use: When another code applies.
    example: An example of {id}.
"""
PARENT_CODE = """\
  - id: {id}
    label: {id}
    definition: Parent code {id}.
"""
# Version 1: three strategies and a veto target.
V1_LEAVES = {
    "strategy.lowball": "strategy",
    "strategy.reframing": "strategy",
    "strategy.hiding": "strategy",
    "target.veto": "target",
}
# Version 2: lowball renamed, reframing and hiding merged, veto dropped,
# the environment target added.
V2_LEAVES = {
    "strategy.underpromise": "strategy",
    "strategy.shaping": "strategy",
    "target.environment": "target",
}
V2_EXTRA = {
    "strategy.underpromise": "    replaces: strategy.lowball\n",
    "strategy.shaping": "    replaces: [strategy.reframing, strategy.hiding]\n",
}


def versioned_codebook(
    version: str,
    leaves: dict[str, str],
    extra: dict[str, str] | None = None,
    definitions: dict[str, str] | None = None,
) -> str:
    parts = [f'codebook:\n  id: study\n  version: "{version}"\ncodes:\n']
    for parent in ("strategy", "target"):
        parts.append(PARENT_CODE.format(id=parent))
        for code_id, owner in leaves.items():
            if owner != parent:
                continue
            definition = (definitions or {}).get(code_id, f"Code {code_id}.")
            parts.append(
                LEAF_CODE.format(
                    id=code_id, label=code_id, parent=parent, definition=definition
                )
            )
            parts.append((extra or {}).get(code_id, ""))
    return "".join(parts)


def run(runner: Any, db: Path, *args: str, coder: str = "alice") -> Any:
    from qualkit.cli import cli

    return runner.invoke(
        cli, ["--db", str(db), *args], prog_name="qualkit", env={"QUALKIT_CODER": coder}
    )


def table(db: Path, sql: str) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


@pytest.fixture
def versions(tmp_path: Path) -> dict[str, Path]:
    """Codebook files v1 and v2 (v2 renames, merges, drops and adds codes)."""
    v1 = tmp_path / "v1.yaml"
    v1.write_text(versioned_codebook("1", V1_LEAVES), encoding="utf-8")
    v2 = tmp_path / "v2.yaml"
    v2.write_text(versioned_codebook("2", V2_LEAVES, V2_EXTRA), encoding="utf-8")
    return {"v1": v1, "v2": v2}


@pytest.fixture
def coded_db(tmp_path: Path, runner: Any, versions: dict[str, Path]) -> Path:
    """E01 coded under v1: one coding per sentence, and hiding on reframing's sentence too."""
    transcript = tmp_path / "E01.md"
    transcript.write_text(TRANSCRIPT, encoding="utf-8")
    db = tmp_path / "qualkit.db"
    assert run(runner, db, "import", str(transcript)).exit_code == 0
    assert run(runner, db, "codebook", "apply", str(versions["v1"])).exit_code == 0
    for code, segment in (
        ("strategy.lowball", 0),
        ("strategy.reframing", 1),
        ("strategy.hiding", 2),
        ("target.veto", 3),
        ("strategy.hiding", 1),
    ):
        result = run(
            runner, db, "code", "add", "E01", "--code", code, "--segment", str(segment)
        )
        assert result.exit_code == 0, result.output
    return db


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("    replaces: strategy.old\n", ("strategy.old",), id="one-id"),
        pytest.param(
            "    replaces: [strategy.a, strategy.b]\n",
            ("strategy.a", "strategy.b"),
            id="list",
        ),
    ],
)
def test_replaces_loaded(tmp_path: Path, line: str, expected: tuple[str, ...]) -> None:
    path = tmp_path / "codebook.yaml"
    path.write_text(
        VALID.replace(
            "    example: We asked for less.\n",
            "    example: We asked for less.\n" + line,
        ),
        encoding="utf-8",
    )

    assert load_codebook(path).codes["strategy.lowball"].replaces == expected


BAD_REPLACES = [
    pytest.param(
        "    replaces: Old-Code\n",
        "names an invalid code id 'Old-Code'",
        id="invalid-id",
    ),
    pytest.param("    replaces: strategy.lowball\n", "replaces itself", id="itself"),
    pytest.param(
        "    replaces: strategy\n",
        "which is still a code of this codebook",
        id="live-code",
    ),
    pytest.param("    replaces: {a: b}\n", "must be a code id or a list", id="mapping"),
]


@pytest.mark.parametrize(("line", "message"), BAD_REPLACES)
def test_bad_replaces(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "codebook.yaml"
    path.write_text(
        VALID.replace(
            "    example: We asked for less.\n",
            "    example: We asked for less.\n" + line,
        ),
        encoding="utf-8",
    )

    with pytest.raises(CodebookError) as raised:
        load_codebook(path)

    assert message in str(raised.value)
    assert "line " in str(raised.value)


def test_two_codes_replace_one(tmp_path: Path) -> None:
    extra = {
        "strategy.underpromise": "    replaces: strategy.lowball\n",
        "strategy.shaping": "    replaces: strategy.lowball\n",
    }
    path = tmp_path / "split.yaml"
    path.write_text(versioned_codebook("2", V2_LEAVES, extra), encoding="utf-8")

    with pytest.raises(CodebookError, match="both replace 'strategy.lowball'"):
        load_codebook(path)


def test_diff_lists_changes(
    runner: Any, tmp_path: Path, versions: dict[str, Path]
) -> None:
    result = run(
        runner,
        tmp_path / "q.db",
        "codebook",
        "diff",
        str(versions["v1"]),
        str(versions["v2"]),
        "--format",
        "json",
    )
    changes = {
        (row["change"], row["code"], row["replaces"])
        for row in json.loads(result.stdout)
    }

    assert result.exit_code == 0, result.output
    assert changes == {
        ("renamed", "strategy.underpromise", "strategy.lowball"),
        ("merged", "strategy.shaping", "strategy.reframing, strategy.hiding"),
        ("added", "target.environment", ""),
        ("removed", "target.veto", ""),
    }


def test_diff_reports_edited_field(
    runner: Any, tmp_path: Path, versions: dict[str, Path]
) -> None:
    edited = tmp_path / "v1b.yaml"
    edited.write_text(
        versioned_codebook(
            "1b", V1_LEAVES, definitions={"target.veto": "A target that vetoes."}
        ),
        encoding="utf-8",
    )
    result = run(
        runner,
        tmp_path / "q.db",
        "codebook",
        "diff",
        str(versions["v1"]),
        str(edited),
        "--format",
        "json",
    )

    assert json.loads(result.stdout) == [
        {
            "change": "changed",
            "code": "target.veto",
            "replaces": "",
            "detail": "changed: definition",
        }
    ]


def test_diff_missing_file(
    runner: Any, tmp_path: Path, versions: dict[str, Path]
) -> None:
    result = run(
        runner,
        tmp_path / "q.db",
        "codebook",
        "diff",
        str(versions["v1"]),
        str(tmp_path / "v9.yaml"),
    )

    assert result.exit_code == 1
    assert "codebook file not found" in result.stderr


def test_apply_refuses_dropped_code_with_codings(
    runner: Any, coded_db: Path, versions: dict[str, Path]
) -> None:
    before = (
        table(coded_db, "SELECT * FROM codes ORDER BY id"),
        table(coded_db, "SELECT * FROM codings ORDER BY id"),
    )
    result = run(runner, coded_db, "codebook", "apply", str(versions["v2"]))

    assert result.exit_code == 1
    assert "target.veto (1 accepted)" in result.stderr
    assert (
        table(coded_db, "SELECT * FROM codes ORDER BY id"),
        table(coded_db, "SELECT * FROM codings ORDER BY id"),
    ) == before


@pytest.fixture
def applied_db(runner: Any, coded_db: Path, versions: dict[str, Path]) -> Path:
    result = run(runner, coded_db, "codebook", "apply", str(versions["v2"]), "--force")
    assert result.exit_code == 0, result.output
    return coded_db


def test_apply_carries_renamed_codings(applied_db: Path) -> None:
    assert table(
        applied_db, "SELECT id, code_id, codebook_version FROM codings WHERE id = 1"
    ) == [(1, "strategy.underpromise", "1")]


def test_apply_carries_merged_codings(applied_db: Path) -> None:
    rows = table(
        applied_db,
        "SELECT code_id, quote FROM codings WHERE code_id = 'strategy.shaping' ORDER BY start_offset",
    )

    assert rows == [
        ("strategy.shaping", "We called it a green project."),
        ("strategy.shaping", "We kept some capacity back."),
    ]


def test_apply_forced_keeps_dropped_codings(applied_db: Path) -> None:
    assert table(
        applied_db,
        "SELECT c.code_id, d.active FROM codings c JOIN codes d ON d.id = c.code_id WHERE c.code_id = 'target.veto'",
    ) == [("target.veto", 0)]


def test_apply_marks_replaced_codes_inactive(applied_db: Path) -> None:
    rows = table(applied_db, "SELECT id FROM codes WHERE active = 0 ORDER BY id")

    assert rows == [
        ("strategy.hiding",),
        ("strategy.lowball",),
        ("strategy.reframing",),
        ("target.veto",),
    ]


def test_new_coding_gets_new_version(runner: Any, applied_db: Path) -> None:
    run(
        runner,
        applied_db,
        "code",
        "add",
        "E01",
        "--code",
        "target.environment",
        "--segment",
        "3",
    )

    assert table(
        applied_db,
        "SELECT codebook_version FROM codings WHERE code_id = 'target.environment'",
    ) == [("2",)]


def test_undo_after_apply_restores_rows(
    runner: Any, coded_db: Path, versions: dict[str, Path]
) -> None:
    before = [
        table(coded_db, f"SELECT * FROM {name} ORDER BY 1, 2")
        for name in ("codes", "codebooks", "codings")
    ]
    run(runner, coded_db, "codebook", "apply", str(versions["v2"]), "--force")
    result = run(runner, coded_db, "undo")

    assert result.exit_code == 0, result.output
    assert [
        table(coded_db, f"SELECT * FROM {name} ORDER BY 1, 2")
        for name in ("codes", "codebooks", "codings")
    ] == before


def test_apply_dry_run_changes_nothing(
    runner: Any, coded_db: Path, versions: dict[str, Path]
) -> None:
    before = table(coded_db, "SELECT * FROM codings ORDER BY id")
    result = run(
        runner,
        coded_db,
        "codebook",
        "apply",
        str(versions["v2"]),
        "--dry-run",
        "--format",
        "json",
    )
    plan = {row["code"]: row["codings"] for row in json.loads(result.stdout)}

    assert result.exit_code == 0
    assert plan == {
        "strategy.underpromise": 1,
        "strategy.shaping": 3,
        "target.environment": 0,
        "target.veto": 1,
    }
    assert table(coded_db, "SELECT * FROM codings ORDER BY id") == before


def test_autocode_store_carries_codings(
    coded_db: Path, versions: dict[str, Path]
) -> None:
    from qualkit import store
    from qualkit.codebook_versions import store_codebook

    db = store.open_database(coded_db)
    try:
        with store.transaction(db):
            carried = store_codebook(db, load_codebook(versions["v2"]))
        coders = db.execute(
            "SELECT DISTINCT coder FROM audit_log WHERE command = 'codebook store'"
        ).fetchall()
    finally:
        db.close()

    assert carried == {
        "strategy.lowball": 1,
        "strategy.reframing": 1,
        "strategy.hiding": 2,
    }
    assert coders == [("qualkit",)]


def test_show_tree(runner: Any, coded_db: Path) -> None:
    result = run(runner, coded_db, "codebook", "show")
    lines = result.stdout.splitlines()

    assert result.exit_code == 0
    assert lines[1].split()[:5] == ["strategy", "0", "0", "0", "4"]
    assert lines[2].split()[:2] == ["├─", "strategy.lowball"]
    assert lines[4].split()[:6] == ["└─", "strategy.hiding", "0", "2", "0", "2"]


def test_show_json_counts(runner: Any, coded_db: Path) -> None:
    result = run(runner, coded_db, "codebook", "show", "--format", "json")
    tree = {
        row["code"]: (row["depth"], row["accepted"], row["with_children"])
        for row in json.loads(result.stdout)
    }

    assert tree == {
        "strategy": (0, 0, 4),
        "strategy.lowball": (1, 1, 1),
        "strategy.reframing": (1, 1, 1),
        "strategy.hiding": (1, 2, 2),
        "target": (0, 0, 1),
        "target.veto": (1, 1, 1),
    }


def test_show_empty_database(runner: Any, tmp_path: Path) -> None:
    from qualkit import store

    store.open_database(tmp_path / "q.db").close()
    result = run(runner, tmp_path / "q.db", "codebook", "show")

    assert result.exit_code == 0
    assert "No codebook is stored" in result.stdout


def test_check_clean(runner: Any, coded_db: Path, versions: dict[str, Path]) -> None:
    result = run(runner, coded_db, "codebook", "check", str(versions["v1"]))

    assert result.exit_code == 0
    assert "no problems found" in result.stdout


def test_check_dropped_code_fails(runner: Any, coded_db: Path, tmp_path: Path) -> None:
    dropped = tmp_path / "dropped.yaml"
    dropped.write_text(
        versioned_codebook(
            "2", {k: v for k, v in V1_LEAVES.items() if k != "strategy.reframing"}
        ),
        encoding="utf-8",
    )
    result = run(
        runner, coded_db, "codebook", "check", str(dropped), "--format", "json"
    )

    assert result.exit_code == 1
    assert json.loads(result.stdout) == [
        {
            "level": "error",
            "code": "strategy.reframing",
            "message": "dropped without 'replaces:' but has 1 coding",
        }
    ]


def test_check_warns_shared_keyword(
    runner: Any, coded_db: Path, tmp_path: Path
) -> None:
    rules = "    rules:\n      en:\n        keywords: [green project]\n"
    shared = tmp_path / "shared.yaml"
    shared.write_text(
        versioned_codebook(
            "1", V1_LEAVES, {"strategy.reframing": rules, "strategy.hiding": rules}
        ),
        encoding="utf-8",
    )
    result = run(
        runner,
        coded_db,
        "codebook",
        "check",
        str(shared),
        "--strict",
        "--format",
        "json",
    )

    assert result.exit_code == 1
    assert json.loads(result.stdout) == [
        {
            "level": "warning",
            "code": "strategy.reframing",
            "message": "en keyword 'green project' also suggests strategy.hiding",
        }
    ]


def test_check_warns_overlapping_codings(
    runner: Any, coded_db: Path, versions: dict[str, Path]
) -> None:
    connection = sqlite3.connect(coded_db)
    with connection:
        connection.execute(
            "INSERT INTO codings (source_id, start_offset, end_offset, quote, code_id, coder, origin, status, "
            "codebook_version, created_at, updated_at) SELECT source_id, start_offset + 1, end_offset, "
            "substr(quote, 2), code_id, coder, origin, status, codebook_version, created_at, updated_at "
            "FROM codings WHERE id = 1"
        )
    connection.close()
    result = run(
        runner, coded_db, "codebook", "check", str(versions["v1"]), "--format", "json"
    )

    assert result.exit_code == 0
    assert json.loads(result.stdout) == [
        {
            "level": "warning",
            "code": "strategy.lowball",
            "message": "codings #1 and #6 of alice overlap",
        }
    ]


def test_apply_missing_file(runner: Any, coded_db: Path, tmp_path: Path) -> None:
    result = run(runner, coded_db, "codebook", "apply", str(tmp_path / "v9.yaml"))

    assert result.exit_code == 1
    assert "codebook file not found" in result.stderr


def test_apply_without_coder(
    runner: Any, coded_db: Path, versions: dict[str, Path]
) -> None:
    from qualkit.cli import cli

    result = runner.invoke(
        cli,
        ["--db", str(coded_db), "codebook", "apply", str(versions["v2"])],
        prog_name="qualkit",
        env={"QUALKIT_CODER": None},
    )

    assert result.exit_code == 2
    assert "No coder given" in result.stderr
