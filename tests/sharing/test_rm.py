"""xp rm: delete runs locally (packed refs, fetched copies) or on the git remote."""

from __future__ import annotations

from pathlib import Path

import xp
from tests.helpers import Team, git, log_run, one_line_error, server_runs, xp_main


def test_rm_handles_packed_refs_and_fetched_copies(team: Team) -> None:
    r1 = log_run(team.a, {"1.bin": b"1"})
    r2 = log_run(team.a, {"2.bin": b"2"})
    assert xp_main("push", cwd=team.a)[0] == 0
    assert xp_main("pull", cwd=team.a)[0] == 0  # a now also has tracking copies
    git(team.a, "pack-refs", "--all")
    assert not (team.a / ".git" / "refs" / "xp" / "runs" / r1).exists()
    code, _out, err = xp_main("rm", r1, cwd=team.a)
    assert code == 0, err
    refs = git(team.a, "for-each-ref", "--format=%(refname)", "refs/xp/").split()
    assert [r for r in refs if "/catalog/" not in r] == [f"refs/xp/runs/{r2}"]
    assert r1 in server_runs(team.bare)  # remote untouched
    # the fetched catalog no longer lists it here either, until the next fetch
    assert {r.id for r in xp.list_runs(team.a)} == {r2}
    git(team.a, "fetch", "-q", "origin", "+refs/xp/catalog/*:refs/xp/remotes/origin/catalog/*")
    assert {r.id for r in xp.list_runs(team.a)} == {r1, r2}


def test_rm_on_the_git_remote(team: Team) -> None:
    r1 = log_run(team.a, {"1.bin": b"1"})
    r2 = log_run(team.a, {"2.bin": b"2"})
    assert xp_main("push", "origin", r1, cwd=team.a)[0] == 0
    code, out, err = xp_main("rm", r1, r2, "--remote", "origin", cwd=team.a)
    assert code == 0, err
    assert "1 deleted on 'origin', 1 were not there" in out
    assert "refs/xp/" not in git(team.bare, "for-each-ref")
    assert "refs/xp/" not in git(team.a, "for-each-ref")


def test_rm_bad_input_removes_nothing(repo: Path) -> None:
    r1 = log_run(repo, {"1.bin": b"1"})
    msg = one_line_error(*xp_main("rm", r1, "nosuchrun", cwd=repo)[::2])
    assert "nosuchrun" in msg
    msg = one_line_error(*xp_main("rm", "HEAD", cwd=repo)[::2])
    assert "not a run" in msg
    assert f"refs/xp/runs/{r1}" in git(repo, "for-each-ref")
