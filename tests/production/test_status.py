"""``xp model status`` and ``xp model rollback`` on real registry tags in a real repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import xp
from tests.helpers import git, invoke, model_version, user_error
from xp.errors import RegistryError


def at(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """Tags made from now on carry this date (git takes the tagger date from here)."""
    monkeypatch.setenv("GIT_COMMITTER_DATE", f"{epoch} +0000")


def tags(root: Path) -> dict[str, str]:
    out = git(root, "for-each-ref", "--format=%(refname:strip=2) %(objectname)", "refs/tags")
    return dict(line.split(" ") for line in out.splitlines())


def test_status_names_version_run_commit_date_tagger_and_previous(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, 1_790_000_000)
    for _ in range(3):
        model_version(repo, "diabetes")
    xp.assign_stage("diabetes", "v0.0.1", "production")
    at(monkeypatch, 1_790_000_100)
    xp.assign_stage("diabetes", "v0.0.2", "production")
    xp.assign_stage("diabetes", "v0.0.3", "staging")
    rows = {r.stage: r for r in xp.model_status()}
    prod = rows["production"]
    v2 = xp.show_models("diabetes")[0].versions["v0.0.2"]
    assert (prod.version, prod.run_id, prod.commit) == ("v0.0.2", v2.run_id, v2.commit)
    assert prod.since == 1_790_000_100
    assert prod.by == "Test Committer <committer@example.com>"
    assert prod.tag == "diabetes#production#2"
    assert (prod.previous, prod.rollback_to) == ("v0.0.1", "v0.0.1")
    assert (rows["staging"].version, rows["staging"].previous) == ("v0.0.3", None)

    out = invoke("model", "status", "diabetes", "--format", "json")
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)
    assert [(d["stage"], d["version"], d["previous"]) for d in data] == [
        ("production", "v0.0.2", "v0.0.1"),
        ("staging", "v0.0.3", None),
    ]
    assert "history" not in data[0]
    md = invoke("model", "status", "--format", "md").stdout.splitlines()
    assert md[0].startswith("| model | stage | version | run |")
    assert md[2].startswith(f"| diabetes | production | v0.0.2 | {v2.run_id} | {v2.commit[:12]}")
    table = invoke("model", "status").stdout.splitlines()
    assert table[1].split()[:3] == ["diabetes", "production", "v0.0.2"]


def test_rollback_is_a_new_tag_and_goes_further_back_each_time(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, 1_790_000_000)
    for _ in range(3):
        model_version(repo, "diabetes")
    for i, version in enumerate(("v0.0.1", "v0.0.2", "v0.0.3")):
        at(monkeypatch, 1_790_000_000 + 60 * i)
        xp.assign_stage("diabetes", version, "production")
    before = tags(repo)
    at(monkeypatch, 1_790_001_000)
    out = invoke("model", "rollback", "diabetes", "--stage", "production")
    assert out.exit_code == 0, out.stderr
    assert out.stdout.startswith("diabetes production: v0.0.3 -> v0.0.2; tag diabetes#production#4")
    after = tags(repo)
    assert {k: after[k] for k in before} == before  # no tag moved or went away
    assert set(after) - set(before) == {"diabetes#production#4"}
    message = git(repo, "tag", "-l", "--format=%(contents)", "diabetes#production#4")
    assert "xp-rollback-from: v0.0.3" in message
    assert message.startswith("Assigning stage production to artifact diabetes version v0.0.2")

    now = xp.model_status("diabetes")[0]
    assert (now.version, now.previous, now.rollback_to) == ("v0.0.2", "v0.0.3", "v0.0.1")
    assert [(c.version, c.rollback_from) for c in now.history] == [
        ("v0.0.1", None),
        ("v0.0.2", None),
        ("v0.0.3", None),
        ("v0.0.2", "v0.0.3"),
    ]
    second = xp.rollback_model("diabetes", "production")
    assert (second.from_version, second.to_version) == ("v0.0.2", "v0.0.1")
    assert xp.show_models("diabetes")[0].stages == {"production": "v0.0.1"}
    line = user_error(invoke("model", "rollback", "diabetes", "--stage", "production"))
    assert "no earlier version of diabetes to roll production back to" in line
    history = invoke("model", "status", "diabetes", "--history").stdout
    assert "rollback from v0.0.3" in history
    assert "rollback from v0.0.2" in history
    # An explicit assign is no rollback: v0.0.3 counts as a rollback target again after it.
    xp.assign_stage("diabetes", "v0.0.3", "production")
    assert xp.model_status("diabetes")[0].rollback_to == "v0.0.1"


def test_deregistering_the_deployed_version_shows_in_the_history(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, 1_790_000_000)
    model_version(repo, "churn", stage="production")
    model_version(repo, "churn", stage="production")
    at(monkeypatch, 1_790_000_060)
    xp.deregister_model("churn", "v0.0.2")
    row = xp.model_status("churn")[0]
    assert (row.version, row.tag) == ("v0.0.1", "churn@v0.0.2!")
    assert [c.action for c in row.history] == ["assign", "assign", "deregister"]
    assert row.rollback_to is None  # v0.0.2 is gone: nothing to go back to
    with pytest.raises(RegistryError, match="no earlier version"):
        xp.rollback_model("churn", "production")
    at(monkeypatch, 1_790_000_120)
    xp.unassign_stage("churn", "production")
    empty = xp.model_status("churn")[0]
    assert (empty.version, empty.previous, empty.rollback_to) == (None, "v0.0.1", "v0.0.1")
    assert xp.rollback_model("churn", "production").to_version == "v0.0.1"


def test_status_and_rollback_refuse_what_does_not_exist(repo: Path) -> None:
    assert "no model 'nope'" in user_error(invoke("model", "status", "nope"))
    model_version(repo, "churn")
    out = invoke("model", "status", "churn")
    assert out.exit_code == 0
    assert "churn has no stage assigned yet" in out.stdout
    line = user_error(invoke("model", "rollback", "churn", "--stage", "production"))
    assert line == "xp: error: churn was never in stage 'production'; its stages: none"
    assert "no model 'nope'" in user_error(invoke("model", "rollback", "nope", "--stage", "x"))
