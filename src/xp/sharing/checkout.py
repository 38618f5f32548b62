"""``xp checkout RUN`` and ``xp branch RUN NAME``: a run's code back in your hands.

checkout makes the work tree's files the run's (code and params files, everything the
snapshot held, minus the record folder ``.xp/run/``) and puts its artifacts back where they
were logged from (their ``source`` path). HEAD, the branch and the index stay where they are,
so ``git diff`` / ``git status`` then show how the run's code differs from your commit.

Nothing is lost: a workspace with uncommitted changes is refused unless ``--force``, and then
first saved as a run of its own (experiment ``xp-checkout-saves``; its snapshot holds the
files, its artifacts any ignored file about to be overwritten whose content is not in the
cache yet). ``xp checkout <that run>`` brings it all back.

Where artifacts live is this clone's business, not the run's: the ``remotes``,
``default_remote`` and ``cache`` sections of ``.xp/config.yaml`` stay as they are, the rest of
the file becomes the run's.

The run may come from someone else: an artifact whose path would pass through a symlink the
run's own tree makes is refused before anything changes, and every artifact is written
after the code, through folders opened without following symlinks out of the work tree.
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
from xp.errors import DirtyWorkspaceError, InvalidValueError, StorageError, UnsafePathError
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
    kept_settings: list[str] = field(default_factory=list)  # config sections kept as they were
    artifacts: list[str] = field(default_factory=list)  # work-tree paths written
    skipped: list[str] = field(default_factory=list)  # artifacts with no work-tree path


def work_tree_destination(repo: GitRepo, source: str) -> Path:
    """Where an artifact logged from ``source`` goes back: refused if it leads outside,
    through '..' or a symlinked folder."""
    rel = cache.clean_name(source)
    dest = repo.worktree / rel
    try:
        fsutil.check_inside(repo.worktree, rel)  # no .git, nothing through a symlink out
    except UnsafePathError as exc:
        raise UnsafePathError(
            f"refusing to write artifact {source!r}: it leads outside the work tree ({exc})"
        ) from None
    if not Path(os.path.realpath(dest)).is_relative_to(repo.worktree.resolve()):
        raise UnsafePathError(
            f"refusing to write artifact {source!r}: it leads outside the work tree"
        )
    return dest


def _through_run_symlinks(repo: GitRepo, commit: str, run_id: str, dests: list[Path]) -> None:
    """Refuse artifacts whose folders the run's own tree makes symlinks (a legitimate run
    never records such a source: ``log_artifact`` stores the resolved path)."""
    links = trees.symlinks(repo, commit)
    if not links:
        return
    for dest in dests:
        parts = dest.relative_to(repo.worktree).parts
        for n in range(1, len(parts)):
            prefix = "/".join(parts[:n])
            if prefix in links:
                raise UnsafePathError(
                    f"run {run_id}: artifact {'/'.join(parts)} would be written through"
                    f" {prefix}, a symlink the run's own files make; refusing the checkout"
                    " (a run recorded by xp never does this: check where it came from)"
                )


def _at_risk(repo: GitRepo, dest: Path, sha: str, cache_dir: Path) -> bool:
    """An existing file the checkout would overwrite whose content exists nowhere else."""
    if not os.path.isfile(dest) or os.path.islink(dest):
        return False  # a symlink is replaced, never written through
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
    _through_run_symlinks(repo, view.commit, record.id, [d for _, d in dests])
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
    staging = fsutil.private_tmp(repo.xp_dir) / f"checkout-{secrets.token_hex(4)}"
    config = repo.worktree / fmt.CONFIG_PATH
    before = _read(config)
    try:
        if dests:  # fetch and verify every file before the work tree changes
            from xp.sharing import get as restore

            restore.get(
                repo, run=view.commit, paths=tuple(a.path for a, _ in dests), out_dir=staging
            )
        _restore_code(repo, view.commit, changed)
        result.kept_settings = _keep_locations(repo, config, before)
        for entry, dest in dests:
            if os.path.isdir(dest) and not os.path.islink(dest):
                raise StorageError(f"{dest} is a folder where artifact {entry.path} goes")
            fsutil.move_into(staging / entry.path, dest, root=repo.worktree)
            result.artifacts.append(str(dest.relative_to(repo.worktree)))
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise StorageError(f"checkout could not write: {exc}; free disk space and retry") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result.skipped = [a.path for a in record.artifacts if not a.source] if artifacts else []
    _remember(repo)
    return result


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _keep_locations(repo: GitRepo, config: Path, before: str | None) -> list[str]:
    """Put the current ``remotes``/``default_remote``/``cache`` sections back into the
    config the run's files brought; returns the sections that differed."""
    from xp.config import LOCATION_KEYS, carry_sections
    from xp.errors import ConfigError

    if before is None:
        return []  # no config here before: the run's one is all there is
    after = _read(config)
    try:
        text = carry_sections(after or "", before, LOCATION_KEYS)
    except ConfigError:
        text = before  # the run's config does not parse: keep ours whole
    if text is None:
        return []
    fsutil.atomic_write(config, text, root=repo.worktree)
    old, new = _sections(after), _sections(text)
    return [k for k in LOCATION_KEYS if old.get(k) != new.get(k)] or ["config"]


def _sections(text: str | None) -> dict[str, object]:
    """The location sections of a config text ({} when it does not parse)."""
    from xp.config import LOCATION_KEYS
    from xp.errors import ConfigError
    from xp.record import yamlio

    try:
        data = yamlio.load(text or "", fmt.CONFIG_PATH) or {}
    except ConfigError:
        return {}
    return {k: data.get(k) for k in LOCATION_KEYS} if isinstance(data, dict) else {}


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
