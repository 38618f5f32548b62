"""Who git would say made a commit, asked once per process (``git var GIT_COMMITTER_IDENT``).

Apart from ``commit`` so writing a notes commit (``xp tag``) does not load dulwich's objects.
"""

from __future__ import annotations

from functools import lru_cache


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
