"""``mlflow.tracking``: the client, and the fluent functions as MLflow also exposes them."""

from __future__ import annotations

from xp.mlflow.tracking._uri import get_tracking_uri, is_tracking_uri_set, set_tracking_uri
from xp.mlflow.tracking.client import MlflowClient

__all__ = ["MlflowClient", "get_tracking_uri", "is_tracking_uri_set", "set_tracking_uri"]
