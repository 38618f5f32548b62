"""``xp recover``: commit the journal of every run whose process died, as ``crashed``
(or with the status its ``end_run`` had reached). Every xp command and ``start_run`` call
this first, so a killed run shows up without anyone asking.

Recovery never blocks the command that asked for it: a journal that cannot be committed now
(a full disk) stays for the next attempt, and one that can never be (its header is
unreadable, its values cannot form a record) is set aside as ``<id>.failed`` (``.corrupt``
without a header) with the reason as its last line, and said once.
``xp recover --retry-failed`` puts set-aside journals back, e.g. after an upgrade of xp.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from xp import format as fmt
from xp.artifacts import cache
from xp.errors import RefChangedError, StorageError, XPError
from xp.gitstore import protect
from xp.gitstore.refs import read_ref, update_ref
from xp.gitstore.repo import GitRepo

if TYPE_CHECKING:
    from xp.record.header import RunHeader
    from xp.record.journal import RunState
    from xp.record.model import RunRecord
    from xp.record.spill import SeriesSpill


@dataclass
class Recovery:
    """What one pass did: runs recorded, journals set aside, journals left for later."""

    recovered: list[tuple[str, str]] = field(default_factory=list)  # (run id, status)
    set_aside: list[tuple[str, Path, str]] = field(default_factory=list)  # (id, file, reason)
    pending: list[tuple[str, str]] = field(default_factory=list)  # (id, reason): retried later
    damaged: list[tuple[str, int]] = field(default_factory=list)  # (id, lines dropped)
    # parts a child logged after the run's owner had committed it (a child that outlived it)
    merged: list[tuple[str, int]] = field(default_factory=list)  # (id, parts) added to the run
    orphaned: list[tuple[str, int, str]] = field(default_factory=list)  # (id, parts, why kept)


def recover(repo: GitRepo) -> list[tuple[str, str]]:
    """Commit the journal of every dead run: (run id, status) of each one recovered."""
    return recover_all(repo).recovered


def recover_all(repo: GitRepo) -> Recovery:
    """Commit every dead run's journal; never raises for one journal's trouble."""
    result = Recovery()
    try:
        with os.scandir(repo.xp_dir / "journal") as entries:
            if next(entries, None) is None:
                return result
    except (FileNotFoundError, NotADirectoryError):
        return result  # no journal at all: every command skips the imports below
    from xp.record.journal import SUFFIX, dead_journals

    for path, fd in dead_journals(repo.xp_dir / "journal"):
        run_id = path.name[: -len(SUFFIX)]
        try:
            _recover_one(repo, path, fd, run_id, result)
        finally:
            os.close(fd)
    _merge_orphans(repo, result)
    return result


def _merge_orphans(repo: GitRepo, result: Recovery) -> None:
    """Add the parts whose run has no journal any more (its owner committed it while a child
    still logged) to that run, in a new commit on its ref (a fast-forward, as a resumed run's
    session); parts of a run this clone does not have are kept and reported."""
    from xp.record.journal import CORRUPT, FAILED, PART, SUFFIX

    journal_dir = repo.xp_dir / "journal"
    try:
        names = os.listdir(journal_dir)
    except OSError:
        return
    owners = {n.split(".")[0] for n in names if n.endswith((SUFFIX, FAILED, CORRUPT))}
    for run_id in sorted({n.split("-")[0] for n in names if n.endswith(PART)} - owners):
        try:
            _merge_orphan(repo, journal_dir, run_id, result)
        except StorageError as exc:
            result.pending.append((run_id, _reason(exc)))
        except (XPError, ValueError, KeyError, TypeError, OverflowError, UnicodeError) as exc:
            count = sum(1 for n in names if n.startswith(f"{run_id}-") and n.endswith(PART))
            result.orphaned.append((run_id, count, _reason(exc)))


def _merge_orphan(repo: GitRepo, journal_dir: Path, run_id: str, result: Recovery) -> None:
    import dataclasses

    from xp.gitstore.commit import tree_of
    from xp.record.build import build_record, parse_time, state_of_record
    from xp.record.header import RunHeader
    from xp.record.journal import merge_parts
    from xp.tracking.record_commit import commit_record
    from xp.tracking.run import read_record

    ref = fmt.run_ref(run_id)
    sha = read_ref(repo.common_dir, ref)
    if sha is None:
        raise ValueError(f"run {run_id} is not in this clone; fetch it, then `xp recover`")
    record = read_record(repo, sha)
    if record is None:
        raise ValueError(f"run {run_id}'s commit {sha[:12]} has no readable record")
    start = parse_time(record.meta.get("start_time")) or 0.0
    end = parse_time(record.meta.get("end_time")) or start
    header = RunHeader(id=run_id, name=record.name, start_time=start)
    state = state_of_record(record, header)
    parts = merge_parts(state, journal_dir)
    if not parts:
        return  # every part is still being written
    merged = build_record(state, record.status, end, ())
    warnings = [*record.meta.get("warnings", []), *header.warnings]
    warnings.append(
        f"{len(parts)} part(s) logged after the run was recorded were added by xp recover"
    )
    new = dataclasses.replace(
        record,
        params=merged.params,
        metrics=merged.metrics,
        series={**record.series, **merged.series},
        tags=merged.tags,
        artifacts=merged.artifacts,
        inputs=merged.inputs,
        media=merged.media,
        datasets=merged.datasets,
        models=merged.models,
        meta={**record.meta, "warnings": warnings},
    )
    session = RunHeader(
        id=run_id, name=record.name, start_time=start, previous=sha, ref_expected=sha
    )
    tree = tree_of(repo, sha)
    try:
        commit_record(repo, new, tree, None, start, end, check=True, header=session)
    except RefChangedError:
        return  # another process merged them (or moved the run) first: its turn wins
    for part in parts:
        part.unlink(missing_ok=True)
    result.merged.append((run_id, len(parts)))


def _recover_one(repo: GitRepo, path: Path, fd: int, run_id: str, result: Recovery) -> None:
    from xp import fsutil
    from xp.record.journal import CORRUPT, replay
    from xp.record.spill import SeriesSpill

    # points go to a spill as the journal is read: a big run recovers in bounded memory
    spill = SeriesSpill(lambda: fsutil.private_tmp(repo.xp_dir))
    try:
        try:
            with open(fd, "rb", closefd=False) as fh:
                first = fh.readline()
                fh.seek(0)
                state = replay(fh, base=_base(repo, first, spill), spill=spill)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            result.set_aside.append((run_id, _set_aside(path, CORRUPT, exc), _reason(exc)))
            return
        _commit_state(repo, path, fd, run_id, state, result)
    finally:
        spill.close()


def _commit_state(
    repo: GitRepo, path: Path, fd: int, run_id: str, state: RunState, result: Recovery
) -> None:
    from xp.record.build import build_record
    from xp.record.journal import FAILED, merge_parts
    from xp.tracking.record_commit import commit_record

    try:
        end = state.end or {}
        status = str(end.get("status", "crashed"))
        status = status if status in fmt.END_STATUSES else "crashed"
        end_time = float(end.get("end_time") or os.fstat(fd).st_mtime)
        parts = merge_parts(state, path.parent)
        spool = fmt.output_spool(path.parent, state.header.id)  # a killed `xp run`'s output
        if spool.is_file() and spool.stat().st_size and fmt.RUN_LOG_ARTIFACT not in state.artifacts:
            (log,) = cache.add_path(cache.cache_dir(repo), spool, fmt.RUN_LOG_ARTIFACT)
            state.artifacts[log.path] = log
        if state.damaged:
            state.header.warnings.append(
                f"{state.damaged} journal lines failed their checksum and were dropped"
            )
            result.damaged.append((run_id, state.damaged))
        record = build_record(state, status, end_time, ())
        h = state.header
        if h.tree is None:
            raise ValueError("the journal has no workspace snapshot")
        ref = fmt.run_ref(record.id)
        existing = read_ref(repo.common_dir, ref)
        if h.previous is not None:  # a continued run: its ref moves forward
            if _continue(repo, record, h, end_time):
                result.recovered.append((record.id, status))
        elif existing is None:
            commit_record(repo, record, h.tree, h.baseline, h.start_time, end_time, check=True)
            result.recovered.append((record.id, status))
        elif protect.missing_objects(repo, existing):
            # the process died while a git gc pruned its fresh commit: commit it again
            sha = commit_record(
                repo, record, h.tree, h.baseline, h.start_time, end_time, check=True, ref=None
            )
            update_ref(repo.common_dir, ref, sha, existing)
            result.recovered.append((record.id, status))
    except StorageError as exc:
        result.pending.append((run_id, _reason(exc)))  # still cannot write: try again later
        return
    except (XPError, ValueError, KeyError, TypeError, OverflowError, UnicodeError) as exc:
        result.set_aside.append((run_id, _set_aside(path, FAILED, exc), _reason(exc)))
        return
    for part in parts:  # before the journal: a part without it is an orphan to recover
        part.unlink(missing_ok=True)
    os.unlink(path)
    spool.unlink(missing_ok=True)
    protect.release(repo, run_id)


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _set_aside(path: Path, suffix: str, exc: BaseException) -> Path:
    """Rename a journal that can never be committed, its reason appended as an ``X`` line."""
    from xp.record.journal import seal

    reason = {"reason": _reason(exc), "time": time.time()}
    with contextlib.suppress(OSError), open(path, "ab") as fh:
        fh.write(b"\n" + seal(f"X\t{json.dumps(reason, ensure_ascii=False)}"))
    target = path.with_suffix(suffix)
    os.replace(path, target)
    return target


def retry_failed(repo: GitRepo) -> list[str]:
    """Put every set-aside journal back in line for recovery; the run ids."""
    from xp.record.journal import CORRUPT, FAILED, SUFFIX

    journal_dir = repo.xp_dir / "journal"
    ids = []
    with contextlib.suppress(OSError):
        for name in sorted(os.listdir(journal_dir)):
            if name.endswith((FAILED, CORRUPT)):
                source = journal_dir / name
                target = source.with_suffix(SUFFIX)
                if not target.exists():
                    os.replace(source, target)
                    ids.append(source.stem)
    return ids


def release_orphans(repo: GitRepo) -> list[str]:
    """Drop the ``.keep`` of packs kept for runs that have no journal left (a process that
    died between its commit and the cleanup)."""
    journal_dir = repo.xp_dir / "journal"
    try:
        names = set(os.listdir(journal_dir))
    except OSError:
        names = set()
    live = {n.split(".")[0].split("-")[0] for n in names}
    gone = []
    for run_id, keep in protect.kept_runs(repo).items():
        if run_id not in live:
            keep.unlink(missing_ok=True)
            gone.append(run_id)
    return gone


def _base(repo: GitRepo, data: bytes, spill: SeriesSpill | None = None) -> RunState | None:
    """What a continued run had before its last session: its previous commit's record."""
    from xp.record.build import state_of_record
    from xp.record.journal import replay
    from xp.tracking.run import read_record

    header = replay(data[: data.find(b"\n") + 1]).header if b"\n" in data else None
    if header is None or header.previous is None:
        return None
    record = read_record(repo, header.previous)
    if record is None:
        raise ValueError(f"the run's previous commit {header.previous[:12]} has no record")
    return state_of_record(record, header, spill=spill)


def _continue(repo: GitRepo, record: RunRecord, h: RunHeader, end_time: float) -> bool:
    """Commit a continued run's session; False when it had landed before the crash."""
    from xp.gitstore.commit import first_parent
    from xp.tracking.record_commit import commit_record

    assert h.tree is not None
    current = read_ref(repo.common_dir, fmt.run_ref(record.id))
    if (
        current != h.ref_expected
        and current is not None
        and first_parent(repo, current) == (h.previous)
    ):
        return False  # committed already; only the journal was left
    try:
        commit_record(
            repo, record, h.tree, h.baseline, h.start_time, end_time, check=True, header=h
        )
    except RefChangedError:
        raise ValueError(
            f"run {record.id} was moved by another process while this session ran"
        ) from None
    return True
