"""The run record: what a run is, and its exact bytes in the ``.xp/run/`` folder.

Every file is sorted, one value per line, so ``git diff`` between two runs reads well and
the same data always gives the same bytes (and so the same blob ids).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from xp import format as fmt
from xp.errors import ConfigError
from xp.record import yamlio
from xp.record.media import MediaEntry, dump_entries, load_entries

Scalar = str | int | float | bool | None
Point = tuple[int, float, int]  # step, value, timestamp (ms since the epoch)


@dataclass(frozen=True)
class FileEntry:
    """A file known by content: an artifact file or a data input."""

    path: str
    sha256: str
    size: int
    files: int = 1  # > 1 (or a folder) for data inputs hashed as a folder
    kind: str = "file"
    source: str | None = None  # artifacts: where the file was in the work tree when logged

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "sha256": self.sha256, "size": self.size}
        if self.kind != "file":
            d["kind"] = self.kind
            d["files"] = self.files
        if self.source is not None:
            d["source"] = self.source
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FileEntry:
        return cls(
            path=str(d["path"]),
            sha256=str(d["sha256"]),
            size=int(d["size"]),
            files=int(d.get("files", 1)),
            kind=str(d.get("kind", "file")),
            source=None if d.get("source") is None else str(d["source"]),
        )


class StreamedFile(Protocol):
    """A record file too big to hold in memory: ``size`` bytes, read by ``chunks()``
    (a big metric series, record/spill.py); written as a blob by streaming."""

    @property
    def size(self) -> int: ...

    def chunks(self) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class RunRecord:
    """One run's record: what its ``.xp/run/`` files hold (docs/format.md)."""

    id: str
    name: str
    status: str
    meta: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    series: Mapping[str, list[Point]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: tuple[FileEntry, ...] = ()
    inputs: tuple[FileEntry, ...] = ()
    packages: tuple[str, ...] = ()
    media: tuple[MediaEntry, ...] = ()
    datasets: tuple[dict[str, Any], ...] = ()  # MLflow datasets, in logging order
    models: tuple[dict[str, Any], ...] = ()  # MLflow logged models, by id
    # series files of a run being committed, streamed from its spill (not read back)
    streamed: dict[str, StreamedFile] = field(default_factory=dict)

    @property
    def experiment(self) -> str:
        return str(self.meta.get("experiment") or "default")

    def to_files(self) -> dict[str, bytes | StreamedFile]:
        """Relative path inside the record folder -> bytes (or a stream of them, for a big
        series). Empty parts get no file."""
        meta = dict(self.meta)
        meta.update(format=fmt.RECORD_FORMAT, id=self.id, name=self.name, status=self.status)
        files: dict[str, bytes | StreamedFile] = {fmt.META_FILE: yamlio.dump(meta)}
        if self.params:
            files[fmt.PARAMS_FILE] = yamlio.dump(self.params)
        if self.metrics:
            files[fmt.METRICS_FILE] = yamlio.dump(self.metrics)
        if self.tags:
            files[fmt.TAGS_FILE] = yamlio.dump(self.tags)
        if self.artifacts:
            files[fmt.ARTIFACTS_FILE] = yamlio.dump(
                [a.to_dict() for a in sorted(self.artifacts, key=lambda a: a.path)]
            )
        if self.inputs:
            files[fmt.INPUTS_FILE] = yamlio.dump(
                [i.to_dict() for i in sorted(self.inputs, key=lambda i: i.path)]
            )
        if self.media:
            files[fmt.MEDIA_FILE] = yamlio.dump(dump_entries(list(self.media)))
        if self.packages:
            files[fmt.PACKAGES_FILE] = ("\n".join(sorted(self.packages)) + "\n").encode()
        if self.datasets:
            files[fmt.DATASETS_FILE] = yamlio.dump(list(self.datasets))
        if self.models:
            files[fmt.MODELS_FILE] = yamlio.dump(sorted(self.models, key=lambda m: m["id"]))
        for key, points in self.series.items():
            files[f"{fmt.SERIES_DIR}/{key}.tsv"] = series_bytes(points)
        for key, stream in self.streamed.items():
            files[f"{fmt.SERIES_DIR}/{key}.tsv"] = stream
        return files

    @classmethod
    def from_files(
        cls,
        read: Callable[[str], bytes | None],
        series_keys: list[str],
        source: str = "run",
        load_yaml: Callable[[bytes, str], Any] = yamlio.load_record,
        read_series: Callable[[str], bytes | None] | None = None,
        open_series: SeriesOpener | None = None,
    ) -> RunRecord:
        """Parse a record folder; ``read`` returns a file's bytes or None when it is absent.
        With ``read_series`` (reads a series file later, by its path in the folder), series
        are read and parsed one at a time when first asked for (``LazySeries``): a run with a
        1M-point metric loads without it (issue 18); ``open_series`` (by the same path) streams
        a big one instead of reading it whole.

        A record may come from anyone: whatever breaks the rules of docs/format.md (sizes,
        counts, shapes, encodings) is a ``ConfigError`` naming the file, never another error.
        ``load_yaml`` lets a bulk reader (the query index) plug in a faster, caching parser.
        """

        def load(name: str, default: Any) -> Any:
            data = read(name)
            if data is None:
                return default
            value = load_yaml(data, f"{source}:{fmt.RECORD_DIR}/{name}")
            return default if value is None else value

        meta = load(fmt.META_FILE, None)
        if not isinstance(meta, dict) or "id" not in meta:
            raise ConfigError(f"{source}: {fmt.RECORD_DIR}/{fmt.META_FILE} is missing or has no id")
        fmt_version = meta.get("format", 1)
        if not isinstance(fmt_version, int) or fmt_version > fmt.FORMAT_VERSION:
            raise ConfigError(
                f"{source}: record format {fmt_version} is newer than this xp understands"
                f" ({fmt.FORMAT_VERSION}); upgrade xp (pip install -U git-xp)"
            )
        if len(series_keys) > fmt.MAX_ENTRIES:
            raise ConfigError(
                f"{source}: {len(series_keys):,} series files, over the {fmt.MAX_ENTRIES:,} a"
                " record may hold; the run was not written by xp"
            )
        series: Mapping[str, list[Point]] = {}
        for key in series_keys:
            if not key.isascii() and not _utf8(key):
                raise ConfigError(f"{source}: a series file name is not UTF-8; the run is damaged")
        if read_series is not None:
            series = LazySeries(series_keys, read_series, source, open_series)
        else:
            series = {}
            for key in series_keys:
                data = read(f"{fmt.SERIES_DIR}/{key}.tsv")
                if data is not None:
                    series[key] = parse_series(data, f"{source}:{fmt.SERIES_DIR}/{key}.tsv")
        packages = read(fmt.PACKAGES_FILE)
        return cls(
            id=str(meta["id"]),
            name=str(meta.get("name", "")),
            status=str(meta.get("status", "finished")),
            meta=meta,
            params=_mapping(load(fmt.PARAMS_FILE, {}), source, fmt.PARAMS_FILE),
            metrics=_mapping(load(fmt.METRICS_FILE, {}), source, fmt.METRICS_FILE),
            series=series,
            tags={
                k: str(v)
                for k, v in _mapping(load(fmt.TAGS_FILE, {}), source, fmt.TAGS_FILE).items()
            },
            artifacts=_entries(load(fmt.ARTIFACTS_FILE, []), source, fmt.ARTIFACTS_FILE),
            inputs=_entries(load(fmt.INPUTS_FILE, []), source, fmt.INPUTS_FILE),
            packages=tuple(packages.decode("utf-8", "replace").split()) if packages else (),
            media=load_entries(load(fmt.MEDIA_FILE, None), f"{source}:{fmt.MEDIA_FILE}"),
            datasets=_mappings(load(fmt.DATASETS_FILE, []), source, fmt.DATASETS_FILE),
            models=_mappings(load(fmt.MODELS_FILE, []), source, fmt.MODELS_FILE),
        )


# A series file's size and its bytes in pieces, or None when absent (``open_blob``'s answer)
SeriesStream = AbstractContextManager["tuple[int, Iterator[bytes]] | None"]
SeriesOpener = Callable[[str], SeriesStream]


class LazySeries(Mapping[str, list[Point]]):
    """A record's series, each read and parsed when first asked for, then kept. A damaged
    file raises ``ConfigError`` naming it then, not when the run is loaded."""

    def __init__(
        self,
        keys: list[str],
        read: Callable[[str], bytes | None],
        source: str,
        opener: SeriesOpener | None = None,
    ) -> None:
        self._keys = list(keys)
        self._read = read
        self._opener = opener
        self.source = source
        self._loaded: dict[str, list[Point]] = {}

    def path(self, key: str) -> str:
        return f"{fmt.SERIES_DIR}/{key}.tsv"

    def raw(self, key: str) -> bytes | None:
        """The bytes of one series file (None when absent), unparsed and not kept."""
        return self._read(self.path(key)) if key in self._keys else None

    def stream(self, key: str) -> SeriesStream:
        """One series file's size and bytes in pieces (None when absent or when this record
        cannot stream): a reader of a 1M-point series that never holds the file (issue 18)."""
        if self._opener is None or key not in self._keys:
            return contextlib.nullcontext(None)
        return self._opener(self.path(key))

    def __getitem__(self, key: str) -> list[Point]:
        hit = self._loaded.get(key)
        if hit is not None:
            return hit
        data = self.raw(key)
        if data is None:
            raise KeyError(key)
        points = self._loaded[key] = parse_series(data, f"{self.source}:{self.path(key)}")
        return points

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]


def series_points(series: Mapping[str, list[Point]], key: str) -> list[Point]:
    """One series' points, parsed for this caller alone (a ``LazySeries`` does not keep
    them): for passes over every series of a big run, one at a time."""
    if isinstance(series, LazySeries):
        data = series.raw(key)
        return [] if data is None else parse_series(data, f"{series.source}:{series.path(key)}")
    return series.get(key) or []


def single_at_zero(series: Mapping[str, list[Point]], key: str) -> bool:
    """Whether series ``key`` holds one point, at step 0 (a file only MLflow-style runs
    write), without parsing a long one."""
    if isinstance(series, LazySeries):
        data = series.raw(key) or b""
        if len(data) > 4096:  # more than one line (or a file padded with blank lines)
            return False
        points = parse_series(data, f"{series.source}:{series.path(key)}")
    else:
        points = series.get(key) or []
    return len(points) == 1 and points[0][0] == 0


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _mappings(value: Any, source: str, name: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{source}: {fmt.RECORD_DIR}/{name} must be a list of mappings")
    if len(value) > fmt.MAX_ENTRIES:
        raise ConfigError(
            f"{source}: {fmt.RECORD_DIR}/{name} has {len(value):,} entries, over the"
            f" {fmt.MAX_ENTRIES:,} a record may hold; the run was not written by xp"
        )
    return tuple({str(k): v for k, v in item.items()} for item in value)


def _mapping(value: Any, source: str, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(
            f"{source}: {fmt.RECORD_DIR}/{name} must be a mapping, not {type(value).__name__};"
            " the run is damaged"
        )
    if len(value) > fmt.MAX_ENTRIES:
        raise ConfigError(
            f"{source}: {fmt.RECORD_DIR}/{name} has {len(value):,} entries, over the"
            f" {fmt.MAX_ENTRIES:,} a record may hold; the run was not written by xp"
        )
    return {str(k): v for k, v in value.items()}


def _entries(value: Any, source: str, name: str) -> tuple[FileEntry, ...]:
    """artifacts.yaml / inputs.yaml: a list of mappings with a path, sha256 and size."""
    where = f"{source}: {fmt.RECORD_DIR}/{name}"
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list, not {type(value).__name__}; run damaged")
    out = []
    for n, item in enumerate(value, start=1):
        try:
            if not isinstance(item, dict):
                raise TypeError(type(item).__name__)
            out.append(FileEntry.from_dict(item))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ConfigError(
                f"{where}: entry {n} is not a {{path, sha256, size}} mapping ({exc}); run damaged"
            ) from None
    return tuple(out)


def format_number(value: float | int) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return repr(value)


def series_bytes(points: list[Point]) -> bytes:
    # repr of a Python float or int is already the format (nan, inf, -inf included); other
    # number types (a numpy scalar from a hand-made record) go through format_number
    if all(type(v) is float or type(v) is int for _s, v, _t in points):
        lines = [f"{s}\t{v!r}\t{t}\n" for s, v, t in points]
    else:
        lines = [f"{s}\t{format_number(v)}\t{t}\n" for s, v, t in points]
    return (fmt.SERIES_HEADER + "".join(lines)).encode()


def parse_series(data: bytes, source: str) -> list[Point]:
    """A series file; integers are read as integers (exactly, whatever their size)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: byte {exc.start} is not UTF-8; the run is damaged") from None
    points: list[Point] = []
    for n, line in enumerate(text.split("\n")[1:], start=2):
        if not line:
            continue
        try:
            step, value, ts = line.split("\t")
            num: float | int = int(value) if value.lstrip("-").isdigit() else float(value)
            points.append((int(step), num, int(ts)))
        except ValueError:
            raise ConfigError(
                f"{source} line {n}: expected 'step<TAB>value<TAB>timestamp'"
            ) from None
    return points


def final_value(points: list[Point]) -> float:
    """MLflow's rule: the value at the highest step; among equal steps, the last logged."""
    best = points[0]
    for p in points[1:]:
        if p[0] >= best[0]:
            best = p
    return best[1]


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings become dotted keys, as DVC and MLflow users expect (`model.depth`)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, full + "."))
        else:
            out[full] = value
    return out
