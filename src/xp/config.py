"""Project settings from ``.xp/config.yaml`` (committed, so collaborators share them)."""

from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from xp import format as fmt
from xp.errors import ConfigError, StorageError
from xp.gitstore.repo import GitRepo

DEFAULT_MAX_FILE_SIZE = 10 * 1000 * 1000  # 10MB: decimal, as the template writes it

TEMPLATE = f"""\
# xp project settings: commit this file so collaborators share them. See docs/config.md.
format: {fmt.FORMAT_VERSION}
# Files read by `xp commit` (YAML or JSON; nested keys become dotted names, e.g. model.depth).
params: [params.yaml]
metrics: [metrics.json]
# Files and folders `xp commit` logs as artifacts (content-addressed cache, never in git).
artifacts: []
# Data inputs `xp commit` records by content hash.
data: []
# Workspace files larger than this are not snapshotted into git; log them as artifacts.
max_file_size: 10MB
"""

# Where artifacts live: these sections describe this clone's setup, not the code of a run,
# so `xp checkout` of an old run keeps the current ones (docs/run-and-reproduce.md).
LOCATION_KEYS = ("remotes", "default_remote", "cache")

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def parse_size(value: object, source: str = "max_file_size") -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{source}: expected a size like 10MB, got {value!r}")
    if isinstance(value, int):
        return value
    match = _SIZE_RE.match(str(value))
    if not match:
        raise ConfigError(f"{source}: expected a size like 10MB or 500KiB, got {value!r}")
    number, unit = match.groups()
    unit = (unit or "").lower()
    base = 1024 if "i" in unit else 1000
    scale = base ** "bkmgt".index(unit[0]) if unit and unit[0] != "b" else 1
    return int(float(number) * scale)


def human_size(n: float) -> str:
    """Bytes for humans in the units ``parse_size`` reads: decimal (1 kB = 1000 bytes), or
    binary (KiB, MiB, ...) for a whole number of them that is no round decimal figure, so a
    limit written as ``10MiB`` reads back as 10 MiB, not 10.5 MB."""
    if isinstance(n, int) and n >= 1024:
        for power, unit in ((4, "TiB"), (3, "GiB"), (2, "MiB"), (1, "KiB")):
            if n % 1024**power == 0 and n % 1000**power != 0:
                return f"{n / 1024**power:.1f} {unit}"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if unit == "B" and abs(n) < 1000:
            return f"{n:.0f} B"
        if abs(n) < 999.95 or unit == "TB":
            return f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


# Every top-level key xp reads, and the type its value must have (None: checked where used).
KNOWN_KEYS: dict[str, type | tuple[type, ...] | None] = {
    "format": int,
    "params": (list, str),
    "metrics": (list, str),
    "artifacts": (list, str),
    "data": (list, str),
    "max_file_size": (int, str),
    "remotes": dict,
    "default_remote": str,
    "cache": dict,
    "hooks": dict,
    "models": dict,
    "alerts": dict,
    "system_metrics": None,  # checked by _flag
    "system_metrics_interval": None,  # checked by _seconds
}
_TYPE_NAMES = {int: "a number", str: "text", list: "a list", dict: "a mapping"}


def did_you_mean(word: str, choices: list[str]) -> str:
    """`` (did you mean 'params'?)`` for a near miss, else empty."""
    import difflib  # only for a misspelt key

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_raw(raw: dict[str, Any]) -> list[str]:
    """One line per problem of a parsed config: unknown keys (with a did-you-mean) and types.
    The format version is checked on load (a newer format is an error, not a warning)."""
    problems = []
    for key, value in raw.items():
        if key not in KNOWN_KEYS:
            hint = did_you_mean(str(key), list(KNOWN_KEYS))
            problems.append(f"{fmt.CONFIG_PATH}: unknown key {key!r}{hint}; xp ignores it")
            continue
        want = KNOWN_KEYS[key]
        if want is None or value is None or isinstance(value, bool):
            continue
        if not isinstance(value, want):
            kinds = want if isinstance(want, tuple) else (want,)
            names = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            problems.append(f"{fmt.CONFIG_PATH}: {key!r} must be {names}, not {value!r}")
    return problems


def validate(repo: GitRepo) -> list[str]:
    """The config's problems that do not stop xp (unknown keys), one line each."""
    try:
        return load_config(repo).warnings
    except ConfigError:
        return []  # load_config's error says it


@dataclass(frozen=True)
class ProjectConfig:
    """``.xp/config.yaml`` as read, defaults filled in (docs/config.md)."""

    params: tuple[str, ...] = ("params.yaml",)
    metrics: tuple[str, ...] = ("metrics.json",)
    artifacts: tuple[str, ...] = ()
    data: tuple[str, ...] = ()
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    system_metrics: bool = False  # sample CPU, memory, disk, network, GPUs into system/
    system_metrics_interval: float = 10.0  # seconds between samples
    format: int = fmt.FORMAT_VERSION  # 1: runs on git remotes as one ref each; 2: catalog
    raw: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # unknown keys, said once per command


def _paths(raw: dict[str, Any], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = raw.get(key, list(default))
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{fmt.CONFIG_PATH}: '{key}' must be a list of paths; fix the file")
    return tuple(value)


_cache: dict[str, tuple[tuple[int, int, int], ProjectConfig]] = {}


def load_config(repo: GitRepo) -> ProjectConfig:
    """The project config, parsed again only when the file's stat changes."""
    path = repo.worktree / fmt.CONFIG_PATH
    try:
        st = os.stat(path)
    except OSError:
        return _load_config(repo)
    key = (st.st_mtime_ns, st.st_size, st.st_ino)
    hit = _cache.get(str(path))
    if hit is not None and hit[0] == key:
        return hit[1]
    config = _load_config(repo)
    _cache[str(path)] = (key, config)
    return config


def _load_config(repo: GitRepo) -> ProjectConfig:
    path = repo.worktree / fmt.CONFIG_PATH
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ProjectConfig()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    raw = _parsed(repo, data)
    if not isinstance(raw, dict):
        raise ConfigError(f"{fmt.CONFIG_PATH} must be a mapping of settings; see docs/config.md")
    version = raw.get("format", fmt.FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(
            f"{fmt.CONFIG_PATH}: format must be a whole number like 1, not {version!r}"
        )
    if version > fmt.FORMAT_VERSION:
        raise ConfigError(
            f"{fmt.CONFIG_PATH} is format {version}, newer than this xp reads"
            f" ({fmt.FORMAT_VERSION}); upgrade xp: pip install -U git-xp"
        )
    problems = check_raw(raw)
    wrong_type = [p for p in problems if "unknown key" not in p]
    if wrong_type:
        raise ConfigError(wrong_type[0] + "; fix the file (docs/config.md)")
    return ProjectConfig(
        params=_paths(raw, "params", ProjectConfig.params),
        metrics=_paths(raw, "metrics", ProjectConfig.metrics),
        artifacts=_paths(raw, "artifacts", ()),
        data=_paths(raw, "data", ()),
        max_file_size=parse_size(
            raw.get("max_file_size", DEFAULT_MAX_FILE_SIZE), f"{fmt.CONFIG_PATH}: max_file_size"
        ),
        system_metrics=_flag(raw, "system_metrics"),
        system_metrics_interval=_seconds(raw, "system_metrics_interval", 10.0),
        format=version,
        raw=raw,
        warnings=problems,
    )


_PARSED = "config-parsed.json"  # <git common dir>/xp/: {"source": text, "raw": parsed}


def _parsed(repo: GitRepo, data: bytes) -> Any:
    """``data`` parsed as YAML, through a derived cache of the last file parsed: its exact
    text and the result, kept when JSON holds that result exactly, so a command whose config
    did not change never imports PyYAML (8-10 ms of every command) to read it."""
    import json

    cache = repo.xp_dir / _PARSED
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        try:
            hit = json.loads(cache.read_bytes())
        except (OSError, ValueError):
            hit = None
        if isinstance(hit, dict) and hit.get("source") == text and "raw" in hit:
            return hit["raw"]
    from xp.record import yamlio

    raw = yamlio.load(data, fmt.CONFIG_PATH) or {}
    if text is not None and _json_exact(raw, 0):
        from xp import fsutil

        with contextlib.suppress(OSError, StorageError):  # derived: at worst parsed again
            os.makedirs(repo.xp_dir, exist_ok=True)
            fsutil.atomic_write(cache, json.dumps({"source": text, "raw": raw}))
    return raw


def _json_exact(value: Any, depth: int) -> bool:
    """Whether JSON gives ``value`` back as it is (type included)."""
    if depth > 50:
        return False
    if value is None or type(value) in (str, bool, int):
        return True
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is list:
        return all(_json_exact(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _json_exact(v, depth + 1) for k, v in value.items())
    return False


def _is_top(line: str) -> bool:
    return line[:1] not in ("", " ", "\t", "\n", "\r", "-")


def strip_keys(text: str, keys: tuple[str, ...]) -> str:
    """Remove the top-level blocks of ``keys``; every other line, comments included, stays."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        if _is_top(line):
            skipping = any(re.match(rf"{k}\s*:", line) for k in keys)
        if not skipping:
            out.append(line)
    return "".join(out)


def blocks_of(text: str, keys: tuple[str, ...]) -> str:
    """The top-level blocks of ``keys`` in ``text``, as written there."""
    out: list[str] = []
    taking = False
    for line in text.splitlines(keepends=True):
        if _is_top(line):
            taking = any(re.match(rf"{k}\s*:", line) for k in keys)
        if taking:
            out.append(line if line.endswith("\n") else line + "\n")
    return "".join(out)


def carry_sections(into: str, source: str, keys: tuple[str, ...]) -> str | None:
    """``into`` with its top-level sections ``keys`` as ``source`` has them (comments and
    layout of both kept); None when they agree already. Raises ConfigError when either
    does not parse."""
    from xp.record import yamlio

    old = yamlio.load(source, fmt.CONFIG_PATH) or {}
    new = yamlio.load(into, fmt.CONFIG_PATH) or {}
    if not isinstance(old, dict) or not isinstance(new, dict):
        raise ConfigError(f"{fmt.CONFIG_PATH} must be a mapping of settings")
    if all((k in old, old.get(k)) == (k in new, new.get(k)) for k in keys):
        return None
    body = strip_keys(into, keys).rstrip("\n")
    text = (body + "\n" if body else "") + blocks_of(source, keys)
    want = {k: v for k, v in new.items() if k not in keys} | {k: old[k] for k in keys if k in old}
    if (yamlio.load(text, fmt.CONFIG_PATH) or {}) != want:
        text = yamlio.dump(want).decode()  # an odd layout: write it whole
    return text


def _flag(raw: dict[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{fmt.CONFIG_PATH}: '{key}' must be true or false, got {value!r}")
    return value


def _seconds(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0.1:
        raise ConfigError(
            f"{fmt.CONFIG_PATH}: '{key}' must be a number of seconds >= 0.1, got {value!r}"
        )
    return float(value)
