"""Annotations: tags, notes and moves made after a run ended, as lines of a git note.

A run commit never changes, so what is said about it later lives in a git note on it
(``refs/notes/xp``). A note is an append-only list of events, one per line::

    2026-11-30T12:00:00.123Z<TAB>tag<TAB>{"key":"reviewed","value":"yes"}<TAB>Ann <ann@x.org>

time (UTC, milliseconds, so byte order is time order), verb, JSON arguments (sorted keys,
no spaces: the same event is the same bytes), who. Verbs: ``tag`` (key, value), ``untag``
(key), ``note`` (text), ``move`` (experiment). Two clones that annotate the same run merge
their notes with git's ``cat_sort_uniq`` strategy: the union of both lists of lines, sorted,
duplicates dropped. Nothing either side wrote is lost, and replaying the merged list in
order gives every clone the same answer (the later of two edits of one tag wins).

Notes come from other people's clones: a line that does not parse is skipped and counted,
never fatal; so is an event with an unknown verb (a later xp's).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from xp import format as fmt
from xp.errors import InputError, InvalidValueError

VERBS = ("tag", "untag", "note", "move")
MAX_NOTE_BYTES = 16 << 20  # a note (all of one run's events) larger than this is not ours
MAX_LINE = 100_000  # characters of one event line; a longer line is skipped
MAX_TEXT = 65_536  # characters of one note's text
_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
_last_ms = 0


def now() -> str:
    """The current UTC time to the millisecond; strictly increasing within this process, so
    two edits made one after the other replay in that order."""
    global _last_ms
    ms = max(int(time.time() * 1000), _last_ms + 1)
    _last_ms = ms
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


@dataclass(frozen=True)
class Event:
    time: str  # ISO 8601 UTC with milliseconds
    verb: str
    args: dict[str, str]
    who: str  # "Name <email>"

    def line(self) -> str:
        payload = json.dumps(self.args, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return f"{self.time}\t{self.verb}\t{payload}\t{self.who}"

    def describe(self) -> str:
        a = self.args
        if self.verb == "tag":
            return f"tag {a['key']}={a['value']}"
        if self.verb == "untag":
            return f"removed tag {a['key']}"
        if self.verb == "move":
            return f"moved to experiment {a['experiment']}"
        return f"note: {a['text']}"


def parse_line(line: str) -> Event | None:
    """One event, or None when the line is not one this xp can read."""
    if len(line) > MAX_LINE:
        return None
    parts = line.split("\t")
    if len(parts) != 4 or not _TIME_RE.match(parts[0]) or parts[1] not in VERBS:
        return None
    try:
        args = json.loads(parts[2])
    except ValueError:
        return None
    if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
        return None
    need = {"tag": ("key", "value"), "untag": ("key",), "note": ("text",), "move": ("experiment",)}
    if any(k not in args for k in need[parts[1]]):
        return None
    try:
        if parts[1] in ("tag", "untag"):
            fmt.validate_key(args["key"], "tag")
        if parts[1] == "move":
            fmt.validate_key(args["experiment"], "experiment")
    except InputError:
        return None
    if len(args.get("value", "")) > fmt.MAX_TAG_LENGTH or len(args.get("text", "")) > MAX_TEXT:
        return None
    return Event(parts[0], parts[1], {k: str(v) for k, v in args.items()}, parts[3])


@dataclass(frozen=True)
class Annotations:
    """One run's events replayed: tags set and removed since, notes, the latest move."""

    events: tuple[Event, ...] = ()
    skipped: int = 0  # lines that did not parse
    tags: dict[str, str] = field(default_factory=dict)  # set after the fact (last write wins)
    removed: frozenset[str] = frozenset()  # removed after the fact (and not set again)
    experiment: str | None = None

    @property
    def notes(self) -> list[Event]:
        return [e for e in self.events if e.verb == "note"]

    def apply_tags(self, recorded: dict[str, str]) -> dict[str, str]:
        """The run's tags as they are now: recorded, then every edit in order."""
        out = {k: v for k, v in recorded.items() if k not in self.removed}
        out.update(self.tags)
        return dict(sorted(out.items()))


def replay(lines: Iterable[str]) -> Annotations:
    """The events of ``lines`` in time order (duplicates once), replayed."""
    events, skipped = [], 0
    for line in sorted(set(lines)):
        if not line.strip():
            continue
        event = parse_line(line)
        if event is None:
            skipped += 1
        else:
            events.append(event)
    tags: dict[str, str] = {}
    removed: set[str] = set()
    experiment = None
    for e in events:
        if e.verb == "tag":
            tags[e.args["key"]] = e.args["value"]
            removed.discard(e.args["key"])
        elif e.verb == "untag":
            tags.pop(e.args["key"], None)
            removed.add(e.args["key"])
        elif e.verb == "move":
            experiment = e.args["experiment"]
    return Annotations(tuple(events), skipped, tags, frozenset(removed), experiment)


def lines_of(data: bytes) -> list[str]:
    return data.decode("utf-8", "replace").split("\n")


def tag_event(key: str, value: Any, who: str, when: str | None = None) -> Event:
    """A ``tag`` event, the key and value checked as ``set_tag`` checks them."""
    fmt.validate_key(key, "tag")
    if key.startswith("xp."):
        raise InvalidValueError(f"tag {key!r}: names starting with 'xp.' are xp's own")
    text = str(value)  # as set_tag stores it
    if len(text) > fmt.MAX_TAG_LENGTH:
        raise InvalidValueError(
            f"tag {key!r} is {len(text)} characters; the limit is {fmt.MAX_TAG_LENGTH}"
        )
    return Event(when or now(), "tag", {"key": key, "value": text}, who)


def untag_event(key: str, who: str, when: str | None = None) -> Event:
    fmt.validate_key(key, "tag")
    if key.startswith("xp."):
        raise InvalidValueError(f"tag {key!r}: names starting with 'xp.' are xp's own")
    return Event(when or now(), "untag", {"key": key}, who)


def note_event(text: str, who: str, when: str | None = None) -> Event:
    if not isinstance(text, str) or not text.strip():
        raise InvalidValueError("a note needs some text, e.g. xp note RUN 'looks overfit'")
    if len(text) > MAX_TEXT:
        raise InvalidValueError(f"the note is {len(text):,} characters; the limit is {MAX_TEXT:,}")
    return Event(when or now(), "note", {"text": text}, who)


def move_event(experiment: str, who: str, when: str | None = None) -> Event:
    fmt.validate_key(experiment, "experiment")
    return Event(when or now(), "move", {"experiment": experiment}, who)
