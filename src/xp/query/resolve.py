"""Reading runs back: list run refs, resolve what the user typed, load a record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from xp import format as fmt
from xp.errors import AmbiguousRunError, RunNotFoundError
from xp.format import RunRef
from xp.gitstore.refs import find_run, list_refs, read_ref
from xp.gitstore.repo import GitRepo
from xp.record.annotations import Annotations, Event

if TYPE_CHECKING:
    import pandas as pd

    from xp.gitstore.trees import FolderFiles
    from xp.record.model import Point, RunRecord, SeriesOpener


@dataclass(frozen=True)
class RunEntry:
    """A run as the refs list it: its ref and the commit the ref points at."""

    run_ref: RunRef
    commit: str

    @property
    def id(self) -> str:
        return self.run_ref.id

    @property
    def ref(self) -> str:
        return str(self.run_ref)


def _best(refs: dict[str, str]) -> dict[str, RunEntry]:
    """Run id -> its ref among ``refs``; a local run (refs/xp/runs/) wins over fetched copies."""
    found: dict[str, RunEntry] = {}
    for name, sha in refs.items():
        ref = RunRef.parse(name)
        if ref is None:
            continue
        have = found.get(ref.id)
        if have is None or (ref.is_local, str(ref)) > (have.run_ref.is_local, have.ref):
            found[ref.id] = RunEntry(ref, sha)
    return found


def runs_by_id(repo: GitRepo) -> dict[str, RunEntry]:
    """Run id -> its ref, for every run (this lists every ref: to find one run, ``find``).
    Runs a fetched catalog lists count as fetched copies (and win over a format-1 copy of
    the same name: after a migration that one is stale)."""
    from xp.gitstore import catalog

    refs = list_refs(repo.common_dir, "refs/xp/")
    refs.update(catalog.remote_runs(repo))
    return _best(refs)


def find(repo: GitRepo, run_id: str) -> RunEntry | None:
    """The ref of run ``run_id`` (local over fetched), in a few lookups whatever the count."""
    from xp.gitstore import catalog

    refs = find_run(repo.common_dir, run_id)
    refs.update(catalog.find(repo, run_id))
    return _best(refs).get(run_id)


def read_record(repo: GitRepo, commit: str, source: str | None = None) -> RunRecord | None:
    """The run record in ``commit``'s tree, or None when the commit carries none."""
    from xp.gitstore.trees import read_folder  # not loaded by `xp tag` (issue 15)
    from xp.record.model import RunRecord  # YAML and the record model: only when a record is read

    folder = read_folder(repo, commit, fmt.RECORD_DIR)
    if folder is None:
        return None
    try:
        keys = [p[:-4] for p in folder.files(fmt.SERIES_DIR) if p.endswith(".tsv")]
        files = _series_files(repo, commit)
        return RunRecord.from_files(
            folder.read,
            keys,
            source or commit[:12],
            read_series=files.read,
            open_series=_series_opener(repo, files),
        )
    finally:
        folder.close()


# Below this size a series file is parsed line by line: pandas' C reader costs ~1 ms a call
# whatever the size, so a run of 2,000 short series (or a crafted one of 100,000) would pay
# seconds for what the line parser does in milliseconds.
C_READER_MIN = 64 << 10


def series_frame(data: bytes, times: bool = True) -> pd.DataFrame | None:
    """A series file in memory as a step / value / timestamp frame by pandas' C parser (a
    1M-point series in a fraction of a second, issue 18), or None when the file is not what
    xp writes; the caller then parses it line by line for an exact error."""
    from xp.query.series_read import read_frame

    return read_frame((len(data), iter([data])), times)


def _series_files(repo: GitRepo, commit: str) -> FolderFiles:
    """Reads one file of ``commit``'s record when a series is first asked for: only the
    series a caller uses are read (issue 18), and the record's trees are parsed once."""
    from xp.gitstore.trees import FolderFiles

    return FolderFiles(repo, commit, fmt.RECORD_DIR)


def _series_opener(repo: GitRepo, files: FolderFiles) -> SeriesOpener:
    from xp.query.series_read import opener

    return opener(repo, files, C_READER_MIN)


@dataclass(frozen=True)
class RunView:
    """A recorded run as ``xp.get_run`` returns it: the record with the tags and experiment
    its annotations (``xp tag``, ``xp move``) changed since; ``notes`` and ``history`` too."""

    ref: str
    commit: str
    record: RunRecord
    annotations: Annotations | None = None
    recorded: RunRecord | None = None  # as committed, before annotations

    @property
    def notes(self) -> list[Event]:
        """``xp note`` texts on this run, oldest first (``.args['text']``, ``.who``, ``.time``)."""
        return self.annotations.notes if self.annotations else []

    @property
    def history(self) -> list[Event]:
        """Every annotation event, oldest first."""
        return list(self.annotations.events) if self.annotations else []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.record, name)

    @property
    def run_id(self) -> str:
        return self.record.id

    def series(self, key: str) -> pd.DataFrame:
        """step / value / timestamp of one metric; a single logged value is a one-row frame."""
        import pandas as pd

        from xp.record.model import LazySeries, parse_series

        series = self.record.series
        points: list[Point] = []
        if isinstance(series, LazySeries) and key in series:
            with series.stream(key) as opened:  # a big file: parsed as git streams it
                if opened is not None and opened[0] >= C_READER_MIN:
                    from xp.query.series_read import read_frame

                    frame = read_frame(opened)
                    if frame is not None:
                        return frame
            data = series.raw(key)
            if data is not None and len(data) >= C_READER_MIN:  # a long series: parsed in C
                frame = series_frame(data)
                if frame is not None:
                    return frame
            if data is not None:
                points = parse_series(data, f"{series.source}:{series.path(key)}")
        else:
            points = series.get(key) or []
        if not points and key in self.record.metrics:
            points = [(0, self.record.metrics[key], None)]  # type: ignore[list-item]
        if not points:
            raise RunNotFoundError(
                f"run {self.record.id} has no metric {key!r}; it has:"
                f" {', '.join(sorted(self.record.metrics)) or 'none'}"
            )
        frame = pd.DataFrame(points, columns=["step", "value", "timestamp"])
        # a time pandas cannot hold (a record from anyone: year 30,000) is NaT, not an error
        stamps = frame["timestamp"]
        frame["timestamp"] = pd.to_datetime(stamps, unit="ms", utc=True, errors="coerce")
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
    run_ref: RunRef | None = None  # set when the spec named a run
    others: tuple[str, ...] = ()  # ids of older runs with the same name

    @property
    def is_workspace(self) -> bool:
        return self.commit is None

    @property
    def run_id(self) -> str | None:
        return self.run_ref.id if self.run_ref else None


def resolve_spec(repo: GitRepo, spec: str, *, allow_workspace: bool = False) -> Resolved:
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
            return Resolved(spec, spec, sha, RunRef.parse(spec))
        copy = RunRef.parse(spec)
        if copy is not None and not copy.is_local:  # a run a fetched catalog lists
            from xp.gitstore import catalog

            sha = catalog.find(repo, copy.id).get(spec)
            if sha is not None:
                return Resolved(spec, spec, sha, copy)
        from xp.gitstore.trees import rev_parse_commit

        sha = rev_parse_commit(repo, spec)  # refs/xp/runs/<id>~1 and the like
        if sha is None:
            raise RunNotFoundError(f"no ref {spec!r}; list runs with `xp show`")
        return Resolved(spec, spec, sha)
    low = spec.lower()
    entry = find(repo, low)  # an id (any name a run ref may have)
    if entry is not None:
        return _of(spec, entry)
    from xp.query.index import open_index

    with open_index(repo) as index:
        prefix: list[RunEntry] = []
        matches = 0
        if set(low) <= _B32_CHARS:
            found, matches = index.runs_with_prefix(low, 5)
            prefix = [RunEntry(ref, commit) for ref, commit in found]
        if matches == 1:
            return _of(spec, prefix[0])
        named = [RunEntry(ref, commit) for ref, commit in index.runs_named(spec)]
    if named:
        newest, older = named[0], named[1:]
        return _of(spec, newest, tuple(r.id for r in older))
    if matches > 1:
        listed = ", ".join(m.id for m in prefix)
        more = f" and {matches - 5} more" if matches > 5 else ""
        raise AmbiguousRunError(
            f"{spec!r} is the start of {matches} run ids ({listed}{more});"
            " type more characters, or list runs with `xp show`"
        )
    from xp.gitstore.trees import rev_parse_commit

    sha = rev_parse_commit(repo, spec)
    if sha is not None:
        return Resolved(spec, spec, sha)
    raise RunNotFoundError(f"no run, ref or commit {spec!r}{_suggest(repo, spec)}")


def _of(spec: str, entry: RunEntry, others: tuple[str, ...] = ()) -> Resolved:
    return Resolved(spec, entry.ref, entry.commit, entry.run_ref, others)


def resolve_run(repo: GitRepo, spec: str) -> RunEntry:
    """What the user typed, which must name a run (not a plain commit or branch)."""
    found = resolve_spec(repo, spec)
    if found.run_ref is None or found.commit is None:
        raise RunNotFoundError(
            f"{spec!r} is a commit, not a run; name a run by id or name (list runs with `xp show`)"
        )
    return RunEntry(found.run_ref, found.commit)


def resolve(repo: GitRepo, spec: str) -> tuple[str, str]:
    """What the user typed -> (ref or rev, commit sha); the rule is ``resolve_spec``'s."""
    found = resolve_spec(repo, spec)
    assert found.commit is not None
    return found.ref, found.commit


def _suggest(repo: GitRepo, spec: str) -> str:
    """'; did you mean ...?' from run names and ids, plus how to list runs."""
    import difflib

    from xp.query.index import open_index

    with open_index(repo) as index:
        names = index.recent_names(5000)
    close = difflib.get_close_matches(spec, names, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"{hint}; list runs with `xp show` (branches and tags with `git log --oneline --all`)"


def load_run(repo: GitRepo, spec: str | Resolved) -> RunView:
    """The run ``spec`` names (any commit whose tree carries a record); it must exist."""
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
    from xp.query.annotations import annotate, for_commits

    ann = for_commits(repo, [commit]).runs.get(commit)
    return RunView(ref, commit, annotate(record, ann), ann, record)


def list_run_entries(repo: GitRepo) -> list[RunEntry]:
    """Every run in the repo, newest first (by id, which sorts by creation time)."""
    return sorted(runs_by_id(repo).values(), key=lambda r: r.id, reverse=True)
