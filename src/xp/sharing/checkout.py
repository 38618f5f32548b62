"""``xp checkout RUN`` and ``xp branch RUN NAME``: a run's code back in your hands.

checkout makes the work tree's files the run's (code and params files, everything the
snapshot held, minus the record folder ``.xp/run/``) and puts its artifacts back where they
were logged from (their ``source`` path). HEAD, the branch and the index stay where they are,
so ``git diff`` / ``git status`` then show how the run's code differs from your commit.

Nothing is lost: a workspace with uncommitted changes is refused unless ``--force``, and then
first saved as a run of its own (experiment ``xp-checkout-saves``; its snapshot holds the
files, its artifacts any ignored file about to be overwritten whose content is not in the
cache yet). ``xp checkout <that run>`` brings it all back.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from xp import format as fmt
from xp import fsutil
from xp.artifacts import cache
from xp.errors import DirtyWorkspaceError, InvalidValueError, StorageError
from xp.gitstore import refs, trees, worktree
from xp.gitstore.repo import GitRepo

SAVES_EXPERIMENT = "xp-checkout-saves"


@dataclass
class CheckoutResult:
    run_id: str
    name: str
    commit: str
    baseline: str | None
    head: str | None
    saved: str | None = None  # id of the run holding the overwritten state
    artifacts: list[str] = field(default_factory=list)  # work-tree paths written
    skipped: list[str] = field(default_factory=list)  # artifacts with no work-tree path


def work_tree_destination(repo: GitRepo, source: str) -> Path:
    """Where an artifact logged from ``source`` goes back: refused if it leads outside,
    through '..' or a symlinked folder."""
    rel = cache.clean_name(source)
    dest = repo.worktree / rel
    if not Path(os.path.realpath(dest)).is_relative_to(repo.worktree.resolve()):
        raise InvalidValueError(
            f"refusing to write artifact {source!r}: it leads outside the work tree"
        )
    return dest


def _at_risk(repo: GitRepo, dest: Path, sha: str, cache_dir: Path) -> bool:
    """An existing file the checkout would overwrite whose content exists nowhere else."""
    if not dest.is_file():
        return False
    have, _size = cache.hash_file(dest)
    return have != sha and not cache.object_path(cache_dir, have).is_file()


def checkout(
    repo: GitRepo, *, run: str, force: bool = False, artifacts: bool = True
) -> CheckoutResult:
    from xp.gitstore.commit import head
    from xp.query.resolve import load_run

    view = load_run(repo, run)
    record = view.record
    cache_dir = cache.cache_dir(repo)
    wanted = [a for a in record.artifacts if a.source] if artifacts else []
    dests = [(a, work_tree_destination(repo, a.source or a.path)) for a in wanted]
    changed = [p for p in worktree.changed_paths(repo) if not p.startswith(fmt.RECORD_DIR + "/")]
    if changed and _untouched_since_checkout(repo):
        changed = []  # exactly what the last checkout wrote: that run has it all
    at_risk = [d for a, d in dests if _at_risk(repo, d, a.sha256, cache_dir)]
    if (changed or at_risk) and not force:
        names = [*changed, *(str(d.relative_to(repo.worktree)) for d in at_risk)]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise DirtyWorkspaceError(
            f"the workspace has changes checkout would overwrite ({shown}); commit them, or"
            " pass --force to save them as a run first and check out anyway"
        )
    result = CheckoutResult(
        record.id, record.name, view.commit, record.meta.get("baseline"), head(repo).commit
    )
    if changed or at_risk:
        result.saved = _save(repo, record.id, at_risk)
    staging = repo.xp_dir / "tmp" / f"checkout-{secrets.token_hex(4)}"
    try:
        if dests:  # fetch and verify every file before the work tree changes
            from xp.sharing import get as restore

            restore.get(
                repo, run=view.commit, paths=tuple(a.path for a, _ in dests), out_dir=staging
            )
        _restore_code(repo, view.commit, changed)
        for entry, dest in dests:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_dir() and not dest.is_symlink():
                raise StorageError(f"{dest} is a folder where artifact {entry.path} goes")
            os.replace(staging / entry.path, dest)
            result.artifacts.append(str(dest.relative_to(repo.worktree)))
    except OSError as exc:
        raise StorageError(f"checkout could not write: {exc}; free disk space and retry") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result.skipped = [a.path for a in record.artifacts if not a.source] if artifacts else []
    _remember(repo)
    return result


def _state_file(repo: GitRepo) -> Path:
    return repo.git_dir / "xp-checkout"


def _workspace_tree(repo: GitRepo) -> str:
    from xp.config import load_config
    from xp.gitstore.snapshot import snapshot

    return snapshot(repo, load_config(repo).max_file_size).tree


def _remember(repo: GitRepo) -> None:
    """Note the tree checkout left, so checking out another run next is not 'dirty'."""
    with contextlib.suppress(StorageError):
        fsutil.atomic_write(_state_file(repo), _workspace_tree(repo) + "\n")


def _untouched_since_checkout(repo: GitRepo) -> bool:
    try:
        left = _state_file(repo).read_text().strip()
    except OSError:
        return False
    return left == _workspace_tree(repo)


def _save(repo: GitRepo, run_id: str, at_risk: list[Path]) -> str:
    from xp.tracking.run import Run

    run = Run(
        repo,
        name=f"before-checkout-{run_id}",
        experiment=SAVES_EXPERIMENT,
        message=f"the workspace as it was before `xp checkout {run_id}` overwrote it",
        reuse_snapshot=False,
    )
    try:
        run.set_tag("xp.saved-before-checkout", run_id)
        for path in at_risk:
            run.log_artifact(path, name=str(path.relative_to(repo.worktree)))
    except BaseException:
        run.abort()
        raise
    run.finish("finished")
    return run.id


def _restore_code(repo: GitRepo, commit: str, untracked: list[str]) -> None:
    """Work-tree files := the run's tree (minus the record); index and HEAD untouched."""
    worktree.restore_files(repo, commit, exclude=fmt.RECORD_DIR)
    in_run = trees.paths(repo, commit)
    tracked = worktree.tracked_paths(repo)
    for rel in untracked:  # saved already: files the run does not have go away
        if rel not in in_run and rel not in tracked and not rel.startswith(fmt.RECORD_DIR + "/"):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                (repo.worktree / rel).unlink()


def branch(repo: GitRepo, *, run: str, name: str) -> tuple[str, str]:
    """A branch ``name`` at the run's commit; returns (run id, commit)."""
    from xp.query.resolve import load_run

    view = load_run(repo, run)
    if not refs.valid_branch_name(repo, name):
        raise InvalidValueError(
            f"{name!r} is not a valid branch name; try e.g. exp/{view.record.name}"
        )
    refs.create_branch(repo, name, view.commit)
    return view.record.id, view.commit
