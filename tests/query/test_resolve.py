"""Run resolution: one rule for ids, prefixes, names, refs, commit-ishes and the workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

import xp
from tests.helpers import git
from xp.errors import AmbiguousRunError, RunNotFoundError
from xp.gitstore.repo import find_repo
from xp.query.resolve import resolve, resolve_spec


def make_run(name: str, **metrics: float) -> str:
    with xp.start_run(name=name) as run:
        for key, value in metrics.items():
            xp.log_metric(key, value)
    return str(run.id)


def test_id_prefix_name_ref_and_commitish(repo: Path) -> None:
    first = make_run("alpha", acc=0.1)
    second = make_run("beta", acc=0.2)
    r = find_repo()
    assert resolve_spec(r, first).run_id == first
    assert resolve_spec(r, first.upper()).run_id == first  # ids are case-insensitive
    assert resolve_spec(r, "beta").run_id == second
    full = resolve_spec(r, f"refs/xp/runs/{second}")
    assert full.run_id == second
    assert full.commit == git(repo, "rev-parse", f"refs/xp/runs/{second}").strip()
    # a branch whose tip is a run commit resolves as a commit-ish
    git(repo, "branch", "exp", f"refs/xp/runs/{first}")
    found = resolve_spec(r, "exp")
    assert found.run_id is None
    assert found.commit == git(repo, "rev-parse", "exp").strip()
    assert xp.get_run("exp").name == "alpha"
    assert xp.get_run(f"refs/xp/runs/{first}~0").name == "alpha"
    # HEAD~0 is the baseline: a plain commit, resolvable, but with no record
    with pytest.raises(RunNotFoundError, match="carries no run record"):
        xp.get_run("HEAD")


def test_unique_prefix_and_ambiguous_prefix(repo: Path) -> None:
    ids = [make_run(f"r{i}") for i in range(3)]
    r = find_repo()
    common = ids[0][:4]  # same millisecond clock prefix
    assert all(i.startswith(common[:2]) for i in ids)
    with pytest.raises(AmbiguousRunError) as err:
        resolve_spec(r, ids[0][:2])
    msg = str(err.value)
    assert "\n" not in msg
    assert all(i in msg for i in ids)
    assert "type more characters" in msg
    assert resolve_spec(r, ids[1]).run_id == ids[1]


def test_name_newest_wins_and_others_are_listed(repo: Path) -> None:
    old = make_run("same")
    new = make_run("same")
    found = resolve_spec(find_repo(), "same")
    assert found.run_id == new
    assert found.others == (old,)


def test_ambiguous_prefix_loses_to_an_exact_name(repo: Path) -> None:
    ids = [make_run("x"), make_run("x")]
    prefix = ids[0][:3]
    named = make_run(prefix)  # a run literally named like a prefix of many ids
    assert resolve_spec(find_repo(), prefix).run_id == named


def test_unknown_spec_is_one_line_with_a_suggestion(repo: Path) -> None:
    make_run("baseline-cnn")
    with pytest.raises(RunNotFoundError) as err:
        resolve_spec(find_repo(), "baseline-cn")
    msg = str(err.value)
    assert "\n" not in msg
    assert "did you mean baseline-cnn" in msg
    assert "xp show" in msg


def test_workspace_only_where_allowed(repo: Path) -> None:
    r = find_repo()
    assert resolve_spec(r, "workspace", allow_workspace=True).is_workspace
    with pytest.raises(RunNotFoundError, match="not a run"):
        resolve_spec(r, "workspace")
    with pytest.raises(RunNotFoundError, match="no run given"):
        resolve_spec(r, "  ")


def test_missing_xp_ref_and_option_like_spec(repo: Path) -> None:
    r = find_repo()
    with pytest.raises(RunNotFoundError, match="no ref"):
        resolve(r, "refs/xp/runs/0000000000000")
    with pytest.raises(RunNotFoundError):
        resolve(r, "--all")  # never passed to git as an option


def test_remote_copy_resolves_and_local_wins(repo: Path) -> None:
    run_id = make_run("mine")
    sha = git(repo, "rev-parse", f"refs/xp/runs/{run_id}").strip()
    git(repo, "update-ref", f"refs/xp/remotes/origin/runs/{run_id}", sha)
    assert resolve_spec(find_repo(), run_id).ref == f"refs/xp/runs/{run_id}"
    git(repo, "update-ref", "-d", f"refs/xp/runs/{run_id}")
    assert resolve_spec(find_repo(), "mine").ref == f"refs/xp/remotes/origin/runs/{run_id}"


def test_get_run_by_name_and_series(repo: Path) -> None:
    with xp.start_run(name="curve"):
        for step in range(3):
            xp.log_metric("loss", 1.0 / (step + 1), step=step)
    frame = xp.get_series("curve", "loss")
    assert list(frame.columns) == ["step", "value", "timestamp"]
    assert frame["step"].tolist() == [0, 1, 2]
    assert frame["value"].iloc[-1] == pytest.approx(1 / 3)
    with pytest.raises(RunNotFoundError, match="no metric 'acc'"):
        xp.get_series("curve", "acc")
