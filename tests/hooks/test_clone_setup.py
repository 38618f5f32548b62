"""A fresh clone of an xp project sets itself up on its first xp command; `xp doctor` says what
a clone lacks; `git push origin main` carries runs, artifacts and registry tags."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import Team, git, model_version, xp_main


def fresh_clone(team: Team, name: str) -> Path:
    clone = team.bare.parent / name
    git(team.bare.parent, "clone", "-q", str(team.bare), name)
    return clone


def test_fresh_clone_sets_itself_up_and_plain_git_carries_everything(team: Team) -> None:
    a, b = fresh_clone(team, "a2"), fresh_clone(team, "b2")
    # b is a fresh clone: doctor names what is missing and the fix, exit 1.
    code, out, _err = xp_main("doctor", cwd=b)
    assert code == 1
    assert "git fetch origin never brings runs" in out
    assert "fix: xp init --remote origin" in out
    assert "the pre-push hook is not installed" in out
    # a's first xp command sets a up, in one line, once.
    code, _out, err = xp_main("show", cwd=a)
    assert code == 0
    assert err.count("set up this clone") == 1, err
    assert "set up this clone" not in xp_main("show", cwd=a)[2]
    version = model_version(a, "clf", stage="prod")  # a run with an artifact, and 2 tags
    # The exact command of the issue: a branch named on the command line.
    proc_err = git_push(a, "origin", "main")
    assert "uploaded 1 artifact objects" in proc_err
    assert "sent 1 run, 2 registry tags to origin" in proc_err
    remote_refs = git(team.bare, "for-each-ref", "--format=%(refname)")
    assert "refs/xp/catalog/" in remote_refs  # the run, listed in its bucket (format 2)
    assert f"refs/tags/clf@{version}" in remote_refs
    assert "refs/tags/clf#prod" in remote_refs
    # b: the first command sets it up; plain git fetch then brings the run and the tags.
    code, _out, err = xp_main("show", cwd=b)
    assert "set up this clone" in err
    git(b, "fetch", "-q", "origin")
    code, out, _err = xp_main("model", "show", cwd=b)
    assert code == 0
    assert "clf" in out
    code, out, _err = xp_main("show", "-f", "csv", cwd=b)
    assert len(out.splitlines()) == 2  # the header and a's run
    code, out, _err = xp_main("doctor", cwd=b)
    assert (code, out.split(":")[0]) == (0, "ok"), out


def test_first_command_respects_a_later_uninstall_and_the_project_hooks(team: Team) -> None:
    cfg = team.a / ".xp" / "config.yaml"
    cfg.write_text(cfg.read_text() + "hooks:\n  install: [pre-commit]\n")
    git(team.a, "commit", "-qam", "ask for the pre-commit hook")
    git(team.a, "push", "-q", "origin", "main")
    b = fresh_clone(team, "b2")
    assert xp_main("show", cwd=b)[0] == 0
    hooks = b / ".git" / "hooks"
    assert (hooks / "pre-push").exists()
    assert (hooks / "pre-commit").exists()
    assert not (hooks / "post-checkout").exists()
    assert xp_main("hooks", "uninstall", cwd=b)[0] == 0
    code, _out, err = xp_main("show", cwd=b)
    assert "set up" not in err
    assert not (hooks / "pre-push").exists()  # the user's choice stands
    code, out, _err = xp_main("doctor", cwd=b)
    assert code == 1
    assert "pre-commit hook is not installed: the project's config asks for it" in out


def git_push(cwd: Path, *args: str) -> str:
    import subprocess

    proc = subprocess.run(
        ["git", "push", "-q", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stderr
