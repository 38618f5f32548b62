"""TensorBoard event files in and out: ``xp import tensorboard`` and ``xp export tensorboard``.

Reading and writing go through the ``tensorboard`` package itself (its event accumulator and
its TensorFlow-free event writer and protos), not a protobuf parser of our own.

Import: every folder under LOGDIR that holds ``events.out.tfevents.*`` files is one run,
named by its path under LOGDIR; the hparams folder that PyTorch's and tensorboardX's
``add_hparams`` write below a run joins that run. Scalars become metrics with their step and
wall time (to the millisecond); a float32 value (``add_scalar``'s ``simple_value``) is widened
exactly, never rounded through decimal. Hparams become params (numbers arrive as TensorBoard
stores them: floats). Images, histograms and text go to the media index. Each run is tagged
with its folder and a fingerprint of its event files, so importing again adds nothing unless
the files changed.

Export: one folder per run, scalars as 64-bit tensors by default, which TensorBoard draws like
any scalar and which read back exactly (``--float32`` writes classic 32-bit scalars for
readers that only know those; the values that do not fit are counted); params as hparams,
images, histograms and texts from the media index.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xp.errors import InvalidValueError, StorageError, missing_extra
from xp.gitstore.repo import GitRepo
from xp.integrations.common import metric_key

EVENTS = "events.out.tfevents."
HPARAMS_SESSION = "_hparams_/session_start_info"
_TAG_DIR = "tensorboard.logdir"
_TAG_PRINT = "tensorboard.fingerprint"
_TAG_DTYPE = "tensorboard.dtype"
_TAG_F32 = "tensorboard.float32"
_MAX_TAG = 8000


def _need_tensorboard() -> None:
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        raise missing_extra("tensorboard", "tensorboard", "reading and writing TensorBoard files")


# -- import ---------------------------------------------------------------------------------
@dataclass
class ImportedRun:
    folder: str  # relative to LOGDIR ('.' for LOGDIR itself)
    run_id: str | None  # None when skipped
    scalars: int = 0
    params: int = 0
    media: int = 0
    skipped: str | None = None  # why nothing was imported


@dataclass
class ImportResult:
    logdir: Path
    runs: list[ImportedRun] = field(default_factory=list)

    @property
    def imported(self) -> list[ImportedRun]:
        return [r for r in self.runs if r.run_id is not None]


def run_folders(logdir: Path) -> list[Path]:
    """Folders holding event files, LOGDIR included, in path order."""
    found = set()
    for root, dirs, files in os.walk(logdir):
        dirs.sort()
        if any(f.startswith(EVENTS) for f in files):
            found.add(Path(root))
    return sorted(found)


def fingerprint(folders: list[Path]) -> str:
    """Names and sizes of the event files: changes when a writer appends, cheap to compute."""
    h = hashlib.sha256()
    for folder in folders:
        for name in sorted(os.listdir(folder)):
            if name.startswith(EVENTS):
                h.update(f"{folder.name}/{name}\0{os.stat(folder / name).st_size}\n".encode())
    return h.hexdigest()[:16]


@dataclass
class _Read:
    """What one folder's event files hold."""

    scalars: dict[str, list[tuple[int, float, int]]] = field(default_factory=dict)
    float32: set[str] = field(default_factory=set)
    hparams: dict[str, Any] = field(default_factory=dict)
    images: list[tuple[str, int, int, bytes, int, int]] = field(default_factory=list)
    histograms: list[tuple[str, int, int, list[float], list[float]]] = field(default_factory=list)
    texts: list[tuple[str, int, int, str]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.scalars or self.hparams or self.images or self.histograms or self.texts)

    def merge(self, other: _Read) -> None:
        for tag, points in other.scalars.items():
            self.scalars.setdefault(tag, []).extend(points)
        self.float32 |= other.float32
        self.hparams.update(other.hparams)
        self.images += other.images
        self.histograms += other.histograms
        self.texts += other.texts
        self.times += other.times


def _ms(wall_time: float) -> int:
    return round(wall_time * 1000)


def read_folder(folder: Path) -> _Read:
    """Everything in one folder's event files (every event: no sampling)."""
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    acc = ea.EventAccumulator(
        str(folder),
        size_guidance={
            ea.SCALARS: 0,
            ea.TENSORS: 0,
            ea.IMAGES: 0,
            ea.HISTOGRAMS: 0,
            ea.COMPRESSED_HISTOGRAMS: 0,
            ea.AUDIO: 1,
        },
        purge_orphaned_data=False,  # a restarted writer's older steps are kept, not dropped
    )
    acc.Reload()
    out = _Read()
    tags = acc.Tags()
    for tag in tags.get("scalars", []):
        events = acc.Scalars(tag)
        out.scalars[tag] = [(int(e.step), float(e.value), _ms(e.wall_time)) for e in events]
        out.float32.add(tag)  # simple_value is a float32 in the file
        out.times += [e.wall_time for e in events]
    for tag in tags.get("tensors", []):
        plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
        events = acc.Tensors(tag)
        if plugin == "scalars":
            points = []
            for e in events:
                value = tensor_util.make_ndarray(e.tensor_proto)
                points.append((int(e.step), float(value.item()), _ms(e.wall_time)))
                if e.tensor_proto.dtype == 1:  # DT_FLOAT: a float32 tensor (TF2's scalars)
                    out.float32.add(tag)
            out.scalars.setdefault(tag, []).extend(points)
        elif plugin == "histograms":
            for e in events:
                rows = tensor_util.make_ndarray(e.tensor_proto).tolist()
                if rows:
                    edges = [float(r[0]) for r in rows] + [float(rows[-1][1])]
                    counts = [float(r[2]) for r in rows]
                    out.histograms.append((tag, int(e.step), _ms(e.wall_time), edges, counts))
        elif plugin == "text":
            for e in events:
                value = tensor_util.make_ndarray(e.tensor_proto)
                items = [
                    v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                    for v in value.ravel().tolist()
                ]
                out.texts.append((tag, int(e.step), _ms(e.wall_time), "\n".join(items)))
        else:
            continue
        out.times += [e.wall_time for e in events]
    for tag in tags.get("images", []):
        for e in acc.Images(tag):
            out.images.append(
                (tag, int(e.step), _ms(e.wall_time), e.encoded_image_string, e.width, e.height)
            )
            out.times.append(e.wall_time)
    for tag in tags.get("histograms", []):
        for e in acc.Histograms(tag):
            edges, counts = _tb_histogram(e.histogram_value)
            out.histograms.append((tag, int(e.step), _ms(e.wall_time), edges, counts))
            out.times.append(e.wall_time)
    try:
        content = acc.PluginTagToContent("hparams")
    except KeyError:  # no hparams in this folder
        content = {}
    if HPARAMS_SESSION in content:
        out.hparams = _hparams(content[HPARAMS_SESSION])
    return out


def _tb_histogram(h: Any) -> tuple[list[float], list[float]]:
    """A HistogramProto as (edges, counts): each bucket ends at its ``bucket_limit``; the first
    starts at ``min``; an open last limit (TensorFlow writes DBL_MAX) closes at ``max``."""
    limits = [float(x) for x in h.bucket_limit]
    counts = [float(x) for x in h.bucket]
    if not limits:
        return [], []
    lo, hi = float(h.min), float(h.max)
    if not math.isfinite(limits[-1]) or limits[-1] > 1e300:
        limits[-1] = max(hi, limits[-2] if len(limits) > 1 else hi)
    first = min(lo, limits[0])
    return [first, *limits], counts


def _hparams(content: bytes) -> dict[str, Any]:
    from tensorboard.plugins.hparams import plugin_data_pb2

    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    out: dict[str, Any] = {}
    for name, value in data.session_start_info.hparams.items():
        kind = value.WhichOneof("kind")
        if kind == "number_value":
            out[name] = float(value.number_value)
        elif kind == "string_value":
            out[name] = value.string_value
        elif kind == "bool_value":
            out[name] = bool(value.bool_value)
    return out


def _existing(repo: GitRepo) -> dict[tuple[str, str], str]:
    """(logdir tag, fingerprint) -> run id of runs imported before."""
    from xp.errors import QueryError
    from xp.query.search import search_runs

    try:
        frame = search_runs(repo, filter_string=f"tags.{_TAG_DIR} is not null")
    except QueryError:  # no run has the tag: nothing imported yet
        return {}
    if not len(frame):
        return {}
    dirs = frame.get(f"tags.{_TAG_DIR}")
    prints = frame.get(f"tags.{_TAG_PRINT}")
    if dirs is None or prints is None:
        return {}
    return {(str(d), str(p)): str(r) for d, p, r in zip(dirs, prints, frame["run_id"], strict=True)}


def import_logdir(
    repo: GitRepo,
    *,
    logdir: str | os.PathLike[str],
    experiment: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ImportResult:
    """Turn each run folder under ``logdir`` into an xp run (see the module docstring)."""
    _need_tensorboard()
    root = Path(logdir).resolve()
    if not root.is_dir():
        raise InvalidValueError(f"{os.fspath(logdir)!r} is not a folder; give a TensorBoard logdir")
    folders = run_folders(root)
    if not folders:
        raise InvalidValueError(
            f"no {EVENTS}* files under {os.fspath(logdir)!r}; give the folder TensorBoard reads"
        )
    result = ImportResult(root)
    reads = {folder: read_folder(folder) for folder in folders}
    # add_hparams writes a sub-folder holding the hparams session and its metrics, below the
    # writer's own folder: it joins that run (a root holding only an experiment's hparams
    # config, as `xp export` writes, has no data and is no run)
    groups: dict[Path, list[Path]] = {}
    for folder in folders:
        parent = folder.parent
        if reads[folder].hparams and parent in reads and not reads[parent].empty:
            groups.setdefault(parent, [parent]).append(folder)
        else:
            groups.setdefault(folder, [folder])
    seen = _existing(repo)
    for main, members in sorted(groups.items()):
        rel = os.path.relpath(main, root).replace(os.sep, "/")
        data = _Read()
        for member in members:
            data.merge(reads[member])
        item = ImportedRun(rel, None)
        result.runs.append(item)
        if data.empty:
            item.skipped = "no scalars, hparams, images, histograms or text"
            continue
        where = str(main)
        mark = fingerprint(members)
        if (where, mark) in seen:
            item.skipped = f"imported before as run {seen[(where, mark)]}"
            continue
        if progress is not None:
            progress(rel)
        item.run_id = _commit(repo, data, rel, root, where, mark, experiment, item)
    return result


def _commit(
    repo: GitRepo,
    data: _Read,
    rel: str,
    root: Path,
    where: str,
    mark: str,
    experiment: str | None,
    item: ImportedRun,
) -> str:
    from xp.tracking.media import encode_histogram
    from xp.tracking.run import Run

    name = root.name if rel == "." else rel
    run = Run(repo, name=name, experiment=experiment, system_metrics=False)
    try:
        if data.times:
            run.update_header(start_time=min(data.times))
        keys: dict[str, str] = {}
        for tag, points in data.scalars.items():
            key = keys.setdefault(tag, metric_key(tag))
            for step, value, ms in points:
                run.log_metric(key, value, step, ms)
            item.scalars += len(points)
        params = {metric_key(k): v for k, v in data.hparams.items()}
        for key, value in params.items():
            run.log_param(key, value)
        item.params = len(params)
        for tag, step, ms, png, width, height in data.images:
            ext = "jpg" if png[:3] == b"\xff\xd8\xff" else "png"
            size = {"width": width, "height": height}
            run.log_media(
                "image", png, ext, key=metric_key(tag), step=step, info=size, timestamp=ms
            )
            item.media += 1
        for tag, step, ms, edges, counts in data.histograms:
            histo = encode_histogram(np_histogram=(counts, edges))
            run.log_media(
                "histogram",
                histo.data,
                histo.ext,
                key=metric_key(tag),
                step=step,
                info=histo.info,
                timestamp=ms,
            )
            item.media += 1
        for tag, step, ms, text in data.texts:
            run.log_media(
                "text",
                text.encode("utf-8"),
                "txt",
                key=metric_key(tag),
                step=step,
                info={"chars": len(text)},
                timestamp=ms,
            )
            item.media += 1
        run.set_tags({_TAG_DIR: where, _TAG_PRINT: mark})
        f32 = sorted(keys[t] for t in data.float32 if t in keys)
        if data.scalars:
            dtype = "float32" if len(f32) == len(keys) else "float64" if not f32 else "mixed"
            run.set_tag(_TAG_DTYPE, dtype)
            listed = ",".join(f32)
            if dtype == "mixed" and len(listed) <= _MAX_TAG:
                run.set_tag(_TAG_F32, listed)
    except BaseException:
        run.abort()
        raise
    run.finish("finished", end_time=max(data.times) if data.times else None)
    return str(run.id)


# -- export ---------------------------------------------------------------------------------
@dataclass
class ExportedRun:
    run_id: str
    folder: Path
    scalars: int = 0
    rounded: int = 0  # --float32: values that float32 cannot hold exactly
    media: int = 0
    skipped_media: int = 0  # tables, html figures: TensorBoard has no place for them


@dataclass
class ExportResult:
    out_dir: Path
    runs: list[ExportedRun] = field(default_factory=list)


_SAFE = re.compile(r"[^\w.\- ]")


def _folder_name(name: str, run_id: str, taken: set[str]) -> str:
    base = _SAFE.sub("_", name).strip(" .") or run_id
    candidate = base if base not in taken else f"{base}-{run_id}"
    taken.add(candidate)
    return candidate


def export_runs(
    repo: GitRepo,
    *,
    runs: list[str],
    out_dir: str | os.PathLike[str],
    float32: bool = False,
) -> ExportResult:
    """Write each run's event files into ``out_dir/<run name>/`` (see the module docstring)."""
    _need_tensorboard()
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams import summary_v2 as hp
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    from xp.query.resolve import load_run

    if not runs:
        raise InvalidValueError("name the runs to export (ids, names; see `xp show`)")
    views = [load_run(repo, spec) for spec in runs]
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {out}: {exc.strerror}") from None
    result = ExportResult(out)
    taken: set[str] = {p.name for p in out.iterdir()} if out.is_dir() else set()
    hparam_names: set[str] = set()
    metric_names: set[str] = set()
    for view in views:
        folder = out / _folder_name(view.record.name, view.record.id, taken)
        item = ExportedRun(view.record.id, folder)
        result.runs.append(item)
        writer = EventFileWriter(str(folder))
        try:
            for event in _run_events(repo, view, float32, item):
                writer.add_event(event)
            params = {k: _hparam_value(v) for k, v in view.record.params.items()}
            if params:
                start = _start_seconds(view)
                summary = hp.hparams_pb(params, trial_id=folder.name, start_time_secs=start)
                writer.add_event(event_pb2.Event(wall_time=start, summary=summary))
                hparam_names |= set(params)
            metric_names |= set(view.record.metrics)
        finally:
            writer.close()
    if hparam_names:
        writer = EventFileWriter(str(out))
        try:
            config = hp.hparams_config_pb(
                hparams=[hp.HParam(n) for n in sorted(hparam_names)],
                metrics=[hp.Metric(m) for m in sorted(metric_names)],
            )
            writer.add_event(event_pb2.Event(wall_time=0.0, summary=config))
        finally:
            writer.close()
    return result


def _meta_seconds(view: Any, key: str) -> float:
    """``meta.yaml``'s ``start_time``/``end_time`` in seconds since the epoch (0 if absent)."""
    from datetime import datetime, timezone

    text = str(view.record.meta.get(key, ""))
    try:
        stamp = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return 0.0
    return stamp.replace(tzinfo=timezone.utc).timestamp()


def _start_seconds(view: Any) -> float:
    return _meta_seconds(view, "start_time")


def _hparam_value(value: Any) -> Any:
    if isinstance(value, (bool, str)) or (
        isinstance(value, (int, float)) and not isinstance(value, bool)
    ):
        return value
    return json.dumps(value) if isinstance(value, list) else str(value)


def _run_events(repo: GitRepo, view: Any, float32: bool, item: ExportedRun) -> Iterator[Any]:
    import numpy as np
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2

    record = view.record
    f32_keys: set[str] = set()
    dtype = record.tags.get(_TAG_DTYPE)
    if dtype == "float32":
        f32_keys = set(record.metrics)
    elif dtype == "mixed":
        f32_keys = set(filter(None, record.tags.get(_TAG_F32, "").split(",")))
    scalars_md = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    )
    end_ms = _end_ms(view)
    for key in sorted(record.metrics):
        points = record.series.get(key) or [(0, record.metrics[key], end_ms)]
        narrow = float32 or key in f32_keys
        for step, value, ms in points:
            number = float(value)
            if narrow:
                if math.isfinite(number) and float(np.float32(number)) != number:
                    item.rounded += 1
                summary_value = summary_pb2.Summary.Value(tag=key, simple_value=number)
            else:
                tensor = tensor_pb2.TensorProto(
                    dtype=2, double_val=[number], tensor_shape=tensor_shape_pb2.TensorShapeProto()
                )  # 2 = DT_DOUBLE
                summary_value = summary_pb2.Summary.Value(
                    tag=key, tensor=tensor, metadata=scalars_md
                )
            item.scalars += 1
            yield event_pb2.Event(
                wall_time=ms / 1000,
                step=int(step),
                summary=summary_pb2.Summary(value=[summary_value]),
            )
    for entry in sorted(record.media, key=lambda e: e.sort_key):
        value = _media_value(repo, view, entry)
        if value is None:
            item.skipped_media += 1
            continue
        item.media += 1
        yield event_pb2.Event(
            wall_time=entry.timestamp / 1000,
            step=entry.step or 0,
            summary=summary_pb2.Summary(value=[value]),
        )


def _end_ms(view: Any) -> int:
    return round(_meta_seconds(view, "end_time") * 1000)


def _media_value(repo: GitRepo, view: Any, entry: Any) -> Any:
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2

    from xp.sharing.get import read_artifact
    from xp.tracking.media import decode_histogram

    ext = entry.path.rsplit(".", 1)[-1].lower()
    if entry.kind in ("image", "figure") and ext in ("png", "jpg", "gif"):
        data = read_artifact(repo, commit=view.commit, path=entry.path)
        image = summary_pb2.Summary.Image(
            height=int(entry.info.get("height") or 0),
            width=int(entry.info.get("width") or 0),
            encoded_image_string=data,
        )
        return summary_pb2.Summary.Value(tag=entry.key, image=image)
    if entry.kind == "histogram":
        edges, counts = decode_histogram(read_artifact(repo, commit=view.commit, path=entry.path))
        centers = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
        histo = summary_pb2.HistogramProto(
            min=edges[0] if edges else 0.0,
            max=edges[-1] if edges else 0.0,
            num=float(sum(counts)),
            sum=float(sum(c * m for c, m in zip(counts, centers, strict=False))),
            sum_squares=float(sum(c * m * m for c, m in zip(counts, centers, strict=False))),
            bucket_limit=edges[1:],
            bucket=counts,
        )
        return summary_pb2.Summary.Value(tag=entry.key, histo=histo)
    if entry.kind == "text" and ext == "txt":
        text = read_artifact(repo, commit=view.commit, path=entry.path)
        tensor = tensor_pb2.TensorProto(
            dtype=7,  # DT_STRING
            string_val=[text],
            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
        )
        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text")
        )
        return summary_pb2.Summary.Value(tag=entry.key, tensor=tensor, metadata=metadata)
    return None
