"""The annotations of runs as every clone's notes say them: the local notes ref and each
fetched copy, read as one list per run (the union ``cat_sort_uniq`` would merge them into),
so a fetched annotation shows before anything is merged, and reading never writes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from xp.errors import GitError
from xp.gitstore import notes
from xp.gitstore.repo import GitRepo
from xp.record.annotations import MAX_NOTE_BYTES, Annotations, lines_of
from xp.record.annotations import replay as replay_lines

if TYPE_CHECKING:
    from xp.record.model import RunRecord


@dataclass(frozen=True)
class Read:
    runs: dict[str, Annotations]  # commit -> its annotations (commits without any left out)
    warnings: list[str]


def for_commits(repo: GitRepo, commits: list[str], tips: dict[str, str] | None = None) -> Read:
    """The annotations of ``commits`` from every notes ref xp reads (or from ``tips``,
    notes ref -> tip, when the caller has read them already)."""
    lines: dict[str, list[str]] = {}
    warnings: list[str] = []
    for ref, tip in sorted((notes.tips(repo) if tips is None else tips).items()):
        try:
            found = notes.read(repo, tip, commits, MAX_NOTE_BYTES)
        except GitError as exc:
            warnings.append(f"annotations in {ref} ignored: {exc}")
            continue
        for commit, data in found.items():
            if data is None:
                warnings.append(
                    f"the note on {commit[:12]} in {ref} is over {MAX_NOTE_BYTES:,} bytes; ignored"
                )
                continue
            lines.setdefault(commit, []).extend(lines_of(data))
    runs = {commit: replay_lines(found) for commit, found in lines.items()}
    for commit, ann in runs.items():
        if ann.skipped:
            warnings.append(
                f"{ann.skipped} annotation line(s) on {commit[:12]} could not be read and were"
                " ignored (written by a later xp, or not by xp)"
            )
    return Read(runs, warnings)


def annotate(record: RunRecord, ann: Annotations | None) -> RunRecord:
    """The record as the run is seen now: tags and experiment with the annotations applied."""
    if ann is None or not ann.events:
        return record
    meta = dict(record.meta)
    if ann.experiment is not None:
        meta["experiment"] = ann.experiment
    return replace(record, tags=ann.apply_tags(record.tags), meta=meta)
