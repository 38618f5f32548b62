"""A worker killed mid-point, on Dask (a LocalCluster of process workers) and on Ray (a local
runtime xp starts): the engine re-runs the point, the killed attempt stops with its worker and
pushes nothing, and the remote ends with exactly one run per point."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from subprocess import Popen

import pytest

from tests.execution.test_ray_cluster import ray_env, sweep_runs
from tests.execution.test_slurm import _project
from tests.helpers import alive, spawned, wait_for
from tests.sharing.test_e2e import daemon, sh

__all__ = ["daemon"]

# Point lr=0.1's first attempt says who it is, then trains "forever"; its retry is quick.
TRAIN = """
import os, time, yaml, xp
p = yaml.safe_load(open("params.yaml"))
shared = os.environ["XPTEST_SHARED"]
with xp.start_run():
    if p["lr"] == 0.1 and not os.path.exists(os.path.join(shared, "killed")):
        with open(os.path.join(shared, "victim.tmp"), "w") as fh:
            fh.write(str(os.getpid()))
        os.replace(os.path.join(shared, "victim.tmp"), os.path.join(shared, "victim"))
        time.sleep(600)
    xp.log_metric("score", p["lr"] * 10)
"""


def _parent(pid: int) -> tuple[int, str]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    return int(stat.rsplit(")", 1)[1].split()[1]), comm


def _worker_of(pid: int) -> int:
    """The engine's worker process running the task whose command is ``pid``: the parent of
    the task script's bash (command <- xp run's guard <- xp run <- bash <- worker)."""
    while True:
        ppid, comm = _parent(pid)
        if comm == "bash":
            return ppid
        assert ppid > 1, "no bash above the command"
        pid = ppid


@pytest.fixture
def project(tmp_path: Path, daemon: str) -> tuple[Path, Path]:
    a = _project(tmp_path, daemon)
    (a / "train.py").write_text(TRAIN)
    sh(a, "git", "commit", "-qam", "a point that trains until its worker is killed")
    shared = tmp_path / "shared"
    shared.mkdir()
    return a, shared


def _kill_and_check(
    tmp_path: Path, daemon: str, shared: Path, proc: Popen[str], sweep: str
) -> None:
    """Kill the worker running point 0's first attempt, then check the sweep's end."""
    try:
        found = wait_for(
            lambda: _read(shared / "victim") or proc.poll() is not None, "point 0", timeout=300
        )
        assert isinstance(found, str)
        victim = int(found)
    except AssertionError:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"point 0 never started: {out}{err}") from None
    worker = _worker_of(victim)
    (shared / "killed").touch()  # the next attempt trains briefly
    os.kill(worker, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert f"sweep {sweep}: 2/2 finished on" in out
    # the killed attempt's command stopped with its worker: it never finishes, never pushes
    wait_for(lambda: not alive(victim), "the killed attempt's command to stop", timeout=60)
    runs = sweep_runs(tmp_path, daemon, sweep)
    got = sorted((r.params["lr"], r.meta["status"]) for r in runs)  # type: ignore[attr-defined]
    assert got == [(0.1, "finished"), (0.2, "finished")]  # one run per point: none lost, none twice
    # its clone is removed (by its own trap, or by the next attempt of the point on this host)
    wait_for(
        lambda: not [p for p in tmp_path.iterdir() if p.name.startswith(f"xp-{sweep}-")],
        "the killed attempt's clone to be removed",
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text() or None
    except FileNotFoundError:
        return None


def _sweep(
    a: Path, env: dict[str, str], executor: str, sweep: str
) -> contextlib.AbstractContextManager[Popen[str]]:
    """``xp run --executor EXECUTOR`` of a two-point sweep, running (killed at the end)."""
    argv = [sys.executable, "-m", "xp", "run", "--executor", executor, "--sweep-id", sweep]
    argv += ["-p", "lr=0.1,0.2", "--", "python", "train.py"]
    pipe = subprocess.PIPE
    return spawned(argv, cwd=a, env=env, stdout=pipe, stderr=pipe, text=True)


@pytest.mark.framework
def test_a_dask_worker_killed_mid_point_leaves_one_run_per_point(
    tmp_path: Path, daemon: str, project: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    distributed = pytest.importorskip("distributed")
    a, shared = project
    env = ray_env(tmp_path) | {"XPTEST_SHARED": str(shared)}
    for key in ("PATH", "TMPDIR", "XPTEST_SHARED"):  # what the LocalCluster's workers inherit
        monkeypatch.setenv(key, env[key])
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        with _sweep(a, env, address, "k1") as proc:
            _kill_and_check(tmp_path, daemon, shared, proc, "k1")


@pytest.mark.framework
def test_a_ray_worker_killed_mid_point_leaves_one_run_per_point(
    tmp_path: Path, daemon: str, project: tuple[Path, Path]
) -> None:
    pytest.importorskip("ray")
    a, shared = project
    env = ray_env(tmp_path) | {"XPTEST_SHARED": str(shared)}
    env.pop("RAY_ADDRESS", None)  # `ray`: a local runtime xp starts for the sweep
    # Ray's sockets live under its temp dir, and AF_UNIX paths are short
    env["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="xpray-", dir="/tmp")
    with _sweep(a, env, "ray", "k2") as proc:
        try:
            _kill_and_check(tmp_path, daemon, shared, proc, "k2")
        finally:
            shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)


@pytest.mark.framework
def test_ctrl_c_on_a_ray_sweep_cancels_the_points_still_running(
    tmp_path: Path, daemon: str, project: tuple[Path, Path]
) -> None:
    pytest.importorskip("ray")
    a, shared = project
    env = ray_env(tmp_path) | {"XPTEST_SHARED": str(shared)}
    env.pop("RAY_ADDRESS", None)
    env["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="xpray-", dir="/tmp")
    try:
        with _sweep(a, env, "ray", "c1") as proc:
            found = wait_for(
                lambda: _read(shared / "victim") or proc.poll() is not None, "point 0", timeout=300
            )
            assert isinstance(found, str), proc.communicate()
            proc.send_signal(signal.SIGINT)
            _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 130, err
        # the cancelled point's command stopped and pushed no run (Ray SIGKILLs a cancelled
        # task's processes, so its clone may stay in the worker's TMPDIR: docs/teams.md)
        wait_for(lambda: not alive(int(found)), "the cancelled point's command to stop")
        runs = sweep_runs(tmp_path, daemon, "c1")
        assert 0.1 not in [r.params["lr"] for r in runs]  # type: ignore[attr-defined]
    finally:
        shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
