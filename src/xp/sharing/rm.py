"""``xp rm RUN...``: delete runs' refs here (and with a git remote, there too).

A run id can have several refs: the local one and the copies fetched from each remote. All
of them go, or the run would still show up through a copy. Every name is resolved before
anything is deleted, and each ref is deleted only if it still points where we saw it. The
objects stay in git and the cache until ``git gc`` / ``xp gc``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xp.errors import RefRejectedError
from xp.format import RunRef
from xp.gitstore import catalog
from xp.gitstore import remote as git_remote
from xp.gitstore.refs import delete_refs, list_refs
from xp.gitstore.repo import GitRepo
from xp.sharing.push_pull import PushResult, pick_git_remote, push_refs


@dataclass
class RemoveResult:
    removed: list[str] = field(default_factory=list)  # run ids
    refs: list[str] = field(default_factory=list)
    git_remote: str | None = None
    remote_removed: list[str] = field(default_factory=list)
    remote_absent: list[str] = field(default_factory=list)


def _run_ids(repo: GitRepo, specs: list[str]) -> list[str]:
    from xp.query.resolve import resolve_run

    ids: list[str] = []
    for spec in specs:
        run_id = resolve_run(repo, spec).id
        if run_id not in ids:
            ids.append(run_id)
    return ids


def _remote_runs(repo: GitRepo, remote: str) -> set[str]:
    """Run ids the git remote has (one round trip: ``git ls-remote``)."""
    refs = git_remote.ls_remote(repo, remote, f"{RunRef.prefix()}*")
    return {ref.id for name in refs if (ref := RunRef.parse(name)) is not None}


def remove_runs(repo: GitRepo, *, runs: list[str], remote: str | None = None) -> RemoveResult:
    """Delete the refs of ``runs`` here (the local ref and every fetched copy), and with
    ``remote`` on that git remote too."""
    name = pick_git_remote(repo, remote) if remote is not None else None
    ids = _run_ids(repo, runs)
    wanted = set(ids)
    expected = {
        ref: sha
        for ref, sha in list_refs(repo.common_dir, "refs/xp/").items()
        if (parsed := RunRef.parse(ref)) is not None and parsed.id in wanted
    }
    result = RemoveResult(removed=ids, refs=sorted(expected), git_remote=name)
    from xp.sharing.catalog import publish, uses_catalog

    if name is not None and uses_catalog(repo):
        published = publish(repo, remote=name, remove=ids, migrate=False)
        result.remote_removed = [i for i in ids if i in published.removed]
        result.remote_absent = [i for i in ids if i not in published.removed]
        now = list_refs(repo.common_dir, RunRef.prefix(name))
        copy = RunRef.prefix(name)
        expected = {r: s for r, s in expected.items() if not r.startswith(copy) or r in now}
    elif name is not None:
        there = _remote_runs(repo, name)
        result.remote_removed = [i for i in ids if i in there]
        result.remote_absent = [i for i in ids if i not in there]
        if result.remote_removed:
            pushed = PushResult(name)
            push_refs(repo, name, [f":{RunRef(i)}" for i in result.remote_removed], pushed)
            if pushed.rejected:
                ref, why = pushed.rejected[0]
                raise RefRejectedError(f"git remote {name!r} refused to delete {ref}: {why}")
            # git drops the fetched copies (refs/xp/remotes/<remote>/runs/) of what a push
            # deleted when a fetch refspec maps them; those are gone already.
            now = list_refs(repo.common_dir, RunRef.prefix(name))
            for ref in [r for r in expected if r.startswith(RunRef.prefix(name))]:
                if ref not in now:
                    del expected[ref]
    delete_refs(repo.common_dir, expected)
    result.refs = sorted({*result.refs, *catalog.forget(repo, ids)})
    return result
