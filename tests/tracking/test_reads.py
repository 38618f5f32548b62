"""A run that reads an ignored file it does not record says so, once per file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import git

SCRIPT = """
import xp
with xp.start_run():
    rows = open("data/train.csv").read().count("\\\\n")
    open("notes.txt").read()  # tracked: in the snapshot already
    xp.log_metric("rows", rows)
"""


def run_script(repo: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "train.py"], cwd=repo, capture_output=True, text=True, check=True
    )
    return proc.stderr


def test_reading_an_ignored_unrecorded_file_is_said_once(repo: Path) -> None:
    (repo / "train.py").write_text(SCRIPT)
    (repo / "notes.txt").write_text("tracked\n")
    (repo / ".gitignore").write_text("data/\n")
    (repo / "data").mkdir()
    (repo / "data" / "train.csv").write_text("a\nb\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "project")
    said = run_script(repo)
    assert "xp: hint: this run read data/train.csv, which git ignores" in said
    assert "under data: in .xp/config.yaml" in said
    assert "notes.txt" not in said
    assert said.count("xp: hint:") == 1
    assert "hint" not in run_script(repo)  # once
    # Listed under data: no hint (for a new file, which would be hinted otherwise)
    (repo / "data" / "test.csv").write_text("c\n")
    (repo / "train.py").write_text(SCRIPT.replace("train.csv", "test.csv"))
    (repo / ".xp").mkdir()
    (repo / ".xp" / "config.yaml").write_text("data: [data/test.csv]\n")
    assert "hint" not in run_script(repo)


def test_under_xp_run_the_script_s_reads_are_hinted(repo: Path) -> None:
    (repo / "train.py").write_text(SCRIPT.replace('open("notes.txt").read()', "pass"))
    (repo / ".gitignore").write_text("data/\n")
    (repo / "data").mkdir()
    (repo / "data" / "train.csv").write_text("a\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "project")
    proc = subprocess.run(
        [sys.executable, "-m", "xp", "run", "--", sys.executable, "train.py"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "this run read data/train.csv" in proc.stderr


TWO_RUNS = """
import xp
for i in range(2):
    with xp.start_run():
        if i == 0:
            with open("out/model.bin", "wb") as fh:
                fh.write(b"weights")
            xp.log_artifact("out/model.bin")  # xp reads it to hash it: recorded by run 0
"""


def test_a_file_recorded_by_an_earlier_run_in_the_process_is_not_charged_to_the_next(
    repo: Path,
) -> None:
    (repo / "train.py").write_text(TWO_RUNS)
    (repo / ".gitignore").write_text("out/\n")
    (repo / "out").mkdir()
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "project")
    said = run_script(repo)
    assert "hint" not in said, said


def test_the_hook_notes_only_data_reads_under_live_runs(tmp_path: Path) -> None:
    """The filter itself, event by event. CPython runs audit hooks untraced, so the scripts
    above exercise it where coverage cannot see; here it is called as the interpreter does."""
    import os

    from xp.tracking import reads

    root = tmp_path / "work"
    other = tmp_path / "elsewhere"
    for folder in (root / "data", root / ".venv", root / "lib" / "site-packages", other):
        folder.mkdir(parents=True)
    data = str(root / "data" / "train.csv")
    reads.watch(root)
    try:
        reads._hook("open", (data, "r", 0))  # open() for reading
        reads._hook("open", (str(root / "data" / "os.bin"), None, os.O_RDONLY))  # os.open
        reads._hook("open", (str(root / "data" / "out.csv"), "w", 0))  # writes are not reads
        reads._hook("open", (str(root / "data" / "log.txt"), "a+", 0))
        reads._hook("open", (str(root / "data" / "new.bin"), None, os.O_WRONLY | os.O_CREAT))
        reads._hook("open", (str(root / "data" / "rw.bin"), None, os.O_RDWR))
        reads._hook("open", (str(root / "train.py"), "r", 0))  # code is not data
        reads._hook("open", (str(root / ".venv" / "x.csv"), "r", 0))  # hidden folders
        reads._hook("open", (str(root / "lib" / "site-packages" / "y.csv"), "r", 0))
        reads._hook("open", (str(other / "z.csv"), "r", 0))  # outside the work tree
        reads._hook("open", (3, "r", 0))  # a file descriptor, no path
        reads._hook("exec", (data,))  # other events
        reads.watch(root)  # a second run in the same work tree
        assert reads.unwatch(root) >= {os.path.join("data", "train.csv")}
        with open(data, "w") as fh:  # the real hook (untraced) ignores this write
            fh.write("x\n")
        noted = reads.unwatch(root)
    finally:
        reads._roots.pop(str(root), None)
    assert {p for p in noted if p.startswith("data")} == {
        os.path.join("data", "train.csv"),
        os.path.join("data", "os.bin"),
    }
    before = set(reads._seen)
    reads._hook("open", (data.replace("train", "later"), "r", 0))  # no live run: nothing
    assert reads._seen == before
