"""``xp run --executor ray`` / ``ray://HOST:PORT``: each sweep point as a task on Ray.

Ray schedules; xp only submits, as for Dask (``dask_cluster.py``): the sweep's commit is
pushed as ``refs/xp/sweeps/<id>`` and each task runs the sweep's task script (``slurm.py``,
``cluster.py``) with its point in ``XP_POINT``. ``ray`` starts a local Ray runtime for the
sweep (no dashboard, a small object store: tasks return a few lines) or, with ``RAY_ADDRESS``
set, joins that cluster (``ray.init(address="auto")``); ``ray://HOST:PORT`` connects through
Ray Client. A worker that dies is Ray's to handle: the task is retried ``max_retries`` (3, set
here explicitly) times, then the point is reported; the killed attempt records nothing.
Each run records engine ``ray`` and Ray's job and task ids, read in the task from Ray's
runtime context (``record/context.engine_context``). ``ray`` is the optional extra ``ray``;
xp imports it only here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from xp.errors import ExecutionError, InvalidValueError
from xp.execution.cluster import ClusterSweep, prepare, run_script
from xp.gitstore.repo import GitRepo

MAX_RETRIES = 3  # Ray's default for a task whose worker dies; said here, as docs/teams.md does
LOCAL_OBJECT_STORE = 128 * 1024 * 1024  # a local runtime's store: tasks return a few lines


def run_task(script: str, index: int, env: dict[str, str]) -> tuple[int, int, str]:
    """One point, in a Ray worker: the engine's ids from its runtime context, then the script."""
    from xp.record.context import engine_context

    found = engine_context({})  # Ray's runtime only: the worker's XP_* must not win
    task_env = {**env, "XP_ENGINE": "ray"}
    for key, var in (("job_id", "XP_JOB_ID"), ("task_id", "XP_TASK_ID")):
        if found.get(key):
            task_env[var] = found[key]
    return run_script(script, index, task_env)


def _connect(ray: Any, address: str) -> str:
    """Start or join the Ray runtime ``address`` names; what to call it in messages."""
    if address.startswith("ray://"):
        target = address
        kwargs: dict[str, Any] = {"address": address}
    elif os.environ.get("RAY_ADDRESS"):
        target = os.environ["RAY_ADDRESS"]
        kwargs = {"address": "auto"}
    else:
        target = "a local runtime"  # "local": a new one, never a cluster found on this machine
        kwargs = {
            "address": "local",
            "include_dashboard": False,
            "object_store_memory": LOCAL_OBJECT_STORE,
        }
    try:
        ray.init(log_to_driver=False, logging_level=logging.WARNING, **kwargs)
    except (ConnectionError, TimeoutError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExecutionError(
            f"no Ray cluster answers at {target} ({first}); start one (ray start --head) or"
            " check the address"
        ) from None
    except OSError as exc:  # a local runtime's sockets under a long TMPDIR, a full disk
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExecutionError(
            f"Ray could not start {target} ({first}); if the path is too long, set RAY_TMPDIR"
            " to a short folder (e.g. /tmp/ray)"
        ) from None
    return target


def run_on_ray(
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
    """Run every point of the sweep as a Ray task (``address``: ``ray`` or ``ray://HOST:PORT``)."""
    say = progress or (lambda _line: None)
    if address != "ray" and (not address.startswith("ray://") or address == "ray://"):
        raise InvalidValueError(
            f"--executor {address!r}: give ray (a local runtime, or RAY_ADDRESS's cluster) or"
            " the Ray Client server as ray://HOST:PORT"
        )
    ray, job = prepare(
        repo,
        engine="ray",
        module="ray",
        extra="ray",
        option="--executor ray",
        command=command,
        params=params,
        sweep_id=sweep_id,
        cwd=cwd,
        repeat=repeat,
    )
    target = _connect(ray, address)
    result = ClusterSweep(job, "Ray", target, dict.fromkeys(range(job.points)))
    try:
        say(f"xp: sweep {job.sweep_id}: {job.points} point(s) on Ray at {target}")
        task = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(run_task)
        refs = {
            task.options(name=f"xp-{job.sweep_id}-{i}").remote(job.script, i, {}): i
            for i in range(job.points)
        }
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                for ref in done:
                    try:
                        index, code, tail = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # retries used up, or cancelled
                        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                        result.lost(refs[ref], f"{type(exc).__name__}: {reason}", say)
                    else:
                        result.finished(index, code, tail, say)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)
            raise
    finally:
        ray.shutdown()
    return result
