"""Safe, deterministic YAML: the record files must give the same bytes for the same data."""

from __future__ import annotations

import re
from typing import Any

import yaml

from xp.errors import ConfigError

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(data: Any) -> bytes:
    """Block style, sorted keys, no line folding, UTF-8."""
    text = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 30,
    )
    return text.encode("utf-8")


def load(data: bytes | str, source: str = "YAML") -> Any:
    """Safe load only: records fetched from others never construct Python objects."""
    try:
        return yaml.load(data, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}{where}: invalid YAML ({problem}); fix the file") from None


def scalar(text: str) -> Any:
    """Parse a command-line value the way it would read in a YAML file (`3` -> 3, `a` -> 'a')."""
    try:
        value = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text
    if isinstance(value, (dict, list)) or (value is None and text.strip() not in ("null", "~")):
        return text
    if isinstance(value, str):
        try:  # YAML 1.1 reads `1e-3` as a string; everybody means a number
            return float(value) if _FLOAT_RE.match(value) else value
        except ValueError:
            return value
    return value
