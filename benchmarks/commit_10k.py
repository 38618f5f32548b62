"""`xp commit` on a repository of 10,000 tracked files (1-10 KB each) with a few edited: the
cost of recording the workspace as a run from the shell. Peer: `dvc exp save`, DVC's nearest
command (it too commits the workspace as an experiment ref without touching HEAD)."""

from __future__ import annotations

import json
import random
import statistics
import subprocess
from pathlib import Path

from benchmarks.harness import (
    Context,
    Metric,
    Workload,
    age,
    best_of,
    child_env,
    git,
    git_repo,
    script,
    settle,
    xp_command,
    xp_init,
)

EDITED = 3  # tracked files changed before each commit, plus metrics.json


def big_project(root: Path, n_files: int) -> Path:
    """``n_files`` source-like text files of 1-10 KB in 100 folders, plus params and metrics."""
    rng = random.Random(42)
    files: dict[str, bytes | str] = {
        "params.yaml": "lr: 0.01\nmodel:\n  depth: 6\n",
        "metrics.json": json.dumps({"loss": 1.0, "accuracy": 0.5}) + "\n",
        ".gitignore": "outputs/\n",
    }
    for i in range(n_files):
        size = rng.randint(1000, 10_000)
        files[f"pkg{i % 100:02d}/mod{i:05d}.py"] = rng.randbytes(size // 2 + 1).hex()[:size]
    return git_repo(root, files)


def edit(repo: Path, n_files: int, round_: int) -> None:
    """Change a few tracked files and the metrics file, as a training iteration does."""
    for j in range(EDITED):
        i = (round_ * EDITED + j) * 37 % n_files
        path = repo / f"pkg{i % 100:02d}/mod{i:05d}.py"
        path.write_text(path.read_text() + f"\n# edit {round_}\n")
    (repo / "metrics.json").write_text(json.dumps({"loss": 1 / (round_ + 2), "accuracy": 0.6}))


def xp_side(ctx: Context) -> dict[str, float]:
    n_files, n = ctx.size(10_000, 1_000), ctx.size(5, 2)
    repo = xp_init(big_project(ctx.workdir / "project", n_files))
    cmd = [*xp_command(), "commit", "-m", "bench"]
    settle()
    cpu: list[float] = []
    return {
        "commit": best_of(cmd, n, repo, before=lambda i: edit(repo, n_files, i), cpu=cpu),
        "commit_cpu": statistics.median(cpu),
        "git_status": best_of(["git", "status", "--porcelain"], n, repo),
    }


def dvc_side(ctx: Context) -> dict[str, float]:
    exe = script("dvc")
    if exe is None:
        raise RuntimeError("the dvc command is not on PATH")
    n_files, n = ctx.size(10_000, 1_000), ctx.size(5, 2)
    repo = big_project(ctx.workdir / "project", n_files)
    subprocess.run([exe, "init", "-q"], cwd=repo, env=child_env(), check=True)
    age(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "dvc init")
    settle()
    return {
        "commit": best_of(
            [exe, "exp", "save", "-q"], n, repo, before=lambda i: edit(repo, n_files, i)
        ),
    }


WORKLOAD = Workload(
    key="commit",
    title="`xp commit` on a repo of 10,000 tracked files, 3 edited (subprocess, best of 5)",
    metrics=(
        Metric("commit", "xp commit", "ms", 0.100, peer_label="dvc exp save"),
        Metric("commit_cpu", "xp commit, CPU of its process tree (median)", "ms", 0.100),
        Metric("git_status", "git status (floor)", "ms"),
    ),
    xp=xp_side,
    peer="dvc",
    peer_side=dvc_side,
    repeat=1,
    peer_repeat=1,
    order=60,
    notes=(
        "each timed commit follows an untimed edit of 3 files + metrics.json; one warm-up"
        " commit first",
    ),
    quick_notes=("quick: 1,000 files, best of 2",),
)
