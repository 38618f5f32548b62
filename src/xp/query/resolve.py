"""Reading runs back: list run refs, resolve what the user typed, load a record."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from dulwich.objects import ObjectID

from xp import format as fmt
from xp.errors import AmbiguousRunError, RunNotFoundError
from xp.gitstore.refs import list_refs, read_ref
from xp.gitstore.repo import GitRepo, find_repo
from xp.record.model import Point, RunRecord

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
    from dulwich.objects import Tree

    current = tree_id
    for part in path.split("/"):
        tree = store[ObjectID(current)]
        if not isinstance(tree, Tree):
            return None
        try:
            _mode, current = tree[part.encode()]
        except KeyError:
            return None
    return current


def _series_keys(store: DiskObjectStore, tree_id: bytes, prefix: str = "") -> list[str]:
    from dulwich.objects import Tree

    keys: list[str] = []
    tree = store[ObjectID(tree_id)]
    if not isinstance(tree, Tree):
        return keys
    for item in tree.items():
        name = item.path.decode()
        if stat.S_ISDIR(item.mode):
            keys += _series_keys(store, item.sha, f"{prefix}{name}/")
        elif name.endswith(".tsv"):
            keys.append(prefix + name[:-4])
    return keys


def read_record(repo: GitRepo, commit: str, source: str | None = None) -> RunRecord | None:
    """The run record in ``commit``'s tree, or None when the commit carries none."""
    from dulwich.object_store import DiskObjectStore
    from dulwich.objects import Commit

    store = DiskObjectStore(str(repo.objects_dir))
    obj = store[ObjectID(commit.encode())]
    if not isinstance(obj, Commit):
        return None
    record_tree = _read_tree_path(store, obj.tree, fmt.RECORD_DIR)
    if record_tree is None:
        return None

    def read(name: str) -> bytes | None:
        sha = _read_tree_path(store, record_tree, name)
        return None if sha is None else store[ObjectID(sha)].as_raw_string()

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
            points = [(0, self.record.metrics[key], None)]  # type: ignore[list-item]
        if not points:
            raise RunNotFoundError(
                f"run {self.record.id} has no metric {key!r}; it has:"
                f" {', '.join(sorted(self.record.metrics)) or 'none'}"
            )
        frame = pd.DataFrame(points, columns=["step", "value", "timestamp"])
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
        return frame  # type: ignore[no-any-return]

    def series_frame(self) -> pd.DataFrame:
        """All step series in long form: metric / step / value / timestamp."""
        import pandas as pd

        frames = [self.series(k).assign(metric=k) for k in sorted(self.record.series)]
        columns = ["metric", "step", "value", "timestamp"]
        if not frames:
            return cast("pd.DataFrame", pd.DataFrame({c: [] for c in columns}))
        out = pd.concat(frames, ignore_index=True)
        return cast("pd.DataFrame", out.reindex(columns=columns))


WORKSPACE = "workspace"
_B32_CHARS = set("0123456789abcdefghjkmnpqrstvwxyz")


@dataclass(frozen=True)
class Resolved:
    """What a spec names: a run ref, a commit carrying a record, or the workspace."""

    spec: str
    ref: str  # the ref, or the revision the user typed, or "workspace"
    commit: str | None  # None for the workspace
    run_id: str | None = None  # set when the spec named a run ref
    others: tuple[str, ...] = ()  # ids of older runs with the same name

    @property
    def is_workspace(self) -> bool:
        return self.commit is None


def resolve_spec(repo: GitRepo, spec: str, allow_workspace: bool = False) -> Resolved:
    """The one resolution rule (docs/runs.md), tried in this order:

    1. ``workspace``: the params/metrics files as they are now (where the caller allows it);
    2. a full ref (``refs/xp/runs/<id>``, ``refs/heads/main``);
    3. a run id, then a unique id prefix (case-insensitive);
    4. a run name: the newest run of that name wins, the others are listed in ``others``;
    5. any git commit-ish (branch, tag, sha, ``HEAD~2``), checked for a record by the caller.
    """
    spec = spec.strip()
    if not spec:
        raise RunNotFoundError("no run given; name a run id, name, ref or commit (`xp show`)")
    if spec == WORKSPACE:
        if not allow_workspace:
            raise RunNotFoundError(
                "'workspace' is the unrecorded working tree, not a run; record it with"
                " `xp commit`, or compare it with `xp diff RUN workspace`"
            )
        return Resolved(spec, WORKSPACE, None)
    if spec.startswith("refs/xp/"):
        sha = read_ref(repo.common_dir, spec)
        if sha is not None:
            return Resolved(spec, spec, sha, _run_id_of(spec))
        sha = _rev_parse(repo, spec)  # refs/xp/runs/<id>~1 and the like
        if sha is None:
            raise RunNotFoundError(f"no ref {spec!r}; list runs with `xp show`")
        return Resolved(spec, spec, sha)
    refs = run_refs(repo)
    low = spec.lower()
    if low in refs:
        return Resolved(spec, refs[low].ref, refs[low].commit, low)
    prefix = (
        [r for r in refs.values() if r.id.startswith(low)]
        if set(low) <= _B32_CHARS and not spec.startswith("refs/")
        else []
    )
    if len(prefix) == 1:
        return Resolved(spec, prefix[0].ref, prefix[0].commit, prefix[0].id)
    named = _runs_named(repo, spec) if refs else []
    if named:
        (run_id, ref, commit), older = named[0], named[1:]
        return Resolved(spec, ref, commit, run_id, tuple(r[0] for r in older))
    if len(prefix) > 1:
        listed = ", ".join(sorted((m.id for m in prefix), reverse=True)[:5])
        more = f" and {len(prefix) - 5} more" if len(prefix) > 5 else ""
        raise AmbiguousRunError(
            f"{spec!r} is the start of {len(prefix)} run ids ({listed}{more});"
            " type more characters, or list runs with `xp show`"
        )
    sha = _rev_parse(repo, spec)
    if sha is not None:
        return Resolved(spec, spec, sha)
    raise RunNotFoundError(f"no run, ref or commit {spec!r}{_suggest(repo, spec)}")


def resolve(repo: GitRepo, spec: str) -> tuple[str, str]:
    """What the user typed -> (ref or rev, commit sha); the rule is ``resolve_spec``'s."""
    found = resolve_spec(repo, spec)
    assert found.commit is not None
    return found.ref, found.commit


def _run_id_of(ref: str) -> str | None:
    from xp.query.index import run_id_of

    return run_id_of(ref)


def _rev_parse(repo: GitRepo, spec: str) -> str | None:
    proc = repo.git(
        "rev-parse", "--verify", "-q", "--end-of-options", f"{spec}^{{commit}}", check=False
    )
    out = proc.stdout.decode().strip()
    return out if proc.returncode == 0 and len(out) == 40 else None


def _runs_named(repo: GitRepo, name: str) -> list[tuple[str, str, str]]:
    """(run id, ref, commit) of the runs named ``name``, newest first."""
    from xp.query.index import open_index

    with open_index(repo) as index:
        return [
            (str(a), str(b), str(c))
            for a, b, c in index.conn.execute(
                "SELECT c.run_id, c.ref, c.commit_sha FROM runs r"
                " JOIN current c ON c.commit_sha = r.commit_sha"
                " WHERE r.name = ? ORDER BY c.run_id DESC",
                (name,),
            )
        ]


def _suggest(repo: GitRepo, spec: str) -> str:
    """'; did you mean ...?' from run names and ids, plus how to list runs."""
    import difflib

    from xp.query.index import open_index

    with open_index(repo) as index:
        names = [
            str(r[0])
            for r in index.conn.execute(
                "SELECT DISTINCT r.name FROM runs r JOIN current c ON c.commit_sha = r.commit_sha"
                " ORDER BY c.run_id DESC LIMIT 5000"
            )
        ]
    close = difflib.get_close_matches(spec, names, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"{hint}; list runs with `xp show` (branches and tags with `git log --oneline --all`)"


def get_run(spec: str, path: str | os.PathLike[str] | None = None) -> RunView:
    """Load a run by id, id prefix, name, ref or any commit-ish whose tree has a run record."""
    repo = find_repo(path)
    return load_run(repo, spec)


def load_run(repo: GitRepo, spec: str | Resolved) -> RunView:
    """``get_run`` for an open repo; the record must exist."""
    found = spec if isinstance(spec, Resolved) else resolve_spec(repo, spec)
    if found.commit is None:
        raise RunNotFoundError("'workspace' is not a recorded run; use a run id or name")
    ref, commit, spec = found.ref, found.commit, found.spec
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
