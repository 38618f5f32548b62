"""Every change to a run's header is journaled: a run whose commit failed and is recovered
later keeps its exit code and warnings (issue 9)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import xp


def test_recovered_run_keeps_exit_code_and_warnings(repo: Path) -> None:
    (repo / "params.yaml").write_text("lr: [1,\n")  # unreadable: `xp run` warns about it
    refs = repo / ".git" / "refs" / "xp"
    refs.mkdir(parents=True)
    (refs / "runs").write_text("in the way\n")  # the run's ref cannot be created
    proc = subprocess.run(
        [sys.executable, "-m", "xp", "run", "--", sys.executable, "-c", "raise SystemExit(3)"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert xp.list_runs(repo) == []
    (refs / "runs").unlink()
    recovered = subprocess.run(
        [sys.executable, "-m", "xp", "recover"], cwd=repo, capture_output=True, text=True
    )
    assert recovered.returncode == 0, recovered.stderr
    (entry,) = xp.list_runs(repo)
    run = xp.get_run(entry.id, path=repo)
    assert run.status == "failed"
    assert run.meta["exit_code"] == 3
    assert any("params.yaml" in w and "invalid YAML" in w for w in run.meta["warnings"])
