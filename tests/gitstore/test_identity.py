"""One ``git var -l`` for a run commit's identity and ``xp.sign`` (issue 18): the answers of
``git var GIT_COMMITTER_IDENT`` and ``git config --type=bool --get xp.sign`` asked alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import git

ASK = (
    "import json\n"
    "from xp.gitstore.repo import find_repo\n"
    "from xp.gitstore import identity, signing\n"
    "repo = find_repo()\n"
    "ident, sign = identity.commit_settings(repo)\n"
    "alone = identity.identity(str(repo.worktree)), signing.enabled(repo)\n"
    "print(json.dumps([ident.decode(), sign, alone[0].decode(), alone[1]]))\n"
)


def _ask(repo: Path, env: dict[str, str]) -> list[object]:
    out = subprocess.run(
        [sys.executable, "-c", ASK], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    answer: list[object] = json.loads(out.stdout)
    return answer


@pytest.mark.parametrize(
    ("config", "extra_env"),
    [
        ({"user.name": "Ada L", "user.email": "ada@example.com"}, {}),
        ({"user.name": "Ada L", "committer.name": "Bot", "user.email": "a@x.org"}, {}),
        ({}, {"GIT_COMMITTER_NAME": "Env Name", "GIT_COMMITTER_EMAIL": "env@example.com"}),
        ({"user.email": "e@x.org"}, {"GIT_COMMITTER_NAME": ""}),  # refused strictly
        ({"user.name": ",;", "user.email": "crud@example.com"}, {}),  # only crud: refused
        ({"user.name": "No Email"}, {"EMAIL": ""}),  # git's default email, or its refusal
        ({"user.name": "N", "user.email": "n@x.org", "xp.sign": "true"}, {}),
        ({"user.name": "N", "user.email": "n@x.org", "xp.sign": "Yes"}, {}),
        ({"user.name": "N", "user.email": "n@x.org", "xp.sign": "0"}, {}),
        ({"user.name": "N", "user.email": "n@x.org", "xp.sign": "maybe"}, {}),
    ],
)
def test_one_git_process_answers_as_the_two_would(
    repo: Path, tmp_path: Path, config: dict[str, str], extra_env: dict[str, str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "COVERAGE_"))}
    env.pop("EMAIL", None)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1")
    env.update(extra_env)
    for key in ("user.name", "user.email"):
        subprocess.run(["git", "config", "--unset-all", key], cwd=repo, check=False)
    for key, value in config.items():
        git(repo, "config", key, value)
    ident, sign, alone_ident, alone_sign = _ask(repo, env)
    assert ident == alone_ident
    assert sign == alone_sign
    assert sign == (config.get("xp.sign", "").lower() in ("true", "yes"))


def test_remote_names_from_the_listing_are_git_remotes(repo: Path) -> None:
    """``xp commit`` in a clone without its setup marker asks which remotes exist: read from
    the same ``git var -l`` as its identity, they are the names ``git remote`` lists."""
    from xp.gitstore import gitconfig
    from xp.gitstore.repo import find_repo

    def both() -> tuple[list[str], list[str]]:
        gitconfig._listings.clear()
        return gitconfig.remote_names(find_repo()), sorted(git(repo, "remote").split())

    assert both() == ([], [])
    git(repo, "remote", "add", "origin", "https://example.com/a.git")
    git(repo, "remote", "add", "my.fork", "https://example.com/b.git")
    git(repo, "config", "remote.pushonly.pushurl", "https://example.com/c.git")
    git(repo, "config", "remote.pushDefault", "origin")
    names, listed = both()
    assert names == listed == ["my.fork", "origin", "pushonly"]
    (repo / ".git" / "remotes").mkdir()
    (repo / ".git" / "remotes" / "legacy").write_text("URL: https://example.com/d.git\n")
    assert both()[0] == both()[1]  # what git remote says there, whatever that is


def test_a_long_lived_process_sees_a_new_identity_in_its_environment(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listing is remembered per config state, and the GIT_* variables are part of it:
    a process that changes GIT_COMMITTER_NAME (a notebook, ``xp ui``) is not answered from
    the listing made before."""
    from xp.gitstore import gitconfig
    from xp.gitstore.repo import find_repo

    monkeypatch.chdir(repo)
    monkeypatch.setenv("GIT_COMMITTER_NAME", "First Name")
    first = gitconfig.listing(find_repo())
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Second Name")
    second = gitconfig.listing(find_repo())
    assert first is not None
    assert second is not None
    assert b"First Name" in first.variables["GIT_COMMITTER_IDENT"]
    assert b"Second Name" in second.variables["GIT_COMMITTER_IDENT"]
