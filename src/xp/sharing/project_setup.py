"""``xp init``: the project config file and the git refspecs that make ``git fetch`` carry runs.

``git push`` carries them through the pre-push hook (``hooks/pre_push``), not a push refspec:
a configured push refspec replaces git's own choice of branches (``push.default``, and
``git push origin main`` would still send no runs). Older versions of xp added
``remote.<name>.push`` refspecs; ``init_project`` removes those it added.

Fetched runs land in ``refs/xp/remotes/<remote>/runs/`` (like remote-tracking branches), never
in ``refs/xp/runs/``: ``git fetch --prune`` then only prunes copies of remote runs, and a run
that was never pushed cannot be deleted by a fetch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xp import format as fmt
from xp import fsutil
from xp.config import TEMPLATE
from xp.errors import GitRemoteNotFoundError, SigningSetupError
from xp.gitstore import gitconfig, signing
from xp.gitstore import remote as git_remote
from xp.gitstore.repo import GitRepo

PUSH_SPEC = "refs/xp/runs/*:refs/xp/runs/*"
# Monitoring chains (docs/format.md, section 10): each clone pushes its own, fetches the others'.
MONITORING_PUSH_SPEC = f"{fmt.MONITORING_PREFIX}*:{fmt.MONITORING_PREFIX}*"
MARK_KEY = "xp-addedpushhead"  # remote.<name>.xp-addedpushhead: we added `HEAD`, undo removes it


def fetch_spec(remote: str) -> str:
    return f"+refs/xp/runs/*:{fmt.REMOTES_PREFIX}{remote}/runs/*"


def catalog_fetch_spec(remote: str) -> str:
    """The remote's run catalog (format 2): 256 bucket refs, however many runs."""
    return f"+{fmt.CATALOG_PREFIX}*:{fmt.catalog_prefix(remote)}*"


def monitoring_fetch_spec(remote: str) -> str:
    return f"+{fmt.MONITORING_PREFIX}*:{fmt.monitoring_prefix(remote)}*"


# Annotations (issue 15; docs/format.md, section 12): globs, because git refuses a plain push
# or fetch whose configured non-glob refspec names a ref that does not exist (yet) on one side.
NOTES_PUSH_SPEC = f"{fmt.NOTES_REF}*:{fmt.NOTES_REF}*"
NOTES_MERGE_KEY = "notes.xp.mergeStrategy"  # so a plain `git notes --ref xp merge` agrees
NOTES_MERGE_STRATEGY = "cat_sort_uniq"


def notes_fetch_spec(remote: str) -> str:
    return f"+{fmt.NOTES_REF}*:{fmt.notes_ref(remote)}*"


def annotation_specs(remote: str) -> list[tuple[str, str, str]]:
    """The refspec that makes plain git fetch carry annotations (``xp tag``, ``xp note``):
    the remote's ``refs/notes/xp`` is fetched beside its runs; ours is pushed with them by
    the pre-push hook (no push refspec: it would replace git's choice of branches)."""
    return [
        (
            f"remote.{remote}.fetch",
            notes_fetch_spec(remote),
            f"git fetch {remote} now brings annotations (tags, notes)",
        ),
    ]


def _specs(remote: str) -> list[tuple[str, str, str]]:
    """(config key, refspec, what it does) for every refspec xp adds to ``remote``."""
    return [*_base_specs(remote), *annotation_specs(remote)]


def _base_specs(remote: str) -> list[tuple[str, str, str]]:
    return [
        (f"remote.{remote}.fetch", fetch_spec(remote), f"git fetch {remote} now brings runs"),
        (
            f"remote.{remote}.fetch",
            catalog_fetch_spec(remote),
            f"git fetch {remote} now brings the run catalog",
        ),
        (
            f"remote.{remote}.fetch",
            monitoring_fetch_spec(remote),
            f"git fetch {remote} now brings monitoring points",
        ),
    ]


def _old_push_specs(remote: str) -> list[tuple[str, str]]:
    """Push refspecs earlier versions of xp added (they overrode git's choice of branches)."""
    key = f"remote.{remote}.push"
    return [(key, PUSH_SPEC), (key, MONITORING_PUSH_SPEC), (key, NOTES_PUSH_SPEC)]


def missing_specs(repo: GitRepo, remotes: list[str] | None = None) -> list[tuple[str, str]]:
    """(remote, what is missing or left over) for ``xp doctor`` and the first-command setup;
    one ``git config`` call."""
    config = gitconfig.get_regexp_all(repo, r"^remote\..*\.(fetch|push)$")
    out = []
    for remote in git_remote.names(repo) if remotes is None else remotes:
        for key, spec, what in _specs(remote):
            if spec not in config.get(key.lower(), []):
                out.append(
                    (remote, f"{key} {spec} is not set, so {what.replace('now ', 'never ')}")
                )
        for key, spec in _old_push_specs(remote):
            if spec in config.get(key.lower(), []):
                out.append((remote, f"{key} {spec} overrides git's choice of branches to push"))
    return out


@dataclass
class InitResult:
    changes: list[str] = field(default_factory=list)
    remotes: list[str] = field(default_factory=list)


def _check_remotes(repo: GitRepo, wanted: list[str] | None) -> list[str]:
    existing = git_remote.names(repo)
    if wanted is None:
        return existing
    for name in wanted:
        if name not in existing:
            raise GitRemoteNotFoundError(
                f"no git remote {name!r}; add it with `git remote add {name} URL`"
                f" (remotes: {', '.join(existing) or 'none'})"
            )
    return wanted


def enable_signing(repo: GitRepo) -> list[str]:
    """Turn on signing of run commits and registry tags (``xp.sign`` in this clone's git
    config), after checking that git can sign with the user's key."""
    if signing.enabled(repo):
        return []
    problem = signing.signing_problem(repo)
    if problem:
        raise SigningSetupError(
            f"git cannot sign here ({problem}); configure a key first, e.g. `git config"
            " gpg.format ssh` and `git config user.signingKey ~/.ssh/id_ed25519.pub`"
        )
    gitconfig.set_value(repo, signing.SIGN_KEY, "true")
    return [f"run commits and registry tags are now signed: {signing.SIGN_KEY} true"]


def init_project(
    repo: GitRepo, *, remotes: list[str] | None = None, git_config: bool = True, sign: bool = False
) -> InitResult:
    result = InitResult()
    path = repo.worktree / fmt.CONFIG_PATH
    if not path.exists():
        fsutil.atomic_write(path, TEMPLATE)
        result.changes.append(f"wrote {fmt.CONFIG_PATH} (commit it to share the settings)")
    if sign:
        result.changes += enable_signing(repo)
    if not git_config:
        return result
    if gitconfig.get(repo, NOTES_MERGE_KEY) is None:
        gitconfig.set_value(repo, NOTES_MERGE_KEY, NOTES_MERGE_STRATEGY)
        result.changes.append(
            f"annotations from two clones merge line by line: {NOTES_MERGE_KEY}"
            f" {NOTES_MERGE_STRATEGY}"
        )
    for remote in _check_remotes(repo, remotes):
        result.remotes.append(remote)
        for key, spec, what in _specs(remote):
            if spec in gitconfig.get_all(repo, key):
                continue
            gitconfig.add(repo, key, spec)
            result.changes.append(f"{what}: {key} {spec}")
        result.changes += _remove_old_push_specs(repo, remote)
    if result.remotes:
        result.changes += detached_push(repo)
    return result


# A plain `git push` on a detached HEAD (cluster and CI jobs check out a commit, not a branch):
# git's push.default modes simple, current and upstream stop with "You are not currently on a
# branch" before any hook runs, so the runs stay behind. Only `matching` pushes there (the
# branches both sides have, up to date in a fresh job clone: "Everything up-to-date", exit 0),
# and the pre-push hook then sends the runs. git config can only be made conditional on being
# *on* a branch (includeIf "onbranch:"), so the clone's push.default is `matching` and an
# include restores the user's own value whenever a branch is checked out.
ON_BRANCH_FILE = "xp/push-on-branch.config"  # relative to .git/, as git resolves include paths
ON_BRANCH_KEY = "includeIf.onbranch:**.path"
DETACHED_PUSH_DEFAULT = "matching"
_WAS_LOCAL = "# push.default was set in .git/config; xp init --undo puts it back there"


def detached_push(repo: GitRepo) -> list[str]:
    """Make plain ``git push`` send runs from a detached HEAD; the changes made."""
    if ON_BRANCH_FILE in gitconfig.get_all(repo, ON_BRANCH_KEY):
        return []
    local = gitconfig.get_in(repo, "push.default", "local")
    user = (
        local
        or gitconfig.get_in(repo, "push.default", "global")
        or gitconfig.get_in(repo, "push.default", "system")
        or "simple"  # git's default
    )
    lines = [
        "# Written by xp init: your push.default, used whenever a branch is checked out",
        "# (.git/config says `matching` for a detached HEAD, so `git push` sends runs there).",
        *([_WAS_LOCAL] if local else []),
        "[push]",
        f"\tdefault = {user}",
    ]
    fsutil.atomic_write(repo.common_dir / ON_BRANCH_FILE, "\n".join(lines) + "\n")
    gitconfig.set_value(repo, "push.default", DETACHED_PUSH_DEFAULT)
    gitconfig.add(repo, ON_BRANCH_KEY, ON_BRANCH_FILE)
    return [
        "git push on a detached HEAD now sends runs: push.default matching there, your"
        f" {user} on any branch ({ON_BRANCH_KEY} {ON_BRANCH_FILE})"
    ]


def _undo_detached_push(repo: GitRepo) -> list[str]:
    if ON_BRANCH_FILE not in gitconfig.get_all(repo, ON_BRANCH_KEY):
        return []
    path = repo.common_dir / ON_BRANCH_FILE
    try:
        text = path.read_text()
    except OSError:
        text = ""
    gitconfig.unset(repo, ON_BRANCH_KEY, ON_BRANCH_FILE)
    if gitconfig.get_in(repo, "push.default", "local") == DETACHED_PUSH_DEFAULT:
        value = text.rsplit("default = ", 1)[-1].strip() if "default = " in text else ""
        if _WAS_LOCAL in text and value:
            gitconfig.set_value(repo, "push.default", value)
        else:
            gitconfig.unset_all(repo, "push.default")
    path.unlink(missing_ok=True)
    return [f"removed push.default {DETACHED_PUSH_DEFAULT} and {ON_BRANCH_KEY}"]


def _remove_old_push_specs(repo: GitRepo, remote: str) -> list[str]:
    changes = []
    for key, spec in _old_push_specs(remote):
        if spec in gitconfig.get_all(repo, key):
            gitconfig.unset(repo, key, spec)
            changes.append(
                f"removed {key} {spec}: git push {remote} picks branches by git's own rules"
                " again, and the pre-push hook sends the runs"
            )
    if gitconfig.get_all(repo, f"remote.{remote}.{MARK_KEY}"):
        if gitconfig.get_all(repo, f"remote.{remote}.push") == ["HEAD"]:
            gitconfig.unset_all(repo, f"remote.{remote}.push")
            changes.append(f"removed remote.{remote}.push HEAD (xp had added it)")
        gitconfig.unset(repo, f"remote.{remote}.{MARK_KEY}")
    return changes


def undo_project(repo: GitRepo, *, remotes: list[str] | None = None) -> InitResult:
    """Remove the refspecs ``init_project`` added; the config file stays (it is the user's)."""
    result = InitResult()
    if gitconfig.get_all(repo, signing.SIGN_KEY):
        gitconfig.unset_all(repo, signing.SIGN_KEY)
        result.changes.append(f"removed {signing.SIGN_KEY}: runs and tags are no longer signed")
    if gitconfig.get(repo, NOTES_MERGE_KEY) == NOTES_MERGE_STRATEGY:
        gitconfig.unset_all(repo, NOTES_MERGE_KEY)
        result.changes.append(f"removed {NOTES_MERGE_KEY}")
    for remote in _check_remotes(repo, remotes):
        result.remotes.append(remote)
        for key, spec, _what in _specs(remote):
            if spec in gitconfig.get_all(repo, key):
                gitconfig.unset(repo, key, spec)
                result.changes.append(f"removed {key} {spec}")
        result.changes += _remove_old_push_specs(repo, remote)
    if remotes is None:
        result.changes += _undo_detached_push(repo)
    return result
