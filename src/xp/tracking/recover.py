"""``xp recover``: commit the journal of every run whose process died, as ``crashed``
(or with the status its ``end_run`` had reached). Every xp command and ``start_run`` call
this first, so a killed run shows up without anyone asking.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from xp import format as fmt
from xp.artifacts import cache
from xp.errors import RefChangedError, StorageError
from xp.gitstore.refs import read_ref
from xp.gitstore.repo import GitRepo

if TYPE_CHECKING:
    from xp.record.header import RunHeader
    from xp.record.journal import RunState
    from xp.record.model import RunRecord


def recover(repo: GitRepo) -> list[tuple[str, str]]:
    """Commit the journal of every dead run: (run id, status) of each one recovered."""
    done: list[tuple[str, str]] = []
    try:
        with os.scandir(repo.xp_dir / "journal") as entries:
            if next(entries, None) is None:
                return done
    except (FileNotFoundError, NotADirectoryError):
        return done  # no journal at all: every command skips the imports below
    from xp.record.build import build_record
    from xp.record.journal import dead_journals, merge_parts, replay
    from xp.tracking.run import commit_record

    for path, fd in dead_journals(repo.xp_dir / "journal"):
        try:
            with open(fd, "rb", closefd=False) as fh:
                data = fh.read()
            state = replay(data, base=_base(repo, data))
            end = state.end or {}
            status = str(end.get("status", "crashed"))
            end_time = float(end.get("end_time") or os.fstat(fd).st_mtime)
            parts = merge_parts(state, path.parent)
            spool = fmt.output_spool(path.parent, state.header.id)  # a killed `xp run`'s output
            if (
                spool.is_file()
                and spool.stat().st_size
                and fmt.RUN_LOG_ARTIFACT not in state.artifacts
            ):
                (log,) = cache.add_path(cache.cache_dir(repo), spool, fmt.RUN_LOG_ARTIFACT)
                state.artifacts[log.path] = log
            record = build_record(state, status, end_time, ())
            h = state.header
            if h.tree is None:
                raise ValueError("the journal has no workspace snapshot")
            if h.previous is not None:  # a continued run: its ref moves forward
                if _continue(repo, record, h, end_time):
                    done.append((record.id, status))
            elif read_ref(repo.common_dir, fmt.run_ref(record.id)) is None:
                commit_record(repo, record, h.tree, h.baseline, h.start_time, end_time)
                done.append((record.id, status))
            os.unlink(path)
            spool.unlink(missing_ok=True)
            for part in parts:
                part.unlink(missing_ok=True)
        except (ValueError, KeyError, TypeError):
            corrupt = path.with_suffix(".corrupt")
            os.replace(path, corrupt)  # keep it for a human; never retry forever
        except StorageError:
            pass  # still cannot write: leave it for the next attempt
        finally:
            os.close(fd)
    return done


def _base(repo: GitRepo, data: bytes) -> RunState | None:
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
    return state_of_record(record, header)


def _continue(repo: GitRepo, record: RunRecord, h: RunHeader, end_time: float) -> bool:
    """Commit a continued run's session; False when it had landed before the crash."""
    from xp.gitstore.commit import first_parent
    from xp.tracking.run import commit_record

    assert h.tree is not None
    current = read_ref(repo.common_dir, fmt.run_ref(record.id))
    if (
        current != h.ref_expected
        and current is not None
        and first_parent(repo, current) == (h.previous)
    ):
        return False  # committed already; only the journal was left
    try:
        commit_record(repo, record, h.tree, h.baseline, h.start_time, end_time, h)
    except RefChangedError:
        raise ValueError(
            f"run {record.id} was moved by another process while this session ran"
        ) from None
    return True
