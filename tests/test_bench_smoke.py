"""bench/run.py runs end to end on a tiny corpus and renders its page.

Nothing here checks a timing: the numbers of so small a run mean nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_run_tiny_size(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--sizes",
            "5",
            "--codings",
            "500",
            "--analysis-scale",
            "0.01",
            "--no-profile",
            "--work",
            str(tmp_path),
            "--out",
            str(page),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    text = page.read_text(encoding="utf-8")
    assert "| 5 |" in text
    assert "## Incremental re-runs" in text
    assert "Same result" in text
    assert "import + autocode throughput" in completed.stdout
    # The generated files and databases are removed unless --keep is given.
    assert list(tmp_path.glob("qualkit-bench-*")) == []
