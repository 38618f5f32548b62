"""Safe, deterministic YAML: the record files must give the same bytes for the same data.

Record files are someone else's data once fetched, so ``load_record`` reads them under the
rules of docs/format.md: at most ``MAX_RECORD_FILE`` bytes, no anchors, aliases or tags (a
300-byte alias bomb expands to gigabytes), nesting at most ``MAX_RECORD_DEPTH`` deep.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any

from xp import format as fmt
from xp.errors import ConfigError
from xp.record import fastyaml
from xp.record.fastyaml import dump_flat

if TYPE_CHECKING:
    import types

_FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


@cache
def _yaml() -> tuple[types.ModuleType, Any, Any]:
    """PyYAML and its (C if built) safe loader and dumper, imported when first needed: the
    files xp writes and plain params files are read and written by ``fastyaml`` (an `xp
    commit` need not pay PyYAML's ~10 ms import)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml, loader, getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(data: Any) -> bytes:
    """Block style, sorted keys, no line folding, UTF-8."""
    if type(data) is dict:
        fast = dump_flat(data)
        if fast is not None:
            return fast
    yaml, _, dumper = _yaml()
    text: str = yaml.dump(
        data,
        Dumper=dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 30,
    )
    return text.encode("utf-8")


def load(data: bytes | str, source: str = "YAML") -> Any:
    """Safe load only: records fetched from others never construct Python objects."""
    yaml, loader, _ = _yaml()
    try:
        return yaml.load(data, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}{where}: invalid YAML ({problem}); fix the file") from None
    except (ValueError, OverflowError) as exc:  # an int of 5,000 digits, a date in year 0...
        raise ConfigError(f"{source}: a value cannot be read ({exc}); fix the file") from None


def scalar(text: str) -> Any:
    """Parse a command-line value the way it would read in a YAML file (`3` -> 3, `a` -> 'a')."""
    value = fastyaml.scalar(text)
    if value is fastyaml.UNSURE:
        yaml, loader, _ = _yaml()
        try:
            value = yaml.load(text, Loader=loader)
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


_RISKY = re.compile(rb"[&*!]")  # only these start an anchor, an alias or a tag
_MAX_EVENTS = 2_000_000  # a 4 MiB file of one-character items has about this many


# Lists of files: one entry per file of a logged folder, so larger than the mappings may be.
_LIST_FILES = (fmt.ARTIFACTS_FILE, fmt.INPUTS_FILE, fmt.MEDIA_FILE)
# A line that starts a top-level mapping entry (not indented, not a list item or comment).
_TOP_KEY = re.compile(rb"^[^\s#-]", re.MULTILINE)


_SMALL = min(fmt.MAX_ENTRIES, fmt.MAX_RECORD_FILE, fmt.MAX_LIST_FILE)  # bytes; lines at most


def check_size(data: bytes, source: str) -> None:
    """Refuse, before parsing, a file larger than a record file may be, or a mapping of more
    than ``MAX_ENTRIES`` entries (parsing 100,000 of them alone takes seconds)."""
    if len(data) <= _SMALL:  # nothing this small breaks either limit (the bulk of records)
        return
    limit = fmt.MAX_LIST_FILE if source.endswith(_LIST_FILES) else fmt.MAX_RECORD_FILE
    if len(data) > limit:
        raise ConfigError(
            f"{source}: {len(data):,} bytes, over the {limit >> 20} MiB xp reads"
            " in this record file; the run was not written by xp"
        )
    if data.count(b"\n") > fmt.MAX_ENTRIES:
        entries = len(_TOP_KEY.findall(data))
        if entries > fmt.MAX_ENTRIES:
            raise ConfigError(
                f"{source}: {entries:,} entries, over the {fmt.MAX_ENTRIES:,} a record file"
                " may hold; the run was not written by xp"
            )


def load_record(data: bytes, source: str = "record") -> Any:
    """A record file, loaded only when it keeps the rules (else ``ConfigError``)."""
    check_size(data, source)
    if _RISKY.search(data):
        _check_events(data, source)
    try:
        value = load(data, source)
    except RecursionError:
        raise ConfigError(f"{source}: nested too deep for a record file") from None
    _check_depth(value, source)
    return value


def _check_events(data: bytes, source: str) -> None:
    """Refuse anchors, aliases, explicit tags and deep nesting before anything is built."""
    depth = 0
    yaml, loader, _ = _yaml()
    try:
        for n, event in enumerate(yaml.parse(data, Loader=loader)):
            if n > _MAX_EVENTS:
                raise ConfigError(f"{source}: too many items for a record file")
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise ConfigError(
                    f"{source}: YAML anchors and aliases are not allowed in a record file"
                )
            tag = getattr(event, "tag", None)
            if tag is not None and not _implicit(event):
                raise ConfigError(f"{source}: YAML tag {tag!r} is not allowed in a record file")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > fmt.MAX_RECORD_DEPTH:
                    raise ConfigError(f"{source}: nested too deep for a record file")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}{where}: invalid YAML ({problem}); fix the file") from None


def _implicit(event: Any) -> bool:
    """A tag the parser filled in itself (plain or quoted scalar, untagged collection)."""
    implicit = getattr(event, "implicit", False)
    return bool(implicit[0] or implicit[1]) if isinstance(implicit, tuple) else bool(implicit)


def _check_depth(value: Any, source: str) -> None:
    """Walk what was loaded (no recursion): mappings and lists at most MAX_RECORD_DEPTH deep."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= fmt.MAX_RECORD_DEPTH:
                raise ConfigError(f"{source}: nested too deep for a record file")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
