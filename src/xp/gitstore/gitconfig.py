"""git config, read and written through the git CLI (so includes, scopes and env apply)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from xp.gitstore.repo import GitRepo


@dataclass(frozen=True)
class Listing:
    """What ``git var -l`` prints: every config entry (the last value of each key; None for
    a key without ``=``) and git's variables (``GIT_COMMITTER_IDENT``...)."""

    config: dict[str, str | None] = field(default_factory=dict)
    variables: dict[str, bytes] = field(default_factory=dict)


_listings: dict[tuple[object, ...], Listing | None] = {}
_VARIABLES = (b"GIT_COMMITTER_IDENT", b"GIT_AUTHOR_IDENT", b"GIT_EDITOR", b"GIT_PAGER")


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


def config_key(repo: GitRepo) -> tuple[object, ...]:
    """What git's config depends on, cheaply: a value read under this key holds until a
    config file or a GIT_* variable of the environment (config, identities) changes."""
    home = Path(os.path.expanduser("~"))
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "git" / "config"
    return (
        str(repo.common_dir),
        _stamp(repo.common_dir / "config"),
        _stamp(home / ".gitconfig"),
        _stamp(xdg),
        # every GIT_* variable: GIT_CONFIG_*, GIT_COMMITTER_*/GIT_AUTHOR_* (identities) ...
        tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("GIT_"))),
    )


def listing(repo: GitRepo) -> Listing | None:
    """The whole config and git's identities from one ``git var -l``, remembered until a
    config file changes (``config_key``); None when git cannot list them. ``xp commit``
    reads the clone's remotes, its identity and ``xp.sign`` here: one process, not three."""
    key = config_key(repo)
    if key not in _listings:
        proc = repo.git("var", "-l", check=False)
        found: Listing | None = None
        if proc.returncode == 0:
            found = Listing()
            for line in proc.stdout.split(b"\n"):
                name, eq, value = line.partition(b"=")
                if name in _VARIABLES:
                    found.variables[name.decode()] = value
                elif name:
                    text = value.decode("utf-8", "replace") if eq else None
                    found.config[name.decode("utf-8", "replace")] = text
        _listings.clear()
        _listings[key] = found
    return _listings[key]


def _has_files(folder: Path) -> bool:
    try:
        return bool(os.listdir(folder))
    except OSError:
        return False


def remote_names(repo: GitRepo) -> list[str]:
    """The names ``git remote`` lists: every ``remote.<name>.<key>`` of the config (a name
    may hold dots), and, where the clone has the old ``remotes``/``branches`` files, what
    ``git remote`` itself says (``git init`` makes an empty ``branches``)."""
    found = listing(repo)
    if found is None or any(_has_files(repo.common_dir / d) for d in ("remotes", "branches")):
        return repo.git("remote").stdout.decode().split()
    names = {k[7 : k.rindex(".")] for k in found.config if k.startswith("remote.")}
    return sorted(n for n in names if n)


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
