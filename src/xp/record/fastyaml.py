"""A fast reader for the flat YAML files xp itself writes, exact or not at all.

Building the query index parses four small YAML files per run; PyYAML's constructor costs
~75 us a file, 3 s for 10,000 runs. The record files xp writes are flat mappings of plain or
single-quoted scalars (and lists of them), which this module reads line by line, resolving
each plain scalar with PyYAML's own implicit-resolver table so the result is what
``yaml.safe_load`` gives. Anything else (nesting, double quotes, comments, octal, dates...)
returns ``None`` and the caller uses PyYAML: so the answer is always PyYAML's.
"""

from __future__ import annotations

import math
import re
from typing import Any

# PyYAML's implicit-resolver table (its SafeLoader's, YAML 1.1): tag, the first characters
# it keys on, pattern. Written out so reading a record file does not import PyYAML (8-10 ms of
# an `xp tag`); tests/record/test_fastyaml.py checks it is PyYAML's own, entry for entry.
_TABLE: tuple[tuple[str, str, str], ...] = (
    (
        "tag:yaml.org,2002:bool",
        "yYnNtTfFoO",
        "^(?:yes|Yes|YES|no|No|NO\n"
        "                    |true|True|TRUE|false|False|FALSE\n"
        "                    |on|On|ON|off|Off|OFF)$",
    ),
    (
        "tag:yaml.org,2002:null",
        "nN~",
        "^(?: ~\n                    |null|Null|NULL\n                    | )$",
    ),
    (
        "tag:yaml.org,2002:float",
        "-+0123456789.",
        "^(?:[-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+][0-9]+)?\n"
        "                    |\\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?\n"
        "                    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\\.[0-9_]*\n"
        "                    |[-+]?\\.(?:inf|Inf|INF)\n"
        "                    |\\.(?:nan|NaN|NAN))$",
    ),
    (
        "tag:yaml.org,2002:int",
        "-+0123456789",
        "^(?:[-+]?0b[0-1_]+\n"
        "                    |[-+]?0[0-7_]+\n"
        "                    |[-+]?(?:0|[1-9][0-9_]*)\n"
        "                    |[-+]?0x[0-9a-fA-F_]+\n"
        "                    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
    ),
    (
        "tag:yaml.org,2002:timestamp",
        "0123456789",
        "^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]\n"
        "                    |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?\n"
        "                     (?:[Tt]|[ \\t]+)[0-9][0-9]?\n"
        "                     :[0-9][0-9] :[0-9][0-9] (?:\\.[0-9]*)?\n"
        "                     (?:[ \\t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
    ),
    (
        "tag:yaml.org,2002:merge",
        "<",
        "^(?:<<)$",
    ),
    (
        "tag:yaml.org,2002:value",
        "=",
        "^(?:=)$",
    ),
    (
        "tag:yaml.org,2002:yaml",
        "!&*",
        "^(?:!|&|\\*)$",
    ),
)
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"
_YAML = "tag:yaml.org,2002:yaml"
_BOOLS = {"yes": True, "true": True, "on": True, "no": False, "false": False, "off": False}
_SIMPLE_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
_SIMPLE_FLOAT = re.compile(r"[-+]?[0-9]+\.[0-9]*(?:[eE][-+][0-9]+)?\Z")
_SPECIAL_FLOAT = {".inf": float("inf"), ".nan": float("nan")}
# A plain scalar we are sure about: printable ASCII, no indicator first, no ': ' or ' #'.
# Characters PyYAML refuses or treats specially (controls, a byte-order mark): ask it then.
_UNUSUAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff]")
_PLAIN = re.compile(r"(?![-?:](?:\s|\Z))[^\s\-?:,\[\]{}#&*!|>'\"%@`][ -~]*\Z|-[^\s][ -~]*\Z")


class _Unsure(Exception):
    pass


_NONE = object()  # no pending key
UNSURE = object()  # ``scalar``'s "ask PyYAML"


_PATTERNS: dict[int, re.Pattern[str]] = {}  # row of _TABLE -> its compiled pattern
_BY_CHAR: dict[str, list[tuple[str, re.Pattern[str]]]] = {}


def _compiled(row: int) -> re.Pattern[str]:
    pattern = _PATTERNS.get(row)
    if pattern is None:
        tag, _first, text = _TABLE[row]
        flags = re.X if tag not in (_MERGE, _VALUE, _YAML) else 0
        pattern = _PATTERNS[row] = re.compile(text, flags)
    return pattern


def _starts(tag: str, first: str) -> list[str]:
    """The first characters a row applies to ("" for the empty value)."""
    return [ch.strip("\0") for ch in first + ("" if tag != _NULL else "\0")]


_FIRSTS = frozenset(ch for tag, first, _text in _TABLE for ch in _starts(tag, first))


def resolvers() -> dict[str, list[tuple[str, re.Pattern[str]]]]:
    """The whole table by first character."""
    return {ch: _for(ch) for ch in sorted(_FIRSTS)}


def _for(ch: str) -> list[tuple[str, re.Pattern[str]]]:
    """The rows for values starting with ``ch``, compiled on first use: a file of paths and
    hashes (artifacts.yaml, read by every push) compiles one or two of them, not all."""
    rows = _BY_CHAR.get(ch)
    if rows is None:
        if ch not in _FIRSTS:  # no row: not cached (a hostile file has a million of them)
            return []
        rows = _BY_CHAR[ch] = [
            (tag, _compiled(row))
            for row, (tag, first, _text) in enumerate(_TABLE)
            if ch in _starts(tag, first)
        ]
    return rows


def _tag(value: str) -> str:
    for tag, regexp in _for(value[0] if value else ""):
        if regexp.match(value):
            return tag
    return _STR


def _plain(text: str) -> Any:
    if text == "":
        return None
    if not _PLAIN.match(text) or ": " in text or " #" in text or text.endswith((" ", ":")):
        raise _Unsure
    tag = _tag(text)
    if tag == _STR:
        return text
    if tag == _NULL:
        return None
    if tag == _BOOL:
        return _BOOLS[text.lower()]
    if tag == _INT and _SIMPLE_INT.match(text):
        return int(text)
    if tag == _FLOAT:
        if _SIMPLE_FLOAT.match(text):
            return float(text)
        sign = -1.0 if text.startswith("-") else 1.0
        special = _SPECIAL_FLOAT.get(text.lstrip("+-").lower())
        if special is not None:
            return sign * special
    raise _Unsure  # octal, hex, sexagesimal, underscores, timestamps, merge keys


# One `key: value` line of the commonest shapes xp writes, classified by one C regex match
# instead of a chain of Python checks: a plain key, then a plain decimal float (metrics),
# a single-quoted text without quotes inside (times), or a plain word that no resolver of
# _TABLE can claim: a first character none of them keys on (not yYnNtTfFoO, nor a digit or
# an indicator), or a digit 1-9, digits and lowercase letters with one letter at least (a run
# id, a commit): no int (all digits, or 0b/0x first), float (a dot) or timestamp (a dash).
_SIMPLE_LINE = re.compile(
    r"([A-Za-z_][A-Za-z0-9_./-]*): (?:([-+]?[0-9]+\.[0-9]*(?:[eE][-+][0-9]+)?)"
    r"|'([ -&(-~]+)'"
    r"|([A-EG-MP-SU-XZa-eg-mp-su-xz_][A-Za-z0-9_./+-]*|[1-9][0-9]*[a-z][0-9a-z]*))\Z"
)
_memo: dict[str, Any] = {}  # text -> immutable value: keys and common values repeat a lot
# line -> (key, value) of a `key: value` line read before: most lines of a record
# (`branch: main`, `dataset: cifar10`) repeat from run to run, so an index build of
# 100,000 runs reads most lines with one dictionary lookup.
_lines: dict[str, tuple[Any, Any]] = {}


def _scalar(text: str) -> Any:
    try:
        return _memo[text]
    except KeyError:
        pass
    value = _scalar_uncached(text)
    if not isinstance(value, (list, dict)):
        if len(_memo) > 200_000:
            _memo.clear()
        _memo[text] = value
    return value


def _scalar_uncached(text: str) -> Any:
    # Plain decimal numbers, the bulk of metrics and params, resolve as float and int in
    # YAML 1.1 whatever else the resolver table holds: skip straight to them.
    if _SIMPLE_FLOAT.match(text):
        return float(text)
    if _SIMPLE_INT.match(text):
        return int(text)
    if text.startswith("'"):
        if len(text) < 2 or not text.endswith("'"):
            raise _Unsure
        inner = text[1:-1]
        if "'" in inner.replace("''", "") or not inner.isprintable():
            raise _Unsure
        return inner.replace("''", "'")
    if text == "[]":
        return []
    if text == "{}":
        return {}
    return _plain(text)


def load_flat(data: bytes) -> dict[Any, Any] | None:
    """The mapping in ``data`` when it is a flat file xp writes; None means "ask PyYAML"."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # printable ASCII but newlines (what xp writes) holds nothing _UNUSUAL matches: two C
    # scans, half the regex's cost on each of the 400,000 files of a 100k-run index build
    if not (text.isascii() and text.replace("\n", "").isprintable()) and _UNUSUAL.search(text):
        return None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return None
    out: dict[Any, Any] = {}
    bare: list[Any] = []  # keys written as `key:`: a list follows, or the value is null
    items: list[Any] | None = None
    simple = _SIMPLE_LINE.match
    try:
        for line in lines:
            hit = _lines.get(line)
            if hit is not None:
                items = None
                out[hit[0]] = hit[1]
                continue
            if (m := simple(line)) is not None:
                items = None
                key_text, number, quoted, word = m.groups()
                key = _scalar(key_text)
                value = out[key] = float(number) if number else quoted or word
                if len(_lines) > 100_000:
                    _lines.clear()
                _lines[line] = (key, value)
                continue
            if line.startswith("- "):
                if items is None:
                    raise _Unsure
                items.append(_scalar(line[2:]))
                continue
            items = None
            if line.endswith(":"):
                key_text, value_text = line[:-1], None
            else:
                key_text, sep, value_text = line.partition(": ")
                if not sep:
                    raise _Unsure
            if not key_text:
                raise _Unsure  # an empty key: PyYAML's rules, not ours
            key = _scalar(key_text)
            if isinstance(key, (list, dict)) or key_text != key_text.strip():
                raise _Unsure
            if value_text is None:
                items = []
                out[key] = items
                bare.append(key)
            else:
                value = out[key] = _scalar(value_text)
                if not isinstance(value, (list, dict)):
                    if len(_lines) > 100_000:
                        _lines.clear()
                    _lines[line] = (key, value)
    except (_Unsure, ValueError):  # ValueError: an int of 5,000 digits: PyYAML's answer then
        return None
    for key in bare:
        if out.get(key) == []:
            out[key] = None
    return out


def load_nested(data: bytes) -> dict[Any, Any] | None:
    """The mapping in ``data`` when it is block mappings of plain or single-quoted scalars,
    nested by indentation, with whole-line comments and blank lines (a hand-written
    ``params.yaml``); None means "ask PyYAML". ``xp commit`` reads such a file without
    importing PyYAML (~10 ms of its start-up)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\r" in text or "\t" in text or _UNUSUAL.search(text):
        return None
    root: dict[Any, Any] = {}
    stack: list[tuple[int, dict[Any, Any]]] = [(0, root)]  # (indent, mapping) open blocks
    pending: Any = _NONE  # a `key:` whose value is the block that follows, or null
    seen = False
    try:
        for line in text.split("\n"):
            body = line.lstrip(" ")
            if not body or body.startswith("#"):
                continue
            seen = True
            indent = len(line) - len(body)
            if pending is not _NONE:
                parent_indent, parent = stack[-1]
                if indent > parent_indent:
                    child: dict[Any, Any] = {}
                    parent[pending] = child
                    stack.append((indent, child))
                pending = _NONE
            while indent < stack[-1][0]:
                stack.pop()
            if indent != stack[-1][0]:
                raise _Unsure  # a continuation line, or a dedent to no open block
            if body.endswith(":"):
                key_text, value_text = body[:-1], None
            else:
                key_text, sep, value_text = body.partition(": ")
                if not sep or not value_text.strip():
                    raise _Unsure
            if not key_text or key_text != key_text.strip():
                raise _Unsure
            key = _scalar(key_text)
            if isinstance(key, (list, dict)):
                raise _Unsure
            mapping = stack[-1][1]
            if value_text is None:
                mapping[key] = None  # null unless a deeper block follows
                pending = key
            else:
                mapping[key] = _scalar(value_text)
    except _Unsure:
        return None
    return root if seen else None


def scalar(text: str) -> Any:
    """``text`` as YAML reads a plain or single-quoted scalar, or ``UNSURE`` (ask PyYAML)."""
    if not (text.isascii() and text.isprintable()) or text.startswith(("---", "...")):
        return UNSURE  # control characters, document markers: a document is not a line
    try:
        return _scalar(text)
    except _Unsure:
        return UNSURE


def load_entries(data: bytes) -> list[dict[Any, Any]] | None:
    """The list of flat mappings in ``data`` (``artifacts.yaml``, ``inputs.yaml``: ``- key:
    value`` then ``  key: value`` lines, as xp writes them); None means "ask PyYAML". Read so
    that a pre-push hook need not import PyYAML to learn which objects a run refers to."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if _UNUSUAL.search(text):
        return None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return None
    out: list[dict[Any, Any]] = []
    try:
        for line in lines:
            if line.startswith("- "):
                entry: dict[Any, Any] = {}
                out.append(entry)
                body = line[2:]
            elif line.startswith("  ") and out:
                body = line[2:]
            else:
                raise _Unsure
            key_text, sep, value_text = body.partition(": ")
            if not sep or not key_text or key_text != key_text.strip():
                raise _Unsure  # `key:` (null or a nested block), an empty key: PyYAML's
            key = _scalar(key_text)
            value = _scalar(value_text)
            if isinstance(key, (list, dict)) or isinstance(value, (list, dict)) or key in entry:
                raise _Unsure
            out[-1][key] = value
    except _Unsure:
        return None
    return out


# -- writing ---------------------------------------------------------------------------------
# The mirror image: the flat mappings every run writes (params, metrics, tags, meta) dumped
# without PyYAML's representer, which costs ~0.15 ms a file (a third of a run's CPU). Only
# what we are sure libyaml writes the same way; anything else returns None and the caller
# dumps with PyYAML, so the bytes are always PyYAML's.
_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]{0,63}\Z")  # plain, short: a simple key
_ASCII_PRINTABLE = re.compile(r"[ -~]*\Z")
_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")  # a first character that forbids a plain scalar
_dumped: dict[Any, str] = {}  # scalar -> its text: the same values recur from run to run


def _float_text(value: float) -> str:
    if value != value:
        return ".nan"
    if value in (math.inf, -math.inf):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value).lower()
    if "." not in text and "e" in text:
        text = text.replace("e", ".0e", 1)
    return text


def _str_text(value: str) -> str:
    if not _ASCII_PRINTABLE.match(value):
        raise _Unsure  # unicode, line breaks, tabs: PyYAML's choices, not ours
    if value == "":
        return "''"
    indicator = (
        value[0] in _INDICATORS
        or value in ("-", "?", ":")
        or value.startswith(("- ", "? ", ": ", "---", "..."))
        or value[0] == " "
        or value[-1] in " :"
        or ": " in value
        or " #" in value
    )
    if not indicator and _PLAIN.match(value):
        if _tag(value) == _STR:
            return value
        return "'" + value.replace("'", "''") + "'"  # plain reads as another type
    if indicator:
        return "'" + value.replace("'", "''") + "'"
    raise _Unsure


def _dump_scalar(value: Any) -> str:
    kind = type(value)
    if kind is str:
        text = _dumped.get(value)
        if text is None:
            text = _str_text(value)
            if len(_dumped) > 100_000:
                _dumped.clear()
            _dumped[value] = text
        return text
    if kind is float:
        return _float_text(value)
    if kind is int:
        return str(value)  # ValueError past 4,300 digits: PyYAML's then
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    raise _Unsure


def dump_flat(mapping: dict[Any, Any]) -> bytes | None:
    """What ``yamlio.dump(mapping)`` gives, for a non-empty mapping of short plain keys to
    scalars or lists of scalars; None otherwise (then ask PyYAML)."""
    if not mapping:
        return None
    lines: list[str] = []
    try:
        for key in sorted(mapping):
            if type(key) is not str or not _SAFE_KEY.match(key) or _tag(key) != _STR:
                return None
            value = mapping[key]
            if type(value) is list:
                if not value:
                    lines.append(f"{key}: []")
                    continue
                lines.append(f"{key}:")
                lines.extend("- " + _dump_scalar(item) for item in value)
            else:
                lines.append(f"{key}: {_dump_scalar(value)}")
    except (_Unsure, ValueError, TypeError):
        return None
    lines.append("")
    return "\n".join(lines).encode("ascii")
