"""Index rows: one run as the index stores and returns it, read in bulk from git.

``RunRow`` is the one row type: ``read_rows`` builds it from records fetched through one
``git cat-file --batch`` and the index returns it to every caller (``xp show``, search,
the UI), so a field is added in one place.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from xp import format as fmt
from xp.errors import ConfigError
from xp.gitstore.catfile import parse_tree, read_objects
from xp.gitstore.repo import GitRepo
from xp.record import values, yamlio
from xp.record.fastyaml import load_flat
from xp.record.model import RunRecord

INVALID = "invalid"  # status of a run whose record cannot be read
_RECORD_FILES = (fmt.META_FILE, fmt.PARAMS_FILE, fmt.METRICS_FILE, fmt.TAGS_FILE)


def _epoch(value: Any) -> float | None:
    """Seconds since the epoch of a meta time, or None when it is no time (a record from
    anyone: any string, any year)."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str) and value:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    try:
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    try:
        return float(value) if values.is_number(value) else None
    except OverflowError:
        return None


@dataclass(frozen=True)
class RunRow:
    """One run as listed: attributes plus ``values`` keyed params.x / metrics.y / tags.z.

    ``ref`` is the ref the run is listed under (empty before the row is in the index);
    ``param_text`` holds each param's text form, which text comparisons in filters match.
    """

    run_id: str
    commit: str
    name: str
    experiment: str
    status: str
    start: float | None
    end: float | None
    duration: float | None
    baseline: str | None
    branch: str | None
    user: str | None
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    ref: str = ""
    param_text: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    parent: str | None = None  # the enclosing run's id (nested runs)
    message: str | None = None  # the run's description
    source: str | None = None  # the program that logged it: its command's first word


def row_from_record(run_id: str, commit: str, record: RunRecord) -> RunRow:
    meta = record.meta
    data: dict[str, Any] = {}
    for k, v in record.params.items():
        data[f"params.{k}"] = values.param_cell(v)
    for k, v in record.metrics.items():
        data[f"metrics.{k}"] = values.metric_cell(v)
    for k, v in record.tags.items():
        data[f"tags.{k}"] = v
    start = _epoch(meta.get("start_time"))
    if start is None and fmt.ID_RE.match(run_id):
        start = float(fmt.id_time(run_id))
    baseline = meta.get("baseline")
    branch = meta.get("branch")
    user = meta.get("user")
    return RunRow(
        run_id=run_id,
        commit=commit,
        name=record.name,
        experiment=record.experiment,
        status=record.status,
        start=start,
        end=_epoch(meta.get("end_time")),
        duration=_number(meta.get("duration")),
        baseline=str(baseline) if baseline else None,
        branch=str(branch) if branch else None,
        user=str(user) if user else None,
        values=data,
        param_text={k: values.text(v) for k, v in record.params.items()},
        parent=_text(meta.get("parent")),
        message=_text(meta.get("message")),
        source=_text(command[0])
        if isinstance(command := meta.get("command"), list) and command
        else None,
    )


def error_row(run_id: str, commit: str, error: str) -> RunRow:
    start = float(fmt.id_time(run_id)) if fmt.ID_RE.match(run_id) else None
    return RunRow(run_id, commit, "", "", INVALID, start, None, None, None, None, None, {}, error)


def _record(read: Any, source: str, parsed: dict[bytes, Any]) -> RunRecord:
    """RunRecord.from_files with the fast YAML reader; identical files parse once."""

    def load_yaml(data: bytes, where: str) -> Any:
        if data not in parsed:
            yamlio.check_size(data, where)
            value = load_flat(data)
            parsed[data] = yamlio.load_record(data, where) if value is None else value
        return parsed[data]

    return RunRecord.from_files(read, [], source, load_yaml=load_yaml)


def read_rows(repo: GitRepo, wanted: dict[str, str]) -> list[RunRow]:
    """Rows for {commit: run id}, read in bulk; an unreadable record becomes an error row."""
    trees: dict[str, dict[str, tuple[int, str]]] = {}
    names = [f"{c}:{fmt.RECORD_DIR}" for c in wanted]
    for name, data in read_objects(repo, names):
        if data is not None:
            with contextlib.suppress(ValueError, IndexError):
                trees[name.split(":", 1)[0]] = parse_tree(data)
    blobs: dict[str, bytes] = {}
    needed = {
        entry[1]
        for tree in trees.values()
        for fname in _RECORD_FILES
        if (entry := tree.get(fname)) is not None
    }
    for sha, data in read_objects(repo, sorted(needed)):
        if data is not None:
            blobs[sha] = data
    rows = []
    parsed: dict[bytes, Any] = {}  # identical files (tags, params of a sweep) parse once
    for commit, run_id in wanted.items():
        tree = trees.get(commit)
        if tree is None:
            rows.append(error_row(run_id, commit, f"commit {commit[:12]} has no run record"))
            continue

        def read(name: str, tree: dict[str, tuple[int, str]] = tree) -> bytes | None:
            entry = tree.get(name)
            return None if entry is None else blobs.get(entry[1])

        try:
            rows.append(row_from_record(run_id, commit, _record(read, run_id, parsed)))
        except (ConfigError, KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            rows.append(error_row(run_id, commit, str(exc).splitlines()[0] if str(exc) else ""))
    return rows
