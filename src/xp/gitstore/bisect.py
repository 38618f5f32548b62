"""``git bisect`` driven step by step in a linked worktree of its own.

Bisect state (``refs/bisect/*``, ``BISECT_HEAD``, the log) is per worktree, so driving it in
a temporary worktree never touches a bisection the user has going in theirs. It runs with
``--no-checkout``: git only moves ``BISECT_HEAD``, and the caller checks a commit out only
when it must run something there (a commit that has runs costs no checkout at all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from xp.gitstore.repo import GitRepo, git_failure

_FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit", re.M)
_SKIPPED_ONLY = "only 'skip'ped commits left to test"
_CANDIDATE = re.compile(r"^([0-9a-f]{40})$", re.M)


@dataclass(frozen=True)
class Step:
    """Where the bisection stands: the next commit to judge, or the answer."""

    next: str | None  # the commit git wants judged next; None once it is done
    first_bad: str | None = None
    candidates: tuple[str, ...] = field(default=())  # skipped commits left: any may be first


def _state(wt: GitRepo, out: str) -> Step:
    found = _FIRST_BAD.search(out)
    if found:
        return Step(None, found.group(1))
    if _SKIPPED_ONLY in out:
        return Step(None, None, tuple(_CANDIDATE.findall(out)))
    proc = wt.git("rev-parse", "--verify", "-q", "BISECT_HEAD", check=False)
    sha = proc.stdout.decode().strip()
    return Step(sha if len(sha) == 40 else None)


def start(wt: GitRepo, *, bad: str, good: str, first_parent: bool = False) -> Step:
    """``git bisect start --no-checkout BAD GOOD`` in the worktree ``wt``."""
    args = ["bisect", "start", "--no-checkout"]
    if first_parent:
        args.append("--first-parent")
    proc = wt.git(*args, bad, good, "--")
    return _state(wt, proc.stdout.decode("utf-8", "replace"))


def mark(wt: GitRepo, commit: str, verdict: str) -> Step:
    """Tell git that ``commit`` is ``good``, ``bad`` or to ``skip``; the next step."""
    if verdict not in ("good", "bad", "skip"):
        raise ValueError(f"bisect verdict {verdict!r}")
    args = ("bisect", verdict, commit)
    proc = wt.git(*args, check=False)
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0 and _SKIPPED_ONLY not in out:  # git exits 2 when only skips are left
        raise git_failure(args, proc)
    return _state(wt, out)


def reset(wt: GitRepo) -> None:
    wt.git("bisect", "reset", check=False)
