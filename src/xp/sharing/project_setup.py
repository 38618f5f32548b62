"""``xp init``: the project config file and the git refspecs that make git carry runs.

Fetched runs land in ``refs/xp/remotes/<remote>/runs/`` (like remote-tracking branches), never
in ``refs/xp/runs/``: ``git fetch --prune`` then only prunes copies of remote runs, and a run
that was never pushed cannot be deleted by a fetch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xp import format as fmt
from xp.config import TEMPLATE
from xp.errors import StorageError, XPError
from xp.gitstore.repo import GitRepo

PUSH_SPEC = "refs/xp/runs/*:refs/xp/runs/*"
MARK_KEY = "xp-addedpushhead"  # remote.<name>.xp-addedpushhead: we added `HEAD`, undo removes it


def fetch_spec(remote: str) -> str:
    return f"+refs/xp/runs/*:{fmt.REMOTES_PREFIX}{remote}/runs/*"


@dataclass
class InitResult:
    changes: list[str] = field(default_factory=list)
    remotes: list[str] = field(default_factory=list)


def _config_values(repo: GitRepo, key: str) -> list[str]:
    proc = repo.git("config", "--get-all", key, check=False)
    return proc.stdout.decode().splitlines() if proc.returncode == 0 else []


def remotes(repo: GitRepo) -> list[str]:
    return repo.git("remote").stdout.decode().split()


def _check_remotes(repo: GitRepo, wanted: list[str] | None) -> list[str]:
    existing = remotes(repo)
    if wanted is None:
        return existing
    for name in wanted:
        if name not in existing:
            raise XPError(
                f"no git remote {name!r}; add it with `git remote add {name} URL`"
                f" (remotes: {', '.join(existing) or 'none'})"
            )
    return wanted


def init_project(
    repo: GitRepo, remote_names: list[str] | None = None, git_config: bool = True
) -> InitResult:
    result = InitResult()
    path = repo.worktree / fmt.CONFIG_PATH
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(TEMPLATE)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror}") from None
        result.changes.append(f"wrote {fmt.CONFIG_PATH} (commit it to share the settings)")
    if not git_config:
        return result
    for remote in _check_remotes(repo, remote_names):
        result.remotes.append(remote)
        fetch = fetch_spec(remote)
        if fetch not in _config_values(repo, f"remote.{remote}.fetch"):
            repo.git("config", "--add", f"remote.{remote}.fetch", fetch)
            result.changes.append(
                f"git fetch {remote} now brings runs: remote.{remote}.fetch {fetch}"
            )
        pushes = _config_values(repo, f"remote.{remote}.push")
        if PUSH_SPEC not in pushes:
            if not pushes:
                # A push refspec replaces git's default branch push; HEAD keeps it.
                repo.git("config", "--add", f"remote.{remote}.push", "HEAD")
                repo.git("config", f"remote.{remote}.{MARK_KEY}", "true")
            repo.git("config", "--add", f"remote.{remote}.push", PUSH_SPEC)
            result.changes.append(
                f"git push {remote} now sends runs too: remote.{remote}.push {PUSH_SPEC}"
            )
    return result


def undo_project(repo: GitRepo, remote_names: list[str] | None = None) -> InitResult:
    """Remove the refspecs ``init_project`` added; the config file stays (it is the user's)."""
    result = InitResult()
    for remote in _check_remotes(repo, remote_names):
        result.remotes.append(remote)
        fetch = fetch_spec(remote)
        if fetch in _config_values(repo, f"remote.{remote}.fetch"):
            repo.git("config", "--fixed-value", "--unset", f"remote.{remote}.fetch", fetch)
            result.changes.append(f"removed remote.{remote}.fetch {fetch}")
        if PUSH_SPEC in _config_values(repo, f"remote.{remote}.push"):
            repo.git("config", "--fixed-value", "--unset", f"remote.{remote}.push", PUSH_SPEC)
            result.changes.append(f"removed remote.{remote}.push {PUSH_SPEC}")
        if _config_values(repo, f"remote.{remote}.{MARK_KEY}"):
            if _config_values(repo, f"remote.{remote}.push") == ["HEAD"]:
                repo.git("config", "--unset-all", f"remote.{remote}.push")
                result.changes.append(f"removed remote.{remote}.push HEAD")
            repo.git("config", "--unset", f"remote.{remote}.{MARK_KEY}")
    return result
