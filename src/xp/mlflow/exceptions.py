"""``mlflow.exceptions``: MLflow's exception, the one ``xp.mlflow`` raises."""

from __future__ import annotations

from xp.errors import MlflowException

__all__ = ["MlflowException", "RestException"]

RestException = MlflowException  # what MLflow raises for a failed REST call
