"""git config, read and written through the git CLI (so includes, scopes and env apply)."""

from __future__ import annotations

from xp.gitstore.repo import GitRepo


def get(repo: GitRepo, key: str, *, path: bool = False) -> str | None:
    """The last value of ``key``, or None; ``path`` expands ``~`` as git does for paths."""
    args = ["config", *(["--path"] if path else []), "--get", key]
    proc = repo.git(*args, check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def get_in(repo: GitRepo, key: str, scope: str) -> str | None:
    """The value of ``key`` in one file (``scope``: local, global or system), includes not
    followed: what the user set there, not what an include overrides it with."""
    proc = repo.git("config", f"--{scope}", "--get", key, check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def get_all(repo: GitRepo, key: str) -> list[str]:
    proc = repo.git("config", "--get-all", key, check=False)
    return proc.stdout.decode().splitlines() if proc.returncode == 0 else []


def get_regexp(repo: GitRepo, pattern: str) -> dict[str, str]:
    """Every key matching ``pattern`` -> its last value (keys come back lower-cased by git)."""
    proc = repo.git("config", "--get-regexp", pattern, check=False)
    out: dict[str, str] = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        key, _, value = line.partition(" ")
        out[key] = value
    return out


def get_regexp_all(repo: GitRepo, pattern: str) -> dict[str, list[str]]:
    """Every key matching ``pattern`` -> all its values, in order (keys lower-cased by git)."""
    proc = repo.git("config", "--get-regexp", pattern, check=False)
    out: dict[str, list[str]] = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        key, _, value = line.partition(" ")
        out.setdefault(key, []).append(value)
    return out


def add(repo: GitRepo, key: str, value: str) -> None:
    repo.git("config", "--add", key, value)


def set_value(repo: GitRepo, key: str, value: str) -> None:
    repo.git("config", key, value)


def unset(repo: GitRepo, key: str, value: str | None = None) -> None:
    """Remove ``key`` (only the entry equal to ``value`` when given)."""
    if value is None:
        repo.git("config", "--unset", key)
    else:
        repo.git("config", "--fixed-value", "--unset", key, value)


def unset_all(repo: GitRepo, key: str) -> None:
    repo.git("config", "--unset-all", key)
