"""Who git would say made a commit, and whether xp signs it: asked once per process.

Apart from ``commit`` so writing a notes commit (``xp tag``) does not load dulwich's objects;
apart from ``signing`` so an unsigned run commit does not load the signature readers.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xp.gitstore.repo import GitRepo

SIGN_KEY = "xp.sign"  # git config switch: sign run commits and registry tags

# What git strips from a name (ident.c's crud): a name of nothing else is refused.
_CRUD = frozenset(" ,:;<>\"\\'") | {chr(c) for c in range(33)}


@lru_cache(maxsize=8)
def identity(worktree: str) -> bytes:
    """The committer git would use; runs still record when no identity is configured."""
    from xp.gitstore.repo import run_git

    proc = run_git(["var", "GIT_COMMITTER_IDENT"], cwd=worktree, check=False)
    if proc.returncode == 0:
        ident = proc.stdout.strip().rsplit(b" ", 2)[0]
        if ident:
            return ident
    import getpass  # socket and getpass only here: not every command's import
    import socket

    user = getpass.getuser()
    return f"{user} <{user}@{socket.gethostname()}>".encode()


def git_bool(value: str | None) -> bool:
    """A config value as ``git config --type=bool`` reads it (a value it refuses: False)."""
    if value is None:
        return True  # a key without "=": true
    text = value.strip().lower()
    if text in ("true", "yes", "on"):
        return True
    if text in ("false", "no", "off", ""):
        return False
    if text[-1:] in ("k", "m", "g"):
        text = text[:-1]
    try:
        return int(text) != 0
    except ValueError:
        return False


def _explicit_ident(config: dict[str, str | None], listed: bytes) -> bytes | None:
    """GIT_COMMITTER_IDENT of ``git var -l`` when it is what ``git var GIT_COMMITTER_IDENT``
    says: a name and an email set by the user (git's strict check then passes). Else None:
    ask the strict way (git's default identity, or its refusal, differs)."""
    env = os.environ
    name = env.get("GIT_COMMITTER_NAME")
    if name is None:
        name = config.get("committer.name") or config.get("user.name")
    email = env.get("GIT_COMMITTER_EMAIL") or config.get("committer.email")
    email = email or config.get("user.email") or env.get("EMAIL")
    if not name or not email or all(c in _CRUD for c in name):
        return None
    return listed.strip().rsplit(b" ", 2)[0] or None


def commit_settings(repo: GitRepo) -> tuple[bytes, bool]:
    """The committer identity (``identity``) and whether ``xp.sign`` is on, from the
    config listing ``xp commit`` reads anyway (``gitconfig.listing``: one ``git var -l``)."""
    from xp.gitstore import gitconfig

    found = gitconfig.listing(repo)
    if found is None:  # git var -l failed: the way each is asked alone
        from xp.gitstore import signing

        return identity(str(repo.worktree)), signing.enabled(repo)
    config = found.config
    sign = git_bool(config[SIGN_KEY]) if SIGN_KEY in config else False
    listed = found.variables.get("GIT_COMMITTER_IDENT", b"")
    return _explicit_ident(config, listed) or identity(str(repo.worktree)), sign
