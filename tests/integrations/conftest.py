"""Settings every framework test needs before the framework is imported (SPEC of issue 13):
Keras on PyTorch, Hugging Face offline and quiet, no telemetry, no auto-logging by Comet."""

from __future__ import annotations

import os

for _key, _value in {
    "KERAS_BACKEND": "torch",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "COMET_DISABLE_AUTO_LOGGING": "1",
}.items():
    os.environ.setdefault(_key, _value)
