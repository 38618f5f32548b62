"""``xp tag`` / ``xp note`` / ``xp move`` / ``xp log RUN``: annotating runs after the fact.

Each change is one event line appended to the git note on the run's commit (docs/format.md,
section 12; ``record.annotations``), so the run commit is never rewritten, every change is
kept with who made it and when, and plain ``git push`` / ``git fetch`` carry the notes once
``xp init`` has added their refspecs. Before writing, annotations fetched from other clones
are merged in (``merge_fetched``: git's ``cat_sort_uniq``, the union of both sides' lines),
so the next push is a fast-forward; ``xp pull`` and ``xp push`` merge too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xp import format as fmt
from xp import fsutil
from xp.errors import GitError, InvalidValueError
from xp.gitstore import notes
from xp.gitstore.identity import identity
from xp.gitstore.repo import GitRepo
from xp.query.annotations import for_commits
from xp.query.resolve import RunEntry, read_record, resolve_run
from xp.record import annotations as ann
from xp.record.annotations import Event


@dataclass(frozen=True)
class Annotated:
    run_id: str
    commit: str
    events: list[Event]  # what was written now
    tags: dict[str, str]  # the run's tags after the change
    experiment: str


@dataclass(frozen=True)
class Merged:
    ref: str
    outcome: str  # up to date, fast-forward, merged, or why it was skipped


_MERGED = "notes-merged"  # <git common dir>/xp/notes-merged: "<ref> <tip>" lines merged last


def merge_fetched(repo: GitRepo) -> list[Merged]:
    """Merge every fetched notes ref into ``refs/notes/xp`` (``cat_sort_uniq``); a fetched
    tip merged before is not looked at again (every ``xp tag`` asks)."""
    state = repo.xp_dir / _MERGED
    try:
        done = dict(ln.split(" ", 1) for ln in state.read_text().splitlines() if " " in ln)
    except OSError:
        done = {}
    out = []
    fetched = notes.fetched_refs(repo)
    for ref, tip in sorted(fetched.items()):
        if done.get(ref) == tip:
            out.append(Merged(ref, "up to date"))
            continue
        try:
            out.append(Merged(ref, notes.merge(repo, tip)))
        except GitError as exc:
            out.append(Merged(ref, f"skipped: {exc}"))
    if fetched != done:
        with contextlib.suppress(OSError):  # derived: at worst the next call merges again
            fsutil.atomic_write(state, "".join(f"{r} {t}\n" for r, t in sorted(fetched.items())))
    return out


def _who(repo: GitRepo) -> str:
    return identity(str(repo.worktree)).decode("utf-8", "replace")


def _write(repo: GitRepo, entry: RunEntry, events: list[Event], summary: str) -> Annotated:
    merge_fetched(repo)
    written = notes.append(
        repo,
        commit=entry.commit,
        lines=[e.line() for e in events],
        message=f"xp: {summary} on run {entry.id}\n\nxp-run: {entry.id}\n",
        max_bytes=ann.MAX_NOTE_BYTES,
    )
    now = ann.replay(ann.lines_of(written.note))
    recorded_tags, experiment = _recorded(repo, entry.commit)
    return Annotated(
        entry.id,
        entry.commit,
        events,
        now.apply_tags(recorded_tags),
        now.experiment or experiment,
    )


def _recorded(repo: GitRepo, commit: str) -> tuple[dict[str, str], str]:
    """The run's recorded tags and experiment, from two small blobs (no record load)."""
    from xp.gitstore.catfile import read_objects
    from xp.record.fastyaml import load_flat

    names = {k: f"{commit}:{fmt.RECORD_DIR}/{k}" for k in (fmt.TAGS_FILE, fmt.META_FILE)}
    blobs = dict(read_objects(repo, list(names.values())))
    parsed: dict[str, Any] = {}
    for key, name in names.items():
        data = blobs.get(name)
        if data is not None:
            value = load_flat(data)
            if value is None:
                from xp.record import yamlio  # PyYAML only for what fastyaml is unsure of

                value = yamlio.load(data, name)
            parsed[key] = value
    tags = parsed.get(fmt.TAGS_FILE) or {}
    meta = parsed.get(fmt.META_FILE) or {}
    return (
        {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {},
        str(meta.get("experiment") or "default") if isinstance(meta, dict) else "default",
    )


def tag(
    repo: GitRepo,
    *,
    run: str,
    tags: Mapping[str, Any] | None = None,
    remove: Sequence[str] = (),
) -> Annotated:
    """Set ``tags`` and remove the ``remove`` keys on a finished run."""
    tags = dict(tags or {})
    both = set(tags) & set(remove)
    if both:
        raise InvalidValueError(f"tag {sorted(both)[0]!r} is both set and removed; pick one")
    if not tags and not remove:
        raise InvalidValueError("nothing to change: give KEY=VALUE or --rm KEY")
    entry = resolve_run(repo, run)
    who = _who(repo)
    events = [ann.tag_event(k, v, who) for k, v in tags.items()]
    events += [ann.untag_event(k, who) for k in remove]
    summary = " ".join([*(f"{k}={v}" for k, v in tags.items()), *(f"-{k}" for k in remove)])
    return _write(repo, entry, events, f"tag {summary}"[:200])


def note(repo: GitRepo, *, run: str, text: str) -> Annotated:
    """Add a free-text note to a run."""
    event = ann.note_event(text, _who(repo))
    entry = resolve_run(repo, run)
    return _write(repo, entry, [event], "note")


def move(repo: GitRepo, *, runs: Sequence[str], experiment: str) -> list[Annotated]:
    """Put runs in another experiment (an annotation: the record keeps where it started)."""
    if not runs:
        raise InvalidValueError("name the runs to move")
    who = _who(repo)
    entries = [resolve_run(repo, r) for r in runs]
    return [
        _write(repo, e, [ann.move_event(experiment, who)], f"move to {experiment}") for e in entries
    ]


@dataclass(frozen=True)
class Change:
    """One line of ``xp log RUN``: when, who, what, on which run."""

    run_id: str
    time: str
    who: str
    what: str


def history(repo: GitRepo, *, run: str) -> tuple[list[Change], list[str]]:
    """A run's story: recorded (from its record), then every annotation, oldest first;
    and warnings about annotation lines that could not be read."""
    entry = resolve_run(repo, run)
    record = read_record(repo, entry.commit)
    out = []
    if record is not None:
        user = str(record.meta.get("user") or "?")
        start = str(record.meta.get("start_time") or "")
        out.append(
            Change(
                entry.id,
                start,
                user,
                f"recorded: {record.name} ({record.status}) in experiment {record.experiment}",
            )
        )
    found = for_commits(repo, [entry.commit])
    a = found.runs.get(entry.commit)
    for e in a.events if a else ():
        out.append(Change(entry.id, e.time, e.who, e.describe()))
    return out, found.warnings


def recent(repo: GitRepo, *, limit: int = 20) -> list[Change]:
    """The newest annotation events across every run this clone knows, newest first."""
    from xp.query.resolve import runs_by_id

    by_commit = {e.commit: e.id for e in runs_by_id(repo).values()}
    lines: dict[str, list[str]] = {}
    for _ref, tip in sorted(notes.tips(repo).items()):
        try:
            listing = [n for n in notes.listing(repo, tip) if n.commit in by_commit]
        except GitError:
            continue
        small = [n for n in listing if n.size <= ann.MAX_NOTE_BYTES]
        data = notes.blobs(repo, [n.blob for n in small])
        for n in small:
            if n.blob in data:
                lines.setdefault(n.commit, []).extend(ann.lines_of(data[n.blob]))
    changes = [
        Change(by_commit[commit], e.time, e.who, e.describe())
        for commit, found in lines.items()
        for e in ann.replay(found).events
    ]
    changes.sort(key=lambda c: c.time, reverse=True)
    return changes[:limit]
