"""``xp recover``: commit the journal of every run whose process died, as ``crashed``
(or with the status its ``end_run`` had reached). Every xp command and ``start_run`` call
this first, so a killed run shows up without anyone asking.
"""

from __future__ import annotations

import os

from xp import format as fmt
from xp.artifacts import cache
from xp.errors import StorageError
from xp.gitstore.refs import read_ref
from xp.gitstore.repo import GitRepo


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
                state = replay(fh.read())
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
            if read_ref(repo.common_dir, fmt.run_ref(record.id)) is None:
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
