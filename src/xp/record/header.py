"""The run header: who started a run, where, on what code. The first journal line holds it;
every later change (an exit code, a warning, a name a child process chose) is journaled as an
update line, so a run recovered from its journal keeps all of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from xp import format as fmt


@dataclass
class RunHeader:
    """What a run records about itself besides its logged values (``meta.yaml``'s source)."""

    id: str
    name: str
    start_time: float
    auto_name: bool = False
    experiment: str = "default"
    command: list[str] = field(default_factory=list)
    cwd: str = "."
    context: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    message: str | None = None
    xp_version: str | None = None
    pid: int | None = None
    format: int = fmt.RECORD_FORMAT
    # the workspace snapshot: absent in a part logged by a child process
    tree: str | None = None
    baseline: str | None = None
    branch: str | None = None
    dirty: bool = False
    skipped: list[tuple[str, int]] = field(default_factory=list)  # (path, size) over the limit
    # set while or after the run goes
    warnings: list[str] = field(default_factory=list)
    exit_code: int | None = None
    # a series file for every metric, so a single point keeps its timestamp (MLflow's runs)
    all_series: bool = False
    # a run continued after it ended: the commit it continues (the new commit's parent), the
    # value its ref must still have when the new commit lands (None: no local ref yet, as
    # for a fetched run), and when it was continued (ISO times, every session's)
    previous: str | None = None
    ref_expected: str | None = None
    resumed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["skipped"] = [list(s) for s in self.skipped]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunHeader:
        """A header from a journal line; unknown keys (a newer xp's) are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["skipped"] = [(str(p), int(s)) for p, s in values.get("skipped") or []]
        values["warnings"] = [str(w) for w in values.get("warnings") or []]
        values["resumed"] = [str(w) for w in values.get("resumed") or []]
        return cls(**values)

    def apply(self, changes: dict[str, Any]) -> None:
        """Apply an update line (field -> new value); unknown fields are ignored."""
        for key, value in changes.items():
            if key in {"id", "format"} or not hasattr(self, key):
                continue
            if key == "skipped":
                value = [(str(p), int(s)) for p, s in value or []]
            setattr(self, key, value)
