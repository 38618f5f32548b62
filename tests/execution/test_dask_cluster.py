"""`xp run --executor dask://`: a 2x2 sweep on a real Dask LocalCluster (process workers)
against a real git server; it ends with the four runs on the shared remote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.execution.test_slurm import _project
from tests.helpers import one_line_error, xp_main
from tests.sharing.test_e2e import _env, daemon, sh, xp_

__all__ = ["daemon"]


def _on_dask(
    tmp_path: Path, a: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> subprocess.CompletedProcess[str]:
    """`xp run --executor dask://... ARGS` in ``a`` against a LocalCluster of two process
    workers, which inherit this process's environment: xp on PATH, scratch in tmp_path."""
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        return subprocess.run(
            [sys.executable, "-m", "xp", "run", "--executor", address, *args],
            cwd=a,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )


@pytest.mark.framework
def test_a_sweep_on_a_dask_cluster_ends_with_its_runs_on_the_remote(
    tmp_path: Path, daemon: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _project(tmp_path, daemon)
    args = ["--sweep-id", "d1", "-p", "lr=0.1,0.2", "-p", "depth=1,2", "--", "python", "train.py"]
    proc = _on_dask(tmp_path, a, monkeypatch, args)
    assert proc.returncode == 0, proc.stderr
    assert "sweep d1: 4/4 finished on Dask" in proc.stdout
    assert proc.stderr.count(": finished") == 4  # progress as points finished
    b = tmp_path / "b"
    sh(tmp_path, "git", "clone", "-q", daemon, str(b))
    xp_(b, "init")
    sh(b, "git", "fetch", "-q", "origin")
    shown = json.loads(xp_(b, "show", "--all", "-w", "tags.xp.sweep = 'd1'", "--format", "json"))
    import xp

    runs = [xp.get_run(r["run_id"], path=b) for r in shown]
    assert sorted((r.params["lr"], r.params["depth"]) for r in runs) == [
        (0.1, 1),
        (0.1, 2),
        (0.2, 1),
        (0.2, 2),
    ]
    assert {r.meta["engine"] for r in runs} == {"dask"}
    assert sorted(r.meta["task_id"] for r in runs) == [f"xp-d1-{i}" for i in range(4)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("xp-d1-")]


def test_a_dask_executor_needs_a_scheduler_address(tmp_path: Path, daemon: str) -> None:
    a = _project(tmp_path, daemon)
    argv = ["run", "-p", "lr=0.1,0.2", "--", "python", "train.py"]
    msg = one_line_error(*xp_main(argv[0], "--executor", "dask:/x", *argv[1:], cwd=a)[::2])
    assert "give the scheduler as dask://HOST:PORT" in msg


SEARCH = """
import os, optuna, xp
from xp.integrations.optuna import XPCallback

optuna.logging.set_verbosity(optuna.logging.WARNING)
backend = optuna.storages.journal.JournalFileBackend(os.environ["OPTUNA_JOURNAL"])
study = optuna.create_study(
    study_name="search", storage=optuna.storages.JournalStorage(backend), load_if_exists=True
)
study.optimize(lambda t: (t.suggest_float("x", -10, 10) - 2) ** 2, n_trials=3,
               callbacks=[XPCallback()])
"""


@pytest.mark.framework
def test_an_optuna_search_runs_as_repeated_workers_on_dask(
    tmp_path: Path, daemon: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`xp run --executor dask://... --repeat 2`: two workers of one Optuna study (a shared
    journal storage) on the cluster; each trial is recorded once, as a child run of its
    worker's run, and every run reaches the remote."""
    optuna = pytest.importorskip("optuna")
    a = _project(tmp_path, daemon)
    (a / "search.py").write_text(SEARCH)
    sh(a, "git", "add", "search.py")
    sh(a, "git", "commit", "-qm", "search")
    journal = tmp_path / "optuna.log"
    monkeypatch.setenv("OPTUNA_JOURNAL", str(journal))
    args = ["--sweep-id", "o1", "--repeat", "2", "--", "python", "search.py"]
    proc = _on_dask(tmp_path, a, monkeypatch, args)
    assert proc.returncode == 0, proc.stderr
    assert "sweep o1: 2/2 finished on Dask" in proc.stdout
    backend = optuna.storages.journal.JournalFileBackend(str(journal))
    study = optuna.load_study(study_name="search", storage=optuna.storages.JournalStorage(backend))
    trials = {t.number: t.params["x"] for t in study.trials}
    assert len(trials) == 6
    b = tmp_path / "b"
    sh(tmp_path, "git", "clone", "-q", daemon, str(b))
    xp_(b, "init")
    sh(b, "git", "fetch", "-q", "origin")
    shown = json.loads(xp_(b, "show", "--all", "--format", "json"))
    workers = [r for r in shown if r.get("tags", {}).get("xp.sweep") == "o1"]
    assert sorted(r["tags"]["xp.sweep.point"] for r in workers) == ["1/2", "2/2"]
    recorded = [r for r in shown if "optuna.trial" in r.get("tags", {})]
    assert sorted(int(r["tags"]["optuna.trial"]) for r in recorded) == sorted(trials)
    import xp

    for r in recorded:  # each trial under the worker that ran it, with the x it tried
        assert xp.get_run(r["run_id"], path=b).meta["parent"] in {w["run_id"] for w in workers}
        assert r["params"]["x"] == trials[int(r["tags"]["optuna.trial"])]
