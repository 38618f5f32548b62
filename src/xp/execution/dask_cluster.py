"""``xp run --executor dask://HOST:PORT``: each sweep point as a task on a Dask cluster.

Dask schedules; xp only submits. The sweep's commit is pushed first as
``refs/xp/sweeps/<id>`` (as for Slurm, ``slurm.py``), and each task runs the same script a
Slurm array task runs, its point in ``XP_POINT``: clone, check out that commit,
``xp run --point``, ``xp push`` (``cluster.py``: what every engine shares). A worker that dies
is Dask's to handle: it re-runs the task elsewhere, up to
``distributed.scheduler.allowed-failures`` (3) times, then the point is reported; the killed
attempt stops with its worker and records nothing, so the point is never recorded twice.
Points are reported as they finish; Ctrl-C cancels those not finished. ``distributed`` is the
optional extra ``dask``; xp imports it only here.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from xp.errors import ExecutionError, InvalidValueError
from xp.execution.cluster import ClusterSweep, prepare, run_script
from xp.gitstore.repo import GitRepo

SCHEMES = ("dask://", "tcp://", "tls://")


def scheduler_address(spec: str) -> str:
    """``dask://host:port`` (or Dask's own ``tcp://``/``tls://``) -> what Client takes."""
    if not spec.startswith(SCHEMES) or not spec.split("://", 1)[1]:
        raise InvalidValueError(
            f"--executor {spec!r}: give the scheduler as dask://HOST:PORT (or tcp://HOST:PORT)"
        )
    return "tcp://" + spec.split("://", 1)[1] if spec.startswith("dask://") else spec


def run_task(script: str, index: int, env: dict[str, str]) -> tuple[int, int, str]:
    """One point, on a worker: (index, the task's exit status, its last output lines)."""
    task_env = dict(env)
    try:
        worker = importlib.import_module("distributed").get_worker()
        task_env["XP_TASK_ID"] = str(worker.get_current_task())
    except (ImportError, ValueError):  # pragma: no cover - always inside a Dask task
        pass
    return run_script(script, index, task_env)


def run_on_dask(
    repo: GitRepo,
    *,
    address: str,
    command: list[str],
    params: list[str] | tuple[str, ...],
    sweep_id: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
    repeat: int = 1,
) -> ClusterSweep:
    """Run every point of the sweep as a task on the Dask scheduler at ``address``."""
    say = progress or (lambda _line: None)
    target = scheduler_address(address)
    distributed, job = prepare(
        repo,
        engine="dask",
        module="distributed",
        extra="dask",
        option="--executor dask://",
        command=command,
        params=params,
        sweep_id=sweep_id,
        cwd=cwd,
        repeat=repeat,
    )
    result = ClusterSweep(job, "Dask", target, dict.fromkeys(range(job.points)))
    env = {"XP_ENGINE": "dask", "XP_JOB_ID": job.sweep_id}
    try:
        client = distributed.Client(target, timeout="20s")
    except OSError as exc:
        raise ExecutionError(
            f"no Dask scheduler answers at {target} ({exc}); start one (dask scheduler) or"
            " check the address"
        ) from None
    with client:
        say(f"xp: sweep {job.sweep_id}: {job.points} point(s) on Dask at {target}")
        futures = [
            client.submit(run_task, job.script, i, env, key=f"xp-{job.sweep_id}-{i}", pure=False)
            for i in range(job.points)
        ]
        try:
            for future in distributed.as_completed(futures):
                try:
                    index, code, tail = future.result()
                except Exception as exc:  # KilledWorker: its workers died too often
                    index = futures.index(future)
                    result.lost(index, f"{type(exc).__name__}: {exc}", say)
                else:
                    result.finished(index, code, tail, say)
        except KeyboardInterrupt:
            client.cancel(futures)
            raise
    return result
