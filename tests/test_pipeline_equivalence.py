"""The batched import and auto-coding paths store exactly what the plain path stored.

``tests/expected/pipeline_rows.json`` contains the segments and codings that
qualkit stored for the same inputs before import and auto-coding shared
their spaCy docs and read token offsets as arrays. To write it again with
the code of the current checkout, run this file with Python:

    python3 tests/test_pipeline_equivalence.py
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "interviews_sample"
EXPECTED = Path(__file__).resolve().parent / "expected" / "pipeline_rows.json"

# Short Chinese transcripts that use keywords and the regular expression of
# the bundled codebook, with sentence punctuation that the word segmenter
# splits in several ways.
CHINESE_TRANSCRIPTS = {
    "zh_one.md": """\
        ---
        id: ZH01
        province: Zhejiang
        level: city
        language: zh
        ---

        问：去年的目标是怎么定的？

        答：我们一般留一手，目标定得低一点。完成率高了，排名就好看！？后来又超额完成了……

        问：上面知道吗？

        答：知道。统计口径也换了，算进了生态投资。他们不敢超太多。
        """,
    "zh_two.md": """\
        ---
        id: ZH02
        province: Guizhou
        level: county
        language: zh
        ---

        问：你们怎么跟市里谈？

        答：先报低一些，再往低了报。留有余地嘛。「压低目标」是常事。

        答：有时候找靠山，找后台，说到底是保护伞的问题。
        """,
}

# A codebook with Chinese token patterns, so the word segmenter's tokens
# reach the Matcher (the bundled codebook has Chinese keywords and regular
# expressions only).
PATTERN_CODEBOOK = """\
codebook:
  id: zh-patterns
  version: "1"
codes:
  - id: lowball
    label: Asking for a low target
    definition: The respondent asks for a target lower than expected.
    when_to_use: The respondent says the unit reported a low figure on purpose.
    when_not_to_use: The target was lowered by the level above.
    example: We reported a lower figure so the target would be easy.
    rules:
      zh:
        patterns:
          - [{ORTH: {IN: [目标, 排名]}}, {OP: "?"}, {ORTH: {IN: [定, 好看]}}]
          - [{ORTH: 留}]
      en:
        patterns:
          - [{LOWER: {IN: [target, targets]}}, {OP: "*"}, {LOWER: down}]
"""

# Auto-coding runs whose results are compared: a name, the codebook
# (None for the bundled one) and the options.
RUNS = (
    ("sentence", None, {}),
    ("match-all-turns", None, {"unit": "match", "include_interviewer": True}),
    ("turn-patterns", "patterns", {"unit": "turn"}),
)


def write_inputs(folder: Path) -> tuple[list[Path], Path, Path]:
    """Copy the sample transcripts and write the Chinese ones; return paths, manifest, codebook."""
    transcripts = folder / "transcripts"
    shutil.copytree(SAMPLE_DIR / "transcripts", transcripts)
    for name, body in CHINESE_TRANSCRIPTS.items():
        (transcripts / name).write_text(textwrap.dedent(body), encoding="utf-8")
    codebook = folder / "patterns.yaml"
    codebook.write_text(PATTERN_CODEBOOK, encoding="utf-8")
    manifest = folder / "interviews.csv"
    shutil.copy(SAMPLE_DIR / "interviews.csv", manifest)
    return sorted(transcripts.glob("*.md")), manifest, codebook


def stored_rows(db: Any) -> dict[str, list[list[Any]]]:
    """Return the segments and codings of a database as sorted lists, ids left out."""
    segments = db.execute(
        "SELECT s.source_id, s.kind, s.position, p.position, s.start_offset, s.end_offset, "
        "s.speaker, s.role FROM segments s LEFT JOIN segments p ON p.id = s.parent_id "
        "ORDER BY s.source_id, s.kind, s.position"
    ).fetchall()
    codings = db.execute(
        "SELECT source_id, start_offset, end_offset, code_id, coder, origin, status, rule, "
        "matched_text FROM codings ORDER BY source_id, start_offset, end_offset, code_id"
    ).fetchall()
    return {"segments": [list(row) for row in segments], "codings": [list(row) for row in codings]}


def run_plain(folder: Path, name: str, codebook_name: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """Import, then auto-code in a second step, as ``qualkit import`` and ``qualkit autocode`` do."""
    from qualkit.autocode import AutocodeOptions
    from qualkit.codebook import load_codebook, resolve_codebook_path
    from qualkit.project import Project

    paths, manifest, pattern_codebook = write_inputs(folder / "inputs")
    codebook = load_codebook(pattern_codebook if codebook_name else resolve_codebook_path("target_bargaining"))
    with Project(folder / f"{name}.db") as project:
        project.import_sources(paths, manifest=manifest)
        project.autocode(codebook, AutocodeOptions(**options))
        return stored_rows(project.db)


def run_shared(folder: Path, name: str, codebook_name: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """Import and auto-code in one pass that hands the import's docs on, as ``qualkit build`` does."""
    from qualkit.autocode import AutocodeOptions
    from qualkit.codebook import load_codebook, resolve_codebook_path
    from qualkit.project import Project

    paths, manifest, pattern_codebook = write_inputs(folder / "inputs")
    codebook = load_codebook(pattern_codebook if codebook_name else resolve_codebook_path("target_bargaining"))
    with Project(folder / f"{name}.db") as project:
        project.import_and_autocode(paths, manifest=manifest, codebook=codebook, options=AutocodeOptions(**options))
        return stored_rows(project.db)


def write_expected(folder: Path) -> None:
    """Write the rows that ``run_plain`` stores for every run to ``EXPECTED``."""
    runs = {name: run_plain(folder / name, name, book, options) for name, book, options in RUNS}
    expected = {
        "segments": runs[RUNS[0][0]]["segments"],
        "codings": {name: rows["codings"] for name, rows in runs.items()},
    }
    text = json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
    EXPECTED.write_text(text.replace("],[", "],\n[") + "\n", encoding="utf-8")


def as_json(rows: dict[str, Any]) -> dict[str, Any]:
    """Round-trip through JSON, so tuples and lists compare equal."""
    return json.loads(json.dumps(rows, ensure_ascii=False))


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return json.loads(EXPECTED.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("name", "codebook_name", "options"), RUNS)
def test_plain_path_matches_expected(
    tmp_path: Path, expected: dict[str, Any], name: str, codebook_name: str | None, options: dict[str, Any]
) -> None:
    rows = as_json(run_plain(tmp_path, name, codebook_name, options))
    assert rows["segments"] == expected["segments"]
    assert rows["codings"] == expected["codings"][name]


@pytest.mark.parametrize(("name", "codebook_name", "options"), RUNS)
def test_shared_docs_path_matches_expected(
    tmp_path: Path, expected: dict[str, Any], name: str, codebook_name: str | None, options: dict[str, Any]
) -> None:
    rows = as_json(run_shared(tmp_path, name, codebook_name, options))
    assert rows["segments"] == expected["segments"]
    assert rows["codings"] == expected["codings"][name]


@pytest.mark.parametrize(("name", "codebook_name", "options"), RUNS)
def test_sentence_worker_matches_expected(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    expected: dict[str, Any],
    name: str,
    codebook_name: str | None,
    options: dict[str, Any],
) -> None:
    import qualkit.sources

    # Hand every Chinese source to the second process, however little text.
    monkeypatch.setattr(qualkit.sources, "PARALLEL_MIN_CHARACTERS", 0)
    shared = as_json(run_shared(tmp_path / "shared", name, codebook_name, options))
    plain = as_json(run_plain(tmp_path / "plain", name, codebook_name, options))
    assert shared["segments"] == expected["segments"]
    assert shared["codings"] == expected["codings"][name]
    assert plain["segments"] == expected["segments"]
    assert plain["codings"] == expected["codings"][name]


def test_sentence_worker_used_for_chinese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import qualkit.sources

    monkeypatch.setattr(qualkit.sources, "PARALLEL_MIN_CHARACTERS", 0)
    handed: list[str] = []
    original = qualkit.sources._SentenceWorker.spans

    def record(worker: Any, item: Any, language: str) -> Any:
        found = original(worker, item, language)
        if found is not None:
            handed.append(item.source_id)
        return found

    monkeypatch.setattr(qualkit.sources._SentenceWorker, "spans", record)
    run_shared(tmp_path, "sentence", None, {})
    assert {"ZH01", "ZH02"} <= set(handed)
    assert "B16S021" not in handed  # an English transcript of the sample


def test_shared_docs_path_recodes_only_edits(tmp_path: Path) -> None:
    from qualkit.codebook import load_codebook, resolve_codebook_path
    from qualkit.project import Project

    paths, manifest, _ = write_inputs(tmp_path / "inputs")
    codebook = load_codebook(resolve_codebook_path("target_bargaining"))
    with Project(tmp_path / "qualkit.db") as project:
        project.import_and_autocode(paths, manifest=manifest, codebook=codebook)
        edited = paths[0]
        edited.write_text(edited.read_text(encoding="utf-8") + "\nRespondent: We talked the target down.\n", encoding="utf-8")
        imported, coded = project.import_and_autocode(paths, manifest=manifest, codebook=codebook)
        after_edit = as_json(stored_rows(project.db))
    assert len(imported.updated) == 1
    assert len(imported.unchanged) == len(paths) - 1
    assert coded.sources == 1
    assert coded.skipped == len(paths) - 1
    with Project(tmp_path / "fresh.db") as fresh:
        fresh.import_sources(paths, manifest=manifest)
        fresh.autocode(codebook)
        assert after_edit == as_json(stored_rows(fresh.db))


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as temporary:
        write_expected(Path(temporary))
    sys.exit(0)
