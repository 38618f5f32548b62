"""Reading runs back: list run refs, resolve what the user typed, load a record."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xp import format as fmt
from xp.errors import AmbiguousRunError, RunNotFoundError
from xp.gitstore.refs import list_refs, read_ref
from xp.gitstore.repo import GitRepo, find_repo
from xp.record import Point, RunRecord

if TYPE_CHECKING:
    import pandas as pd
    from dulwich.object_store import DiskObjectStore


@dataclass(frozen=True)
class RunRef:
    id: str
    ref: str
    commit: str


def run_refs(repo: GitRepo) -> dict[str, RunRef]:
    """Run id -> ref; local runs (refs/xp/runs/) win over fetched copies (refs/xp/remotes/)."""
    found: dict[str, RunRef] = {}
    for name, sha in sorted(list_refs(repo.common_dir, "refs/xp/").items(), reverse=True):
        if name.startswith(fmt.RUNS_PREFIX):
            run_id = name[len(fmt.RUNS_PREFIX) :]
        elif name.startswith(fmt.REMOTES_PREFIX) and "/runs/" in name:
            run_id = name.rsplit("/runs/", 1)[1]
            if run_id in found:
                continue
        else:
            continue
        found[run_id] = RunRef(run_id, name, sha)
    return found


def _read_tree_path(store: DiskObjectStore, tree_id: bytes, path: str) -> bytes | None:
    """The id of the object at ``path`` below ``tree_id``, or None."""
    current = tree_id
    for part in path.split("/"):
        tree = store[current]
        try:
            _mode, current = tree[part.encode()]  # type: ignore[index]
        except KeyError:
            return None
    return current


def _series_keys(store: DiskObjectStore, tree_id: bytes, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for item in store[tree_id].items():  # type: ignore[attr-defined]
        name = item.path.decode()
        if stat.S_ISDIR(item.mode):
            keys += _series_keys(store, item.sha, f"{prefix}{name}/")
        elif name.endswith(".tsv"):
            keys.append(prefix + name[:-4])
    return keys


def read_record(repo: GitRepo, commit: str, source: str | None = None) -> RunRecord | None:
    """The run record in ``commit``'s tree, or None when the commit carries none."""
    from dulwich.object_store import DiskObjectStore

    store = DiskObjectStore(str(repo.objects_dir))
    obj = store[commit.encode()]
    record_tree = _read_tree_path(store, obj.tree, fmt.RECORD_DIR)  # type: ignore[attr-defined]
    if record_tree is None:
        return None

    def read(name: str) -> bytes | None:
        sha = _read_tree_path(store, record_tree, name)
        return None if sha is None else store[sha].as_raw_string()

    series_tree = _read_tree_path(store, record_tree, fmt.SERIES_DIR)
    keys = _series_keys(store, series_tree) if series_tree else []
    return RunRecord.from_files(read, keys, source or commit[:12])


@dataclass(frozen=True)
class RunView:
    """A recorded run as ``xp.get_run`` returns it."""

    ref: str
    commit: str
    record: RunRecord

    def __getattr__(self, name: str) -> Any:
        return getattr(self.record, name)

    @property
    def run_id(self) -> str:
        return self.record.id

    def series(self, key: str) -> pd.DataFrame:
        """step / value / timestamp of one metric; a single logged value is a one-row frame."""
        import pandas as pd

        points: list[Point] = self.record.series.get(key) or []
        if not points and key in self.record.metrics:
            points = [(0, self.record.metrics[key], 0)]
        if not points:
            raise RunNotFoundError(
                f"run {self.record.id} has no metric {key!r}; it has:"
                f" {', '.join(sorted(self.record.metrics)) or 'none'}"
            )
        frame = pd.DataFrame(points, columns=["step", "value", "timestamp"])
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
        return frame

    def series_frame(self) -> pd.DataFrame:
        """All step series in long form: metric / step / value / timestamp."""
        import pandas as pd

        frames = [self.series(k).assign(metric=k) for k in sorted(self.record.series)]
        if not frames:
            return pd.DataFrame(columns=["metric", "step", "value", "timestamp"])
        out = pd.concat(frames, ignore_index=True)
        return out[["metric", "step", "value", "timestamp"]]


def resolve(repo: GitRepo, spec: str) -> tuple[str, str]:
    """What the user typed -> (ref or rev, commit sha). See docs/runs.md for the rule."""
    spec = spec.strip()
    if spec.startswith("refs/"):
        sha = read_ref(repo.common_dir, spec)
        if sha is None:
            raise RunNotFoundError(f"no ref {spec!r}; list runs with `xp show`")
        return spec, sha
    refs = run_refs(repo)
    if spec in refs:
        return refs[spec].ref, refs[spec].commit
    matches = [r for r in refs.values() if r.id.startswith(spec.lower())] if spec else []
    if len(matches) == 1:
        return matches[0].ref, matches[0].commit
    if len(matches) > 1:
        listed = ", ".join(sorted(m.id for m in matches)[:6])
        raise AmbiguousRunError(
            f"{spec!r} matches {len(matches)} runs ({listed}); type more characters of the id"
        )
    by_name = [r for r in refs.values() if _name_of(repo, r) == spec]
    if by_name:
        newest = max(by_name, key=lambda r: r.id)
        return newest.ref, newest.commit
    proc = repo.git("rev-parse", "--verify", "-q", f"{spec}^{{commit}}", check=False)
    if proc.returncode == 0 and spec:
        return spec, proc.stdout.decode().strip()
    raise RunNotFoundError(f"no run or commit {spec!r}; list runs with `xp show` or `git log`")


def _name_of(repo: GitRepo, ref: RunRef) -> str | None:
    from xp.errors import XPError

    try:
        record = read_record(repo, ref.commit)
    except (XPError, KeyError):
        return None
    return record.name if record else None


def get_run(spec: str, path: str | os.PathLike[str] | None = None) -> RunView:
    """Load a run by id, id prefix, name, ref or any commit-ish whose tree has a run record."""
    repo = find_repo(path)
    ref, commit = resolve(repo, spec)
    record = read_record(repo, commit, source=spec)
    if record is None:
        raise RunNotFoundError(
            f"{spec!r} ({commit[:12]}) carries no run record ({fmt.RECORD_DIR}/);"
            " list runs with `xp show`"
        )
    return RunView(ref=ref, commit=commit, record=record)


def list_runs(path: str | os.PathLike[str] | None = None) -> list[RunRef]:
    """Every run in the repo, newest first (by id, which sorts by creation time)."""
    repo = find_repo(path)
    return sorted(run_refs(repo).values(), key=lambda r: r.id, reverse=True)
