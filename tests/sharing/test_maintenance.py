"""``xp maintenance`` on real clones of a bare remote: prune fetched runs deleted on the
server, pack refs, repack, expire cache objects, all without touching a live run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import xp
from tests.helpers import Team, git, log_run, one_line_error, xp_main


def _setup_b(team: Team, runs: int) -> list[str]:
    # a format-1 project: one ref per run on the server, the copies maintenance prunes (a
    # format-2 remote's catalog buckets are moved by fetch itself; docs/format.md, section 1)
    config = team.a / ".xp" / "config.yaml"
    config.write_text("format: 1\n" + config.read_text())
    ids = [log_run(team.a, {"model.bin": os.urandom(2000 + i)}) for i in range(runs)]
    code, _out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    code, _out, err = xp_main("init", cwd=team.b)
    assert code == 0, err
    git(team.b, "fetch", "-q", "origin")
    return ids


def _fetched(clone: Path) -> list[str]:
    out = git(clone, "for-each-ref", "--format=%(refname)", "refs/xp/remotes/origin/runs/")
    return [line.rsplit("/", 1)[1] for line in out.split()]


def _loose_xp_refs(clone: Path) -> list[Path]:
    return [p for p in (clone / ".git" / "refs" / "xp").rglob("*") if p.is_file()]


def test_dry_run_changes_nothing_then_maintenance_prunes_packs_and_repacks(team: Team) -> None:
    ids = _setup_b(team, 3)
    code, out, err = xp_main("rm", ids[0], "--remote", "origin", cwd=team.a)
    assert code == 0, err
    assert sorted(_fetched(team.b)) == sorted(ids)
    loose = _loose_xp_refs(team.b)
    assert len(loose) == 3

    code, out, err = xp_main("maintenance", "--dry-run", cwd=team.b)
    assert code == 0, err
    assert "would prune 1 fetched runs deleted on origin" in out
    assert "would pack 3 loose refs under refs/xp/" in out
    assert "after (dry run)" in out
    assert sorted(_fetched(team.b)) == sorted(ids)  # nothing changed
    assert len(_loose_xp_refs(team.b)) == 3

    code, out, err = xp_main("maintenance", cwd=team.b)
    assert code == 0, err
    assert "prune 1 fetched runs deleted on origin" in out
    assert "pack 3 loose refs under refs/xp/" in out  # first, then the pruned one goes
    assert "repack objects (incremental)" in out
    assert sorted(_fetched(team.b)) == sorted(ids[1:])
    assert _loose_xp_refs(team.b) == []
    rows = {line.split("  ")[0].strip(): line.split()[-2:] for line in out.splitlines()[3:]}
    assert rows["refs/xp/ loose"] == ["3", "0"]
    assert rows["refs/xp/ packed"] == ["0", "2"]
    # what the pruned run alone reached stays, loose: maintenance deletes no object
    assert 0 < int(rows["loose objects"][1]) < int(rows["loose objects"][0])
    assert int(rows["packed objects"][1]) > int(rows["packed objects"][0])
    code, out, err = xp_main("show", "--all", "--format", "csv", cwd=team.b)
    assert code == 0, err
    assert sum(run_id in out for run_id in ids) == 2  # the index follows the packed refs


def test_a_live_run_keeps_its_objects_and_its_cache_through_maintenance(team: Team) -> None:
    _setup_b(team, 1)
    os.chdir(team.a)
    (team.a / "new.py").write_text("print('not committed anywhere')\n")  # the snapshot's own
    (team.a / "out").mkdir(exist_ok=True)
    (team.a / "out" / "live.bin").write_bytes(os.urandom(5000))
    with xp.start_run(name="live") as run:
        xp.log_artifact(team.a / "out" / "live.bin")
        xp.log_metric("loss", 1.0)
        run.flush()
        for args in (("maintenance", "--full"), ("gc", "--grace", "0")):
            code, _out, err = xp_main(*args, cwd=team.a)
            assert code == 0, err
        subprocess.run(["git", "prune", "--expire=now"], cwd=team.a, check=True)
    code, _out, err = xp_main("get", "live", "-o", str(team.a / "got"), cwd=team.a)
    assert code == 0, err
    assert (team.a / "got" / "live.bin").read_bytes() == (team.a / "out" / "live.bin").read_bytes()
    shown = git(team.a, "show", f"refs/xp/runs/{run.id}:new.py")
    assert "not committed anywhere" in shown


def test_an_unreachable_server_is_a_warning_and_the_rest_still_runs(team: Team) -> None:
    _setup_b(team, 2)
    git(team.b, "remote", "set-url", "origin", str(team.bare.parent / "gone.git"))
    code, out, err = xp_main("maintenance", cwd=team.b)
    assert code == 0, err
    assert "origin: not pruned, the server could not be asked" in err
    assert "pack 2 loose refs" in out
    assert len(_fetched(team.b)) == 2


def test_an_empty_cache_is_not_walked_and_a_full_one_expires_by_xp_gc(team: Team) -> None:
    _setup_b(team, 1)
    code, out, err = xp_main("maintenance", cwd=team.b)  # b fetched runs, no artifact
    assert code == 0, err
    assert "expire" not in out
    code, out, err = xp_main("maintenance", "--dry-run", cwd=team.a)  # a logged them
    assert code == 0, err
    assert "would expire 0 cache objects" in out  # referenced, and younger than an hour
    git(team.b, "remote", "set-url", "origin", str(team.bare))


def test_schedule_registers_the_repository_with_git_maintenance(team: Team) -> None:
    code, out, err = xp_main("maintenance", "--schedule", "--no-cache", cwd=team.a)
    assert code == 0, err
    assert "git maintenance start" in out
    repos = git(team.a, "config", "--global", "--get-all", "maintenance.repo").split("\n")
    assert str(team.a) in repos


def test_outside_a_repository_is_one_line(tmp_path: Path) -> None:
    code, _out, err = xp_main("maintenance", cwd=tmp_path)
    one_line_error(code, err)
