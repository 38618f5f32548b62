"""Continuing a run that ended: ``xp.start_run(resume=ID)``, ``XP_RESUME=ID`` (a preempted
job that restarts), MLflow's ``start_run(run_id=ID)``.

The new session starts from everything the run recorded (series go on where they stopped,
params stay fixed) and ends in a new commit whose parent is the run's previous commit; the
ref moves there by compare-and-swap. That is a fast-forward, so ``git push`` needs no force
and every earlier state stays in the history. Only one process can continue a run at a time:
the session claims the run's journal name when it starts, and a second one gets
``RunActiveError`` naming the process that holds it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from xp import format as fmt
from xp.config import ProjectConfig
from xp.errors import (
    AmbiguousRunError,
    ConfigError,
    RunActiveError,
    RunNotFoundError,
    RunStateError,
)
from xp.format import RunRef
from xp.gitstore.refs import list_refs, read_ref
from xp.gitstore.repo import GitRepo
from xp.record.journal import SUFFIX, flusher, read_header
from xp.tracking.recover import recover
from xp.tracking.run import Continued, Run, read_record

_B32 = set("0123456789abcdefghjkmnpqrstvwxyz")


def locate(repo: GitRepo, spec: str) -> tuple[str, str, str | None]:
    """(run id, commit to continue, sha of the local ref or None) for an id or id prefix;
    the local run wins over fetched copies of it."""
    text = spec.strip().lower()
    if not text:
        raise RunNotFoundError("no run to resume given; pass a run id (list runs with `xp show`)")
    local = read_ref(repo.common_dir, fmt.run_ref(text))
    if local is not None:
        return text, local, local
    if read_ref(repo.common_dir, fmt.DELETED_PREFIX + text) is not None:
        raise RunStateError(
            f"run {text} was deleted (MLflow's delete_run); restore it (MlflowClient().restore_run)"
            " before resuming it"
        )
    found: dict[str, str] = {}
    for name, sha in list_refs(repo.common_dir, "refs/xp/").items():
        ref = RunRef.parse(name)
        if (
            ref is not None
            and (ref.id == text or (set(text) <= _B32 and ref.id.startswith(text)))
            and (ref.id not in found or ref.is_local)
        ):
            found[ref.id] = sha
    if text in found:
        found = {text: found[text]}
    if not found:
        raise RunNotFoundError(f"no run {spec!r} to resume; list runs with `xp show`")
    if len(found) > 1:
        raise AmbiguousRunError(
            f"{spec!r} is the start of {len(found)} run ids ({', '.join(sorted(found)[:5])});"
            " type more characters"
        )
    run_id, sha = next(iter(found.items()))
    return run_id, sha, read_ref(repo.common_dir, fmt.run_ref(run_id))


def _holder(path: Path) -> str:
    """Who holds a journal, for the error message: its process id, from its header."""
    with contextlib.suppress(OSError, ValueError, IndexError, KeyError, TypeError):
        first = path.read_bytes().split(b"\n", 1)[0]
        header = read_header(first)[0].header  # the checksummed header line (journal 2)
        host = header.context.get("host")
        return f"process {header.pid}" + (f" on {host}" if host else "")
    return "another process"


def _busy(run_id: str, path: Path) -> RunActiveError:
    return RunActiveError(
        f"run {run_id} is being logged by {_holder(path)}; wait for it to end (or stop it),"
        " then resume it again"
    )


def resume(
    repo: GitRepo,
    spec: str,
    *,
    name: str | None = None,
    message: str | None = None,
    config: ProjectConfig | None = None,
    all_series: bool = False,
    system_metrics: bool | None = None,
    attempts: int = 5,
) -> Run:
    """A live ``Run`` continuing run ``spec`` (an id or unique id prefix)."""
    if flusher.is_live(spec.strip().lower()):
        raise RunActiveError(
            f"run {spec.strip()} is still active in this process; end it before resuming it"
        )
    for _ in range(attempts):
        run_id, commit, local = locate(repo, spec)
        journal = repo.xp_dir / "journal" / f"{run_id}{SUFFIX}"
        if flusher.is_live(run_id):
            raise RunActiveError(
                f"run {run_id} is still active in this process; end it before resuming it"
            )
        if journal.exists():
            recover(repo)  # a dead session's journal: commit it first
            if journal.exists():
                raise _busy(run_id, journal)
            continue  # the ref may have moved: look again
        record = read_record(repo, commit)
        if record is None:
            raise ConfigError(
                f"run {run_id}'s commit {commit[:12]} has no readable record; it cannot be resumed"
            )
        try:
            run = Run(
                repo,
                name=name,
                message=message,
                config=config,
                all_series=all_series,
                system_metrics=system_metrics,
                continues=Continued(run_id, commit, local, record),
            )
        except FileExistsError:
            raise _busy(run_id, journal) from None
        if read_ref(repo.common_dir, fmt.run_ref(run_id)) == local:
            return run
        run.abort()  # another process continued it between our look and our claim
    raise RunActiveError(f"run {spec} kept changing while resuming it; try again")
