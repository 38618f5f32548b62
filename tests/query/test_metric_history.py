"""xp log --metric: a metric along a branch's first-parent commits."""

from __future__ import annotations

from pathlib import Path

import pytest

import xp
from tests.helpers import git, one_line_error, xp_main


def commits(root: Path, n: int) -> list[str]:
    shas = []
    for i in range(n):
        (root / "level.txt").write_text(f"{i}\n")
        git(
            root, "commit", "-qam" if i else "-qm", f"change {i}", *([] if i else ["--allow-empty"])
        )
        if i == 0:
            git(root, "add", "level.txt")
            git(root, "commit", "-qm", "level")
        shas.append(git(root, "rev-parse", "HEAD").strip())
    return shas


def run_on(root: Path, sha: str, value: float) -> str:
    git(root, "checkout", "-q", sha)
    with xp.start_run(path=root) as run:
        xp.log_metric("val_loss", value)
    git(root, "checkout", "-q", "main")
    return str(run.id)


@pytest.mark.parametrize("pick", ["best", "latest"])
def test_log_metric_follows_the_branch(repo: Path, pick: str) -> None:
    shas = commits(repo, 5)
    for i, sha in enumerate(shas[1:], 1):
        run_on(repo, sha, 0.3 + i / 100)
    worse = run_on(repo, shas[3], 0.9)  # newer but worse
    code, out, err = xp_main("log", "--metric", "val_loss", "--pick", pick, cwd=repo)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["commit", "date"]
    assert [ln.split()[0] for ln in lines[1:6]] == [s[:9] for s in reversed(shas)]
    row3 = lines[1 + 4 - 3]
    assert ("0.9" in row3 and worse in row3) == (pick == "latest")
    assert ("0.33" in row3) == (pick == "best")
    assert lines[-1].split()[-2:] == ["-", "0"]  # the repo's first commit has no run
    code, out, err = xp_main("log", "-m", "val_loss", "-n", "2", "--json", cwd=repo)
    assert code == 0, err
    assert '"commit": "' + shas[-1] in out
    assert out.count('"commit"') == 2


def test_log_metric_errors(repo: Path) -> None:
    run_on(repo, "HEAD", 0.5)
    code, _out, err = xp_main("log", "--metric", "nope", cwd=repo)
    assert "no run has a metric 'nope'; metrics: val_loss" in one_line_error(code, err)
    code, _out, err = xp_main("log", "nope-branch", "--metric", "val_loss", cwd=repo)
    assert "no branch, tag or commit 'nope-branch'" in one_line_error(code, err)
