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
