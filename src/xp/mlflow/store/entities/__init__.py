"""``mlflow.store.entities``."""

from __future__ import annotations

from xp.interop.mlflow_entities import PagedList

__all__ = ["PagedList"]
