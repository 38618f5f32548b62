"""xp bisect and xp log --metric over a scripted history: 30 commits, val_loss regresses at a
known one; git bisect underneath, in a worktree of its own."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import xp
from tests.helpers import git, one_line_error, xp_main

TRAIN = """\
import xp
level = float(open("level.txt").read())
xp.log_metric("val_loss", level)
xp.log_metric("acc", 1 - level)
"""
BAD_AT = 17  # commit index (0-based) where val_loss jumps from 0.30 to 0.45


def history(root: Path, n: int = 30, bad_at: int = BAD_AT) -> list[str]:
    """n commits; commit i has level.txt = 0.30 (+ tiny drift) before bad_at, 0.45 after."""
    (root / "train.py").write_text(TRAIN)
    shas = []
    for i in range(n):
        level = (0.45 if i >= bad_at else 0.30) + i * 0.0001
        (root / "level.txt").write_text(f"{level}\n")
        (root / f"mod{i % 3}.py").write_text(f"# change {i}\n")
        git(root, "add", "-A")
        git(root, "commit", "-qm", f"change {i}")
        shas.append(git(root, "rev-parse", "HEAD").strip())
    return shas


def run_everywhere(root: Path, shas: list[str]) -> None:
    """A run of train.py's logic on every commit, recorded from a clean checkout."""
    for sha in shas:
        git(root, "checkout", "-q", sha)
        level = float((root / "level.txt").read_text())
        with xp.start_run(path=root):
            xp.log_metric("val_loss", level)
    git(root, "checkout", "-q", "main")


def command() -> list[str]:
    return [sys.executable, "train.py"]


def test_bisect_runs_the_command_only_where_no_run_exists(repo: Path) -> None:
    shas = history(repo)
    code, out, err = xp_main(
        "bisect", "--metric", "val_loss", "--good", shas[0], "--bad", "HEAD", "--", *command(),
        cwd=repo,
    )  # fmt: skip
    assert code == 0, err
    assert f"first bad commit: {shas[BAD_AT]}  change {BAD_AT}" in out
    executed = int(out.split(" run(s) executed")[0].rsplit(", ", 1)[1])
    assert 5 <= executed <= 8  # both ends, then ~log2(30) steps
    # the runs it made are ordinary runs, tagged, on their commits
    made = xp.search_runs(filter_string="tags.`xp.bisect` != ''", path=repo)
    assert len(made) == executed
    assert git(repo, "status", "--porcelain") == ""  # the user's work tree is untouched
    assert len(git(repo, "worktree", "list").splitlines()) == 1  # its worktree is gone
    # a second bisection over the same range reuses every one of them
    code, out, err = xp_main(
        "bisect", "--metric", "val_loss", "--good", shas[0], "--", *command(), cwd=repo
    )
    assert code == 0, err
    assert "0 run(s) executed" in out
    assert f"first bad commit: {shas[BAD_AT]}" in out


def test_bisect_with_runs_on_every_commit_executes_nothing(repo: Path) -> None:
    shas = history(repo)
    run_everywhere(repo, shas)
    code, out, err = xp_main("bisect", "-m", "val_loss", "--good", shas[3], cwd=repo)
    assert code == 0, err
    assert f"first bad commit: {shas[BAD_AT]}" in out
    assert "0 run(s) executed" in out
    steps = int(out.split(" step(s)")[0].rsplit("\n", 1)[1])
    assert steps <= 5  # 26 commits: ceil(log2(26))
    # the diff to the parent: val_loss of the parent's run against the first bad one's
    assert "best run of the parent (A) against the first bad commit's (B)" in out
    assert "level.txt" in out  # the code that changed


def test_bisect_thresholds_and_user_errors(repo: Path) -> None:
    shas = history(repo, 12, bad_at=7)
    run_everywhere(repo, shas)
    # a threshold above every value: nothing is worse
    code, _out, err = xp_main(
        "bisect", "-m", "val_loss", "--good", shas[0], "--threshold", "0.9", cwd=repo
    )
    assert "not worse than" in one_line_error(code, err)
    # 5% worse than the good value's 0.30 is 0.315: the jump at BAD_AT is found
    code, out, err = xp_main(
        "bisect", "-m", "val_loss", "--good", shas[0], "--worse-by", "5%", cwd=repo
    )
    assert code == 0, err
    assert f"first bad commit: {shas[7]}" in out
    # reversed range, unknown metric, bad option values
    code, _out, err = xp_main(
        "bisect", "-m", "val_loss", "--good", "HEAD", "--bad", shas[0], cwd=repo
    )
    assert "not an ancestor" in one_line_error(code, err)
    code, _out, err = xp_main("bisect", "-m", "nope", "--good", shas[0], cwd=repo)
    assert "no run has a metric 'nope'" in one_line_error(code, err)
    code, _out, err = xp_main("bisect", "-m", "val_loss", "--good", "v9", cwd=repo)
    assert "--good 'v9' names no commit" in one_line_error(code, err)
    code, _out, err = xp_main(
        "bisect", "-m", "val_loss", "--good", shas[0], "--worse-by", "x%", cwd=repo
    )
    assert "--worse-by" in one_line_error(code, err)
    # the good end already worse (higher is better by --goal max)
    code, _out, err = xp_main(
        "bisect", "-m", "val_loss", "--good", shas[0], "--goal", "max", cwd=repo
    )
    assert "already worse" in one_line_error(code, err)


def test_commits_that_cannot_be_measured_are_skipped(repo: Path) -> None:
    """No run and no command in the middle: git bisect skip; the answer may stay open."""
    shas = history(repo, 8)
    for i in (0, 7):
        git(repo, "checkout", "-q", shas[i])
        with xp.start_run(path=repo):
            xp.log_metric("val_loss", 0.30 if i == 0 else 0.45)
    git(repo, "checkout", "-q", "main")
    code, out, err = xp_main("bisect", "-m", "val_loss", "--good", shas[0], cwd=repo)
    assert code == 1, err
    assert "only skipped commits are left" in out
    assert shas[7] in out


def test_dirty_runs_are_left_out_unless_asked(repo: Path) -> None:
    shas = history(repo, 6)
    for i, sha in enumerate(shas):
        git(repo, "checkout", "-q", sha)
        (repo / "scratch.txt").write_text("uncommitted")  # every run is dirty
        with xp.start_run(path=repo):
            xp.log_metric("val_loss", 0.3 if i < 3 else 0.5)
        os.unlink(repo / "scratch.txt")
    git(repo, "checkout", "-q", "main")
    code, _out, err = xp_main("bisect", "-m", "val_loss", "--good", shas[0], cwd=repo)
    line = one_line_error(code, err)
    assert "cannot measure val_loss on the good commit" in line
    assert "its runs had uncommitted changes; --include-dirty uses them" in line
    code, out, err = xp_main(
        "bisect", "-m", "val_loss", "--good", shas[0], "--include-dirty", cwd=repo
    )
    assert code == 0, err
    assert f"first bad commit: {shas[3]}" in out


@pytest.mark.slow
def test_a_thousand_commits_with_runs_take_at_most_eleven_steps(repo: Path) -> None:
    """The issue's measure: 1,000 commits, a run on each, no command to run."""
    from benchmarks.git_native import _history

    git(repo, "config", "user.name", "Bench Mark")
    git(repo, "config", "user.email", "bench@example.com")
    shas = _history(repo, 1000, bad_at=613)
    for sha in shas:
        (repo / ".git" / "HEAD").write_text(sha + "\n")
        (repo / "level.txt").write_text(git(repo, "show", f"{sha}:level.txt"))
        with xp.start_run(path=repo):
            xp.log_metric("val_loss", float((repo / "level.txt").read_text()))
    git(repo, "checkout", "-q", "-f", "main")
    code, out, err = xp_main("bisect", "-m", "val_loss", "--good", shas[0], cwd=repo)
    assert code == 0, err
    assert f"first bad commit: {shas[613]}" in out
    steps = int(out.split(" step(s)")[0].rsplit("\n", 1)[1])
    assert steps <= 11
    assert "0 run(s) executed" in out
