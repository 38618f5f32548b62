"""Annotations in the index: rows carry the tags and experiment as the notes make them now.

A row is the record plus the annotations of every notes ref (``xp.query.annotations``), so
``xp show``, ``search_runs``, ``--where "tags.reviewed = 'yes'"`` and the UI see what
``get_run`` sees. The index remembers the notes refs' tips (``NotesState``, in ``meta``);
when one moves, git says which notes changed (``git diff-tree`` of the two notes commits)
and only those runs' rows are read again. When that cannot be told (the old notes commit
was garbage-collected) the caller reads every row again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from xp.errors import GitError
from xp.gitstore import notes
from xp.gitstore.repo import GitRepo
from xp.query.annotations import for_commits
from xp.query.index.rows import Stored, retagged
from xp.record.annotations import Annotations


@dataclass(frozen=True)
class NotesState:
    tips: dict[str, str]  # every notes ref xp reads -> its tip
    readable: frozenset[str]  # the refs whose tip is a commit (others are ignored)

    def valid(self) -> dict[str, str]:
        return {ref: sha for ref, sha in self.tips.items() if ref in self.readable}

    def encode(self) -> str:
        return json.dumps({"tips": self.tips, "readable": sorted(self.readable)}, sort_keys=True)

    @staticmethod
    def decode(text: str | None) -> NotesState | None:
        try:
            data = json.loads(text or "")
            return NotesState(dict(data["tips"]), frozenset(data["readable"]))
        except (ValueError, KeyError, TypeError):
            return None


def tips(repo: GitRepo) -> dict[str, str]:
    """The notes refs' tips now: a few ref reads, no git process."""
    return notes.tips(repo)


def state(repo: GitRepo, now: dict[str, str], before: NotesState | None) -> NotesState:
    """``now`` with each tip checked once: a notes ref someone pointed at a blob is ignored."""
    readable = {
        ref
        for ref, sha in now.items()
        if (before is not None and ref in before.readable and before.tips.get(ref) == sha)
        or notes.is_commit(repo, sha)
    }
    return NotesState(now, frozenset(readable))


def changed(repo: GitRepo, before: NotesState | None, after: NotesState) -> set[str] | None:
    """The objects whose annotations may differ between the two states; None when git can
    no longer tell (then every row is read again)."""
    old = before.valid() if before is not None else {}
    new = after.valid()
    out: set[str] = set()
    try:
        for ref in sorted(old.keys() | new.keys()):
            a, b = old.get(ref), new.get(ref)
            if a == b:
                continue
            if a is None or b is None:
                out.update(n.commit for n in notes.listing(repo, b or a or ""))
            else:
                out.update(notes.changed(repo, a, b))
    except GitError:
        return None
    return out


def apply(repo: GitRepo, items: list[Stored], current: NotesState | None) -> list[Stored]:
    """``items`` (read from records) with the annotations of ``current`` applied. Lines that
    do not parse are skipped here; ``xp log RUN`` and ``get_run`` name them."""
    valid = current.valid() if current is not None else {}
    if not valid or not items:
        return items
    found = for_commits(repo, [r.commit for r in items], valid).runs
    return [annotated(r, found.get(r.commit)) for r in items]


def annotated(item: Stored, ann: Annotations | None) -> Stored:
    if ann is None or not ann.events:
        return item
    recorded = {k[5:]: str(txt) for k, _num, txt in item.cells if k.startswith("tags.")}
    return retagged(item, ann.apply_tags(recorded), ann.experiment or item.experiment)
