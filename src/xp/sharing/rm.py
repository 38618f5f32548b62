"""``xp rm RUN...``: delete runs' refs here (and with a git remote, there too).

A run id can have several refs: the local one and the copies fetched from each remote. All
of them go, or the run would still show up through a copy. Every name is resolved before
anything is deleted, and each ref is deleted only if it still points where we saw it. The
objects stay in git and the cache until ``git gc`` / ``xp gc``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xp import format as fmt
from xp.errors import GitError, RunNotFoundError
from xp.gitstore.refs import delete_refs, list_refs
from xp.gitstore.repo import GitRepo
from xp.sharing.push_pull import PushResult, pick_git_remote, push_refs, tracking_prefix


@dataclass
class RemoveResult:
    removed: list[str] = field(default_factory=list)  # run ids
    refs: list[str] = field(default_factory=list)
    git_remote: str | None = None
    remote_removed: list[str] = field(default_factory=list)
    remote_absent: list[str] = field(default_factory=list)


def _run_ids(repo: GitRepo, specs: list[str]) -> list[str]:
    from xp.query.resolve import resolve

    ids: list[str] = []
    for spec in specs:
        ref, _commit = resolve(repo, spec)
        if "/runs/" not in ref:
            raise RunNotFoundError(f"{spec!r} is not a run; list runs with `xp show`")
        run_id = ref.rsplit("/runs/", 1)[1]
        if run_id not in ids:
            ids.append(run_id)
    return ids


def _remote_runs(repo: GitRepo, remote: str) -> set[str]:
    """Run ids the git remote has (one round trip: ``git ls-remote``)."""
    proc = repo.git("ls-remote", "--refs", remote, f"{fmt.RUNS_PREFIX}*", check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(
            f"cannot list runs on git remote {remote!r}: {err[-1] if err else proc.returncode};"
            " check its URL and your access"
        )
    return {line.rsplit("/", 1)[-1] for line in proc.stdout.decode().splitlines() if line}


def remove_runs(repo: GitRepo, specs: list[str], git_remote: str | None = None) -> RemoveResult:
    remote = pick_git_remote(repo, git_remote) if git_remote is not None else None
    ids = _run_ids(repo, specs)
    wanted = set(ids)
    expected = {
        name: sha
        for name, sha in list_refs(repo.common_dir, "refs/xp/").items()
        if "/runs/" in name and name.rsplit("/runs/", 1)[1] in wanted
    }
    result = RemoveResult(removed=ids, refs=sorted(expected), git_remote=remote)
    if remote is not None:
        there = _remote_runs(repo, remote)
        result.remote_removed = [i for i in ids if i in there]
        result.remote_absent = [i for i in ids if i not in there]
        if result.remote_removed:
            pushed = PushResult(remote)
            push_refs(repo, remote, [f":{fmt.run_ref(i)}" for i in result.remote_removed], pushed)
            if pushed.rejected:
                ref, why = pushed.rejected[0]
                raise GitError(f"git remote {remote!r} refused to delete {ref}: {why}")
        prefix = tracking_prefix(remote)
        expected.update(
            {
                n: s
                for n, s in list_refs(repo.common_dir, prefix).items()
                if n[len(prefix) :] in wanted
            }
        )
    delete_refs(repo.common_dir, expected)
    return result
