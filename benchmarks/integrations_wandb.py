"""I2: the integrations' overhead next to W&B's own integrations in offline mode, on the same
trainings as I1 (benchmarks/integrations.py, which says how it is measured)."""

from __future__ import annotations

from benchmarks.harness import Workload, standalone
from benchmarks.integrations import HINT, METRICS, NEEDS, NOTES, wandb_side, xp_side

WORKLOAD = Workload(
    key="I2",
    title="integration overhead vs W&B offline (XGBoost, LightGBM, Lightning)",
    metrics=METRICS,
    xp=xp_side,
    peer="wandb",
    peer_side=wandb_side,
    repeat=1,
    peer_repeat=1,
    order=71,
    notes=(
        *NOTES,
        "W&B 0.31, WANDB_MODE=offline: WandbCallback (no importance plot), wandb_callback,"
        " WandbLogger; xp's figure is measured again (one process) beside it",
    ),
    quick_notes=("quick: 30 rounds, 1 epoch, best of 2",),
    needs=NEEDS,
    needs_hint=HINT,
)

if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side, "wandb": wandb_side})
