"""The media index: which artifacts of a run are images, figures, tables, histograms or texts.

The files themselves are ordinary artifacts (content-addressed, pushed, fetched like any
other); ``media.yaml`` says what each one is, under which key and at which step, so a viewer
can draw a key's images as a strip over steps without opening every file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xp import format as fmt
from xp.errors import ConfigError

_FIXED = ("key", "kind", "path", "step", "timestamp")


@dataclass(frozen=True)
class MediaEntry:
    """One logged image, figure, table, histogram or text (docs/format.md, ``media.yaml``)."""

    key: str
    kind: str  # one of fmt.MEDIA_KINDS
    path: str  # the artifact that holds it
    step: int | None = None
    timestamp: int = 0  # ms since the epoch
    info: dict[str, Any] = field(default_factory=dict)  # width, height, caption, format...

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.info)
        out.update(key=self.key, kind=self.kind, path=self.path, timestamp=self.timestamp)
        if self.step is not None:
            out["step"] = self.step
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "media.yaml") -> MediaEntry:
        """An entry read from a record or a journal; a fetched run is untrusted input."""
        key, kind, path, step = d.get("key"), d.get("kind"), d.get("path"), d.get("step")
        stamp = d.get("timestamp", 0)
        if (
            not isinstance(key, str)
            or not isinstance(kind, str)
            or not isinstance(path, str)
            or not (step is None or (isinstance(step, int) and not isinstance(step, bool)))
            or not isinstance(stamp, int)
            or isinstance(stamp, bool)
        ):
            raise ConfigError(
                f"{source}: media entry {dict(d)!r} needs a key, kind, path and an integer step;"
                " the run is damaged"
            )
        info = {str(k): v for k, v in d.items() if k not in _FIXED}
        return cls(key=key, kind=kind, path=path, step=step, timestamp=stamp, info=info)

    @property
    def sort_key(self) -> tuple[str, int, str]:
        return (self.key, -1 if self.step is None else self.step, self.path)


def media_path(key: str, step: int, ext: str) -> str:
    """Where a keyed media file is stored among the artifacts: ``media/<key>/<step>.<ext>``."""
    return f"{fmt.MEDIA_DIR}/{key}/{step}.{ext}"


def dump_entries(entries: list[MediaEntry]) -> list[dict[str, Any]]:
    return [e.to_dict() for e in sorted(entries, key=lambda e: e.sort_key)]


def load_entries(value: Any, source: str) -> tuple[MediaEntry, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(d, dict) for d in value):
        raise ConfigError(f"{source}: expected a list of media entries; the run is damaged")
    return tuple(MediaEntry.from_dict(d, source) for d in value)
