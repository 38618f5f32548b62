"""``xp model serve NAME@STAGE``: a local HTTP prediction endpoint for a registered version,
logging its request counts and latency as monitoring points of that version.

It loads scikit-learn/joblib pickles (``.pkl``, ``.pickle``, ``.joblib``) and MLflow pyfunc
models (a folder with an ``MLmodel`` file) when MLflow is installed. Loading either runs
code from the run that made it, so the run must be trusted (``trust.version_trust``) or the
user must say ``--trust``. Files come from the cache or the artifact remote, re-hashed.

    POST /predict  (also /invocations, MLflow's path)
      {"instances": [[...], ...]}  or {"inputs": ...}, {"dataframe_split": {...}},
      {"dataframe_records": [...]}, or a bare list of rows
    -> {"predictions": [...]}
    GET /health    -> {"status": "ok", "model": ..., "version": ..., "run": ...}

Every ``window`` seconds (and at shutdown) one point per metric is logged for the window:
``requests``, ``errors``, ``rows``, ``latency_ms_mean``, ``latency_ms_p50``, ``latency_ms_p95``,
``latency_ms_p99``, ``latency_ms_max`` (handler time: parse, predict, encode).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from xp import fsutil
from xp.errors import (
    ExecutionError,
    InvalidValueError,
    MissingDependencyError,
    UntrustedRunError,
    XPError,
)
from xp.gitstore.repo import GitRepo
from xp.production.trust import Trust, version_trust
from xp.sharing import registry
from xp.sharing.registry import Version

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
MAX_BODY = 64 * 1024 * 1024


@dataclass
class Loaded:
    """A version ready to answer: its predict function and where its files are."""

    version: Version
    flavor: str  # "sklearn" (joblib/pickle) or "mlflow"
    path: Path
    predict: Callable[[Any], Any]
    trust: Trust
    folder: Path  # temporary copy of the version's files, removed by ``close``
    features: list[str] | None = None

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _pick(files: list[Path], version: Version, artifact: str | None) -> tuple[str, Path]:
    if artifact is not None:
        wanted = [f for f in files if f.as_posix().endswith(artifact.strip("/"))]
        if not wanted:
            raise InvalidValueError(
                f"{version.name}@{version.version} has no artifact {artifact!r}; it has:"
                f" {', '.join(sorted(f.name for f in files))}"
            )
        files = wanted
    mlmodels = [f.parent for f in files if f.name == "MLmodel"]
    if mlmodels:
        return "mlflow", mlmodels[0]
    pickles = [f for f in files if f.suffix.lower() in PICKLE_SUFFIXES]
    if len(pickles) == 1:
        return "sklearn", pickles[0]
    if not pickles:
        raise ExecutionError(
            f"{version.name}@{version.version} has no model xp can serve (a .pkl, .pickle or"
            " .joblib file, or an MLflow model folder); its files:"
            f" {', '.join(sorted(f.name for f in files)) or 'none'}"
        )
    raise InvalidValueError(
        f"{version.name}@{version.version} has several pickles"
        f" ({', '.join(sorted(p.name for p in pickles))}); pick one with --artifact"
    )


def load(repo: GitRepo, *, spec: str, trust: bool = False, artifact: str | None = None) -> Loaded:
    """Resolve ``spec``, check trust, fetch the files (verified) and load the model."""
    version = registry.resolve(repo, spec)
    verdict = version_trust(repo, version)
    if not verdict.trusted and not trust:
        raise UntrustedRunError(
            f"{version.name}@{version.version}: {verdict.reason}; loading its pickle would run"
            " that run's code here. If you trust it, rerun with --trust (or sign the version's"
            " tag and configure git verify-tag)"
        )
    # In this process's own temp folder: removed by the next xp command if serve is killed.
    folder = (
        fsutil.private_tmp(repo.xp_dir) / f"serve-{fsutil.temp_name(Path('m')).name.strip('.')}"
    )
    try:
        _v, files = registry.get(repo, spec=f"{version.name}@{version.version}", out_dir=folder)
        flavor, path = _pick([Path(f) for f in files], version, artifact)
        predict, features = _loader(flavor)(path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Loaded(version, flavor, path, predict, verdict, folder, features)


def _loader(flavor: str) -> Callable[[Path], tuple[Callable[[Any], Any], list[str] | None]]:
    return _load_mlflow if flavor == "mlflow" else _load_pickle


def _load_pickle(path: Path) -> tuple[Callable[[Any], Any], list[str] | None]:
    try:
        import joblib  # type: ignore[import-untyped]

        model = joblib.load(path)
    except ImportError:
        import pickle

        with open(path, "rb") as fh:
            model = pickle.load(fh)
    except Exception as exc:
        raise ExecutionError(f"cannot load {path.name}: {type(exc).__name__}: {exc}") from None
    if not callable(getattr(model, "predict", None)):
        raise ExecutionError(
            f"{path.name} holds a {type(model).__name__}, which has no predict(); serve a"
            " fitted scikit-learn style model"
        )
    names = getattr(model, "feature_names_in_", None)
    return model.predict, [str(n) for n in names] if names is not None else None


def _load_mlflow(path: Path) -> tuple[Callable[[Any], Any], list[str] | None]:
    import importlib

    try:  # through importlib: MLflow is optional, and its types are not xp's concern
        pyfunc: Any = importlib.import_module("mlflow.pyfunc")
    except ImportError:
        raise MissingDependencyError(
            "serving an MLflow model needs mlflow, which is not installed; pip install mlflow"
        ) from None
    model = pyfunc.load_model(str(path))
    return model.predict, None


def parse_inputs(body: bytes, features: list[str] | None) -> Any:
    """The request body as what ``predict`` takes: rows of numbers, or a DataFrame when the
    rows are records or the model was fitted on named columns."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidValueError('the body is not JSON; send {"instances": [[...], ...]}') from None
    if isinstance(data, dict):
        if "dataframe_split" in data:
            import pandas as pd

            split = data["dataframe_split"]
            if not isinstance(split, dict) or "data" not in split:
                raise InvalidValueError("dataframe_split needs 'columns' and 'data'")
            return pd.DataFrame(split["data"], columns=split.get("columns"))
        if "dataframe_records" in data:
            data = data["dataframe_records"]
        else:
            key = next((k for k in ("instances", "inputs") if k in data), None)
            if key is None:
                raise InvalidValueError(
                    'send {"instances": [[...], ...]} (or inputs, dataframe_split,'
                    " dataframe_records)"
                )
            data = data[key]
    if not isinstance(data, list) or not data:
        raise InvalidValueError("the inputs must be a non-empty list of rows")
    if isinstance(data[0], dict) or features:
        import pandas as pd

        if isinstance(data[0], dict):
            return pd.DataFrame.from_records(data, columns=features)
        return pd.DataFrame(data, columns=features)
    return data


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        value = value.tolist()
    elif hasattr(value, "to_dict"):
        value = value.to_dict(orient="records")
    return value


@dataclass
class Window:
    """Requests of the current window; ``take`` hands them over and starts the next."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    rows: int = 0

    def add(self, seconds: float, rows: int, failed: bool) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.rows += rows
            self.errors += failed

    def take(self) -> dict[str, float] | None:
        with self.lock:
            lat, errors, rows = self.latencies, self.errors, self.rows
            self.latencies, self.errors, self.rows = [], 0, 0
        if not lat:
            return None
        ms = sorted(x * 1000 for x in lat)

        def q(p: float) -> float:
            return ms[min(len(ms) - 1, max(0, math.ceil(p * len(ms)) - 1))]

        return {
            "requests": float(len(ms)),
            "errors": float(errors),
            "rows": float(rows),
            "latency_ms_mean": sum(ms) / len(ms),
            "latency_ms_p50": q(0.5),
            "latency_ms_p95": q(0.95),
            "latency_ms_p99": q(0.99),
            "latency_ms_max": ms[-1],
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: no new connection per prediction
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK wait
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI prints
        pass

    def _reply(self, code: int, data: Any) -> None:
        body = json.dumps(data, default=str).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/health", "/ping", ""):
            v = self.server.loaded.version
            self._reply(
                200,
                {"status": "ok", "model": v.name, "version": v.version, "run": v.run_id},
            )
        else:
            self._reply(404, {"error": f"no {self.path}; POST /predict, GET /health"})

    def do_POST(self) -> None:
        start = time.perf_counter()
        if self.path.rstrip("/") not in ("/predict", "/invocations"):
            self._reply(404, {"error": f"no {self.path}; POST /predict"})
            return
        rows, failed = 0, True
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                raise InvalidValueError(f"send a JSON body of 1 byte to {MAX_BODY} bytes")
            inputs = parse_inputs(self.rfile.read(length), self.server.loaded.features)
            predictions = _jsonable(self.server.loaded.predict(inputs))
            self._reply(200, {"predictions": predictions})
            rows, failed = len(inputs), False
        except XPError as exc:
            self._reply(400, {"error": str(exc)})
        except Exception as exc:  # the model refused the input: the client's to fix
            self._reply(400, {"error": f"{type(exc).__name__}: {exc}"})
        finally:
            self.server.window.add(time.perf_counter() - start, rows, failed)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    loaded: Loaded
    window: Window


@dataclass(frozen=True)
class Serving:
    """A listening endpoint: ``serve_forever()`` answers until ``shutdown()`` (from another
    thread) or Ctrl-C."""

    url: str
    loaded: Loaded
    stage: str | None  # where request metrics are logged (None: not logged)
    server: _Server = field(repr=False)

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        self.server.shutdown()


@contextlib.contextmanager
def serving(
    repo: GitRepo,
    *,
    spec: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    window: float = 60.0,
    stage: str | None = None,
    trust: bool = False,
    artifact: str | None = None,
    log: bool = True,
    on_log: Callable[[dict[str, float]], None] | None = None,
) -> Iterator[Serving]:
    """Load the model and listen on ``host:port`` (0: any free port). Leaving the block closes
    the socket, logs the last window's figures and removes the temporary files."""
    from xp.production.observe import log_production

    if window <= 0:
        raise InvalidValueError(f"--window must be a positive number of seconds, got {window}")
    target = stage if stage is not None else _stage_of(spec)
    if target is not None:
        registry.check_name(target, "stage")
    loaded = load(repo, spec=spec, trust=trust, artifact=artifact)
    logging = log and target is not None
    try:
        server = _Server((host, port), _Handler)
    except OSError as exc:
        loaded.close()
        raise ExecutionError(
            f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port"
        ) from None
    server.loaded, server.window = loaded, Window()
    stop = threading.Event()
    v = loaded.version

    def flush() -> None:
        figures = server.window.take()
        if figures is None or not logging:
            return
        assert target is not None
        log_production(repo, model=v.name, stage=target, version=v.version, metrics=figures)
        if on_log is not None:
            on_log(figures)

    def flusher() -> None:
        while not stop.wait(window):
            with contextlib.suppress(XPError):
                flush()

    thread = threading.Thread(target=flusher, name="xp-serve-metrics", daemon=True)
    thread.start()
    url = f"http://{host}:{server.server_address[1]}"
    try:
        yield Serving(url, loaded, target if logging else None, server)
    finally:
        stop.set()
        server.server_close()
        thread.join()
        try:
            flush()
        finally:
            loaded.close()


def _stage_of(spec: str) -> str | None:
    """The stage a spec names (``name@production``, ``name#production``), or None for a
    version or ``latest``."""
    _name, sep, which = spec.partition("@") if "@" in spec else spec.partition("#")
    if not sep or which == "latest" or registry.VERSION_RE.match(which):
        return None
    return which
