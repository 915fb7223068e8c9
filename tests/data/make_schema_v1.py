"""Write tests/data/schema_v1.db with the qualkit release that used schema version 1.

Run it with that release first on the module path, from the repository root:

    mkdir -p /tmp/qualkit-v1
    git archive 3429500 | tar -x -C /tmp/qualkit-v1
    PYTHONPATH=/tmp/qualkit-v1 python3 tests/data/make_schema_v1.py \\
        /tmp/qualkit-v1 tests/data/schema_v1.db

It builds a two-transcript copy of that release's sample project: one English
and one Chinese interview, the manifest, the targets and the panel. Then it
adds what a coder would: a manual coding with a memo, memos on the project, a
source and a code, accepted and rejected suggestions, and one undo. The
panel keeps four targets so that the file stays small. Every step
goes through the version-1 command line, so the file is what a user of that
release has on disk.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

TRANSCRIPTS = ("G16S011.md", "G167W101.md")
# The panel is cut to these targets to keep the file small.
PANEL_TARGETS = ("fdi", "shanty_town", "so2_reduction", "cultural_industry")


def keep_panel_targets(path: Path) -> None:
    """Keep the header and the rows of PANEL_TARGETS in a panel CSV file."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    rows = [line for line in lines[1:] if line.split(",")[0] in PANEL_TARGETS]
    path.write_text(lines[0] + "".join(rows), encoding="utf-8")


def run(folder: Path, *args: str) -> None:
    """Run one version-1 ``qualkit`` command in ``folder``; stop on failure."""
    command = [sys.executable, "-m", "qualkit", *args]
    print("$ qualkit", " ".join(args), flush=True)
    subprocess.run(command, cwd=folder, check=True, env={**os.environ, "QUALKIT_CODER": "alice"})


def main(release: Path, out: Path) -> None:
    import qualkit.store

    if qualkit.store.SCHEMA_VERSION != 1:
        sys.exit(
            f"qualkit on the module path ({qualkit.store.__file__}) writes schema version "
            f"{qualkit.store.SCHEMA_VERSION}; put the version-1 release first on PYTHONPATH."
        )
    sample = release / "interviews_sample"
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary) / "project"
        shutil.copytree(sample, folder, ignore=shutil.ignore_patterns("transcripts", "qualkit.db*"))
        (folder / "transcripts").mkdir()
        for name in TRANSCRIPTS:
            shutil.copy(sample / "transcripts" / name, folder / "transcripts" / name)
        keep_panel_targets(folder / "panel" / "target_values.csv")
        keep_panel_targets(folder / "panel" / "target_points.csv")

        run(folder, "build", ".", "--no-report")
        run(folder, "code", "add", "G16S011", "--code", "strategy.reframing", "--segment", "12",
            "--memo", "Reframes the growth target as a floor.")
        run(folder, "code", "add", "G167W101", "--code", "tournament", "--segment", "5")
        run(folder, "code", "add", "G167W101", "--code", "gaming", "--segment", "6")
        run(folder, "undo")
        run(folder, "memo", "add", "--text", "Sample project for the schema upgrade test.")
        run(folder, "memo", "add", "--source", "G167W101", "--text", "Chinese interview, city level.")
        run(folder, "memo", "add", "--code", "tournament", "--text", "Rankings among cities.")
        run(folder, "review", "--accept", "--source", "G16S011", "--code", "target.veto")
        run(folder, "review", "--reject", "--source", "G167W101", "--code", "period")

        # Fold the write-ahead log into the file so one file carries the whole database.
        connection = sqlite3.connect(folder / "qualkit.db")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / "qualkit.db", out)
    print(f"Wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: make_schema_v1.py RELEASE_FOLDER OUT.db")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
