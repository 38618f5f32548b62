"""Comet's Python API over xp runs: ``import xp.comet as comet_ml`` and Comet code runs
unchanged (``Experiment``, ``OfflineExperiment``, ``ExistingExperiment``, ``start``).
How each call maps onto a run: ``xp.integrations.comet`` and docs/integrations.md.
"""

from __future__ import annotations

from xp.integrations.comet import (
    ExistingExperiment,
    Experiment,
    OfflineExperiment,
    init,
    login,
    start,
)

__all__ = ["ExistingExperiment", "Experiment", "OfflineExperiment", "init", "login", "start"]
