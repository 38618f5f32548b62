"""Optuna: ``XPCallback`` records a study as a run and each trial as a child run of it.

    cb = XPCallback()
    study.optimize(objective, n_trials=50, callbacks=[cb])

The study run is the active run (``with xp.start_run(name="search"):`` around ``optimize``,
or the run of ``xp run``, so ``xp run -- python tune.py`` puts the trials under that run), or
one named after the study that the callback starts and leaves open until exit or
``xp.end_run()``. It gets the sampler and pruner as params, tags ``optuna.study`` and
``optuna.direction``, and per trial the series ``value`` and ``best_value`` at the trial's
number, with the best trial's params as ``best.<param>`` tags.

Each finished trial becomes a child run ``trial-<number>`` (start time: the trial's): its
params, its value as ``value`` (``metric_name`` renames it; multi-objective studies give one
metric per objective), the values it reported with ``trial.report`` as the series
``intermediate/<metric>``, tags ``optuna.trial``, ``optuna.state``, ``<param>_distribution``
and its user attributes. Status: COMPLETE is ``finished``, PRUNED ``killed`` (MLflow's mapping;
``optuna.state`` says PRUNED), FAIL ``failed``.

``@cb.track()`` on the objective opens the trial's run while it runs, so ``xp.log_metric``
and friends inside the objective land in it (one trial at a time: ``n_jobs=1``). Callbacks of
``n_jobs > 1`` studies run in worker threads: the callback takes a lock.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

from xp.integrations.common import (
    Session,
    end_lingering,
    linger,
    metric_key,
    number,
    param_value,
    params_of,
)

STATUS = {"COMPLETE": "finished", "PRUNED": "killed", "FAIL": "failed"}


class XPCallback:
    """An Optuna study callback: a child run per finished trial under a study run."""

    def __init__(
        self,
        metric_name: str | Sequence[str] = "value",
        *,
        run: Any = None,
    ) -> None:
        self.metric_names = [metric_name] if isinstance(metric_name, str) else list(metric_name)
        self._given = run
        self._lock = threading.RLock()
        self._sessions: dict[str, Session] = {}  # study name -> its run
        self._open: dict[int, Any] = {}  # trial number -> its run, opened by track()
        self._done: set[int] = set()  # trials track() recorded itself (failed objectives)

    # -- the study run --------------------------------------------------------------------
    def _study_run(self, study: Any) -> Any:
        with self._lock:
            session = self._sessions.get(study.study_name)
            if session is not None:
                return session.run
            end_lingering()  # the study run of an earlier study is over
            session = Session("optuna", run=self._given, name=study.study_name)
            self._sessions[study.study_name] = session
            directions = [d.name.lower() for d in study.directions]
            session.set_tags(
                {"optuna.study": study.study_name, "optuna.direction": ",".join(directions)}
            )
            session.log_params(
                {
                    "optuna.sampler": type(study.sampler).__name__,
                    "optuna.pruner": type(getattr(study, "pruner", None)).__name__,
                }
            )
            linger(session)
            return session.run

    @property
    def session(self) -> Session | None:
        """The session of the last study seen."""
        return list(self._sessions.values())[-1] if self._sessions else None

    def end(self) -> None:
        """End the study runs this callback started."""
        for session in self._sessions.values():
            session.end("finished")

    # -- trials ---------------------------------------------------------------------------
    def _names(self, n: int) -> list[str]:
        if len(self.metric_names) == n:
            return [metric_key(m) for m in self.metric_names]
        base = self.metric_names[0] if self.metric_names else "value"
        return [metric_key(base)] if n == 1 else [metric_key(f"{base}_{i}") for i in range(n)]

    def __call__(self, study: Any, trial: Any) -> None:
        with self._lock:
            if trial.number in self._done:
                self._done.discard(trial.number)
                return
            parent = self._study_run(study)
            child = self._open.pop(trial.number, None)
            session = self._sessions[study.study_name]
            session.call(f"trial {trial.number}", self._record, study, trial, parent, child)

    def _record(self, study: Any, trial: Any, parent: Any, child: Any) -> None:
        import xp
        from xp.tracking.run import Run

        state = trial.state.name
        status = STATUS.get(state, "failed")
        if child is None:
            child = Run(
                parent.repo,
                name=f"trial-{trial.number}",
                parent=parent.id,
                experiment=parent.state.header.experiment,
                system_metrics=False,
            )
        if trial.datetime_start is not None:
            child.update_header(start_time=trial.datetime_start.timestamp())
        child.log_params(params_of(trial.params))
        values = list(trial.values or [])
        names = self._names(len(values) or len(study.directions))
        for name, value in zip(names, values, strict=False):
            num = number(value)
            if num is not None:
                child.log_metric(name, num, 0)
        for step, value in sorted(trial.intermediate_values.items()):
            num = number(value)
            if num is not None:
                child.log_metric(f"intermediate/{names[0]}", num, int(step))
        tags: dict[str, Any] = {"optuna.trial": trial.number, "optuna.state": state}
        tags["xp.autolog"] = "optuna"
        for key, dist in trial.distributions.items():
            tags[metric_key(f"{key}_distribution")] = str(dist)
        for key, value in trial.user_attrs.items():
            tags[metric_key(f"optuna.user_attr.{key}")] = str(param_value(value))
        child.set_tags(tags)
        if child in _fluent_stack():
            xp.end_run(status, run=child)
        else:
            child.finish(status)
        self._study_progress(study, trial, parent, names, values)

    def _study_progress(
        self, study: Any, trial: Any, parent: Any, names: list[str], values: list[Any]
    ) -> None:
        if len(values) == 1 and trial.state.name == "COMPLETE":
            parent.log_metric(names[0], number(values[0]), trial.number)
        if len(study.directions) != 1:
            return
        try:
            best = study.best_trial
        except ValueError:  # no complete trial yet
            return
        parent.log_metric(f"best_{names[0]}", number(best.value), trial.number)
        parent.set_tag("optuna.best_trial", best.number)
        for key, value in best.params.items():
            parent.set_tag(metric_key(f"best.{key}"), param_value(value))

    def track(self) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
        """Decorate the objective so its own xp logging goes into the trial's run."""

        def decorate(func: Callable[[Any], Any]) -> Callable[[Any], Any]:
            @functools.wraps(func)
            def objective(trial: Any) -> Any:
                import optuna

                import xp

                with self._lock:
                    self._study_run(trial.study)
                    active = xp.start_run(name=f"trial-{trial.number}", nested=True)
                    self._open[trial.number] = active.run
                try:
                    return func(trial)
                except optuna.TrialPruned:
                    raise  # Optuna records PRUNED and calls the callback
                except BaseException as exc:
                    # Optuna calls callbacks only for exceptions listed in `catch`; record
                    # the failure here, so an uncaught one leaves no run open.
                    with self._lock:
                        run = self._open.pop(trial.number, None)
                        if run is not None:
                            run.set_tag("optuna.state", "FAIL")
                            run.set_tag("optuna.trial", trial.number)
                            run.set_tag("optuna.error", f"{type(exc).__name__}: {exc}"[:8000])
                            run.log_params(params_of(trial.params))
                            xp.end_run(
                                "killed" if isinstance(exc, KeyboardInterrupt) else "failed",
                                run=run,
                            )
                            self._done.add(trial.number)
                    raise

            return objective

        return decorate


def _fluent_stack() -> list[Any]:
    from xp.tracking import fluent

    return fluent._stack
