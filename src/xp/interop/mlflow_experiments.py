"""Experiments as MLflow has them (ids, tags, deletion), over xp's experiment labels.

An xp run names its experiment in ``meta.yaml`` (``experiment: wine``); that label is all a
run needs. MLflow also wants an id per experiment, experiments without runs, tags, soft
deletion and renames. Ids are derived from the label (``0`` for ``default``, MLflow's
"Default"; 18 digits of the label's sha256 otherwise), so every clone agrees on them without
coordination. Whatever cannot be derived lives in ``refs/xp/experiments``: a commit whose tree
holds ``experiments.yaml``, moved by compare-and-swap, so concurrent changes never clobber
each other and the file keeps its history in git (docs/format.md).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from xp import format as fmt
from xp.errors import ConfigError, MlflowException, RefChangedError
from xp.gitstore.commit import write_files_commit
from xp.gitstore.refs import read_ref
from xp.gitstore.repo import GitRepo
from xp.gitstore.trees import read_file
from xp.record import yamlio

DEFAULT_ID = "0"
DEFAULT_NAME = "Default"  # MLflow's name for xp's "default" experiment
DEFAULT_LABEL = "default"
ACTIVE = "active"
DELETED = "deleted"
MAX_NAME_LENGTH = 500


def label_of(name: str) -> str:
    """The label runs store for MLflow experiment ``name``."""
    return DEFAULT_LABEL if name in (DEFAULT_NAME, DEFAULT_LABEL) else name


def name_of(label: str) -> str:
    """MLflow's name for the experiment runs label ``label``."""
    return DEFAULT_NAME if label in (DEFAULT_LABEL, "") else label


def derived_id(label: str) -> str:
    """The id every clone gives the experiment ``label`` (MLflow ids are digit strings)."""
    if label in (DEFAULT_LABEL, DEFAULT_NAME, ""):
        return DEFAULT_ID
    value = int.from_bytes(hashlib.sha256(label.encode("utf-8")).digest()[:8], "big")
    return str(10**17 + value % (9 * 10**17))


@dataclass(frozen=True)
class ExperimentEntry:
    """One experiment: what ``refs/xp/experiments`` keeps plus what its runs say."""

    id: str
    name: str
    lifecycle_stage: str = ACTIVE
    creation_time: int | None = None  # ms
    last_update_time: int | None = None  # ms
    tags: dict[str, str] = field(default_factory=dict)
    artifact_location: str | None = None
    aliases: tuple[str, ...] = ()  # labels it had before a rename: its older runs carry them

    @property
    def labels(self) -> tuple[str, ...]:
        return (label_of(self.name), *self.aliases)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "lifecycle_stage": self.lifecycle_stage}
        for key in ("creation_time", "last_update_time", "artifact_location"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.tags:
            out["tags"] = dict(self.tags)
        if self.aliases:
            out["aliases"] = list(self.aliases)
        return out

    @classmethod
    def from_dict(cls, exp_id: str, d: dict[str, Any]) -> ExperimentEntry:
        tags = d.get("tags") or {}
        return cls(
            id=str(exp_id),
            name=str(d.get("name", "")),
            lifecycle_stage=DELETED if d.get("lifecycle_stage") == DELETED else ACTIVE,
            creation_time=_int(d.get("creation_time")),
            last_update_time=_int(d.get("last_update_time")),
            tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {},
            artifact_location=(
                None if d.get("artifact_location") is None else str(d["artifact_location"])
            ),
            aliases=tuple(str(a) for a in d.get("aliases") or ()),
        )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def now_ms() -> int:
    return int(time.time() * 1000)


_cache: dict[str, dict[str, ExperimentEntry]] = {}  # commit sha -> its entries


def stored(repo: GitRepo) -> tuple[str | None, dict[str, ExperimentEntry]]:
    """The registry's commit and its entries by id (empty when nothing was ever stored)."""
    sha = read_ref(repo.common_dir, fmt.EXPERIMENTS_REF)
    if sha is None:
        return None, {}
    if sha not in _cache:
        data = read_file(repo, sha, fmt.EXPERIMENTS_FILE)
        parsed = yamlio.load(data, f"{fmt.EXPERIMENTS_REF}:{fmt.EXPERIMENTS_FILE}") if data else {}
        if not isinstance(parsed, dict):
            raise ConfigError(
                f"{fmt.EXPERIMENTS_REF}:{fmt.EXPERIMENTS_FILE} is not a mapping; repair it or"
                f" delete the ref (git update-ref -d {fmt.EXPERIMENTS_REF})"
            )
        _cache[sha] = {
            str(k): ExperimentEntry.from_dict(str(k), v)
            for k, v in parsed.items()
            if isinstance(v, dict)
        }
    return sha, dict(_cache[sha])


def update(
    repo: GitRepo, change: Callable[[dict[str, ExperimentEntry]], str], attempts: int = 20
) -> None:
    """Apply ``change`` (which edits the entries in place and returns a commit message) and
    store the result by compare-and-swap, reading again when another process won."""
    for _ in range(attempts):
        sha, entries = stored(repo)
        message = change(entries)
        data = yamlio.dump({k: entries[k].to_dict() for k in sorted(entries)})
        try:
            write_files_commit(
                repo, fmt.EXPERIMENTS_REF, {fmt.EXPERIMENTS_FILE: data}, message, sha
            )
            return
        except RefChangedError:
            continue
    raise MlflowException(
        f"{fmt.EXPERIMENTS_REF} kept changing under {attempts} attempts; retry",
        "TEMPORARILY_UNAVAILABLE",
    )


@dataclass(frozen=True)
class LabelStats:
    """What runs say about an experiment label: how many, first and last activity (ms)."""

    runs: int
    first: int | None
    last: int | None


def merge(
    entries: dict[str, ExperimentEntry], labels: dict[str, LabelStats]
) -> dict[str, ExperimentEntry]:
    """Every experiment: stored ones, plus one per run label no stored entry claims, plus
    the default experiment, which always exists (as in MLflow)."""
    out = dict(entries)
    claimed = {label: e.id for e in entries.values() for label in e.labels}
    for label, stats in labels.items():
        exp_id = claimed.get(label) or derived_id(label)
        have = out.get(exp_id)
        if have is None:
            out[exp_id] = ExperimentEntry(
                id=exp_id,
                name=name_of(label),
                creation_time=stats.first,
                last_update_time=stats.last,
            )
        elif have.creation_time is None or have.last_update_time is None:
            out[exp_id] = replace(
                have,
                creation_time=have.creation_time if have.creation_time is not None else stats.first,
                last_update_time=max(have.last_update_time or 0, stats.last or 0) or None,
            )
    if DEFAULT_ID not in out:
        out[DEFAULT_ID] = ExperimentEntry(id=DEFAULT_ID, name=DEFAULT_NAME, creation_time=0)
    return out


def id_for_label(entries: dict[str, ExperimentEntry], label: str) -> str:
    for entry in entries.values():
        if label in entry.labels:
            return entry.id
    return derived_id(label)


def find_by_name(entries: Iterable[ExperimentEntry], name: str) -> ExperimentEntry | None:
    for entry in entries:
        if entry.name == name or (name == DEFAULT_LABEL and entry.id == DEFAULT_ID):
            return entry
    return None
