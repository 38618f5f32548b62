"""What every integration shares: which run to log into, names a framework hands us made
into valid keys, numbers out of numpy and torch scalars, and logging that never stops
training.

Run ownership follows MLflow's autologging: an integration logs into the active run when
there is one and never ends it; otherwise it starts a run and ends it when the framework's
call ends (``finished``, or ``failed`` when the call raised).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.util
import logging
import math
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar, cast

from xp import format as fmt
from xp import fsutil

log = logging.getLogger("xp.integrations")

T = TypeVar("T")

_BAD = re.compile(r"[^/\w.\- :]")


def metric_key(name: object) -> str:
    """A framework's metric or param name as a valid xp key, MLflow's way: ``@`` becomes
    ``_at_`` (XGBoost's ``ndcg@3``), any other character outside the key rule ``_``, empty
    and dot-only path parts are dropped. Cached: a training logs the same names each step."""
    return _metric_key(name if isinstance(name, str) else str(name))


@functools.lru_cache(maxsize=8192)
def _metric_key(name: str) -> str:
    text = _BAD.sub("_", name.replace("@", "_at_"))
    parts = [p.strip() for p in text.split("/")]
    parts = [p if p not in (".", "..") else p.replace(".", "_") for p in parts if p]
    key = "/".join(parts)[: fmt.MAX_KEY_LENGTH] or "_"
    return key


def number(value: Any) -> float | int | None:
    """A plain int or float from Python, numpy or torch numbers (one-element arrays and
    tensors included); None for anything else (strings, None, bools, arrays)."""
    if type(value) is float or type(value) is int:
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):  # numpy.float64 is a float subclass: make it a plain one
        return float(value)
    if isinstance(value, int):
        return int(value)
    if hasattr(value, "numel") and callable(value.numel):  # torch tensor
        try:
            return number(value.item()) if value.numel() == 1 else None
        except (RuntimeError, ValueError):
            return None
    if hasattr(value, "item") and getattr(value, "size", 1) == 1:  # numpy scalar / 1-element
        try:
            return number(value.item())
        except (TypeError, ValueError):
            return None
    return None


def metrics_of(values: Mapping[str, Any], prefix: str = "") -> dict[str, float | int]:
    """The numeric items of ``values`` under valid keys; the rest is left out."""
    out: dict[str, float | int] = {}
    for name, value in values.items():
        num = number(value)
        if num is not None:
            out[metric_key(f"{prefix}{name}")] = num
    return out


def param_value(value: Any) -> Any:
    """A param as xp keeps it: scalars as they are, numbers out of numpy, the rest as text."""
    if value is None or type(value) in (str, bool, int, float):
        return value
    num = number(value)
    if num is not None:
        return num
    if isinstance(value, (list, tuple)) and all(
        v is None or type(v) in (str, bool, int, float) for v in value
    ):
        return list(value)
    if isinstance(value, str):
        value = str(value)
    text = str(value)
    return text if len(text) <= fmt.MAX_PARAM_LENGTH else text[: fmt.MAX_PARAM_LENGTH - 3] + "..."


def params_of(values: Mapping[str, Any], sep: str = ".") -> dict[str, Any]:
    """Nested mappings flattened with ``sep``; keys made valid, values as ``param_value``."""
    out: dict[str, Any] = {}

    def walk(prefix: str, data: Mapping[str, Any]) -> None:
        for k, v in data.items():
            name = f"{prefix}{k}"
            if isinstance(v, Mapping) and v:
                walk(name + sep, v)
            else:
                out[metric_key(name)] = param_value(v)

    walk("", values)
    return out


def is_finite(value: float | int) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


_active_sources: list[Callable[[], Any]] = []


def add_active_source(source: Callable[[], Any]) -> None:
    """Another API's active run as a live ``Run`` (or None): ``xp.mlflow`` registers its
    ``mlflow.start_run`` stack, so ``mlflow.autolog()`` logs a framework's training into the
    MLflow run the script started, as MLflow's autolog does."""
    if source not in _active_sources:
        _active_sources.append(source)


def _from_sources() -> Any:
    for source in _active_sources:
        run = source()
        if run is not None:
            return run
    return None


class Session:
    """The run one integration logs into, and whether it must end it.

    ``run`` is started lazily on first use: the active run when one exists (never ended
    here), else a new one named ``name`` and tagged ``xp.autolog=<framework>``.
    """

    def __init__(
        self,
        framework: str,
        *,
        run: Any = None,
        name: str | None = None,
        nested: bool = False,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        self.framework = framework
        self._run = run
        self.owned = False
        self.name = name
        self.nested = nested
        self.tags = dict(tags or {})
        self._warned: set[str] = set()
        self.lock = threading.RLock()  # frameworks that call back from several threads

    @property
    def started(self) -> bool:
        return self._run is not None

    @property
    def run(self) -> Any:
        if self._run is None:
            with self.lock:
                if self._run is None:
                    self._run = self._start()
        return self._run

    def _start(self) -> Any:
        import xp

        current = xp.active_run() or _from_sources()
        if current is not None and not self.nested:
            return current
        active = xp.start_run(name=self.name, nested=self.nested)
        self.owned = True
        run = active.run
        run.set_tag("xp.autolog", self.framework)
        for key, value in self.tags.items():
            run.set_tag(key, value)
        return run

    def end(self, status: str = "finished") -> None:
        """End the run if this session started it (and it has not ended already)."""
        import xp

        if self in _lingering:
            _lingering.remove(self)
        run, self._run = self._run, None
        if run is not None and self.owned and run.status == "running":
            xp.end_run(status, run=run)
        self.owned = False

    def warn(self, what: str, exc: BaseException) -> None:
        """Say once per problem that xp could not log something; training goes on."""
        message = f"xp {self.framework} integration: {what}: {type(exc).__name__}: {exc}"
        if message in self._warned:
            return
        self._warned.add(message)
        log.warning(message)
        run = self._run
        if run is not None and run.status == "running":
            with contextlib.suppress(Exception):
                run.warn(message)

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T | None:
        """``fn(*args, **kw)``; an exception is reported (``warn``) and None returned."""
        try:
            return fn(*args, **kw)
        except Exception as exc:
            self.warn(what, exc)
            return None

    # -- logging shorthands, each guarded ---------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Params that are new; a different value for a logged one is kept as a warning
        (a framework calling twice must not stop training)."""
        run = self.run
        for key, value in params.items():
            if conflicts(run, {key: value}):
                old = run.state.params[key]
                self.warn(f"param {key!r}", ValueError(f"kept {old!r}, not {value!r}"))
                continue
            self.call(f"param {key!r}", run.log_param, key, value)

    def log_metrics(self, metrics: Mapping[str, float | int], step: int | None) -> None:
        log_metric = (self._run if self._run is not None else self.run).log_metric
        for key, value in metrics.items():  # the per-step path: no helper call per value
            try:
                log_metric(key, value, step)
            except Exception as exc:
                self.warn(f"metric {key!r}", exc)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self.call(f"tag {key!r}", self.run.set_tag, key, value)

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> None:
        self.call(f"artifact {name or path}", self.run.log_artifact, path, name, external=True)

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Path]:
        """A temporary folder in this process's own ``.git/xp/tmp/<pid>-<random>/`` (same disk
        as the cache, so files move in without a copy; removed by the next xp command if the
        process is killed), deleted afterwards."""
        import shutil

        base = fsutil.private_tmp(self.run.repo.xp_dir)
        path = Path(tempfile.mkdtemp(prefix=f"{self.framework}-", dir=base))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


_lingering: list[Session] = []  # runs an integration started and left open for more logging


def linger(session: Session) -> None:
    """Leave ``session``'s run open after training (``trainer.test()``, ``evaluate()`` may log
    more); it ends at exit, at ``xp.end_run()`` or when the next integration starts a run."""
    if session.owned and session not in _lingering:
        _lingering.append(session)


def end_lingering() -> None:
    """End the runs earlier integrations left open: a new training is starting."""
    while _lingering:
        _lingering.pop().end("finished")


def continue_from(run: Any, previous: Any) -> int:
    """Make ``run`` the continuation of the recorded run ``previous`` (W&B's and Comet's
    resume): its params and tags, the tag ``xp.resumes`` naming it; returns the step to go on
    from (one after its last). A new run, because a recorded run is an immutable commit."""
    for key, value in previous.tags.items():
        if not key.startswith("xp.") and key not in run.state.tags:
            run.set_tag(key, value)
    for key, value in previous.params.items():
        if key not in run.state.params:
            run.log_param(key, value)
    run.set_tag("xp.resumes", previous.id)
    steps = [s for points in previous.record.series.values() for s, _v, _t in points]
    return max(steps, default=0 if previous.metrics else -1) + 1


def runs_where(filter_string: str, limit: int | None = None) -> list[str]:
    """Ids of the runs matching ``filter_string``, newest first; none when no run has the
    columns it names yet (the query language refuses unknown columns)."""
    import xp
    from xp.errors import QueryError

    try:
        frame = xp.search_runs(
            filter_string=filter_string, order_by=["created DESC"], max_results=limit
        )
    except QueryError:
        return []
    return [str(v) for v in frame["run_id"]] if len(frame) else []


def conflicts(run: Any, params: Mapping[str, Any]) -> bool:
    """Whether ``run`` has one of ``params`` already, with another value."""
    have = run.state.params
    for key, value in params.items():
        if key in have:
            old = have[key]
            if old != value and not (old != old and value != value):  # NaN equals NaN here
                return True
    return False


def status_of(exc: BaseException | None) -> str:
    """The run status for a framework call that ended with ``exc`` (None: it returned)."""
    if exc is None:
        return "finished"
    if isinstance(exc, KeyboardInterrupt):
        return "killed"
    if isinstance(exc, SystemExit) and exc.code in (None, 0):
        return "finished"
    return "failed"


# -- patching frameworks that are imported later ----------------------------------------------
class _Loader(importlib.abc.Loader):
    """Runs a module's own loader, then the hooks waiting for that module."""

    def __init__(self, loader: Any, done: Callable[[ModuleType], None]) -> None:
        self.loader = loader
        self.done = done

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return cast("ModuleType | None", self.loader.create_module(spec))

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        self.done(module)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Calls hooks right after a module is imported, so ``xp.autolog()`` may come before
    ``import sklearn`` (MLflow's autolog works that way too)."""

    def __init__(self) -> None:
        self.hooks: dict[str, list[Callable[[ModuleType], None]]] = {}
        self._looking: set[str] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self.hooks or fullname in self._looking:
            return None
        self._looking.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._looking.discard(fullname)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader, self._run_hooks)
        return spec

    def _run_hooks(self, module: ModuleType) -> None:
        for hook in self.hooks.pop(module.__name__, []):
            _run_hook(hook, module)


_finder = _PostImportFinder()


def _run_hook(hook: Callable[[ModuleType], None], module: ModuleType) -> None:
    try:
        hook(module)
    except Exception as exc:  # an import must never fail because of xp
        log.warning("xp could not set up autologging for %s: %s", module.__name__, exc)


def when_imported(name: str, hook: Callable[[ModuleType], None]) -> None:
    """``hook(module)`` now if ``name`` is imported already, else right after its import."""
    module = sys.modules.get(name)
    if module is not None:
        _run_hook(hook, module)
        return
    _finder.hooks.setdefault(name, []).append(hook)
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def forget_hooks(name: str) -> None:
    """Drop hooks still waiting for ``name`` (``autolog(disable=True)``)."""
    _finder.hooks.pop(name, None)


class Patches:
    """Replaced attributes and how to put them back."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any, bool]] = []

    def replace(self, owner: Any, name: str, new: Any) -> None:
        had = name in vars(owner)
        self._saved.append((owner, name, vars(owner).get(name), had))
        setattr(owner, name, new)

    def undo(self) -> None:
        while self._saved:
            owner, name, old, had = self._saved.pop()
            if had:
                setattr(owner, name, old)
            else:
                with contextlib.suppress(AttributeError):
                    delattr(owner, name)
