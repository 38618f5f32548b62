"""MLflow's plugin entry points (``mlflow.tracking_store``, ``mlflow.artifact_repository``):
with ``pip install "git-xp[mlflow]"``, ``MLFLOW_TRACKING_URI=xp:`` (or ``xp:/path/to/repo``)
makes every MLflow call record xp runs, and ``mlflow ui --backend-store-uri xp:`` shows them.

MLflow loads these entry points while ``import mlflow`` is still running, so this module
must not import MLflow at its top: the factories import the plugin classes (and MLflow) only
when MLflow calls them. Otherwise the import is circular and MLflow silently drops ``xp:``.
"""

from __future__ import annotations

from typing import Any


def make_tracking_store(store_uri: str | None = None, artifact_uri: str | None = None) -> Any:
    from xp.plugins.mlflow_store import XpTrackingStore

    return XpTrackingStore(store_uri, artifact_uri)


def make_artifact_repository(
    artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
) -> Any:
    from xp.plugins.mlflow_artifacts import XpArtifactRepository

    return XpArtifactRepository(artifact_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)
