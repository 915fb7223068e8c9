"""Benchmark qualkit at several corpus sizes and write docs/benchmarks.md.

Run from the repository root:

    python3 bench/run.py                     # 100, 1,000 and 10,000 transcripts
    python3 bench/run.py --sizes 100,1000    # pick the sizes
    python3 bench/run.py --sizes 20 --codings 20000 --out /tmp/page.md

For each size the script generates a seeded corpus of English and Chinese
interview transcripts (one in five is Chinese) with the generator of
bench/bench_pipeline.py. It runs each measurement in a fresh Python process,
so that each peak RSS is that of one step alone:

1. bare tokenization: ``spacy.blank("en")`` and ``spacy.blank("zh")`` with
   the jieba segmenter, ``nlp.pipe`` over every turn text;
2. qualkit import + autocode: ``Project.import_and_autocode`` (what
   ``qualkit build`` runs) into a fresh SQLite file with the bundled codebook;
3. incremental runs on that file: with nothing changed, then after 1% of the
   transcripts were edited on disk.

Ratios compare steps of the same run of this script. After the sizes, it
fills a copy of the largest database with generated codings (one million by
default, written in SQL) and times a coded-quote query and the report. It
also compares negotiability and agreement with the pandas and krippendorff
calls they rest on. It prints the results and rewrites the page.

``--results FILE`` also saves the measurements as JSON, ``--render FILE``
rewrites the page from such a file without measuring, and
``--update-queries DATABASE`` re-runs only the query, report and analysis
steps on a database kept with ``--keep``.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for folder in (REPO_ROOT, BENCH_DIR):
    if str(folder) not in sys.path:
        # Measures the qualkit of this checkout, whether or not it is installed.
        sys.path.insert(0, str(folder))

DEFAULT_SIZES = (100, 1000, 10000)
DEFAULT_CODINGS = 1_000_000
DEFAULT_SEED = 20261204
DEFAULT_OUT = REPO_ROOT / "docs" / "benchmarks.md"
CHINESE_EVERY = 5
EDITED_SHARE = 0.01
QUERY_EXPRESSION = "strategy.underpromise AND NOT target.environment"
QUERY_REPEATS = 5
QUERY_REPEAT_BUDGET = 5.0
# Seconds after which a timed command is stopped and reported as timed out.
COMMAND_TIMEOUT = 1800
PANEL_SHAPE = {"targets": 200, "units": 300, "years": 12}
AGREEMENT_SHAPE = {"coders": 4, "units": 200_000}
ANALYSIS_REPEATS = 3
GOALS = {
    "ratio": 0.5,
    "incremental_share": 0.05,
    "query_seconds": 0.2,
    "report_seconds": 30.0,
    "peak_rss_mib": 1024.0,
}


# ---------------------------------------------------------------------------
# Measurements that run in a child process
# ---------------------------------------------------------------------------


def peak_rss_mib() -> float:
    """Return this process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Stopwatch:
    """Wall-clock and CPU seconds of a block."""

    def __enter__(self) -> Stopwatch:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def read_turn_texts(paths: list[str]) -> dict[str, list[str]]:
    """Return every turn text of the transcripts, per language, as qualkit finds the turns."""
    from qualkit.nlp import detect_language
    from qualkit.transcripts import find_turns, read_transcript

    texts: dict[str, list[str]] = {"en": [], "zh": []}
    for path in paths:
        transcript = read_transcript(Path(path))
        language = transcript.metadata.get("language") or detect_language(transcript.text)
        for turn in find_turns(transcript.text):
            texts[language].append(transcript.text[turn.start : turn.end])
    return texts


def child_bare(arguments: dict[str, Any]) -> dict[str, Any]:
    """Tokenize every turn with blank spaCy pipelines, as the least a spaCy tool does."""
    import jieba
    import spacy

    jieba.setLogLevel(60)
    texts = read_turn_texts(arguments["paths"])
    pipelines = {
        "en": spacy.blank("en"),
        "zh": spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}}),
    }
    pipelines["zh"]("预热。")
    result: dict[str, Any] = {}
    for language, nlp in pipelines.items():
        with Stopwatch() as watch:
            tokens = sum(len(doc) for doc in nlp.pipe(texts[language]))
        result[language] = {"seconds": watch.wall, "cpu": watch.cpu, "tokens": tokens}
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def _warm_qualkit() -> Any:
    """Load the codebook and the pipelines, and initialize jieba, outside the timings."""
    import jieba

    from qualkit.codebook import load_codebook, resolve_codebook_path
    from qualkit.nlp import load_pipeline

    jieba.setLogLevel(60)
    load_pipeline("en")
    load_pipeline("zh")("预热。")
    return load_codebook(resolve_codebook_path("target_bargaining"))


def child_qualkit(arguments: dict[str, Any]) -> dict[str, Any]:
    """Import and auto-code the transcripts into a database, as ``qualkit build`` does.

    With ``profile`` set, runs under cProfile and returns its top entries.
    """
    from qualkit.project import Project

    codebook = _warm_qualkit()
    profiler = cProfile.Profile() if arguments.get("profile") else None
    with Project(arguments["db"]) as project:
        with Stopwatch() as watch:
            if profiler is not None:
                profiler.enable()
            imported, coded = project.import_and_autocode(arguments["paths"], codebook=codebook)
            if profiler is not None:
                profiler.disable()
    result = {
        "seconds": watch.wall,
        "cpu": watch.cpu,
        "added": len(imported.added),
        "updated": len(imported.updated),
        "unchanged": len(imported.unchanged),
        "flagged": len(imported.flagged_codings),
        "coded": coded.sources,
        "skipped": coded.skipped,
        "suggestions": coded.added,
        "peak_rss_mib": peak_rss_mib(),
    }
    if profiler is not None:
        result["profile"] = profile_rows(profiler)
    return result


def profile_rows(profiler: cProfile.Profile, top: int = 15) -> list[list[Any]]:
    """Return the profile's top functions by own time: location, calls, own and cumulative seconds."""
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        location = f"{short_path(filename)}:{line}" if line else "(built-in)"
        rows.append([name, location, calls, own, cumulative])
    rows.sort(key=lambda row: row[3], reverse=True)
    return rows[:top]


def short_path(filename: str) -> str:
    """Return a path relative to the repository or to site-packages."""
    path = Path(filename)
    for base in (REPO_ROOT,):
        if path.is_relative_to(base):
            return str(path.relative_to(base))
    parts = path.parts
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1 :])
    return path.name


def child_queries(arguments: dict[str, Any]) -> dict[str, Any]:
    """Fill the database with generated codings, then time a quote query and the report."""
    from qualkit.coding import CodingFilter
    from qualkit.project import Project
    from qualkit.queries import query_quotes

    result: dict[str, Any] = {}
    with Project(arguments["db"]) as project:
        with Stopwatch() as watch:
            inserted = insert_generated_codings(project.db, arguments["codings"])
        result["insert"] = {"seconds": watch.wall, "codings": inserted}
        result["total_codings"] = project.db.execute("SELECT count(*) FROM codings").fetchone()[0]
        selection = CodingFilter(statuses=("accepted",))
        timings: list[float] = []
        rows = 0
        # A slow query runs once, because repeating it would only lengthen the run.
        while len(timings) < QUERY_REPEATS and sum(timings) < QUERY_REPEAT_BUDGET:
            with Stopwatch() as watch:
                rows = len(query_quotes(project.db, QUERY_EXPRESSION, selection))
            timings.append(watch.wall)
        result["query"] = {
            "seconds": min(timings),
            "median": sorted(timings)[len(timings) // 2],
            "runs": len(timings),
            "rows": rows,
        }
        result["query_rss_mib"] = peak_rss_mib()
    if arguments.get("profile"):
        result["profiles"] = profile_queries(arguments["db"])
    result["query_cli"] = run_cli(
        ["--db", arguments["db"], "query", "quotes", QUERY_EXPRESSION, "--format", "csv"]
    )
    report_folder = Path(arguments["db"]).parent / "report"
    result["report_cli"] = run_cli(["--db", arguments["db"], "report", "--out", str(report_folder)])
    return result


def profile_queries(database: str) -> dict[str, Any]:
    """Profile the coded-quote query and the report's rendering with cProfile, and return their top entries."""
    from qualkit.coding import CodingFilter
    from qualkit.project import Project
    from qualkit.queries import query_quotes

    profiles = {}
    with Project(database) as project:
        profiler = cProfile.Profile()
        with Stopwatch() as watch:
            profiler.runcall(query_quotes, project.db, QUERY_EXPRESSION, CodingFilter(statuses=("accepted",)))
        profiles["query"] = {"seconds": watch.wall, "profile": profile_rows(profiler)}
        profiler = cProfile.Profile()
        out = Path(database).parent / "profiled-report"
        with Stopwatch() as watch:
            profiler.runcall(project.report, out)
        profiles["report"] = {"seconds": watch.wall, "profile": profile_rows(profiler)}
    return profiles


def insert_generated_codings(db: Any, count: int) -> int:
    """Insert ``count`` accepted codings, one per sentence segment and code, in one statement.

    Each sentence gets up to five of the stored codebook's leaf codes, picked
    by its row id, so the codes spread evenly. Returns the number inserted,
    which is smaller when the corpus has too few sentences.
    """
    from qualkit import store

    codes = [
        row[0]
        for row in db.execute(
            "SELECT id FROM codes c WHERE NOT EXISTS (SELECT 1 FROM codes d WHERE d.parent_id = c.id) "
            "ORDER BY position"
        )
    ]
    db.execute("CREATE TEMP TABLE bench_codes (n INTEGER PRIMARY KEY, code_id TEXT)")
    db.conn.executemany("INSERT INTO bench_codes VALUES (?, ?)", list(enumerate(codes)))
    # The insert above opened a transaction. Without this commit the codings
    # would go into a savepoint of it and be lost when the process ends.
    db.conn.commit()
    before = db.execute("SELECT count(*) FROM codings").fetchone()[0]
    with store.transaction(db):
        db.execute(
            "INSERT OR IGNORE INTO codings (source_id, start_offset, end_offset, quote, code_id, coder, "
            "origin, status, codebook_version, created_at, updated_at) "
            "SELECT s.source_id, s.start_offset, s.end_offset, "
            "substr(t.text, s.start_offset + 1, s.end_offset - s.start_offset), b.code_id, "
            "'bench coder', 'manual', 'accepted', '1', '2026-01-01T00:00:00+00:00', "
            "'2026-01-01T00:00:00+00:00' "
            "FROM segments s JOIN sources t ON t.id = s.source_id "
            "JOIN bench_codes b ON b.n IN ((s.id * 7) % :codes, (s.id * 7 + 3) % :codes, "
            "(s.id * 7 + 5) % :codes, (s.id * 7 + 11) % :codes, (s.id * 7 + 13) % :codes) "
            "WHERE s.kind = 'sentence' LIMIT :limit",
            {"codes": len(codes), "limit": count},
        )
    return db.execute("SELECT count(*) FROM codings").fetchone()[0] - before


def run_cli(arguments: list[str]) -> dict[str, Any]:
    """Run the ``qualkit`` command of this checkout, and return its seconds, exit code and last error line."""
    command = [sys.executable, "-m", "qualkit", *arguments]
    started = time.perf_counter()
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=COMMAND_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return {"seconds": COMMAND_TIMEOUT, "exit": "timeout", "error": f"stopped after {COMMAND_TIMEOUT} s"}
    seconds = time.perf_counter() - started
    error = completed.stderr.strip().splitlines()[-1:] if completed.returncode else []
    return {"seconds": seconds, "exit": completed.returncode, "error": error[0] if error else ""}


def child_analysis(arguments: dict[str, Any]) -> dict[str, Any]:
    """Time negotiability and agreement against the pandas and krippendorff calls they rest on."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(arguments["seed"])
    shape = arguments["panel"]
    targets = [f"T{index:03d}" for index in range(shape["targets"])]
    units = [f"U{index:03d}" for index in range(shape["units"])]
    years = list(range(2010, 2010 + shape["years"]))
    index = pd.MultiIndex.from_product([targets, units, years], names=["target", "unit", "year"])
    values = index.to_frame(index=False)
    values["value"] = rng.normal(100, 15, len(values)).round(2)
    directions = {target: bool(position % 2) for position, target in enumerate(targets)}

    from qualkit.negotiability import NegotiabilityOptions, rank_changes

    changes, qualkit_seconds = best_of(lambda: rank_changes(values, directions, NegotiabilityOptions()))
    bare_changes, bare_seconds = best_of(lambda: bare_rank_changes(values, directions))
    result: dict[str, Any] = {
        "negotiability": {
            "rows": len(values),
            "changes": len(changes),
            "qualkit": qualkit_seconds,
            "bare": bare_seconds,
            "same": bool(
                np.allclose(
                    changes["change"].to_numpy(), bare_changes["change"].to_numpy()
                )
            ),
        }
    }
    result["agreement"] = time_agreement(rng, arguments["agreement"])
    return result


def best_of(action: Any, repeats: int = ANALYSIS_REPEATS) -> tuple[Any, float]:
    """Call ``action`` ``repeats`` times, and return its last result and the fastest wall-clock seconds.

    Taking the fastest run leaves out first-call costs (imports, caches) and
    some of the noise from other processes.
    """
    fastest = float("inf")
    result = None
    for _ in range(repeats):
        with Stopwatch() as watch:
            result = action()
        fastest = min(fastest, watch.wall)
    return result, fastest


def bare_rank_changes(values: Any, directions: dict[str, bool]) -> Any:
    """Rank each target-year's units and take each unit's change to the next year, with pandas alone.

    The same arithmetic as ``rank_changes`` with its default options (every
    unit present in both years, ties ranked by their minimum), for a panel
    without gaps.
    """
    import numpy as np

    frame = values.sort_values(["target", "year", "unit"]).reset_index(drop=True)
    harder = frame["target"].map(directions).to_numpy()
    signed = np.where(harder, -frame["value"].to_numpy(), frame["value"].to_numpy())
    frame["rank"] = frame.assign(signed=signed).groupby(["target", "year"])["signed"].rank(method="min")
    frame = frame.sort_values(["target", "unit", "year"])
    frame["change"] = frame.groupby(["target", "unit"])["rank"].diff()
    frame = frame.dropna(subset=["change"])
    return frame.sort_values(["target", "year", "unit"]).reset_index(drop=True)


def time_agreement(rng: Any, shape: dict[str, int]) -> dict[str, Any]:
    """Time qualkit's alpha and the bare ``krippendorff.alpha`` call on one coders-by-units matrix."""
    try:
        from qualkit.agreement import krippendorff_alpha
    except ImportError as error:
        return {"missing": str(error)}
    import krippendorff
    import numpy as np

    matrix = (rng.random((shape["coders"], shape["units"])) < 0.3).astype(float)
    # Coders agree on most units, and one value in ten is missing.
    matrix[1:] = np.where(rng.random(matrix[1:].shape) < 0.8, matrix[0], matrix[1:])
    matrix[rng.random(matrix.shape) < 0.1] = np.nan
    qualkit_alpha, qualkit_seconds = best_of(lambda: krippendorff_alpha(matrix, "nominal"))
    bare_alpha, bare_seconds = best_of(
        lambda: krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    )
    return {
        "coders": shape["coders"],
        "units": shape["units"],
        "qualkit": qualkit_seconds,
        "bare": bare_seconds,
        "alpha": qualkit_alpha,
        "same": bool(abs(qualkit_alpha - bare_alpha) < 1e-9),
    }


CHILDREN = {
    "bare": child_bare,
    "qualkit": child_qualkit,
    "queries": child_queries,
    "analysis": child_analysis,
}


def run_child(kind: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in a fresh Python process and return what it printed as JSON."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(arguments, handle)
    try:
        completed = subprocess.run(
            [sys.executable, __file__, "--child", kind, handle.name],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
        )
    finally:
        os.unlink(handle.name)
    if completed.returncode != 0:
        raise RuntimeError(f"The {kind} step failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------


@dataclass
class GeneratedFile:
    """A generated transcript: its file, language and word count."""

    item: Any
    words: int


@dataclass
class GeneratedCorpus:
    """The transcripts of one size, kept for the edits."""

    folder: Path
    files: list[GeneratedFile] = field(default_factory=list)

    def words(self, language: str | None = None) -> int:
        """Return the number of words, in one language or in all."""
        return sum(file.words for file in self.files if language in (None, file.item.language))

    @property
    def paths(self) -> list[str]:
        """The transcript files, in the order they are imported."""
        return [str(file.item.path) for file in self.files]


def generate(folder: Path, transcripts: int, seed: int) -> GeneratedCorpus:
    """Write ``transcripts`` files of 2,000 to 4,000 words, every fifth one in Chinese."""
    import bench_pipeline as generator

    from qualkit.codebook import load_codebook, resolve_codebook_path

    keywords = generator.codebook_keywords(load_codebook(resolve_codebook_path("target_bargaining")))
    rng = random.Random(seed)
    writers = {language: generator.TextGenerator(language, rng, keywords[language]) for language in ("en", "zh")}
    corpus = GeneratedCorpus(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(1, transcripts + 1):
        language = "zh" if index % CHINESE_EVERY == 0 else "en"
        source_id = f"BENCH{index:05d}"
        turns, words = generator.generate_turns(writers[language], rng.randint(*generator.TRANSCRIPT_WORDS))
        item = generator.SyntheticTranscript(
            path=folder / f"{source_id}.md",
            source_id=source_id,
            language=language,
            front_matter={
                "id": source_id,
                "province": rng.choice(generator.PROVINCES),
                "level": rng.choice(generator.LEVELS),
                "date": str(dt.date(2014, 1, 1) + dt.timedelta(days=rng.randint(0, 2900))),
                "language": language,
            },
            turns=turns,
            words=words,
        )
        item.path.write_text(generator.render_transcript(item), encoding="utf-8")
        corpus.files.append(GeneratedFile(item, words))
    return corpus


def edit(corpus: GeneratedCorpus, share: float, seed: int) -> int:
    """Edit ``share`` of the transcripts on disk, and return the words of the edited transcripts."""
    import bench_pipeline as generator

    chosen = generator.edit_transcripts(
        generator.Corpus(corpus.folder, [file.item for file in corpus.files]),
        share,
        random.Random(seed),
    )
    edited = {item.source_id for item in chosen}
    return sum(file.words for file in corpus.files if file.item.source_id in edited)


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


def measure_size(transcripts: int, folder: Path, seed: int, profile: bool) -> dict[str, Any]:
    """Generate one corpus and time bare tokenization, the full run and the incremental runs."""
    log(f"{transcripts} transcripts: generating")
    with Stopwatch() as watch:
        corpus = generate(folder / "transcripts", transcripts, seed)
    size: dict[str, Any] = {
        "transcripts": transcripts,
        "words": corpus.words(),
        "words_en": corpus.words("en"),
        "words_zh": corpus.words("zh"),
        "generate_seconds": watch.wall,
    }

    db = str(folder / "qualkit.db")
    log(f"{transcripts} transcripts ({size['words']:,} words): bare tokenization")
    size["bare"] = run_child("bare", {"paths": corpus.paths})

    log(f"{transcripts} transcripts: qualkit import + autocode")
    size["full"] = run_child("qualkit", {"db": db, "paths": corpus.paths})

    log(f"{transcripts} transcripts: re-run with nothing changed")
    size["unchanged"] = run_child("qualkit", {"db": db, "paths": corpus.paths})
    size["edited_words"] = edit(corpus, EDITED_SHARE, seed + 1)
    log(f"{transcripts} transcripts: re-run after editing 1%")
    size["incremental"] = run_child("qualkit", {"db": db, "paths": corpus.paths})

    if profile:
        log(f"{transcripts} transcripts: profile of import + autocode")
        profiled_db = str(folder / "profiled.db")
        size["profile"] = run_child("qualkit", {"db": profiled_db, "paths": corpus.paths, "profile": True})
        os.unlink(profiled_db)
        log(f"{transcripts} transcripts: profile of a re-run with nothing changed")
        size["profile_rerun"] = run_child("qualkit", {"db": db, "paths": corpus.paths, "profile": True})

    bare_seconds = size["bare"]["en"]["seconds"] + size["bare"]["zh"]["seconds"]
    bare_cpu = size["bare"]["en"]["cpu"] + size["bare"]["zh"]["cpu"]
    size["bare_seconds"] = bare_seconds
    size["ratio"] = bare_seconds / size["full"]["seconds"]
    size["cpu_ratio"] = bare_cpu / size["full"]["cpu"]
    size["incremental_share"] = size["incremental"]["seconds"] / size["full"]["seconds"]
    size["db"] = db
    return size


def scaled(shape: dict[str, int], scale: float, keep: tuple[str, ...]) -> dict[str, int]:
    """Return ``shape`` with each size except those in ``keep`` multiplied by ``scale`` (at least 2)."""
    return {key: value if key in keep else max(2, round(value * scale)) for key, value in shape.items()}


def log(message: str) -> None:
    """Print a progress line on stderr with the seconds since the start."""
    print(f"[{time.perf_counter() - START:7.1f} s] {message}", file=sys.stderr, flush=True)


START = time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    arguments = parse_args(argv)
    if arguments.child:
        kind, path = arguments.child
        print(json.dumps(CHILDREN[kind](json.loads(Path(path).read_text()))))
        return 0
    if arguments.render is not None:
        return write_page(json.loads(arguments.render.read_text(encoding="utf-8")), arguments.out)
    if arguments.update_queries is not None:
        return update_queries(arguments)
    import bench_pipeline

    import report_page

    started = dt.datetime.now(dt.timezone.utc)
    facts = bench_pipeline.machine_facts()
    work = Path(tempfile.mkdtemp(prefix="qualkit-bench-", dir=arguments.work))
    results: dict[str, Any] = {"sizes": [], "facts": facts, "started": started.strftime("%Y-%m-%d %H:%M UTC")}
    try:
        for transcripts in arguments.sizes:
            folder = work / f"size-{transcripts}"
            profile = transcripts == min(arguments.sizes) and not arguments.no_profile
            size = measure_size(transcripts, folder, arguments.seed, profile)
            results["sizes"].append(size)
            log(report_page.size_line(size))
        largest = results["sizes"][-1]
        results.update(run_queries_and_analysis(Path(largest["db"]), work, arguments))
        results["queries"]["transcripts"] = largest["transcripts"]
    finally:
        if not arguments.keep:
            shutil.rmtree(work, ignore_errors=True)
    results["finished"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results["command"] = "python3 bench/run.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    if arguments.results is not None:
        arguments.results.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return write_page(results, arguments.out)


def run_queries_and_analysis(database: Path, work: Path, arguments: argparse.Namespace) -> dict[str, Any]:
    """Time queries and the report on a copy of ``database``, then negotiability and agreement."""
    log(f"queries and report with {arguments.codings:,} generated codings")
    query_db = work / "queries" / "qualkit.db"
    query_db.parent.mkdir()
    shutil.copy(database, query_db)
    queries = run_child(
        "queries", {"db": str(query_db), "codings": arguments.codings, "profile": not arguments.no_profile}
    )
    log("negotiability and agreement on large inputs")
    analysis = run_child(
        "analysis",
        {
            "seed": arguments.seed,
            "panel": scaled(PANEL_SHAPE, arguments.analysis_scale, keep=("years",)),
            "agreement": scaled(AGREEMENT_SHAPE, arguments.analysis_scale, keep=("coders",)),
        },
    )
    return {"queries": queries, "analysis": analysis}


def update_queries(arguments: argparse.Namespace) -> int:
    """Re-run the query, report and analysis steps against a kept database, then rewrite the saved results and the page."""
    if arguments.results is None or not arguments.results.exists():
        raise SystemExit("--update-queries needs --results with the JSON file of an earlier run.")
    results = json.loads(arguments.results.read_text(encoding="utf-8"))
    work = Path(tempfile.mkdtemp(prefix="qualkit-bench-", dir=arguments.work))
    try:
        update = run_queries_and_analysis(arguments.update_queries, work, arguments)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    update["queries"]["transcripts"] = results["sizes"][-1]["transcripts"]
    results.update(update)
    results["queries_rerun"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    arguments.results.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return write_page(results, arguments.out)


def write_page(results: dict[str, Any], out: Path | None) -> int:
    """Print the summary of ``results`` and write the page to ``out`` unless it is None."""
    import report_page

    page = report_page.render(results, GOALS)
    print(report_page.summary(results, GOALS))
    if out is not None:
        out.write_text(page, encoding="utf-8")
        log(f"wrote {out}")
    return 0


def parse_sizes(value: str) -> list[int]:
    """Parse a comma-separated list of transcript counts."""
    sizes = sorted({int(part) for part in value.split(",") if part.strip()})
    if not sizes or sizes[0] < 5:
        raise argparse.ArgumentTypeError("sizes must be transcript counts of at least 5, such as 100,1000")
    return sizes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES), help="transcript counts, comma-separated (default: 100,1000,10000)")
    parser.add_argument("--codings", type=int, default=DEFAULT_CODINGS, help="codings generated for the query and report timings (default: 1,000,000)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the corpus generator")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="page to write (default: docs/benchmarks.md)")
    parser.add_argument("--no-write", dest="out", action="store_const", const=None, help="print the results without writing the page")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run of the smallest size")
    parser.add_argument("--work", type=Path, default=None, help="folder for the generated files (default: the system's temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and databases")
    parser.add_argument("--analysis-scale", type=float, default=1.0, help="factor on the panel and agreement input sizes (default: 1)")
    parser.add_argument("--results", type=Path, default=None, help="also save the measurements as JSON in this file")
    parser.add_argument("--render", type=Path, default=None, help="write the page from measurements saved with --results, without running anything")
    parser.add_argument("--update-queries", type=Path, default=None, metavar="DATABASE", help="only re-run the query, report and analysis steps on a copy of DATABASE (one kept with --keep), updating the --results file")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "ARGUMENTS"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
