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
    from xp.gitstore import catfile, history

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


def local_runs(repo: GitRepo) -> dict[str, str]:
    """run id -> commit of this clone's runs (ref files: no git process)."""
    from xp.format import RunRef
    from xp.gitstore.refs import list_refs

    return {
        ref.id: sha
        for name, sha in list_refs(repo.common_dir, RunRef.prefix()).items()
        if (ref := RunRef.parse(name)) is not None
    }


def unpushed_runs(repo: GitRepo, remote: str, local: dict[str, str] | None = None) -> list[str]:
    """Commits of local runs the remote is not known to have: no fetched copy, and no entry
    in the remote's fetched catalog buckets, at that commit."""
    from xp.format import RunRef
    from xp.gitstore import catalog
    from xp.gitstore.refs import list_refs

    if local is None:
        local = local_runs(repo)
    if not local:
        return []
    prefix = RunRef.prefix(remote)
    there = {name[len(prefix) :]: sha for name, sha in list_refs(repo.common_dir, prefix).items()}
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
    from xp.gitstore import tags
    from xp.sharing.registry import TAG_RE

    return [t.name for t in tags.annotated(repo) if TAG_RE.match(t.name)]


def send_runs(
    repo: GitRepo,
    *,
    remote: str,
    runs: list[str],
    result: PrePushResult,
    outer: set[str] | frozenset[str] = frozenset(),
    local: dict[str, str] | None = None,
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
        if not wanted:
            continue
        # list_refs walks folders: refs/notes/xp is a ref, not a folder, so ask its parent
        folder = prefix if prefix.endswith("/") else prefix.rsplit("/", 1)[0] + "/"
        refs = [r for r in list_refs(repo.common_dir, folder) if r.startswith(prefix)]
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
    stop: list[tuple[str, str]] = []  # (ref, git's reason): refusals that stop the push
    if catalog_layout and runs:
        sending = set(runs)
        mine = {i: sha for i, sha in (local or local_runs(repo)).items() if sha in sending}
        try:
            published = publish(repo, remote=remote, runs=mine, summarize=False)
        except XPError as exc:
            raise HookError(f"push stopped: {exc}") from None
        result.runs += len(published.pushed)
        result.rejected += published.rejected
        stop += published.rejected
    if not refspecs and not stop:
        return
    notes_refused = False
    for row in git_remote.push(repo, remote, refspecs, env=NESTED_PUSH_ENV) if refspecs else ():
        if row.up_to_date:
            continue
        if row.rejected and row.ref == fmt.NOTES_REF:
            notes_refused = True  # another clone annotated first: merged and sent below
        elif row.rejected:
            result.rejected.append((row.ref, row.reason))
            if not row.ref.startswith("refs/tags/"):
                stop.append((row.ref, row.reason))
        elif row.ref.startswith(fmt.MONITORING_PREFIX):
            result.chains += 1
        elif row.ref.startswith(fmt.NOTES_REF):
            result.annotations += 1
        elif row.ref.startswith("refs/tags/"):
            result.tags += 1
        else:
            result.runs += 1
    if notes_refused:
        _merge_and_send_notes(repo, remote, result, stop)
    if stop:
        # as a configured refspec would: git says so and the push fails
        raise HookError(f"push stopped: {refusal(remote, stop)}")


def _merge_and_send_notes(
    repo: GitRepo, remote: str, result: PrePushResult, stop: list[tuple[str, str]]
) -> None:
    """The remote's annotations moved on: fetch them, merge ours in and send the merge, as
    ``xp push`` does (once, marked as xp's own push so its hook rests; a refusal then stops
    the push)."""
    from xp.gitstore import remote as git_remote
    from xp.sharing.annotate import merge_fetched
    from xp.sharing.project_setup import notes_fetch_spec

    spec = f"{fmt.NOTES_REF}:{fmt.NOTES_REF}"
    try:
        git_remote.fetch(repo, remote, [notes_fetch_spec(remote)])
        merge_fetched(repo)
        rows = git_remote.push(repo, remote, [spec], env=NESTED_PUSH_ENV)
    except XPError as exc:
        stop.append((fmt.NOTES_REF, str(exc)))
        return
    for row in rows:
        if row.rejected:
            result.rejected.append((row.ref, row.reason))
            stop.append((row.ref, row.reason))
        elif not row.up_to_date:
            result.annotations += 1


def refusal(remote: str, stop: list[tuple[str, str]]) -> str:
    """What the remote refused and what to do now, in one line: a run it holds at another
    commit cannot be fixed by fetching (format 2 keeps runs in catalog buckets, and a run is
    never merged), annotations are merged by ``xp pull``, other refs by a fetch."""
    from xp.format import RunRef

    runs = [parsed.id for ref, _ in stop if (parsed := RunRef.parse(ref)) is not None]
    others = [(ref, why) for ref, why in stop if RunRef.parse(ref) is None]
    parts = []
    if runs:
        first = runs[0]
        more = f" (and {len(runs) - 1} more)" if len(runs) > 1 else ""
        parts.append(
            f"{remote} holds run {first}{more} at a commit yours does not descend from"
            " (recorded or rewritten in another clone); your copy stays here: compare them"
            f" with `git fetch {remote}` and `xp diff {first} refs/xp/remotes/{remote}/runs/"
            f"{first}`, and push the branch alone with `XP_SKIP_PUSH=1 git push`"
        )
    if any(ref == fmt.NOTES_REF for ref, _ in others):
        parts.append(
            f"{remote} refused the annotations ({fmt.NOTES_REF}) after a merge; run"
            f" `xp pull {remote}`, then push again"
        )
    rest = [f"{ref} ({why})" for ref, why in others if ref != fmt.NOTES_REF]
    if rest:
        parts.append(
            f"{remote} refused {', '.join(rest)}; run `git fetch {remote}`, then push again"
        )
    return "; ".join(parts)


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
    local = local_runs(repo)
    runs = unpushed_runs(repo, remote, local) if carry else []
    if os.environ.get("XP_SKIP_PUSH") == "1":
        return None
    commits = runs + commits_to_upload(repo, remote, lines)
    commits = list(dict.fromkeys(commits))
    result = PrePushResult()
    if commits:
        from xp.sharing.push_pull import upload_missing

        # labels for messages: this clone's run ids (reading the fetched catalog to name the
        # other commits would cost five git processes on every push)
        labels = {sha: run_id for run_id, sha in local.items()}
        try:
            result.upload = upload_missing(repo, commits=commits, progress=progress, labels=labels)
        except XPError as exc:
            raise HookError(
                f"push stopped: {exc} (XP_SKIP_PUSH=1 pushes without uploading)"
            ) from None
    if carry:
        outer = {line.remote_ref for line in lines}
        send_runs(repo, remote=remote, runs=runs, result=result, outer=outer, local=local)
    return result
