"""The module-level API (``xp.start_run``, ``xp.log_metric``...): a stack of active runs.

MLflow's fluent API, with two differences that matter for ML jobs: a run that dies with an
exception is ``failed`` and one stopped by SIGINT/SIGTERM is ``killed`` (MLflow's atexit hook
marks both FINISHED), and a process killed outright is committed as ``crashed`` later.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

from xp.errors import NoActiveRunError, RunActiveError, RunNotRecordedError, XPError

_stack: list[Any] = []  # list[xp.tracking.run.Run]; typed loosely to keep `import xp` light
_unrecorded: list[Any] = []  # runs whose end_run could not commit, newest last: retried
_exit_status = "finished"
_hooks_installed = False
_exit_callbacks: list[Callable[[str], None]] = []


class ActiveRun:
    """What ``start_run`` returns: the run, usable as a context manager."""

    def __init__(self, run: Any) -> None:
        self.run = run

    def __getattr__(self, name: str) -> Any:
        return getattr(self.run, name)

    def __repr__(self) -> str:
        return repr(self.run)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.run.status != "running":
            return
        if exc_type is None:
            status = "finished"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "killed"
        elif issubclass(exc_type, SystemExit):
            code = exc.code if isinstance(exc, SystemExit) else None
            status = "finished" if code in (None, 0) else "failed"
        else:
            status = "failed"
        end_run(status, run=self.run)


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    previous_hook = sys.excepthook

    def excepthook(tp: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        global _exit_status
        _exit_status = "killed" if issubclass(tp, KeyboardInterrupt) else "failed"
        previous_hook(tp, value, tb)

    sys.excepthook = excepthook
    if threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)
    ):
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """End live runs as killed, then die of SIGTERM as the process would have."""
    _end_all("killed")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def at_exit(callback: Callable[[str], None]) -> None:
    """Also call ``callback(status)`` when the process ends (``finished``, ``failed`` after
    an uncaught exception, ``killed`` by SIGINT/SIGTERM): the MLflow API ends its runs so."""
    _install_hooks()
    if callback not in _exit_callbacks:
        _exit_callbacks.append(callback)


def _end_all(status: str) -> None:
    while _stack:
        run = _stack[-1]
        try:
            end_run(status, run=run)
        except Exception as exc:
            _stack.remove(run) if run in _stack else None
            sys.stderr.write(f"xp: could not record run {run.id}: {exc}\n")
    for callback in list(_exit_callbacks):
        try:
            callback(status)
        except Exception as exc:
            sys.stderr.write(f"xp: could not record a run: {exc}\n")


def _at_exit() -> None:
    """End live runs; give runs whose end_run failed one more try (a notebook's disk may have
    been freed since). What still fails stays in its journal for `xp recover`."""
    for run in list(_unrecorded):
        try:
            run.finish(run.status)
            _unrecorded.remove(run)
        except Exception as exc:
            sys.stderr.write(f"xp: {exc}\n")
    _end_all(_exit_status)


def start_run(
    name: str | None = None,
    experiment: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    nested: bool = False,
    description: str | None = None,
    path: str | os.PathLike[str] | None = None,
    system_metrics: bool | None = None,
    resume: str | None = None,
) -> ActiveRun:
    """Start a run (snapshotting the workspace now: the code that runs is the code recorded).

    ``system_metrics=True`` samples CPU, memory, disk, network and GPUs into ``system/...``
    while the run goes (default: ``XP_SYSTEM_METRICS``, then ``system_metrics`` in the
    project config).

    ``resume=ID`` (or ``XP_RESUME=ID`` in the environment, for a preempted job that
    restarts) continues run ID instead: its series go on, and its ref moves forward to the
    new commit when the run ends again (docs/runs.md).
    """
    from xp.gitstore.repo import find_repo
    from xp.tracking.run import Run

    if _stack and not nested:
        raise RunActiveError(
            f"run {_stack[-1].id} is already active; end it with xp.end_run() or pass nested=True"
        )
    parent = _stack[-1].id if _stack else None
    # Under `xp run`, the script's run is the one xp run started: log into it as a part,
    # when that run's owner is there to merge the part (tracking/attach.py).
    attach = None
    inherit = None
    if not _stack and os.environ.get("XP_RUN_ID"):
        from xp.tracking.attach import inherited

        inherit = inherited()
        attach, parent = inherit.attach, inherit.parent
    if experiment is None:  # a nested run belongs where its parent does (MLflow's rule)
        if _stack:
            experiment = _stack[-1].state.header.experiment
        elif inherit is not None and os.environ.get("XP_RUN_EXPERIMENT") not in (
            None,
            "",
            "default",
        ):
            experiment = os.environ["XP_RUN_EXPERIMENT"]
    if resume is None and not _stack and not attach:
        resume = os.environ.pop("XP_RESUME", None) or None  # used once, as MLFLOW_RUN_ID is
    repo = find_repo(path)
    if not attach:
        _recover_quietly(repo)
    if resume is not None:
        from xp.tracking.resume import resume as resume_run

        run = resume_run(
            repo, resume, name=name, message=description, system_metrics=system_metrics
        )
    else:
        run = Run(
            repo,
            name=name,
            experiment=experiment,
            parent=parent,
            message=description,
            attach=attach,
            system_metrics=system_metrics,
        )
    if inherit is not None and inherit.why is not None and inherit.parent is not None:
        from xp.tracking.attach import say_own_run

        say_own_run(inherit.parent, inherit.why, run.id)
    _install_hooks()
    _stack.append(run)
    try:
        if parent is not None:
            from xp.format import PARENT_TAG

            run.set_tag(PARENT_TAG, parent)  # `--where "parent = '<id>'"` finds children
        if params:
            run.log_params(params)
        if tags:
            run.set_tags(tags)
    except BaseException:
        end_run("failed", run=run)
        raise
    return ActiveRun(run)


def _recover_quietly(repo: Any) -> None:
    from xp.tracking.recover import recover

    recover(repo)


def end_run(status: str = "finished", run: Any = None) -> str | None:
    """End the active run (or ``run``) and commit it; returns the commit sha.

    ``status`` is any case of finished, failed, killed, crashed (MLflow's ``FAILED`` too),
    checked before anything changes. When the commit fails (``RunNotRecordedError``: disk
    full...), the run keeps its journal and calling ``end_run()`` again retries it; with no
    active run, ``end_run()`` retries the last run whose end failed.
    """
    from xp import format as fmt

    status = fmt.end_status(status)
    if isinstance(run, ActiveRun):
        run = run.run
    target = run if run is not None else (_stack[-1] if _stack else None)
    if target is None:
        target = _unrecorded[-1] if _unrecorded else None
        if target is None:
            return None
    first: XPError | None = None
    if target in _stack:
        # nested runs end with their parent, innermost first
        while _stack and _stack[-1] is not target:
            try:
                _finish(_stack.pop(), status)
            except XPError as exc:
                first = first or exc
        _stack.pop()
    commit = _finish(target, status)
    if first is not None:
        raise first
    return commit


def _finish(run: Any, status: str) -> str:
    """``run.finish``; a run that could not be recorded is kept for a retry."""
    try:
        commit = run.finish(status)
    except RunNotRecordedError:
        if run not in _unrecorded:
            _unrecorded.append(run)
        raise
    if run in _unrecorded:
        _unrecorded.remove(run)
    return str(commit)


def active_run() -> Any:
    """The innermost active run, or None."""
    return _stack[-1] if _stack else None


def _active() -> Any:
    if _stack:
        return _stack[-1]
    start_run()  # MLflow starts a run on the first log call; so do we
    return _stack[-1]


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    (_stack[-1] if _stack else _active()).log_metric(key, value, step, timestamp)


def log_metrics(
    metrics: dict[str, float], step: int | None = None, timestamp: int | None = None
) -> None:
    _active().log_metrics(metrics, step, timestamp)


def log_param(key: str, value: Any) -> Any:
    return _active().log_param(key, value)


def log_params(params: dict[str, Any]) -> None:
    _active().log_params(params)


def set_tag(key: str, value: Any) -> None:
    _active().set_tag(key, value)


def set_tags(tags: dict[str, Any]) -> None:
    _active().set_tags(tags)


def log_artifact(local_path: str | os.PathLike[str], name: str | None = None) -> Any:
    return _active().log_artifact(local_path, name)


def log(values: dict[str, Any], step: int | None = None) -> None:
    """Several metrics at one step; nested dicts become ``a/b`` keys. Without ``step`` each
    call is the next step of one counter shared by all keys (W&B's ``wandb.log``)."""
    _active().log(values, step)


def log_text(
    text: str,
    artifact_file: str | None = None,
    *,
    key: str | None = None,
    step: int | None = None,
) -> Any:
    return _active().log_text(text, artifact_file, key=key, step=step)


def log_image(
    image: Any,
    artifact_file: str | None = None,
    *,
    key: str | None = None,
    step: int | None = None,
    caption: str | None = None,
) -> Any:
    return _active().log_image(image, artifact_file, key=key, step=step, caption=caption)


def log_figure(
    figure: Any,
    artifact_file: str | None = None,
    *,
    key: str | None = None,
    step: int | None = None,
) -> Any:
    return _active().log_figure(figure, artifact_file, key=key, step=step)


def log_table(
    data: Any,
    artifact_file: str | None = None,
    *,
    key: str | None = None,
    step: int | None = None,
    format: str | None = None,
) -> Any:
    return _active().log_table(data, artifact_file, key=key, step=step, format=format)


def log_histogram(
    values: Any = None,
    key: str | None = None,
    *,
    step: int | None = None,
    bins: int = 64,
    np_histogram: Any = None,
) -> Any:
    return _active().log_histogram(values, key, step=step, bins=bins, np_histogram=np_histogram)


def log_dict(dictionary: dict[str, Any], artifact_file: str) -> Any:
    return _active().log_dict(dictionary, artifact_file)


def log_input(path: str | os.PathLike[str], name: str | None = None, cache: bool = False) -> Any:
    return _active().log_input(path, name, cache_content=cache)


def require_active() -> Any:
    if not _stack:
        raise NoActiveRunError("no active run; call xp.start_run() first")
    return _stack[-1]
