"""The index being committed, as a pre-commit hook sees it.

git runs pre-commit with ``GIT_INDEX_FILE`` set for ``commit -a`` and partial commits; each
call here passes that file on (``index_file``) so the checks see what will be committed.
"""

from __future__ import annotations

import os

from xp.gitstore.repo import GitRepo


def _env(index_file: str | None) -> dict[str, str]:
    return {"GIT_INDEX_FILE": index_file} if index_file else {}


def files(repo: GitRepo, *, index_file: str | None) -> list[tuple[str, str]]:
    """(path, blob sha) of files added or modified in the index (submodules left out)."""
    proc = repo.git(
        "diff",
        "--cached",
        "--raw",
        "--no-abbrev",
        "-z",
        "--no-renames",
        "--diff-filter=AM",
        env=_env(index_file),
    )
    fields = proc.stdout.split(b"\0")
    out = []
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        parts = meta.decode().split()
        if len(parts) >= 4 and parts[1] != "160000":
            out.append((os.fsdecode(path), parts[3]))
    return out


def read(repo: GitRepo, path: str, *, index_file: str | None) -> bytes | None:
    """The staged content of ``path``, or None when the index has no such file."""
    proc = repo.git("show", f":{path}", env=_env(index_file), check=False)
    return proc.stdout if proc.returncode == 0 else None


def differs_from(repo: GitRepo, commit: str, *, exclude: str, index_file: str | None) -> bool:
    """Whether the index differs from ``commit``'s tree outside ``exclude``."""
    proc = repo.git(
        "diff",
        "--cached",
        "--quiet",
        commit,
        "--",
        ".",
        f":(exclude){exclude}",
        env=_env(index_file),
        check=False,
    )
    return proc.returncode == 1
