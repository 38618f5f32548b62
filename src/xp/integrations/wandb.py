"""W&B's API over xp runs: what ``import xp.wandb as wandb`` gives (docs/integrations.md).

    run = wandb.init(project="demo", name="lr-0.01", config={"lr": 0.01}, tags=["baseline"])
    for epoch in range(wandb.config.epochs):
        wandb.log({"loss": loss, "acc": acc})
    wandb.finish()

Mapping: ``project`` is the experiment, ``name`` the run name, ``notes`` its message; each of
``tags`` becomes a tag with an empty value (``xp show --where "tags.baseline is not null"``),
``group``/``job_type``/``entity`` the tags ``wandb.group``/``wandb.job_type``/``wandb.entity``;
the W&B run id (given or generated, 8 characters) is ``run.id`` and the tag ``wandb.id``.
``config`` entries are params (nested keys joined with ``.``); changing one raises as W&B does
unless ``allow_val_change=True``, which records the new value and a warning.

``log`` keeps W&B's one step counter: each call without ``step`` is a new row at the next
step, ``commit=False`` adds to the row being built, ``step=`` writes into that row (a smaller
step than the current one is dropped with a warning, as W&B drops it). Numbers are metrics at
the row's step (nested dicts joined with ``/``); ``Image``, ``Table``, ``Histogram``,
matplotlib/plotly figures and text go to the media index under the key, at the step.
``summary`` is the last value of each key unless set; set values are saved in
``wandb-summary.json`` (numbers also as metrics when the key was never logged).

``resume``: W&B offline cannot resume; here ``init(id=..., resume="allow"|"must")`` finds the
newest run tagged with that W&B id and continues it as a new run (same name, config and tags,
tag ``xp.resumes`` naming the run it continues, steps continuing after its last one);
``resume="auto"``/``True`` without an id continues the newest crashed, failed or killed W&B run
of the project. ``mode="disabled"`` gives a run that records nothing; other modes, ``dir``,
``entity``, API keys and settings are accepted and need nothing: xp is local.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import secrets
import string
from collections.abc import Iterator, Mapping
from types import SimpleNamespace
from typing import Any

from xp.errors import InvalidValueError, NoActiveRunError, ParamChangedError, RunNotFoundError
from xp.integrations.common import continue_from, metric_key, number, param_value, runs_where

_logger = logging.getLogger("xp.wandb")

run: Run | None = None
config: Any = None  # the active run's Config; a placeholder that raises before init()
summary: Any = None

_ID_CHARS = string.ascii_lowercase + string.digits


def generate_id(length: int = 8) -> str:
    """A W&B-style run id (``wandb.util.generate_id``)."""
    return "".join(secrets.choice(_ID_CHARS) for _ in range(length))


class _PreInit:
    """What ``wandb.config`` / ``wandb.summary`` are before ``init``: any use says so."""

    _name: str

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _fail(self, *a: Any, **k: Any) -> Any:
        raise NoActiveRunError(f"call wandb.init() before using wandb.{self._name}")

    __getattr__ = __getitem__ = __setitem__ = __setattr__ = __contains__ = __iter__ = _fail
    update = keys = items = get = _fail


def _reset_globals() -> None:
    global run, config, summary
    run, config, summary = None, _PreInit("config"), _PreInit("summary")


_reset_globals()


# -- media objects --------------------------------------------------------------------------
class Image:
    """``wandb.Image(data_or_path, mode=None, caption=None)``: numpy, tensor, PIL or a path."""

    def __init__(
        self, data_or_path: Any, mode: str | None = None, caption: str | None = None, **kwargs: Any
    ) -> None:
        if mode is not None and hasattr(data_or_path, "convert"):
            data_or_path = data_or_path.convert(mode)
        self.data = data_or_path
        self.caption = caption


class Histogram:
    """``wandb.Histogram(sequence=None, np_histogram=None, num_bins=64)``."""

    def __init__(self, sequence: Any = None, np_histogram: Any = None, num_bins: int = 64) -> None:
        if sequence is None and np_histogram is None:
            raise InvalidValueError("Histogram needs a sequence or np_histogram")
        self.sequence = sequence
        self.np_histogram = np_histogram
        self.num_bins = num_bins


class Table:
    """``wandb.Table(columns=None, data=None, dataframe=None)`` with ``add_data(*row)``."""

    def __init__(
        self,
        columns: list[str] | None = None,
        data: list[list[Any]] | None = None,
        rows: list[list[Any]] | None = None,
        dataframe: Any = None,
        **kwargs: Any,
    ) -> None:
        if dataframe is not None:
            self.columns = [str(c) for c in dataframe.columns]
            self.data = dataframe.values.tolist()
        else:
            rows_ = data if data is not None else rows
            self.data = [list(r) for r in rows_ or []]
            width = len(self.data[0]) if self.data else 0
            self.columns = list(columns) if columns else [f"col{i}" for i in range(width)]

    def add_data(self, *row: Any) -> None:
        if len(row) != len(self.columns):
            raise InvalidValueError(
                f"this table has {len(self.columns)} columns, the row has {len(row)}"
            )
        self.data.append(list(row))

    def add_column(self, name: str, data: list[Any]) -> None:
        if self.data and len(data) != len(self.data):
            raise InvalidValueError(
                f"column {name!r} has {len(data)} values for {len(self.data)} rows"
            )
        if not self.data:  # a table with columns but no rows: the new column makes the rows
            self.data = [[None] * len(self.columns) for _ in data]
        self.columns.append(name)
        for row, value in zip(self.data, data, strict=True):
            row.append(value)

    def get_dataframe(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.data, columns=self.columns)


class Html:
    """``wandb.Html(data)``: an HTML page (a string or a file), stored as text."""

    def __init__(self, data: Any, inject: bool = True) -> None:
        if hasattr(data, "read"):
            data = data.read()
        elif isinstance(data, (str, os.PathLike)) and os.path.isfile(data):
            with open(data, encoding="utf-8") as fh:
                data = fh.read()
        self.html = str(data)


class Artifact:
    """``wandb.Artifact(name, type)``: files and folders logged together under ``name/``."""

    def __init__(
        self,
        name: str,
        type: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.name, self.type, self.description = name, type, description
        self.metadata = dict(metadata or {})
        self._entries: list[tuple[str, str]] = []  # (local path, path inside the artifact)

    def add_file(self, local_path: str, name: str | None = None, **kwargs: Any) -> None:
        self._entries.append((local_path, name or os.path.basename(local_path)))

    def add_dir(self, local_path: str, name: str | None = None, **kwargs: Any) -> None:
        """The folder's files at the artifact's top, or under ``name``."""
        self._entries.append((local_path, name or ""))


# -- config and summary ---------------------------------------------------------------------
class Config:
    """``wandb.config``: dict and attribute access; every entry is a param of the run."""

    def __init__(self, owner: Run) -> None:
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_data", {})

    def _set(self, key: str, value: Any, allow_val_change: bool = False) -> None:
        data: dict[str, Any] = self._data
        old = data.get(key, value)
        if key in data and _differs(old, value) and not allow_val_change:
            raise ParamChangedError(
                f"config key {key!r} is {old!r}, now {value!r}: W&B refuses the change too;"
                " pass allow_val_change=True to config.update to record it"
            )
        data[key] = value
        self._owner._log_config({key: value}, change=allow_val_change)

    def update(self, d: Any = None, allow_val_change: bool | None = None, **kw: Any) -> None:
        values = {**_as_dict(d), **kw}
        for key, value in values.items():
            self._set(str(key), value, bool(allow_val_change))

    def setdefaults(self, d: Any) -> None:
        for key, value in _as_dict(d).items():
            if key not in self._data:
                self._set(str(key), value)

    def __setattr__(self, key: str, value: Any) -> None:
        self._set(key, value)

    __setitem__ = __setattr__

    def __getattr__(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise AttributeError(f"wandb.config has no key {key!r}") from None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def keys(self) -> Any:
        return self._data.keys()

    def items(self) -> Any:
        return self._data.items()

    def values(self) -> Any:
        return self._data.values()

    def as_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __repr__(self) -> str:
        return repr(self._data)


class Summary:
    """``run.summary``: the last logged value of each key, or the value you set."""

    def __init__(self) -> None:
        self.last: dict[str, Any] = {}
        self.set: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self.set:
            return self.set[key]
        return self.last[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.set[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self.set or key in self.last

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_") or key in ("last", "set"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.set:
            return self.set[key]
        return self.last.get(key, default)

    def update(self, d: Mapping[str, Any]) -> None:
        self.set.update(d)

    def keys(self) -> list[str]:
        return sorted({*self.last, *self.set})

    def items(self) -> list[tuple[str, Any]]:
        return [(k, self[k]) for k in self.keys()]

    def _logged(self, key: str, value: Any) -> None:
        self.last[key] = value
        self.set.pop(key, None)  # logging a key again makes its last value win, as in W&B


# -- the run --------------------------------------------------------------------------------
class Run:
    """What ``wandb.init`` returns."""

    def __init__(
        self,
        xp_run: Any,
        *,
        wandb_id: str,
        project: str | None,
        group: str | None,
        job_type: str | None,
        tags: tuple[str, ...],
        notes: str | None,
        owned: bool,
        resumed: bool = False,
        start_step: int = 0,
    ) -> None:
        self._xp = xp_run
        self.id = wandb_id
        self.project = project
        self.group = group
        self.job_type = job_type
        self.tags = tags
        self.notes = notes
        self.resumed = resumed
        self.config = Config(self)
        self.summary = Summary()
        self._owned = owned
        self._step = start_step
        self._pending: dict[str, Any] = {}
        self._metrics_logged: set[str] = set()
        self._defined: dict[str, str] = {}  # define_metric: key -> summary kind
        self._watched: list[tuple[Any, str, int]] = []
        self._warned: set[str] = set()
        self._finished = False

    # -- attributes W&B code reads ------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self._xp.name)

    @name.setter
    def name(self, value: str) -> None:
        self._xp.set_name(value)

    @property
    def step(self) -> int:
        return self._step

    @property
    def dir(self) -> str:
        return os.getcwd()

    @property
    def url(self) -> None:
        return None  # xp is local: `xp show` and `xp diff` are its views

    @property
    def xp_run(self) -> Any:
        """The xp run underneath (its id, ref, ``log_*`` methods)."""
        return self._xp

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            _logger.warning(message)

    # -- config ---------------------------------------------------------------------------
    def _log_config(self, values: dict[str, Any], change: bool = False) -> None:
        flat = _flatten(values, ".")
        for key, value in flat.items():
            key = metric_key(key)
            if change:
                self._xp.update_param(key, param_value(value))
            else:
                self._xp.log_param(key, param_value(value))

    # -- log ------------------------------------------------------------------------------
    def log(
        self,
        data: Mapping[str, Any],
        step: int | None = None,
        commit: bool | None = None,
        sync: bool | None = None,
    ) -> None:
        if self._finished:
            raise NoActiveRunError("this run has finished; start another with wandb.init()")
        if not isinstance(data, Mapping):
            raise InvalidValueError(f"wandb.log takes a dict, got {type(data).__name__}")
        if step is not None:
            if isinstance(step, bool) or number(step) is None:
                raise InvalidValueError(f"step must be an integer, got {step!r}")
            step = int(step)
            if step < self._step:
                self._warn_once(
                    f"wandb.log: step {step} is before the current step {self._step}; the data"
                    " is dropped (W&B drops it too)"
                )
                return
            if step > self._step:
                self._commit()
                self._step = step
            self._pending.update(data)
            if commit:
                self._commit()
            return
        self._pending.update(data)
        if commit is None or commit:
            self._commit()

    def _commit(self) -> None:
        if not self._pending:
            return
        row, self._pending = self._pending, {}
        step = self._step
        for key, value in _flatten(row, "/").items():
            self._log_value(metric_key(key), value, step)
        self._log_watched(step)
        self._step = step + 1

    def _log_value(self, key: str, value: Any, step: int) -> None:
        xr = self._xp
        if (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(v, (Image, Table, Histogram, Html)) for v in value)
        ):
            for i, item in enumerate(value):
                self._log_value(f"{key}/{i}", item, step)
            return
        if isinstance(value, Image):
            xr.log_image(value.data, key=key, step=step, caption=value.caption)
        elif isinstance(value, Table):
            xr.log_table(value.get_dataframe(), key=key, step=step)
        elif isinstance(value, Histogram):
            xr.log_histogram(
                value.sequence, key, step=step, bins=value.num_bins, np_histogram=value.np_histogram
            )
        elif isinstance(value, Html):
            xr.log_text(value.html, key=key, step=step)
        elif hasattr(value, "savefig") or hasattr(value, "to_plotly_json"):
            xr.log_figure(value, key=key, step=step)
        elif isinstance(value, str):
            xr.log_text(value, key=key, step=step)
        elif value is None:
            return
        else:
            num = int(value) if isinstance(value, bool) else number(value)
            if num is None:
                self._warn_once(f"wandb.log: {key!r} is a {type(value).__name__}, not logged")
                return
            xr.log_metric(key, num, step)
            self._metrics_logged.add(key)
            self.summary._logged(key, num)
            return
        self.summary._logged(key, f"<{type(value).__name__}>")

    def define_metric(
        self,
        name: str,
        step_metric: str | None = None,
        summary: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Accepted for W&B code; ``summary="min"|"max"|"mean"`` goes into wandb-summary.json.
        Steps are always xp's (``step_metric`` does not change them)."""
        if summary:
            self._defined[name] = summary

    def watch(
        self,
        models: Any,
        criterion: Any = None,
        log: str | None = "gradients",
        log_freq: int = 1000,
        **kwargs: Any,
    ) -> None:
        """Histograms of a torch model's gradients and/or parameters every ``log_freq``
        steps, under ``gradients/<name>`` and ``parameters/<name>`` (W&B's keys)."""
        if log is None:
            return
        for model in models if isinstance(models, (list, tuple)) else [models]:
            self._watched.append((model, log, max(1, int(log_freq))))

    def _log_watched(self, step: int) -> None:
        for model, what, every in self._watched:
            if step % every:
                continue
            for name, param in model.named_parameters():
                if what in ("parameters", "all"):
                    self._xp.log_histogram(
                        param.detach(), f"parameters/{metric_key(name)}", step=step
                    )
                grad = getattr(param, "grad", None)
                if what in ("gradients", "all") and grad is not None:
                    self._xp.log_histogram(
                        grad.detach(), f"gradients/{metric_key(name)}", step=step
                    )

    def save(self, glob_str: str, base_path: str | None = None, policy: str = "live") -> None:
        """Files matching ``glob_str`` as artifacts (``wandb.save``)."""
        import glob

        for path in sorted(glob.glob(glob_str, recursive=True)):
            rel = os.path.relpath(path, base_path) if base_path else os.path.basename(path)
            self._xp.log_artifact(path, rel.replace(os.sep, "/"), external=True)

    def log_artifact(
        self,
        artifact: Artifact | str,
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | None = None,
    ) -> Artifact:
        if isinstance(artifact, str):
            path = artifact
            artifact = Artifact(name or os.path.basename(path), type or "file")
            (artifact.add_dir if os.path.isdir(path) else artifact.add_file)(path)
        for local, inside in artifact._entries:
            target = f"{artifact.name}/{inside}" if inside else artifact.name
            self._xp.log_artifact(local, target, external=True)
        if artifact.metadata or artifact.description:
            self._xp.log_dict(
                {
                    "type": artifact.type,
                    "description": artifact.description,
                    "metadata": artifact.metadata,
                    "aliases": list(aliases or []),
                },
                f"{artifact.name}.artifact.json",
            )
        return artifact

    def log_code(self, root: str = ".", name: str | None = None, **kwargs: Any) -> None:
        """Nothing to do: every xp run is a commit of the workspace, code included."""

    # -- the end --------------------------------------------------------------------------
    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        if self._finished:
            return
        self._commit()
        self._finished = True
        xr = self._xp
        try:
            self._write_summary()
        finally:
            if exit_code not in (None, 0):
                xr.update_header(exit_code=int(exit_code or 0))
            if self._owned:
                import xp

                xp.end_run("finished" if exit_code in (None, 0) else "failed", run=xr)
            global run
            if run is self:
                _reset_globals()

    def _write_summary(self) -> None:
        out: dict[str, Any] = {k: _jsonable(v) for k, v in self.summary.set.items()}
        for key, kind in self._defined.items():
            values = [v for _s, v, _t in self._xp.history(key)]
            if values and kind in ("min", "max", "mean"):
                agg = (
                    min(values)
                    if kind == "min"
                    else max(values)
                    if kind == "max"
                    else sum(values) / len(values)
                )
                out[key] = {kind: agg}
        for key, value in self.summary.set.items():
            num = number(value)
            if num is not None and metric_key(key) not in self._metrics_logged:
                self._xp.log_metric(metric_key(key), num, 0)
        if out:
            self._xp.log_dict(out, "wandb-summary.json")


# -- module functions -----------------------------------------------------------------------
def init(
    project: str | None = None,
    name: str | None = None,
    config: Any = None,
    tags: Any = None,
    group: str | None = None,
    job_type: str | None = None,
    notes: str | None = None,
    resume: bool | str | None = None,
    id: str | None = None,
    mode: str | None = None,
    reinit: bool | str | None = None,
    config_exclude_keys: list[str] | None = None,
    config_include_keys: list[str] | None = None,
    allow_val_change: bool | None = None,
    entity: str | None = None,
    dir: str | None = None,
    anonymous: str | None = None,
    save_code: bool | None = None,
    settings: Any = None,
    **kwargs: Any,
) -> Run:
    """Start (or continue) a run; see the module's docstring for the mapping."""
    global run
    import xp

    if run is not None:
        if reinit in (None, False, "default", "return_previous"):
            return run
        run.finish()
    if (mode or os.environ.get("WANDB_MODE")) == "disabled":
        return _disabled(config)
    project = project or os.environ.get("WANDB_PROJECT")
    name = name or os.environ.get("WANDB_NAME")
    group = group or os.environ.get("WANDB_RUN_GROUP")
    job_type = job_type or os.environ.get("WANDB_JOB_TYPE")
    wandb_id = id or os.environ.get("WANDB_RUN_ID")
    resume = resume if resume is not None else os.environ.get("WANDB_RESUME")
    previous = _find_previous(project, wandb_id, resume)
    if previous is not None:
        wandb_id = previous.tags.get("wandb.id", wandb_id)
    wandb_id = wandb_id or generate_id()
    active = xp.active_run()
    owned = active is None
    if owned:
        if previous is not None:
            name = name or previous.name
            project = project or (previous.experiment if previous.experiment != "default" else None)
        active = xp.start_run(name=name, experiment=project, description=notes)
        xp_run = active.run if hasattr(active, "run") else active
    else:
        xp_run = active
        if name:
            xp_run.set_name(name)
    labels = tuple(str(t) for t in (tags or ()))
    start = continue_from(xp_run, previous) if previous is not None else 0
    new = Run(
        xp_run,
        wandb_id=wandb_id,
        project=project,
        group=group,
        job_type=job_type,
        tags=labels,
        notes=notes,
        owned=owned,
        resumed=previous is not None,
        start_step=start,
    )
    xp_run.set_tag("wandb.id", wandb_id)
    for label in labels:
        xp_run.set_tag(metric_key(label), "")
    for key, value in (
        ("wandb.group", group),
        ("wandb.job_type", job_type),
        ("wandb.entity", entity),
    ):
        if value:
            xp_run.set_tag(key, value)
    if previous is not None:
        new.config._data.update(_unflatten_params(previous.params))
        new.summary.last.update(previous.metrics)
    values = _as_dict(config)
    if config_include_keys:
        values = {k: v for k, v in values.items() if k in config_include_keys}
    if config_exclude_keys:
        values = {k: v for k, v in values.items() if k not in config_exclude_keys}
    new.config.update(values, allow_val_change=allow_val_change)
    _activate(new)
    return new


def _activate(new: Any) -> None:
    global run, config, summary
    run, config, summary = new, new.config, new.summary


def _find_previous(project: str | None, wandb_id: str | None, resume: Any) -> Any:
    """The run to continue for ``resume``, or None for a fresh start."""
    import xp

    if resume in (None, False, "never"):
        if resume == "never" and wandb_id and _runs_with_id(wandb_id):
            raise InvalidValueError(
                f"a run with W&B id {wandb_id!r} exists and resume='never'; pick another id"
            )
        return None
    if resume not in (True, "allow", "must", "auto"):
        raise InvalidValueError(
            f"resume must be True, 'allow', 'must', 'auto' or 'never', got {resume!r}"
        )
    if wandb_id:
        found = _runs_with_id(wandb_id)
        if not found:
            if resume == "must":
                raise RunNotFoundError(
                    f"resume='must' but no run has W&B id {wandb_id!r}; list runs with `xp show`"
                )
            return None
        return xp.get_run(found[0])
    if resume == "must":
        raise InvalidValueError("resume='must' needs the id of the run to continue: id=...")
    where = "tags.wandb.id is not null and status in ('crashed', 'failed', 'killed')"
    if project:
        where += f" and experiment = '{_quote(project)}'"
    found = runs_where(where, limit=1)
    return xp.get_run(found[0]) if found else None


def _runs_with_id(wandb_id: str) -> list[str]:
    return runs_where(f"tags.wandb.id = '{_quote(wandb_id)}'")


def _quote(text: str) -> str:
    return text.replace("'", "''")


class _DisabledRun(Run):
    """``mode="disabled"``: every call works and nothing is recorded."""

    def __init__(self, config_values: Any) -> None:
        self.id = generate_id()
        self.project = self.group = self.job_type = self.notes = None
        self.tags = ()
        self.resumed = False
        self._finished = False
        self._xp = SimpleNamespace(name="disabled", set_name=lambda name: None)
        self.summary = Summary()
        self.config = _DisabledConfig(self)
        self.config.update(_as_dict(config_values))

    @property
    def step(self) -> int:
        return 0

    def log(
        self,
        data: Mapping[str, Any],
        step: int | None = None,
        commit: bool | None = None,
        sync: bool | None = None,
    ) -> None:
        return None

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        global run
        if run is self:
            _reset_globals()


class _DisabledConfig(Config):
    def _set(self, key: str, value: Any, allow_val_change: bool = False) -> None:
        self._data[key] = value


def _disabled(config_values: Any) -> Run:
    new = _DisabledRun(config_values)
    _activate(new)
    return new


def log(
    data: Mapping[str, Any],
    step: int | None = None,
    commit: bool | None = None,
    sync: bool | None = None,
) -> None:
    _require().log(data, step=step, commit=commit)


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    if run is not None:
        run.finish(exit_code=exit_code)


def define_metric(
    name: str, step_metric: str | None = None, summary: str | None = None, **kwargs: Any
) -> None:
    _require().define_metric(name, step_metric=step_metric, summary=summary)


def watch(
    models: Any,
    criterion: Any = None,
    log: str | None = "gradients",
    log_freq: int = 1000,
    **kwargs: Any,
) -> None:
    _require().watch(models, criterion, log=log, log_freq=log_freq)


def save(glob_str: str, base_path: str | None = None, policy: str = "live") -> None:
    _require().save(glob_str, base_path, policy)


def log_artifact(
    artifact: Artifact | str,
    name: str | None = None,
    type: str | None = None,
    aliases: list[str] | None = None,
) -> Artifact:
    return _require().log_artifact(artifact, name=name, type=type, aliases=aliases)


def login(*args: Any, **kwargs: Any) -> bool:
    """Nothing to log in to: runs are git commits in this repository."""
    return True


def _require() -> Run:
    if run is None:
        raise NoActiveRunError("call wandb.init() before wandb.log() and friends")
    return run


# -- helpers --------------------------------------------------------------------------------
def _as_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, argparse.Namespace):
        return dict(vars(value))
    if isinstance(value, Mapping):
        return dict(value)
    if hasattr(value, "as_dict"):
        return dict(value.as_dict())
    if isinstance(value, str) and value.endswith((".yaml", ".yml")) and os.path.isfile(value):
        import yaml

        with open(value, encoding="utf-8") as fh:
            loaded = yaml.safe_load(fh) or {}
        return {
            k: (v["value"] if isinstance(v, dict) and "value" in v else v)
            for k, v in loaded.items()
        }
    raise InvalidValueError(
        f"config must be a dict or argparse.Namespace, got {type(value).__name__}"
    )


def _flatten(values: Mapping[str, Any], sep: str, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, sep, name + sep))
        else:
            out[name] = value
    return out


def _unflatten_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params back as a nested config (``opt.lr`` -> ``{"opt": {"lr": ...}}``)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                break
            node = nxt
        else:
            node[parts[-1]] = value
            continue
        out[key] = value
    return out


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return False
    return bool(a != b)


def _jsonable(value: Any) -> Any:
    num = number(value)
    if num is not None:
        return num if not isinstance(num, float) or math.isfinite(num) else str(num)
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value
