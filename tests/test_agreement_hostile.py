"""Regression tests for hostile and messy input to agree, disagreements and adjudicate.

Each test reproduces one finding of a methodologist's check of the three
commands. The project is the coded project of test_agreement: alice, bob
(stored as Bob, bob and BOB) and carol code E01 and Z01, carol skips Z01,
and E01 sentence 0 carries no coding.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import test_agreement
from click.testing import CliRunner
from test_agreement import ENGLISH, REFRAMING, VETO, invoke, rows

from qualkit.agreement import BootstrapOptions, krippendorff_alpha
from qualkit.errors import QualkitError

# The coded project of test_agreement, built once per module here too.
coded_template = test_agreement.coded_template
coded_db = test_agreement.coded_db


def consensus(db: Path) -> set[tuple[object, ...]]:
    return set(
        rows(
            db,
            "SELECT source_id, code_id, start_offset, end_offset, value FROM codings "
            "WHERE coder = 'consensus'",
        )
    )


def sentence_span(db: Path, source: str, position: int) -> tuple[int, int]:
    return rows(
        db,
        "SELECT start_offset, end_offset FROM segments WHERE source_id = ? "
        "AND kind = 'sentence' AND position = ?",
        (source, position),
    )[0]


def write_decisions(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_text("\n".join(["unit_id,decision", *lines]) + "\n", encoding=encoding)
    return path


def adjudicate_with(runner: CliRunner, db: Path, decisions: Path) -> object:
    return invoke(runner, db, "adjudicate", "--decisions", str(decisions))


# agree: bootstrap options --------------------------------------------------------------


def test_negative_seed_is_usage_error(runner: CliRunner, coded_db: Path) -> None:
    result = invoke(runner, coded_db, "agree", "--bootstrap", "50", "--seed", "-3")

    assert result.exit_code == 2
    assert "--seed" in result.stderr
    assert "Traceback" not in result.output


def test_huge_bootstrap_is_usage_error(runner: CliRunner, coded_db: Path) -> None:
    result = invoke(runner, coded_db, "agree", "--bootstrap", str(10**25))

    assert result.exit_code == 2
    assert "--bootstrap" in result.stderr
    assert not isinstance(result.exception, ValueError)


@pytest.mark.parametrize("replicates", ["1", "2", "39"])
def test_too_few_replicates_rejected(
    runner: CliRunner, coded_db: Path, replicates: str
) -> None:
    result = invoke(runner, coded_db, "agree", "--bootstrap", replicates)

    assert result.exit_code == 1
    assert "too few replicates" in result.stderr
    assert "40 or more" in result.stderr
    assert result.stdout == ""


def test_bootstrap_options_check() -> None:
    BootstrapOptions(40).check()
    BootstrapOptions(0, seed=0).check()
    for options in (
        BootstrapOptions(1),
        BootstrapOptions(100, seed=-1),
        BootstrapOptions(10**6),
        BootstrapOptions(1999, confidence=0.999),
    ):
        with pytest.raises(QualkitError):
            options.check()


def test_left_out_replicates_in_note(runner: CliRunner, coded_db: Path) -> None:
    # At source level there are two units. A replicate that draws E01
    # twice has only "applied" judgements, so its alpha is undefined.
    result = invoke(
        runner,
        coded_db,
        "agree",
        "--unit",
        "source",
        "--code",
        REFRAMING,
        "--coefficient",
        "alpha",
        "--bootstrap",
        "100",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)[0]

    assert row["coefficient"] == "alpha_nominal"
    assert row["value"] is not None
    match = re.fullmatch(
        r"(\d+) of 100 bootstrap replicates undefined, left out of the interval",
        row["note"],
    )
    assert match is not None, row["note"]
    assert 0 < int(match.group(1)) < 100


# agree: coder names and values ---------------------------------------------------------


def test_unicode_forms_are_one_coder(runner: CliRunner, coded_db: Path) -> None:
    # "José" with a combining accent, "José" precomposed and "ＪＯＳÉ" in
    # full-width letters name one person.
    for name, position in (("Jose\u0301", 1), ("Jos\u00e9", 3), ("ＪＯＳ\u00c9", 5)):
        result = invoke(
            runner,
            coded_db,
            "code",
            "add",
            "E01",
            "--code",
            REFRAMING,
            "--segment",
            str(position),
            coder=name,
        )
        assert result.exit_code == 0, result.output

    result = invoke(runner, coded_db, "agree", "--format", "json")
    assert result.exit_code == 0, result.output
    coders = {row["coders"] for row in json.loads(result.stdout)}
    listing = invoke(runner, coded_db, "disagreements", "--format", "csv")
    header = next(csv.reader(io.StringIO(listing.stdout)))

    assert coders == {4}
    assert len(header) == len(set(header))
    assert sum(1 for column in header if column.casefold().startswith("jos")) == 1


def test_huge_values_keep_interval_alpha() -> None:
    ratings = np.array([[1.0, 2, 3, 4, 5], [1.0, 2, 3, 5, 5]])
    # Interval alpha compares squared differences and ratio alpha squared
    # relative differences. Multiplying every value by one positive number
    # scales the observed and expected disagreement alike, so alpha stays.
    for level in ("interval", "ratio"):
        plain = krippendorff_alpha(ratings, level)
        scaled = krippendorff_alpha(ratings * 1e200, level)

        assert np.isfinite(scaled)
        assert scaled == pytest.approx(plain)


def test_one_extreme_value_interval_alpha() -> None:
    # Eleven values at (nearly) 0 and one at 1e308: the observed and the
    # expected disagreement are both 2 * 11 / (12 * 11) after scaling, so
    # alpha is 0, not undefined.
    ratings = np.array([[1.0, 2, 3, 4, 5, 1e308], [1.0, 2, 3, 4, 5, 1]])

    assert krippendorff_alpha(ratings, "interval") == pytest.approx(0.0, abs=1e-9)


def test_infinite_value_is_warned(
    runner: CliRunner, coded_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    connection = sqlite3.connect(coded_db)
    with connection:
        (coding_id,) = connection.execute(
            "SELECT id FROM codings WHERE coder = 'alice' AND code_id = ? AND value = 3",
            (VETO,),
        ).fetchone()
        connection.execute("UPDATE codings SET value = 9e999 WHERE id = ?", (coding_id,))
    connection.close()

    result = invoke(
        runner, coded_db, "agree", "--code", VETO, "--level", "interval", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    found = {row["coefficient"]: row for row in json.loads(result.stdout)}

    assert f"#{coding_id}" in caplog.text
    assert "not a finite number" in caplog.text
    # bob (2) and carol (3) still give values on E01 sentence 5.
    assert found["alpha_interval"]["units"] == 1


# adjudicate: the consensus coder ---------------------------------------------------------


def test_into_coder_with_codings_rejected(runner: CliRunner, coded_db: Path) -> None:
    for name in ("alice", "ALICE", " alice"):
        result = invoke(runner, coded_db, "adjudicate", "--into", name)

        assert result.exit_code == 1
        assert "codings of their own" in result.stderr
    stored = rows(coded_db, "SELECT value FROM meta WHERE key = 'consensus_coders'")
    agreement = invoke(runner, coded_db, "agree", "--format", "json")

    assert stored == []
    assert {row["coders"] for row in json.loads(agreement.stdout)} == {3}


def test_rerun_into_consensus_allowed(runner: CliRunner, coded_db: Path) -> None:
    first = invoke(runner, coded_db, "adjudicate", "--accept-from", "alice")
    second = invoke(runner, coded_db, "adjudicate", "--accept-from", "alice")

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "unchanged" in second.stdout


# adjudicate: decisions files ---------------------------------------------------------------


def test_decisions_in_utf16_are_read(
    runner: CliRunner, coded_db: Path, tmp_path: Path
) -> None:
    decisions = write_decisions(
        tmp_path / "decisions.csv", ["Z01:sentence:2,none"], encoding="utf-16"
    )
    result = adjudicate_with(runner, coded_db, decisions)

    assert result.exit_code == 0, result.output
    assert "Decisions applied to 1 units." in result.stdout


@pytest.mark.parametrize(
    "content",
    [
        "unit_id,decision\nZ01:sentence:2,指标\n".encode("gb18030"),
        b"\x00\x01\xff\xfe\x80" * 20,
    ],
    ids=["gb18030", "binary"],
)
def test_decisions_not_utf8_rejected(
    runner: CliRunner, coded_db: Path, tmp_path: Path, content: bytes
) -> None:
    decisions = tmp_path / "decisions.csv"
    decisions.write_bytes(content)
    result = adjudicate_with(runner, coded_db, decisions)

    assert result.exit_code == 1
    assert "is not valid UTF-8" in result.stderr
    assert "CSV UTF-8" in result.stderr
    assert not isinstance(result.exception, UnicodeDecodeError)
    assert consensus(coded_db) == set()


def test_decisions_utf16_without_bom_rejected(
    runner: CliRunner, coded_db: Path, tmp_path: Path
) -> None:
    decisions = tmp_path / "decisions.csv"
    decisions.write_bytes("unit_id,decision\nZ01:sentence:2,none\n".encode("utf-16-le"))
    result = adjudicate_with(runner, coded_db, decisions)

    assert result.exit_code == 1
    assert "contains NUL characters" in result.stderr
    assert "CSV UTF-8" in result.stderr


def test_conflicting_duplicate_rows_rejected(
    runner: CliRunner, coded_db: Path, tmp_path: Path
) -> None:
    decisions = write_decisions(
        tmp_path / "decisions.csv",
        [f"Z01:sentence:2,{REFRAMING}", "E01:sentence:6,none", "Z01:sentence:2,none"],
    )
    result = adjudicate_with(runner, coded_db, decisions)

    assert result.exit_code == 1
    assert "line 4" in result.stderr
    assert "different decision on line 2" in result.stderr
    assert consensus(coded_db) == set()


def test_identical_duplicate_rows_accepted(
    runner: CliRunner, coded_db: Path, tmp_path: Path
) -> None:
    decisions = write_decisions(
        tmp_path / "decisions.csv", ["Z01:sentence:2,none", "Z01:sentence:2,none"]
    )
    result = adjudicate_with(runner, coded_db, decisions)

    assert result.exit_code == 0, result.output


def test_code_twice_in_decision_rejected(
    runner: CliRunner, coded_db: Path, tmp_path: Path
) -> None:
    decisions = write_decisions(
        tmp_path / "decisions.csv", [f'E01:sentence:5,"{VETO}=1, {VETO}=2"']
    )
    result = adjudicate_with(runner, coded_db, decisions)

    assert result.exit_code == 1
    assert f"code '{VETO}' appears twice" in result.stderr
    assert consensus(coded_db) == set()


def test_formula_decision_quoted_whole(
    runner: CliRunner, coded_db: Path, tmp_path: Path
) -> None:
    decisions = write_decisions(
        tmp_path / "decisions.csv", [f"Z01:sentence:2,={REFRAMING}"]
    )
    result = adjudicate_with(runner, coded_db, decisions)

    assert result.exit_code == 1
    assert f"decision '={REFRAMING}'" in result.stderr


@pytest.mark.parametrize(
    ("header", "missing"),
    [("unit_id,notes", "no decision column"), ("unit,decision", "no unit_id column")],
)
def test_missing_column_named_alone(
    runner: CliRunner, coded_db: Path, tmp_path: Path, header: str, missing: str
) -> None:
    decisions = tmp_path / "decisions.csv"
    decisions.write_text(f"{header}\nZ01:sentence:2,none\n", encoding="utf-8")
    result = adjudicate_with(runner, coded_db, decisions)

    assert result.exit_code == 1
    assert missing in result.stderr


def test_decision_for_uncoded_unit(
    runner: CliRunner,
    coded_db: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # No coder codes E01 sentence 0. A decision may still apply a code
    # there, and it then codes the whole sentence.
    decisions = write_decisions(
        tmp_path / "decisions.csv", [f"E01:sentence:0,{REFRAMING}"]
    )
    result = adjudicate_with(runner, coded_db, decisions)
    start, end = sentence_span(coded_db, "E01", 0)

    assert result.exit_code == 0, result.output
    assert "do not disagree: E01:sentence:0" in caplog.text
    assert ("E01", REFRAMING, start, end, None) in consensus(coded_db)


def test_decision_after_coding_removed(
    runner: CliRunner, coded_db: Path, tmp_path: Path
) -> None:
    # bob's strategy.reframing on Z01 sentence 2 was the only coding there.
    (coding_id,) = rows(
        coded_db,
        "SELECT id FROM codings WHERE source_id = 'Z01' AND code_id = ? AND coder = 'Bob'",
        (REFRAMING,),
    )[0]
    removed = invoke(runner, coded_db, "code", "remove", str(coding_id), coder="Bob")
    assert removed.exit_code == 0, removed.output
    decisions = write_decisions(
        tmp_path / "decisions.csv", [f"Z01:sentence:2,{REFRAMING}"]
    )
    result = adjudicate_with(runner, coded_db, decisions)
    start, end = sentence_span(coded_db, "Z01", 2)

    assert result.exit_code == 0, result.output
    assert ("Z01", REFRAMING, start, end, None) in consensus(coded_db)


def test_protected_unit_ids_read_back(
    runner: CliRunner, coded_db: Path, tmp_path: Path
) -> None:
    # A source id that starts with "-" is written as "'-E02..." in CSV, so a
    # spreadsheet shows it as text. The decisions reader must undo that.
    transcript = tmp_path / "E02.md"
    transcript.write_text(
        ENGLISH.replace("id: E01", 'id: "-E02"').replace("green", "greener"),
        encoding="utf-8",
    )
    imported = invoke(runner, coded_db, "import", str(transcript))
    assert imported.exit_code == 0, imported.output
    for coder, position in (("alice", 1), ("bob", 2)):
        added = invoke(
            runner,
            coded_db,
            "code",
            "add",
            "--code",
            REFRAMING,
            "--segment",
            str(position),
            "--",
            "-E02",
            coder=coder,
        )
        assert added.exit_code == 0, added.output
    selection = ["--coder", "alice", "--coder", "bob", "--source=-E02"]
    listing = invoke(runner, coded_db, "disagreements", *selection, "--format", "csv")
    assert listing.exit_code == 0, listing.output
    records = list(csv.DictReader(io.StringIO(listing.stdout)))
    assert [r["unit_id"] for r in records] == ["'-E02:sentence:1", "'-E02:sentence:2"]
    for record in records:
        record["decision"] = REFRAMING
    decisions = tmp_path / "decisions.csv"
    with decisions.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)

    result = invoke(
        runner, coded_db, "adjudicate", *selection, "--decisions", str(decisions)
    )

    assert result.exit_code == 0, result.output
    assert "Decisions applied to 2 units." in result.stdout
    assert {row[0] for row in consensus(coded_db)} == {"-E02"}
