"""What the executors on a cluster engine share (``dask_cluster.py``, ``ray_cluster.py``).

Each point is one task of the engine running the sweep's task script (``slurm.py``) with its
point in ``XP_POINT``. The task returns the script's exit status instead of raising for it, so
the engine never re-runs a point that ran; it re-runs one whose worker died (its own retry).
A killed attempt never records a run: the script runs under a parent-death signal, so it stops
with its worker and pushes nothing, and every attempt of a point records the same run id (the
driver chose it, ``SlurmJob.run_ids``): the remote creates that ref once, and a later attempt
that finds it there stops at once. So a point ends with exactly one run on the remote, or is
reported.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xp.errors import missing_extra
from xp.execution.slurm import SlurmJob, plan, push_code

if TYPE_CHECKING:
    from xp.gitstore.repo import GitRepo

# Started by the worker's thread, this process sets its parent-death signal and becomes bash:
# when the worker dies (killed, out of memory), bash gets SIGTERM and its trap stops the point.
# A signal ignored on entry cannot be trapped by bash, and Ray's workers ignore SIGTERM: the
# usual dispositions come back first.
_DIE_WITH_PARENT = """import ctypes, os, signal, sys
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, signal.SIG_DFL)
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() != int(sys.argv[1]):
    os._exit(143)  # the worker died before prctl: do not start
os.execvp(sys.argv[2], sys.argv[2:])
"""
TAIL_LINES = 20
TETHER_ENV = "XP_TETHER"  # the task script's pid: its `xp run --point` dies with it


def tether() -> None:
    """In ``xp run --point`` started by a task script with ``XP_TETHER=$$``: die (SIGKILL)
    when that script dies, however it died (an engine may SIGKILL a dead worker's children,
    leaving no trap to run); xp run's guard then stops the command. Linux only."""
    import signal as sig

    pid = os.environ.pop(TETHER_ENV, "")
    if not pid.isdigit():
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, sig.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the script's trap alone
        return
    if os.getppid() != int(pid):  # the script died before prctl
        os._exit(137)


@dataclass
class ClusterSweep:
    """What a sweep on a cluster engine did: each point's exit status (None: not run) and the
    last output lines of a point that failed or that the engine gave up on."""

    job: SlurmJob
    engine: str  # "Dask", "Ray": for messages
    address: str
    status: dict[int, int | None] = field(default_factory=dict)
    output: dict[int, str] = field(default_factory=dict)

    def finished(self, index: int, code: int, tail: str, say: Callable[[str], None]) -> None:
        """Point ``index`` ran to its end with exit status ``code``."""
        self.status[index] = code
        if code != 0:
            self.output[index] = tail
        state = "finished" if code == 0 else f"failed (exit {code})"
        say(f"xp: [{self._done()}/{self.job.points}] point {index}: {state}")

    def lost(self, index: int, reason: str, say: Callable[[str], None]) -> None:
        """The engine gave up on point ``index`` (its workers died more often than it retries)."""
        self.status[index] = None
        self.output[index] = reason
        say(f"xp: [{self._done()}/{self.job.points}] point {index}: not recorded ({reason})")

    def _done(self) -> int:
        return sum(i in self.output or code is not None for i, code in self.status.items())


def run_script(script: str, index: int, env: dict[str, str]) -> tuple[int, int, str]:
    """One point, on a worker: (index, the script's exit status, its last output lines).
    Cancelled (an exception in this thread, as Ray's and Dask's cancel raise), it stops the
    script, which removes its clone, and raises on."""
    task_env = {**os.environ, **env, "XP_POINT": str(index)}
    argv = [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), "bash", "-c", script]
    proc = subprocess.Popen(
        argv,
        env=task_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group: the script's trap kills that group, no more
    )
    try:
        out, _ = proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        proc.wait()
        raise
    text = out.decode("utf-8", "replace")
    tail = "\n".join(text.rstrip().splitlines()[-TAIL_LINES:])
    return index, proc.returncode, tail


def prepare(
    repo: GitRepo,
    *,
    engine: str,
    module: str,
    extra: str,
    option: str,
    command: list[str],
    params: list[str] | tuple[str, ...],
    sweep_id: str | None,
    cwd: str | os.PathLike[str] | None,
    repeat: int,
) -> tuple[Any, SlurmJob]:
    """The engine's module (its extra named when missing) and the sweep's job, whose commit
    is pushed for the tasks to fetch: what Dask and Ray do before any task."""
    try:  # untyped for mypy: the extra is not installed where the linters run
        loaded: Any = importlib.import_module(module)
    except ModuleNotFoundError:
        raise missing_extra(module, extra, option) from None
    job = plan(
        repo,
        command=command,
        params=params,
        sweep_id=sweep_id,
        cwd=cwd,
        engine=engine,
        repeat=repeat,
    )
    push_code(repo, job)
    return loaded, job
