"""The tracking URI of ``xp.mlflow``: which git repository MLflow calls record into.

``xp.mlflow`` always records in a git repository: the one around the working directory, or
the one a URI ``xp:/path/to/repo`` names. Local URIs a script sets for MLflow
(``file:./mlruns``, ``sqlite:///mlflow.db``, a folder) are accepted and mean the working
directory's repository, so such scripts run unchanged. A URI that names a server
(``http://``, ``databricks``, a database) cannot be honoured without MLflow: that is an
error naming the two ways forward.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from xp.errors import MlflowException

if TYPE_CHECKING:
    from xp.interop.mlflow_runs import Backend

_LOCAL_SCHEMES = {"", "file", "xp", "sqlite"}
_uri: str | None = None
_registry_uri: str | None = None


def check(uri: str) -> str:
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter
        scheme = ""
    if scheme not in _LOCAL_SCHEMES:
        raise MlflowException(
            f"xp.mlflow records runs in this git repository and cannot log to {uri!r}; to use"
            " that server, import mlflow itself (and to keep MLflow's API but store runs in"
            ' git: pip install "git-xp[mlflow]" and set MLFLOW_TRACKING_URI=xp:)',
            "INVALID_PARAMETER_VALUE",
        )
    return uri


def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    from pathlib import Path

    global _uri
    text = os.fspath(uri)
    if isinstance(uri, Path):
        text = uri.resolve().as_uri()
    _uri = check(text)
    os.environ["MLFLOW_TRACKING_URI"] = _uri


def is_tracking_uri_set() -> bool:
    return _uri is not None or bool(os.environ.get("MLFLOW_TRACKING_URI"))


def repo_path(uri: str | None) -> str | None:
    """The repository folder a tracking URI names (None: the working directory's)."""
    if not uri:
        return None
    from urllib.parse import urlparse

    parsed = urlparse(check(uri))
    if parsed.scheme.lower() == "xp" and parsed.path:
        return parsed.path
    return None


def get_tracking_uri() -> str:
    if _uri is not None:
        return _uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return check(env)
    from xp.gitstore.repo import find_repo

    return f"xp:{find_repo().worktree}"


def backend(uri: str | None = None) -> Backend:
    """The backend for ``uri`` (default: the current tracking URI), one per repository."""
    from xp.interop.mlflow_runs import backend_for

    if uri is None:
        uri = _uri if _uri is not None else os.environ.get("MLFLOW_TRACKING_URI")
    return backend_for(repo_path(uri))


def set_registry_uri(uri: str) -> None:
    global _registry_uri
    _registry_uri = uri
    os.environ["MLFLOW_REGISTRY_URI"] = uri


def get_registry_uri() -> str:
    return _registry_uri or os.environ.get("MLFLOW_REGISTRY_URI") or get_tracking_uri()


def reset() -> None:
    """Forget the URIs (tests), and the environment variables ``set_*_uri`` exported for
    child processes (as MLflow does), so they do not outlive the reset."""
    global _uri, _registry_uri
    for name, value in (("MLFLOW_TRACKING_URI", _uri), ("MLFLOW_REGISTRY_URI", _registry_uri)):
        if value is not None and os.environ.get(name) == value:
            del os.environ[name]
    _uri = _registry_uri = None
