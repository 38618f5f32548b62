"""A clone set up for the project: what ``xp init`` does, what the first xp command in a fresh
clone of an xp project does by itself, and what ``xp doctor`` checks.

A clone needs the fetch refspecs (``git fetch`` brings runs) and the pre-push hook (``git push``
sends runs, their artifacts and the registry tags). Neither is in what ``git clone`` copies,
so a colleague's fresh clone of a project whose ``.xp/config.yaml`` is committed would share
nothing, silently. The first xp command there sets the clone up once and says so; a marker in
the git folder keeps it from undoing a later ``xp hooks uninstall``.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xp import format as fmt
from xp.errors import XPError
from xp.gitstore.repo import GitRepo

if TYPE_CHECKING:
    from xp.sharing.project_setup import InitResult

# Every command calls ``set_up_clone``; what setting up takes (git config, hooks, the project
# setup) is imported only when there is something to set up or check.

CARRIER = "pre-push"  # the hook that sends runs with `git push`


def _marker(repo: GitRepo) -> Path:
    return repo.common_dir / "xp" / "clone-setup"


def wanted_hooks(repo: GitRepo) -> tuple[str, ...]:
    """The pre-push hook, and the hooks the project's config lists under ``hooks.install``."""
    from xp.hooks.settings import settings

    return tuple(dict.fromkeys((CARRIER, *settings(repo).install)))


def _fallback() -> str:
    """The xp next to this Python, for shims run where PATH has none."""
    exe = Path(sys.executable).parent / "xp"
    return str(exe) if exe.exists() else ""


def init_clone(
    repo: GitRepo,
    *,
    remotes: list[str] | None = None,
    git_config: bool = True,
    sign: bool = False,
) -> InitResult:
    """``xp init``: the config file, the fetch refspecs and the hooks."""
    from xp.hooks import install as githooks
    from xp.sharing.project_setup import init_project

    result = init_project(repo, remotes=remotes, git_config=git_config, sign=sign)
    if git_config:
        result.changes += githooks.install(repo, names=wanted_hooks(repo), fallback=_fallback())
        _mark(repo)
    return result


def _mark(repo: GitRepo) -> None:
    path = _marker(repo)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("set up by xp: refspecs and hooks (xp doctor checks them)\n")


def set_up_clone(repo: GitRepo) -> list[str]:
    """Set up a clone of an xp project the first time xp runs in it; the changes made.

    Cheap when there is nothing to do: one stat of the marker. A clone without a committed
    ``.xp/config.yaml`` is not an xp project yet (``xp init`` makes it one).
    """
    if _marker(repo).exists() or not (repo.worktree / fmt.CONFIG_PATH).is_file():
        return []
    from xp.gitstore import gitconfig, worktree

    if not gitconfig.remote_names(repo) or not worktree.is_tracked(repo, fmt.CONFIG_PATH):
        return []  # not a project yet, or nothing to share with (a remote added later counts)
    try:
        changes = init_clone(repo).changes
    except XPError as exc:
        return [f"could not set this clone up ({exc}); `xp doctor` shows what is missing"]
    return changes


@dataclass(frozen=True)
class Finding:
    """A problem ``xp doctor`` reports, with the command that fixes it."""

    problem: str
    fix: str


def doctor(repo: GitRepo) -> list[Finding]:
    """What this clone lacks to share runs, each with the command that fixes it."""
    found: list[Finding] = []
    if not (repo.worktree / fmt.CONFIG_PATH).is_file():
        found.append(Finding(f"no {fmt.CONFIG_PATH}: this is not an xp project yet", "xp init"))
    from xp.config import load_config, validate
    from xp.hooks import install as githooks
    from xp.sharing.project_setup import missing_specs

    found += [Finding(problem, f"edit {fmt.CONFIG_PATH}") for problem in validate(repo)]
    try:
        load_config(repo)
    except XPError as exc:
        found.append(Finding(str(exc), f"edit {fmt.CONFIG_PATH}"))
        return found
    for remote, problem in missing_specs(repo):
        found.append(Finding(f"git remote {remote}: {problem}", f"xp init --remote {remote}"))
    states = {s.name: s.state for s in githooks.status(repo)}
    for name in wanted_hooks(repo):
        if not states.get(name, "missing").startswith("installed"):
            why = (
                "git push sends no runs, artifacts or registry tags"
                if name == CARRIER
                else f"the project's config asks for it (hooks.install in {fmt.CONFIG_PATH})"
            )
            found.append(Finding(f"the {name} hook is not installed: {why}", "xp hooks install"))
    found += _store_findings(repo)
    return found


def _store_findings(repo: GitRepo) -> list[Finding]:
    from xp.artifacts.remotes import list_remotes

    found = []
    try:
        specs = list_remotes(repo)
    except XPError as exc:
        return [Finding(str(exc), f"edit {fmt.CONFIG_PATH}")]
    if not specs:
        found.append(
            Finding(
                "no artifact remote: runs with artifacts cannot be pushed",
                "xp remote add NAME URL --default",
            )
        )
    for spec in specs:
        if spec.url.startswith("s3://") and importlib.util.find_spec("s3fs") is None:
            found.append(
                Finding(
                    f"artifact remote {spec.name!r} is on S3 but s3fs is not installed",
                    'pip install "git-xp[s3]"',
                )
            )
    return found
