"""MLflow's artifact repository for ``xp-artifacts:`` URIs, the artifact URIs of runs in
an ``xp:`` store: files MLflow logs go into xp's content-addressed cache and the run's record
(``artifacts.yaml``), and come back from there (fetched from the artifact remote if the run
came from a clone that pushed them)."""

from __future__ import annotations

import os
import posixpath
import weakref
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException as MlflowError
from mlflow.store.artifact.artifact_repo import ArtifactRepository

from xp.interop.mlflow_runs import backend_for, parse_artifact_uri
from xp.plugins import mlflow_convert as C
from xp.plugins.mlflow_convert import mlflow_errors


def flush_run(run_id: str) -> None:
    """Wait for the files MLflow queued for run ``run_id`` (``log_image(key=, step=)`` goes
    through a queue thread) to be logged: the tracking store calls this before it ends the
    run, so they are in its commit, as they are in MLflow's own stores."""
    for repository in list(_repositories):
        if repository._run == run_id:
            repository.flush_async_logging()  # type: ignore[no-untyped-call]


class XpArtifactRepository(ArtifactRepository):
    def __init__(
        self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
    ) -> None:
        super().__init__(artifact_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)
        with mlflow_errors():
            top, run_id, prefix = parse_artifact_uri(artifact_uri)
            self._b = backend_for(top)
        if run_id is None:
            raise MlflowError(f"{artifact_uri} names no run; xp artifact URIs end in a run id")
        self._run = run_id
        self._prefix = prefix
        _repositories.add(self)

    def _full(self, path: str | None) -> str:
        parts = [p for p in (self._prefix, (path or "").strip("/")) if p]
        return posixpath.join(*parts) if parts else ""

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        with mlflow_errors():
            self._b.log_artifact(self._run, local_file, self._full(artifact_path) or None)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        with mlflow_errors():
            self._b.log_artifacts(self._run, local_dir, self._full(artifact_path) or None)

    def list_artifacts(self, path: str | None = None) -> list[Any]:
        """One level below ``path``; paths relative to this repository's URI."""
        with mlflow_errors():
            found = self._b.list_artifacts(self._run, self._full(path) or None)
        lead = f"{self._prefix}/" if self._prefix else ""
        out = []
        for f in found:
            rel = f.path[len(lead) :] if f.path.startswith(lead) else f.path
            out.append(C.file_info(type(f)(rel, f.is_dir, f.file_size)))
        return out

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        with mlflow_errors():
            data = self._b.read_artifact(self._run, self._full(remote_file_path))
        Path(local_path).parent.mkdir(parents=True, exist_ok=True)
        with open(local_path, "wb") as fh:
            fh.write(data)

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        raise MlflowError(
            "xp keeps a run's artifacts with the run (a git commit); delete the run"
            " (mlflow.delete_run) instead of its artifacts"
        )

    def get_local_path(self, *args: Any, **kwargs: Any) -> None:
        return None


def _exists(path: str) -> bool:
    return os.path.exists(path)


_repositories: weakref.WeakSet[XpArtifactRepository] = weakref.WeakSet()
