"""``xp hook pre-push``: upload the artifacts of the runs being pushed before git sends refs
(and stop the push when that fails), as git-lfs does; then send the runs, this clone's
monitoring chains and the registry tags along with the branches or tags being pushed.

git's own refspec rules decide which branches go (``git push``, ``git push origin main``,
``push.default``): xp adds no push refspec, so nothing about branches changes. The runs travel
by a second push from inside the hook (as git-lfs sends objects), marked so that its own
pre-push hook does nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xp import format as fmt
from xp.errors import HookError, XPError
from xp.gitstore import catfile, history, tags
from xp.gitstore.repo import GitRepo
from xp.sharing.push_pull import NESTED_PUSH_ENV
from xp.sharing.push_pull import PUSHING_RUNS_ENV as NESTED

if TYPE_CHECKING:
    from xp.artifacts.transfer import Progress
    from xp.sharing.push_pull import UploadResult

ZERO = "0" * 40


@dataclass(frozen=True)
class PushLine:
    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str


def parse_push_lines(text: str) -> list[PushLine]:
    lines = []
    for raw in text.splitlines():
        parts = raw.split()
        if len(parts) == 4:
            lines.append(PushLine(*parts))
    return lines


def commits_to_upload(repo: GitRepo, remote: str, lines: list[PushLine]) -> list[str]:
    """Run commits being pushed: the runs themselves, and record-carrying commits on branches."""
    commits: list[str] = []
    for line in lines:
        if line.local_sha == ZERO:
            continue  # a deletion sends nothing
        if line.local_ref.startswith("refs/xp/"):
            commits.append(line.local_sha)
            continue
        known = line.remote_sha != ZERO and catfile.exists(repo, line.remote_sha)
        commits += history.touching(
            repo,
            line.local_sha,
            fmt.RECORD_DIR,
            not_on=remote,
            known=line.remote_sha if known else None,
        )
    return list(dict.fromkeys(commits))


def framework_push_lines() -> list[PushLine]:
    """The pre-commit framework passes no stdin, only its first pushed ref in variables."""
    to_ref = os.environ.get("PRE_COMMIT_TO_REF")
    if not to_ref:
        return []
    return [
        PushLine(
            os.environ.get("PRE_COMMIT_LOCAL_BRANCH", "HEAD"),
            to_ref,
            os.environ.get("PRE_COMMIT_REMOTE_BRANCH", ""),
            os.environ.get("PRE_COMMIT_FROM_REF") or ZERO,
        )
    ]


def unpushed_runs(repo: GitRepo, remote: str) -> list[str]:
    """Commits of local runs the remote is not known to have: no fetched copy, and no entry
    in the remote's fetched catalog buckets, at that commit."""
    from xp.format import RunRef
    from xp.gitstore import catalog
    from xp.gitstore.refs import list_refs

    prefix = RunRef.prefix(remote)
    local = {
        ref.id: sha
        for name, sha in list_refs(repo.common_dir, RunRef.prefix()).items()
        if (ref := RunRef.parse(name)) is not None
    }
    there = {name[len(prefix) :]: sha for name, sha in list_refs(repo.common_dir, prefix).items()}
    if not local:
        return []
    there.update(catalog.listed(repo, remote, local))
    return [sha for run_id, sha in local.items() if there.get(run_id) != sha]


@dataclass
class PrePushResult:
    upload: UploadResult | None = None
    runs: int = 0  # run refs sent with the push
    tags: int = 0  # registry tags sent
    chains: int = 0  # monitoring chains sent
    annotations: int = 0  # annotation refs sent (xp tag, xp note)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (ref, git's reason)


def carries_runs(lines: list[PushLine]) -> bool:
    """A push of a branch or tag (not only deletions, not only xp's own refs) takes runs along."""
    return any(
        line.local_sha != ZERO and not line.local_ref.startswith("refs/xp/") for line in lines
    )


def _registry_tags(repo: GitRepo) -> list[str]:
    from xp.gitstore.refs import list_refs

    # Most pushes carry no registry tag: a glance at the refs (files, no git process) first.
    if not any("@" in name or "#" in name for name in list_refs(repo.common_dir, "refs/tags/")):
        return []
    from xp.sharing.registry import TAG_RE

    return [t.name for t in tags.annotated(repo) if TAG_RE.match(t.name)]


def send_runs(
    repo: GitRepo,
    *,
    remote: str,
    runs: list[str],
    result: PrePushResult,
    outer: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Push the runs the remote lacks, this clone's monitoring chains and the registry tags;
    refs the outer push sends itself (``outer``: their remote names) are left to it, or the
    two pushes would race to create the same ref."""
    from xp.format import RunRef
    from xp.gitstore import remote as git_remote
    from xp.gitstore.refs import list_refs
    from xp.sharing.catalog import publish, uses_catalog

    refspecs: list[str] = []
    catalog_layout = uses_catalog(repo)
    carried = (
        (RunRef.prefix(), bool(runs) and not catalog_layout),
        (fmt.MONITORING_PREFIX, True),
        (fmt.NOTES_REF, True),
    )
    for prefix, wanted in carried:
        # list_refs walks folders: refs/notes/xp is a ref, not a folder, so ask its parent
        folder = prefix if prefix.endswith("/") else prefix.rsplit("/", 1)[0] + "/"
        refs = [r for r in list_refs(repo.common_dir, folder) if r.startswith(prefix)]
        refs = refs if wanted else []
        if not refs:
            continue
        if any(name.startswith(prefix) for name in outer):
            refspecs += [f"{r}:{r}" for r in refs if r not in outer]
        else:
            refspecs.append(f"{prefix}*:{prefix}*")
    refspecs += [
        f"refs/tags/{t}:refs/tags/{t}"
        for t in _registry_tags(repo)
        if f"refs/tags/{t}" not in outer
    ]
    stop: list[str] = []
    if catalog_layout and runs:
        sending = set(runs)
        local = {
            ref.id: sha
            for name, sha in list_refs(repo.common_dir, RunRef.prefix()).items()
            if (ref := RunRef.parse(name)) is not None and sha in sending
        }
        try:
            published = publish(repo, remote=remote, runs=local, summarize=False)
        except XPError as exc:
            raise HookError(f"push stopped: {exc}") from None
        result.runs += len(published.pushed)
        result.rejected += published.rejected
        stop += [f"{ref} ({why})" for ref, why in published.rejected]
    if not refspecs and not stop:
        return
    for row in git_remote.push(repo, remote, refspecs, env=NESTED_PUSH_ENV) if refspecs else ():
        if row.up_to_date:
            continue
        if row.rejected:
            result.rejected.append((row.ref, row.reason))
            if not row.ref.startswith("refs/tags/"):
                stop.append(f"{row.ref} ({row.reason})")
        elif row.ref.startswith(fmt.MONITORING_PREFIX):
            result.chains += 1
        elif row.ref.startswith(fmt.NOTES_REF):
            result.annotations += 1
        elif row.ref.startswith("refs/tags/"):
            result.tags += 1
        else:
            result.runs += 1
    if stop:
        # as a configured refspec would: git says so and the push fails (notes from another
        # clone are not a fast-forward of ours until fetched)
        raise HookError(
            f"push stopped: {remote} refused {', '.join(stop)}; run `git fetch {remote}`"
            " (xp merges annotations), then push again"
        )


def pre_push(
    repo: GitRepo, *, remote: str, stdin_text: str, progress: Progress | None = None
) -> PrePushResult | None:
    """Upload the artifacts of the runs being pushed, then send the runs themselves with a
    branch or tag push; raises (push aborted) when an upload fails.

    Under the pre-commit framework only the first pushed ref is known, so every local run the
    remote may lack is checked too (the store's batch listing keeps that cheap).
    """
    if os.environ.get(NESTED) == "1":
        return None  # the hook's own push of runs: uploaded already
    lines = parse_push_lines(stdin_text)
    commits = []
    if not lines and os.environ.get("PRE_COMMIT_TO_REF"):
        lines = framework_push_lines()
    # No line at all: what git was asked to push is up to date there; the runs still go.
    carry = carries_runs(lines) or not lines
    runs = unpushed_runs(repo, remote) if carry else []
    if os.environ.get("XP_SKIP_PUSH") == "1":
        return None
    commits = runs + commits_to_upload(repo, remote, lines)
    commits = list(dict.fromkeys(commits))
    result = PrePushResult()
    if commits:
        from xp.sharing.push_pull import upload_missing

        try:
            result.upload = upload_missing(repo, commits=commits, progress=progress)
        except XPError as exc:
            raise HookError(
                f"push stopped: {exc} (XP_SKIP_PUSH=1 pushes without uploading)"
            ) from None
    if carry:
        outer = {line.remote_ref for line in lines}
        send_runs(repo, remote=remote, runs=runs, result=result, outer=outer)
    return result
