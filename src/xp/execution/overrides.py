"""``-p KEY=VALUE``: parse param overrides and write them into the project's params files.

The rule (docs/run-and-reproduce.md): ``KEY`` must already exist in one of the params files
listed in ``.xp/config.yaml`` (nested keys joined with ``.``), so a typo fails instead of
silently adding an unused param; ``+KEY=VALUE`` adds the key (creating nested mappings) or
overrides it. Values follow a grammar (``execution/sweep_values``): YAML scalars (``3`` is an
int, ``1e-3`` a float, ``a`` a string), YAML flow lists and mappings, quoted strings, and
``range``/``linspace``/``logspace``; several values separated by commas (``lr=0.1,0.01``) are
a sweep axis; ``\\,`` is a literal comma. Malformed input is refused with its column.

YAML files are edited in place at the value's exact position (comments, order and layout
stay), so ``git diff`` between two runs shows just the changed line; JSON files are rewritten
with two-space indents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xp import fsutil
from xp.errors import ConfigError, InvalidValueError
from xp.execution.sweep_values import parse_values
from xp.record import yamlio


@dataclass(frozen=True)
class Override:
    """One ``-p``: a dotted key, the values it takes (one, or several for a sweep)."""

    key: str
    values: tuple[Any, ...]
    create: bool = False

    @property
    def parts(self) -> list[str]:
        return self.key.split(".")


@dataclass(frozen=True)
class Change:
    """What applying one override did to one file."""

    file: str
    key: str
    old: Any
    new: Any
    added: bool = False


def parse(items: tuple[str, ...] | list[str]) -> list[Override]:
    """``["lr=0.1,0.01", "+model.depth=3"]`` -> overrides; a bad item is a one-line error."""
    out: dict[str, Override] = {}
    for item in items:
        raw_key, eq, _value = item.partition("=")
        create = raw_key.startswith("+")
        key = raw_key[1:].strip() if create else raw_key.strip()
        if not eq or not key or any(not p.strip() for p in key.split(".")):
            raise InvalidValueError(
                f"-p {item!r} must look like KEY=VALUE (e.g. -p lr=0.01, -p model.depth=5;"
                " -p +new.key=1 adds a key)"
            )
        values = parse_values(item, len(raw_key) + 1)
        if key in out:
            raise InvalidValueError(f"-p {key} is given twice; give all its values in one -p")
        out[key] = Override(key, values, create)
    return list(out.values())


def points(overrides: list[Override], repeat: int = 1) -> list[dict[str, Any]]:
    """The grid: every combination of the overrides' values, in command-line order, each
    ``repeat`` times in a row (``xp run --repeat``: N workers of a search that coordinates
    itself, such as Optuna's with a shared storage)."""
    import itertools

    grid = itertools.product(*(o.values for o in overrides))
    combos = [{o.key: v for o, v in zip(overrides, combo, strict=True)} for combo in grid]
    return [dict(combo) for combo in combos for _ in range(repeat)]


def apply(
    root: Path, params_files: tuple[str, ...], overrides: list[Override], values: dict[str, Any]
) -> list[Change]:
    """Write ``values`` (key -> value) into the params files below ``root``.

    Every override is checked before any file is written, so a bad key changes nothing.
    """
    if not overrides:
        return []
    loaded: dict[str, Any] = {}
    for rel in params_files:
        path = root / rel
        if path.exists():
            loaded[rel] = _load(path)
    plan: dict[str, list[tuple[Override, Any]]] = {}
    for ov in overrides:
        target = next((rel for rel, data in loaded.items() if _find(data, ov.parts)), None)
        if target is None:
            if not ov.create:
                raise InvalidValueError(_unknown_message(ov.key, params_files, loaded))
            if not params_files:
                raise ConfigError(
                    "no params file is configured; list one under 'params:' in .xp/config.yaml"
                )
            target = params_files[0]
            loaded.setdefault(target, {})
        plan.setdefault(target, []).append((ov, values[ov.key]))
    changes: list[Change] = []
    for rel, items in plan.items():
        path = root / rel
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        for ov, value in items:
            found = _find(loaded[rel], ov.parts)
            old = _get(loaded[rel], found) if found else None
            if path.suffix.lower() == ".json":
                data = json.loads(text or "{}")
                _set(data, found or ov.parts, value)
                text = json.dumps(data, indent=2) + "\n"
            else:
                text = _yaml_set(text, found or ov.parts, value, rel)
            loaded[rel] = _load_text(text, path)
            changes.append(Change(rel, ov.key, old, value, added=found is None))
        fsutil.atomic_write(path, text)
    return changes


def _load(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read params file {path}: {exc.strerror}") from None
    return _load_text(text, path)


def _load_text(text: str, path: Path) -> Any:
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text or "{}")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path.name} line {exc.lineno}: invalid JSON ({exc.msg})") from None
    else:
        data = yamlio.load(text, path.name)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name} must hold a mapping of params to override it with -p")
    return data


def _find(data: Any, parts: list[str]) -> list[str] | None:
    """The real key path for dotted ``parts`` (a key may itself contain dots), or None."""
    if not parts:
        return []
    if not isinstance(data, dict):
        return None
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in data:
            rest = _find(data[key], parts[n:])
            if rest is not None:
                return [key, *rest]
    return None


def _get(data: Any, path: list[str]) -> Any:
    for key in path:
        data = data[key]
    return data


def _set(data: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        nxt = data.get(key)
        if not isinstance(nxt, dict):
            nxt = data[key] = {}
        data = nxt
    data[path[-1]] = value


def _unknown_message(key: str, files: tuple[str, ...], loaded: dict[str, Any]) -> str:
    import difflib

    from xp.record.model import flatten

    if not loaded:
        where = ", ".join(files) or "no params file"
        return (
            f"-p {key}: there is no params file to override ({where} in .xp/config.yaml does not"
            " exist); create it, or add the key with -p +KEY=VALUE"
        )
    known = sorted({k for data in loaded.values() for k in flatten(data)})
    close = difflib.get_close_matches(key, known, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return f"-p {key}: no such param in {', '.join(loaded)}; {hint}use -p +{key}=VALUE to add it"


def _flow(value: Any) -> str:
    """``value`` as it would be written inline in YAML (quoted when it must be)."""
    import yaml

    text: str = yaml.safe_dump([value], default_flow_style=True, width=1 << 30).strip()
    return text[1:-1]


def _yaml_set(text: str, path: list[str], value: Any, source: str) -> str:
    """Set ``path`` to ``value`` in YAML ``text``, touching only the value's characters.

    Falls back to a full rewrite (comments lost) for layouts the node marks cannot handle,
    e.g. flow mappings; either way the result is checked by loading it back.
    """
    edited = _yaml_edit(text, path, value)
    if edited is not None and _check(edited, text, path, value, source):
        return edited
    data = yamlio.load(text, source) or {}
    _set(data, path, value)
    return yamlio.dump(data).decode("utf-8")


def _check(new: str, old: str, path: list[str], value: Any, source: str) -> bool:
    try:
        after = yamlio.load(new, source)
    except ConfigError:
        return False
    before = yamlio.load(old, source) or {}
    if not isinstance(after, dict):
        return False
    _set(before, path, value)
    return bool(after == before)


def _yaml_edit(text: str, path: list[str], value: Any) -> str | None:
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if root is None:
        return text + ("" if not text or text.endswith("\n") else "\n") + _block(path, value, 0)
    node = root
    for depth, key in enumerate(path):
        if not isinstance(node, yaml.MappingNode) or node.flow_style:
            return None
        match = next(
            (v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None
        )
        if match is None:
            if not node.value:
                return None
            indent = node.value[0][0].start_mark.column
            end = _end_line(node)
            lines = text.splitlines(keepends=True)
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines.insert(end + 1, _block(path[depth:], value, indent))
            return "".join(lines)
        if depth == len(path) - 1:
            start, stop = match.start_mark.index, match.end_mark.index
            if isinstance(match, yaml.ScalarNode) and match.style in ("|", ">"):
                return None
            return text[:start] + _flow(value) + text[stop:]
        node = match
    return None


def _end_line(node: Any) -> int:
    """The last line (0-based) any part of ``node`` is written on."""
    import yaml

    last = 0
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, yaml.ScalarNode):
            mark = n.end_mark
            last = max(last, mark.line if mark.column > 0 else mark.line - 1)
        elif isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                stack += [k, v]
        elif isinstance(n, yaml.SequenceNode):
            stack += list(n.value)
            mark = n.end_mark
            last = max(last, mark.line if mark.column > 0 else mark.line - 1)
    return last


def _block(parts: list[str], value: Any, indent: int) -> str:
    lines = []
    for n, key in enumerate(parts):
        pad = " " * (indent + 2 * n)
        if n == len(parts) - 1:
            lines.append(f"{pad}{_flow(key)}: {_flow(value)}\n")
        else:
            lines.append(f"{pad}{_flow(key)}:\n")
    return "".join(lines)
