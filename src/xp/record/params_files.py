"""Reading the workspace's params and metrics files (YAML or JSON) as flat values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xp.errors import ConfigError
from xp.record import yamlio
from xp.record.fastyaml import load_nested
from xp.record.model import flatten


def read_values(path: Path, what: str) -> dict[str, Any]:
    """A YAML or JSON file of values, nested keys flattened with '.'."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} file {path}: {exc.strerror}") from None
    if path.suffix.lower() == ".json":
        try:
            parsed = json.loads(data or b"{}")
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path.name} line {exc.lineno}: invalid JSON ({exc.msg}); fix the file"
            ) from None
    else:
        parsed = load_nested(data)  # a plain params file, without importing PyYAML
        if parsed is None:
            parsed = yamlio.load(data, path.name)
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise ConfigError(
            f"{path.name} must hold a mapping of {what}s, got {type(parsed).__name__}"
        )
    return flatten(parsed)
