"""``xp hook pre-push``: upload the artifacts of the runs being pushed before git sends refs
(and stop the push when that fails), as git-lfs does."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from xp import format as fmt
from xp.errors import HookError, XPError
from xp.gitstore import catfile, history
from xp.gitstore.repo import GitRepo

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
    """Commits of local runs the remote is not known to have (no refs/xp/remotes copy)."""
    from xp.format import RunRef
    from xp.gitstore.refs import list_refs
    from xp.query.resolve import runs_by_id

    prefix = RunRef.prefix(remote)
    there = {name[len(prefix) :] for name in list_refs(repo.common_dir, prefix)}
    return [e.commit for e in runs_by_id(repo).values() if e.run_ref.is_local and e.id not in there]


def pre_push(repo: GitRepo, *, remote: str, stdin_text: str) -> Any:
    """Upload the artifacts of the runs being pushed; raises (push aborted) when that fails.

    Under the pre-commit framework only the first pushed ref is known, so every local run the
    remote may lack is checked too (the store's batch listing keeps that cheap).
    """
    if os.environ.get("XP_SKIP_PUSH") == "1":
        return None
    lines = parse_push_lines(stdin_text)
    commits = []
    if not lines and os.environ.get("PRE_COMMIT_TO_REF"):
        lines = framework_push_lines()
        commits = unpushed_runs(repo, remote)
    commits += commits_to_upload(repo, remote, lines)
    commits = list(dict.fromkeys(commits))
    if not commits:
        return None
    from xp.sharing.push_pull import upload_missing

    try:
        return upload_missing(repo, commits=commits)
    except XPError as exc:
        raise HookError(f"push stopped: {exc} (XP_SKIP_PUSH=1 pushes without uploading)") from None
