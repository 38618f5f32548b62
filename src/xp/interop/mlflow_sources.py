"""Reading MLflow's tracking stores without MLflow: a ``./mlruns`` file store, a
``sqlite:///mlflow.db`` database (opened read-only), or a tracking server over its REST API.

Each gives the same values: experiments, then runs with every metric point (step, value,
timestamp), params and tags as MLflow's text, datasets, MLflow 3 logged models, and a way to
read the run's artifact files. A part of a store that cannot be read is reported for that run
(``SourceRun.problem``) or, when the store itself is unusable, as one ``MlflowException``
naming what to check.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xp.errors import MlflowException, XPError

STATUS_NAMES = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
Point = tuple[int, float, int]  # step, value, timestamp (ms)


def _bad_store(message: str) -> MlflowException:
    return MlflowException(message, "INVALID_PARAMETER_VALUE")


@dataclass
class SourceExperiment:
    id: str
    name: str
    lifecycle_stage: str = "active"
    creation_time: int | None = None
    last_update_time: int | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SourceModel:
    """An MLflow 3 logged model whose source run is the run it is listed with."""

    id: str
    name: str
    status: str
    created: int | None
    updated: int | None
    model_type: str | None
    tags: dict[str, str]
    params: dict[str, str]
    files: Callable[[], Iterator[tuple[str, Callable[[], bytes]]]]


@dataclass
class SourceRun:
    run_id: str
    experiment_id: str
    name: str
    user_id: str | None
    status: str
    start_time: int
    end_time: int | None
    lifecycle_stage: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, list[Point]] = field(default_factory=dict)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    models: list[SourceModel] = field(default_factory=list)
    # (relative path, size) of every artifact file, and how to read one
    artifacts: Callable[[], list[tuple[str, int]]] = field(default=lambda: [])
    read_artifact: Callable[[str], bytes] = field(default=lambda path: b"")
    artifact_root: Path | None = None  # where they are, when that is a local folder
    artifacts_elsewhere: str | None = None  # an artifact URI xp cannot read (s3://...)
    problem: str | None = None  # set when the run could not be read in full


class Source:
    """An MLflow store, read-only."""

    label: str

    def experiments(self) -> list[SourceExperiment]:
        raise NotImplementedError

    def runs(self, experiment_ids: list[str]) -> Iterator[SourceRun]:
        raise NotImplementedError

    def count(self, experiment_ids: list[str]) -> int:
        raise NotImplementedError

    def starts(self) -> dict[str, int]:
        """Start time (ms) of every run of the store, by MLflow run id (cheap: no metrics)."""
        raise NotImplementedError

    def close(self) -> None:
        return None


# -- helpers ------------------------------------------------------------------------------------
def local_path(uri: str | None) -> Path | None:
    """A local folder for an artifact URI (plain path or file://), or None (s3:// and the like)."""
    if not uri:
        return None
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.path))
    if parsed.scheme in ("", "c", "d") or len(parsed.scheme) == 1:
        return Path(uri)
    return None


def _elsewhere(uri: Any) -> str | None:
    """An artifact URI that is not a local folder (xp reads those through a server only)."""
    text = str(uri or "")
    return text if text and local_path(text) is None else None


def _files(root: Path | None) -> list[tuple[str, int]]:
    if root is None or not root.is_dir():
        return []
    out = []
    for dirpath, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            full = Path(dirpath) / name
            if full.is_symlink() and not full.resolve().is_relative_to(root.resolve()):
                continue  # never follow a link out of the store
            out.append((full.relative_to(root).as_posix(), full.stat().st_size))
    return out


def _lister(root: Path | None) -> Callable[[], list[tuple[str, int]]]:
    return lambda: _files(root)


def _model_files(root: Path | None) -> Callable[[], Iterator[tuple[str, Callable[[], bytes]]]]:
    read = _reader(root)

    def one(path: str) -> Callable[[], bytes]:
        return lambda: read(path)

    def files() -> Iterator[tuple[str, Callable[[], bytes]]]:
        for path, _size in _files(root):
            yield path, one(path)

    return files


def _reader(root: Path | None) -> Callable[[str], bytes]:
    def read(path: str) -> bytes:
        assert root is not None
        return (root / path).read_bytes()

    return read


def _number(text: str) -> float:
    return float(text)  # "nan", "inf", "-inf" included


# -- ./mlruns -----------------------------------------------------------------------------------
class FileStoreSource(Source):
    """MLflow's file store: ``<root>/<experiment id>/<run id>/{meta.yaml,params,tags,metrics}``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)
        if not root.is_dir():
            raise _bad_store(f"{root} is not a folder; give the path of an MLflow ./mlruns folder")

    def _yaml(self, path: Path) -> dict[str, Any]:
        from xp.record import yamlio

        try:
            data = yamlio.load(path.read_bytes(), str(path))
        except OSError as exc:
            raise ValueError(f"{path}: {exc.strerror}") from None
        except XPError as exc:  # invalid YAML: the message names the file and line
            raise ValueError(str(exc).removesuffix("; fix the file")) from None
        if not isinstance(data, dict):
            raise ValueError(f"{path} is not a YAML mapping")
        return data

    def _experiment_dirs(self) -> list[Path]:
        out = []
        for base in (self.root, self.root / ".trash"):
            if base.is_dir():
                out += [d for d in sorted(base.iterdir()) if (d / "meta.yaml").is_file()]
        return out

    def experiments(self) -> list[SourceExperiment]:
        found = []
        for folder in self._experiment_dirs():
            try:
                meta = self._yaml(folder / "meta.yaml")
            except ValueError as exc:
                raise _bad_store(
                    f"the MLflow store is damaged: {exc}; repair or remove it"
                ) from None
            found.append(
                SourceExperiment(
                    id=str(meta.get("experiment_id", folder.name)),
                    name=str(meta.get("name", folder.name)),
                    lifecycle_stage=str(meta.get("lifecycle_stage") or "active"),
                    creation_time=meta.get("creation_time"),
                    last_update_time=meta.get("last_update_time"),
                    tags=_kv_files(folder / "tags"),
                )
            )
        if not found:
            raise _bad_store(
                f"{self.root} holds no MLflow experiment (no <id>/meta.yaml); is it an ./mlruns"
                " folder?"
            )
        return found

    def _run_dirs(self, experiment_ids: list[str]) -> list[Path]:
        wanted = set(experiment_ids)
        out = []
        for folder in self._experiment_dirs():
            if folder.name not in wanted:
                continue
            out += [
                d
                for d in sorted(folder.iterdir())
                if d.is_dir() and d.name not in ("tags", "datasets", "models", "traces")
            ]
        return out

    def count(self, experiment_ids: list[str]) -> int:
        return len(self._run_dirs(experiment_ids))

    def starts(self) -> dict[str, int]:
        out = {}
        every = [f.name for f in self._experiment_dirs()]
        for folder in self._run_dirs(every):
            try:
                meta = self._yaml(folder / "meta.yaml")
            except ValueError:
                continue
            out[str(meta.get("run_id") or folder.name)] = int(meta.get("start_time") or 0)
        return out

    def runs(self, experiment_ids: list[str]) -> Iterator[SourceRun]:
        for folder in self._run_dirs(experiment_ids):
            yield self._run(folder)

    def _run(self, folder: Path) -> SourceRun:
        exp_dir = folder.parent
        try:
            meta = self._yaml(folder / "meta.yaml")
        except ValueError as exc:
            return _broken(folder.name, exp_dir.name, f"{exc}")
        status = meta.get("status")
        artifacts = local_path(str(meta.get("artifact_uri") or "")) or folder / "artifacts"
        run = SourceRun(
            run_id=str(meta.get("run_id") or meta.get("run_uuid") or folder.name),
            experiment_id=str(meta.get("experiment_id") or exp_dir.name),
            name=str(meta.get("run_name") or ""),
            user_id=None if meta.get("user_id") is None else str(meta["user_id"]),
            status=STATUS_NAMES.get(status, str(status))
            if isinstance(status, int)
            else str(status),
            start_time=int(meta.get("start_time") or 0),
            end_time=None if meta.get("end_time") is None else int(meta["end_time"]),
            lifecycle_stage=str(meta.get("lifecycle_stage") or "active"),
            params=_kv_files(folder / "params"),
            tags=_kv_files(folder / "tags"),
            artifacts=_lister(artifacts),
            read_artifact=_reader(artifacts),
            artifact_root=artifacts,
            artifacts_elsewhere=_elsewhere(meta.get("artifact_uri")),
        )
        run.name = run.name or run.tags.get("mlflow.runName", "")
        try:
            run.metrics = _metric_files(folder / "metrics")
            run.datasets = self._datasets(folder, exp_dir)
            run.models = self._models(folder, exp_dir, run.run_id)
        except (ValueError, OSError) as exc:
            run.problem = str(exc)
        return run

    def _datasets(self, folder: Path, exp_dir: Path) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        inputs = folder / "inputs"
        if not inputs.is_dir():
            return out
        for entry in sorted(inputs.iterdir()):
            meta = self._yaml(entry / "meta.yaml")
            if meta.get("source_type") != "DATASET":
                continue
            dataset = self._yaml(exp_dir / "datasets" / str(meta.get("source_id")) / "meta.yaml")
            out.append(
                _dataset(dataset, {str(k): str(v) for k, v in (meta.get("tags") or {}).items()})
            )
        return out

    def _models(self, folder: Path, exp_dir: Path, run_id: str) -> list[SourceModel]:
        out: list[SourceModel] = []
        models = exp_dir / "models"
        if not models.is_dir():
            return out
        for entry in sorted(models.iterdir()):
            if not (entry / "meta.yaml").is_file():
                continue
            meta = self._yaml(entry / "meta.yaml")
            if str(meta.get("source_run_id")) != run_id:
                continue
            root = local_path(str(meta.get("artifact_location") or "")) or entry / "artifacts"
            out.append(
                SourceModel(
                    id=str(meta.get("model_id", entry.name)),
                    name=str(meta.get("name") or "model"),
                    status=_model_status(meta.get("status")),
                    created=meta.get("creation_timestamp"),
                    updated=meta.get("last_updated_timestamp"),
                    model_type=meta.get("model_type"),
                    tags=_kv_files(entry / "tags"),
                    params=_kv_files(entry / "params"),
                    files=_model_files(root),
                )
            )
        return out


def _broken(run_id: str, experiment_id: str, problem: str) -> SourceRun:
    return SourceRun(
        run_id=run_id,
        experiment_id=experiment_id,
        name="",
        user_id=None,
        status="FAILED",
        start_time=0,
        end_time=None,
        lifecycle_stage="active",
        problem=problem,
    )


def _model_status(value: Any) -> str:
    names = {0: "UNSPECIFIED", 1: "PENDING", 2: "READY", 3: "FAILED"}
    if isinstance(value, int):
        return names.get(value, "READY")
    return str(value or "READY").upper()


def _kv_files(folder: Path) -> dict[str, str]:
    """``params/`` and ``tags/``: one file per key, the raw value; keys with ``/`` nest."""
    out: dict[str, str] = {}
    if not folder.is_dir():
        return out
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            full = Path(dirpath) / name
            out[full.relative_to(folder).as_posix()] = full.read_text(encoding="utf-8")
    return out


def _metric_files(folder: Path) -> dict[str, list[Point]]:
    """One line per point: ``ts value [step [dataset_name dataset_digest]]`` (MLflow's own
    reader takes the step only from 3-field lines; every line with a third field has one)."""
    out: dict[str, list[Point]] = {}
    if not folder.is_dir():
        return out
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            full = Path(dirpath) / name
            rows = [line.split() for line in full.read_text().splitlines() if line.strip()]
            try:  # the common case, fast: "ts value step" on every line
                points = [(int(r[2]), float(r[1]), int(r[0])) for r in rows if len(r) == 3]
                if len(points) != len(rows):
                    raise ValueError
            except ValueError:
                points = _metric_lines(full, rows)
            if points:
                out[full.relative_to(folder).as_posix()] = points
    return out


def _metric_lines(path: Path, rows: list[list[str]]) -> list[Point]:
    points = []
    for n, parts in enumerate(rows, start=1):
        if len(parts) < 2:
            raise ValueError(f"{path} line {n}: expected 'timestamp value [step]'")
        try:
            step = int(float(parts[2])) if len(parts) >= 3 else 0
            points.append((step, _number(parts[1]), int(parts[0])))
        except ValueError:
            raise ValueError(
                f"{path} line {n}: {' '.join(parts)!r} is not a metric point"
            ) from None
    return points


def _dataset(d: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": str(d.get("name", "")),
        "digest": str(d.get("digest", "")),
        "source_type": str(d.get("source_type", "")),
        "source": str(d.get("source", "")),
    }
    for key in ("schema", "profile"):
        if d.get(key) is not None:
            entry[key] = str(d[key])
    if tags:
        entry["tags"] = tags
    return entry


# -- sqlite:///mlflow.db ------------------------------------------------------------------------
class SqliteSource(Source):
    """MLflow's SQL store in a sqlite file, opened read-only; columns that older MLflow
    versions did not have are read as missing."""

    def __init__(self, path: Path) -> None:
        self.label = f"sqlite:///{path}"
        if not path.is_file():
            raise _bad_store(f"{path} does not exist; give the path of the MLflow database")
        try:
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as exc:
            raise _bad_store(f"{path} is not a readable SQLite database ({exc})") from None
        for table in ("experiments", "runs", "params", "tags", "metrics"):
            if table not in tables:
                raise _bad_store(f"{path} is not an MLflow tracking database: no table {table!r}")
        self.tables = tables
        self.columns = {
            t: {r[1] for r in self.conn.execute(f"PRAGMA table_info({t})")} for t in tables
        }

    def close(self) -> None:
        self.conn.close()

    def _col(self, table: str, column: str) -> str:
        return column if column in self.columns.get(table, set()) else "NULL"

    def experiments(self) -> list[SourceExperiment]:
        c = self._col
        rows = self.conn.execute(
            f"SELECT experiment_id, name, {c('experiments', 'lifecycle_stage')},"
            f" {c('experiments', 'creation_time')}, {c('experiments', 'last_update_time')}"
            " FROM experiments ORDER BY experiment_id"
        ).fetchall()
        tags: dict[str, dict[str, str]] = {}
        if "experiment_tags" in self.tables:
            for key, value, exp in self.conn.execute(
                "SELECT key, value, experiment_id FROM experiment_tags"
            ):
                tags.setdefault(str(exp), {})[str(key)] = "" if value is None else str(value)
        return [
            SourceExperiment(str(i), str(n), str(s or "active"), ct, lu, tags.get(str(i), {}))
            for i, n, s, ct, lu in rows
        ]

    def _where(self, experiment_ids: list[str]) -> tuple[str, list[Any]]:
        marks = ",".join("?" * len(experiment_ids))
        return f"experiment_id IN ({marks})", [int(e) if e.isdigit() else e for e in experiment_ids]

    def count(self, experiment_ids: list[str]) -> int:
        where, args = self._where(experiment_ids)
        return int(
            self.conn.execute(f"SELECT count(*) FROM runs WHERE {where}", args).fetchone()[0]
        )

    def starts(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT run_uuid, start_time FROM runs")
        return {str(r): int(t or 0) for r, t in rows}

    def runs(self, experiment_ids: list[str]) -> Iterator[SourceRun]:
        c = self._col
        where, args = self._where(experiment_ids)
        rows = self.conn.execute(
            f"SELECT run_uuid, experiment_id, {c('runs', 'name')}, user_id, status, start_time,"
            f" end_time, {c('runs', 'lifecycle_stage')}, artifact_uri FROM runs WHERE {where}"
            " ORDER BY start_time, run_uuid",
            args,
        ).fetchall()
        for run_id, exp, name, user, status, start, end, stage, artifact_uri in rows:
            yield self._run(run_id, exp, name, user, status, start, end, stage, artifact_uri)

    def _run(
        self,
        run_id: str,
        exp: Any,
        name: Any,
        user: Any,
        status: Any,
        start: Any,
        end: Any,
        stage: Any,
        artifact_uri: Any,
    ) -> SourceRun:
        root = local_path(artifact_uri)
        run = SourceRun(
            run_id=str(run_id),
            experiment_id=str(exp),
            name=str(name or ""),
            user_id=None if user is None else str(user),
            status=str(status or "FINISHED"),
            start_time=int(start or 0),
            end_time=None if end is None else int(end),
            lifecycle_stage=str(stage or "active"),
            artifacts=_lister(root),
            read_artifact=_reader(root),
            artifact_root=root,
            artifacts_elsewhere=_elsewhere(artifact_uri),
        )
        try:
            run.params = {
                str(k): "" if v is None else str(v)
                for k, v in self.conn.execute(
                    "SELECT key, value FROM params WHERE run_uuid = ?", (run_id,)
                )
            }
            run.tags = {
                str(k): "" if v is None else str(v)
                for k, v in self.conn.execute(
                    "SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)
                )
            }
            run.name = run.name or run.tags.get("mlflow.runName", "")
            step, is_nan = self._col("metrics", "step"), self._col("metrics", "is_nan")
            rows = self.conn.execute(
                f"SELECT key, coalesce({step}, 0), value, coalesce(timestamp, 0), {is_nan}"
                f" FROM metrics WHERE run_uuid = ? ORDER BY key, timestamp, {step}, value",
                (run_id,),
            ).fetchall()
            for key, group in itertools.groupby(rows, key=lambda r: r[0]):
                run.metrics[str(key)] = [
                    (s, float("nan") if nan else float(v), t) for _k, s, v, t, nan in group
                ]
            run.datasets = self._datasets(run_id)
            run.models = self._models(run_id)
        except (sqlite3.DatabaseError, ValueError, TypeError) as exc:
            run.problem = f"run {run_id}: {exc}"
        return run

    def _datasets(self, run_id: str) -> list[dict[str, Any]]:
        if not {"inputs", "datasets"} <= self.tables:
            return []
        out = []
        for uuid, name, digest, stype, source, schema, profile in self.conn.execute(
            "SELECT i.input_uuid, d.name, d.digest, d.dataset_source_type, d.dataset_source,"
            " d.dataset_schema, d.dataset_profile FROM inputs i JOIN datasets d"
            " ON d.dataset_uuid = i.source_id WHERE i.source_type = 'DATASET'"
            " AND i.destination_type = 'RUN' AND i.destination_id = ?",
            (run_id,),
        ):
            tags = {}
            if "input_tags" in self.tables:
                tags = {
                    str(k): str(v)
                    for k, v in self.conn.execute(
                        "SELECT name, value FROM input_tags WHERE input_uuid = ?", (uuid,)
                    )
                }
            out.append(
                _dataset(
                    {
                        "name": name,
                        "digest": digest,
                        "source_type": stype,
                        "source": source,
                        "schema": schema,
                        "profile": profile,
                    },
                    tags,
                )
            )
        return out

    def _models(self, run_id: str) -> list[SourceModel]:
        if "logged_models" not in self.tables:
            return []
        out = []
        for mid, name, location, created, updated, status, stage, mtype in self.conn.execute(
            "SELECT model_id, name, artifact_location, creation_timestamp_ms,"
            " last_updated_timestamp_ms, status, lifecycle_stage, model_type FROM logged_models"
            " WHERE source_run_id = ?",
            (run_id,),
        ):
            if stage == "deleted":
                continue
            tags = params = {}
            if "logged_model_tags" in self.tables:
                tags = {
                    str(k): str(v)
                    for k, v in self.conn.execute(
                        "SELECT tag_key, tag_value FROM logged_model_tags WHERE model_id = ?",
                        (mid,),
                    )
                }
            if "logged_model_params" in self.tables:
                params = {
                    str(k): str(v)
                    for k, v in self.conn.execute(
                        "SELECT param_key, param_value FROM logged_model_params WHERE model_id = ?",
                        (mid,),
                    )
                }
            root = local_path(location)
            out.append(
                SourceModel(
                    id=str(mid),
                    name=str(name or "model"),
                    status=_model_status(status),
                    created=created,
                    updated=updated,
                    model_type=mtype,
                    tags=tags,
                    params=params,
                    files=_model_files(root),
                )
            )
        return out


# -- http://server ------------------------------------------------------------------------------
class RestSource(Source):
    """A tracking server, through MLflow's REST API (``MLFLOW_TRACKING_USERNAME`` /
    ``_PASSWORD`` or ``MLFLOW_TRACKING_TOKEN`` for servers that want them)."""

    def __init__(self, url: str) -> None:
        self.base = url.rstrip("/")
        self.label = self.base
        headers = {"Content-Type": "application/json"}
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif user:
            secret = f"{user}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(secret).decode()
        self.headers = headers

    def _call(self, path: str, body: dict[str, Any] | None = None, raw: bool = False) -> Any:
        url = f"{self.base}/{path}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise _bad_store(
                f"{url}: HTTP {exc.code}; check the server URI and your credentials"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _bad_store(
                f"cannot reach the MLflow server at {self.base} ({reason}); is it running?"
            ) from None
        if raw:
            return payload
        try:
            return json.loads(payload or b"{}")
        except ValueError:
            raise _bad_store(
                f"{url} did not answer with JSON; is {self.base} an MLflow server?"
            ) from None

    def _api(
        self, endpoint: str, body: dict[str, Any] | None = None, query: dict[str, Any] | None = None
    ) -> Any:
        qs = ("?" + urllib.parse.urlencode(query)) if query else ""
        return self._call(f"api/2.0/mlflow/{endpoint}{qs}", body)

    def _paged(self, endpoint: str, key: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self._api(endpoint, {**body, **({"page_token": token} if token else {})})
            yield from page.get(key, [])
            token = page.get("next_page_token")
            if not token:
                return

    def experiments(self) -> list[SourceExperiment]:
        out = []
        for e in self._paged(
            "experiments/search", "experiments", {"max_results": 1000, "view_type": "ALL"}
        ):
            out.append(
                SourceExperiment(
                    id=str(e["experiment_id"]),
                    name=str(e["name"]),
                    lifecycle_stage=str(e.get("lifecycle_stage", "active")),
                    creation_time=e.get("creation_time"),
                    last_update_time=e.get("last_update_time"),
                    tags={t["key"]: t.get("value", "") for t in e.get("tags", [])},
                )
            )
        return out

    def _search(self, experiment_ids: list[str]) -> Iterator[dict[str, Any]]:
        body = {"experiment_ids": experiment_ids, "run_view_type": "ALL", "max_results": 1000}
        return self._paged("runs/search", "runs", body)

    def count(self, experiment_ids: list[str]) -> int:
        return sum(1 for _ in self._search(experiment_ids))

    def starts(self) -> dict[str, int]:
        every = [e.id for e in self.experiments()]
        out = {}
        for raw in self._search(every):
            info = raw.get("info", {})
            out[str(info.get("run_id") or info.get("run_uuid"))] = int(info.get("start_time") or 0)
        return out

    def runs(self, experiment_ids: list[str]) -> Iterator[SourceRun]:
        for raw in self._search(experiment_ids):
            yield self._run(raw)

    def _run(self, raw: dict[str, Any]) -> SourceRun:
        info, data = raw.get("info", {}), raw.get("data", {})
        run_id = str(info.get("run_id") or info.get("run_uuid"))
        run = SourceRun(
            run_id=run_id,
            experiment_id=str(info.get("experiment_id")),
            name=str(info.get("run_name") or ""),
            user_id=info.get("user_id"),
            status=str(info.get("status", "FINISHED")),
            start_time=int(info.get("start_time") or 0),
            end_time=None if info.get("end_time") is None else int(info["end_time"]),
            lifecycle_stage=str(info.get("lifecycle_stage", "active")),
            params={p["key"]: p.get("value", "") for p in data.get("params", [])},
            tags={t["key"]: t.get("value", "") for t in data.get("tags", [])},
            artifacts=lambda: self._artifacts(run_id, ""),
            read_artifact=lambda path: self._call(
                "get-artifact?" + urllib.parse.urlencode({"path": path, "run_uuid": run_id}),
                raw=True,
            ),
        )
        run.name = run.name or run.tags.get("mlflow.runName", "")
        try:
            for metric in data.get("metrics", []):
                key = metric["key"]
                run.metrics[key] = [
                    (int(m.get("step", 0)), float(m["value"]), int(m.get("timestamp", 0)))
                    for m in self._history(run_id, key)
                ]
            for d in raw.get("inputs", {}).get("dataset_inputs", []):
                tags = {t["key"]: t.get("value", "") for t in d.get("tags", [])}
                run.datasets.append(_dataset(d.get("dataset", {}), tags))
        except (KeyError, ValueError, TypeError) as exc:
            run.problem = f"run {run_id}: unexpected answer from the server ({exc})"
        return run

    def _history(self, run_id: str, key: str) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            query = {"run_id": run_id, "metric_key": key, "max_results": 25000}
            if token:
                query["page_token"] = token
            page = self._api("metrics/get-history", query=query)
            yield from page.get("metrics", [])
            token = page.get("next_page_token")
            if not token:
                return

    def _artifacts(self, run_id: str, path: str) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        query = {"run_id": run_id, **({"path": path} if path else {})}
        for f in self._api("artifacts/list", query=query).get("files", []):
            if f.get("is_dir"):
                out += self._artifacts(run_id, f["path"])
            else:
                out.append((str(f["path"]), int(f.get("file_size", 0))))
        return out


def open_source(uri: str | None, cwd: Path | None = None) -> Source:
    """The store ``uri`` names; with none, ``MLFLOW_TRACKING_URI`` (unless it is ``xp:``),
    else ``./mlflow.db`` when it exists (MLflow 3's default), else ``./mlruns``."""
    here = cwd or Path.cwd()
    if not uri:
        env = os.environ.get("MLFLOW_TRACKING_URI", "")
        if env and not env.startswith("xp:"):
            uri = env
        elif (here / "mlflow.db").is_file():
            uri = f"sqlite:///{here / 'mlflow.db'}"
        elif (here / "mlruns").is_dir():
            uri = str(here / "mlruns")
        else:
            raise _bad_store(
                "no MLflow store here (no ./mlflow.db, no ./mlruns); give its URI: xp import"
                " mlflow ./mlruns, sqlite:///mlflow.db or http://host:5000"
            )
    parsed = urllib.parse.urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme == "sqlite":
        path = uri[len("sqlite:///") :] if uri.startswith("sqlite:///") else parsed.path
        target = Path(path)
        return SqliteSource(target if target.is_absolute() else here / target)
    if scheme in ("http", "https"):
        return RestSource(uri)
    if scheme == "file" or scheme == "" or len(scheme) == 1:
        target = local_path(uri) or Path(uri)
        target = target if target.is_absolute() else here / target
        if target.is_file():
            return SqliteSource(target)
        return FileStoreSource(target)
    if scheme == "xp":
        raise _bad_store("that is xp's own URI: its runs are here already")
    raise _bad_store(
        f"cannot read MLflow store {uri!r}: xp reads ./mlruns, sqlite:/// and http(s):// stores;"
        " for another database, serve it with `mlflow server --backend-store-uri ...` and"
        " import from http://localhost:5000"
    )
