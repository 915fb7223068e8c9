"""The sentence worker of a large Chinese import ends when its import is killed.

After `kill -9` of `qualkit build`, the forked worker must not keep running
with the database's files open.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = """
import sys
import qualkit.sources
qualkit.sources.PARALLEL_MIN_CHARACTERS = 0
from qualkit.cli import cli
cli(["--db", sys.argv[1], "import", *sys.argv[2:]], prog_name="qualkit")
"""


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2, reason="the worker runs only on Linux with two or more cores")
def test_worker_ends_when_import_is_killed(tmp_path: Path) -> None:
    sentence = "我们每年都和省里就棚户区改造的目标讨价还价。" * 400
    files = []
    for number in range(40):
        path = tmp_path / f"Z{number:02d}.md"
        text = f"第{number}次访谈。" + sentence
        path.write_text(f"---\nid: Z{number:02d}\nlanguage: zh\n---\n\n受访者：{text}\n", encoding="utf-8")
        files.append(str(path))
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "q.db"), *files],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    deadline = time.monotonic() + 60
    while not workers and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        workers = children(process.pid)
    if not workers:
        process.wait()
        pytest.skip("the import ended before its worker could be seen")

    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)

    assert not any(alive(pid) for pid in workers)
