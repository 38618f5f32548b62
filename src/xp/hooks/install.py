"""Install, remove and report xp's git hooks (the shims in ``hooks/``).

A shim is a few lines of sh that run the hook that was there before (kept as
``<name>.legacy``, failing if it fails) and then ``xp hook <name>``. xp never overwrites a hook
it did not write, honours ``core.hooksPath``, and removes only what it installed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from xp import fsutil
from xp.errors import HookError, InvalidValueError, StorageError
from xp.gitstore.repo import GitRepo
from xp.hooks.settings import HOOKS as HOOKS  # re-exported: the CLI lists them

MARKER = "# xp-hook-shim"
SHIM_VERSION = 1

# Hooks whose absence of xp would let something through that must not pass: a push of run refs
# without their artifacts. Every other hook lets git go on when xp cannot be found.
# Shell builtins only on the usual way to xp (no `$(dirname)`, `$(cat)`, `$(command -v)`): each
# fork and exec is milliseconds of every `git push`, twice (the hook's own push runs it too).
# pre-push hands its stdin (the pushed refs) straight to xp; only a kept legacy hook makes it
# read them first, to give both the same lines. (git does not mind a hook that reads none.)
_SHIM = """#!/bin/sh
{marker} v{version} {name}: installed by `xp hooks install`; `xp hooks uninstall` removes it.
# A hook that was here before is kept as {name}.legacy and runs first.
hook={name}
case $0 in */*) here=${{0%/*}} ;; *) here=. ;; esac
if [ -x "$here/$hook.legacy" ]; then
{legacy_call}
fi
if [ "${{XP_SKIP_HOOKS:-}}" = 1 ]; then exit 0; fi
{skip_push}
if command -v git-xp >/dev/null 2>&1; then xp=git-xp
elif command -v xp >/dev/null 2>&1; then xp=xp
elif [ -x "{fallback}" ]; then xp="{fallback}"
else
{missing}
fi
exec "$xp" hook "$hook" "$@"
"""

_LEGACY_PUSH = (
    "    input=$(cat)\n"
    '    printf "%s\\n" "$input" | "$here/$hook.legacy" "$@" || exit $?\n'
    "    exec <<XP_PUSHED_REFS\n"
    "$input\n"
    "XP_PUSHED_REFS"
)
_MISSING_SOFT = (
    '    echo "xp: $hook hook skipped: xp is not on PATH (activate the environment that has it,'
    ' or run: xp hooks uninstall)" >&2\n    exit 0'
)
_MISSING_PUSH = (
    '    if grep -q "refs/xp/"; then\n'
    '        echo "xp: push stopped: it sends runs but xp is not on PATH to upload their artifacts;'
    ' activate the environment that has xp, or push with XP_SKIP_PUSH=1" >&2\n'
    "        exit 1\n"
    "    fi\n"
    '    echo "xp: pre-push hook skipped: xp is not on PATH" >&2\n'
    "    exit 0"
)


def shim(name: str, fallback: str = "") -> str:
    """The text of the shim for hook ``name``; ``fallback`` is an xp to use when PATH has none."""
    if name not in HOOKS:
        raise InvalidValueError(f"unknown hook {name!r}; xp has: {', '.join(HOOKS)}")
    reads_stdin = name == "pre-push"
    return _SHIM.format(
        marker=MARKER,
        version=SHIM_VERSION,
        name=name,
        skip_push='if [ "${XP_SKIP_PUSH:-}" = 1 ]; then exit 0; fi\n' if reads_stdin else "",
        legacy_call=_LEGACY_PUSH if reads_stdin else '    "$here/$hook.legacy" "$@" || exit $?',
        fallback=fallback,
        missing=_MISSING_PUSH if reads_stdin else _MISSING_SOFT,
    )


def hooks_dir(repo: GitRepo) -> Path:
    """Where git looks for hooks: ``core.hooksPath`` (relative to the work tree) or .git/hooks."""
    from xp.gitstore import gitconfig

    configured = gitconfig.get(repo, "core.hooksPath", path=True)
    if configured:
        path = Path(configured)
        return path if path.is_absolute() else repo.worktree / path
    return repo.common_dir / "hooks"


def is_ours(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return MARKER.encode() in fh.read(400)
    except OSError:
        return False


@dataclass(frozen=True)
class HookState:
    name: str
    path: Path
    state: str  # "installed", "installed+legacy", "other" (not xp's), "missing"


def status(repo: GitRepo) -> list[HookState]:
    where = hooks_dir(repo)
    out = []
    for name in HOOKS:
        path = where / name
        if not path.exists():
            state = "missing"
        elif is_ours(path):
            state = "installed+legacy" if (where / f"{name}.legacy").exists() else "installed"
        else:
            state = "other"
        out.append(HookState(name, path, state))
    return out


def _check_names(names: tuple[str, ...]) -> tuple[str, ...]:
    for name in names:
        if name not in HOOKS:
            raise InvalidValueError(f"unknown hook {name!r}; xp has: {', '.join(HOOKS)}")
    return names or HOOKS


def install(repo: GitRepo, *, names: tuple[str, ...] = (), fallback: str = "") -> list[str]:
    """Install shims; an existing foreign hook becomes ``<name>.legacy`` and keeps running."""
    where = hooks_dir(repo)
    changes = []
    try:
        where.mkdir(parents=True, exist_ok=True)
        for name in _check_names(names):
            path = where / name
            text = shim(name, fallback)
            if path.exists() and not is_ours(path):
                legacy = where / f"{name}.legacy"
                if legacy.exists():
                    raise HookError(
                        f"{path} is not xp's and {legacy.name} exists too; move one of them away"
                        " and run `xp hooks install` again"
                    )
                os.replace(path, legacy)
                changes.append(f"kept your {name} hook as {legacy.name}; it runs first")
            elif path.exists() and path.read_text() == text:
                continue
            fsutil.atomic_write(path, text, mode=0o755)
            changes.append(f"installed {name} in {where}")
    except OSError as exc:
        raise StorageError(f"cannot write hooks in {where}: {exc.strerror}") from None
    return changes


def uninstall(repo: GitRepo, *, names: tuple[str, ...] = ()) -> list[str]:
    """Remove xp's shims and put back the hooks they had kept."""
    where = hooks_dir(repo)
    changes = []
    for name in _check_names(names):
        path = where / name
        legacy = where / f"{name}.legacy"
        if not path.exists() or not is_ours(path):
            continue
        try:
            if legacy.exists():
                os.replace(legacy, path)
                changes.append(f"restored your {name} hook")
            else:
                path.unlink()
                changes.append(f"removed {name}")
        except OSError as exc:
            raise StorageError(f"cannot change {path}: {exc.strerror}") from None
    return changes


def is_executable(path: Path) -> bool:
    return path.exists() and bool(path.stat().st_mode & stat.S_IXUSR)
