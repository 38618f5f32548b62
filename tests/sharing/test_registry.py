"""The model registry: GTO-format annotated tags in real repos, pushed through a bare remote."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

import xp
from tests.helpers import fsck, git
from xp.cli import cli
from xp.errors import XPError
from xp.gitstore.repo import find_repo
from xp.sharing import registry


def make_run(root: Path, content: bytes = b"weights-1", rmse: float = 0.5) -> str:
    (root / "out").mkdir(exist_ok=True)
    (root / "out" / "model.pkl").write_bytes(content)
    with xp.start_run(path=root) as run:
        xp.log_metric("rmse", rmse)
        xp.log_artifact(root / "out" / "model.pkl")
        xp.log_text("notes", "notes.txt")
    return str(run.id)


def tag_info(root: Path, tag: str) -> tuple[str, str, str]:
    kind = git(root, "cat-file", "-t", f"refs/tags/{tag}").strip()
    target = git(root, "rev-parse", f"{tag}^{{commit}}").strip()
    message = git(root, "tag", "-l", "--format=%(contents)", tag)
    return kind, target, message


def test_register_writes_an_annotated_gto_tag_at_the_run_commit(repo: Path) -> None:
    run_id = make_run(repo)
    result = xp.register_model(run_id, "churn", artifacts=("model.pkl",))
    assert result.tag == "churn@v0.0.1"
    kind, target, message = tag_info(repo, "churn@v0.0.1")
    assert kind == "tag"
    assert target == xp.get_run(run_id).commit
    assert message.startswith("Registering artifact churn version v0.0.1\n")
    assert f"xp-run: {run_id}\nxp-artifact: model.pkl\n" in message
    second = xp.register_model(make_run(repo, b"weights-2"), "churn")
    assert second.version == "v0.0.2"
    assert second.artifacts == ("model.pkl", "notes.txt")  # default: every artifact
    third = xp.register_model(make_run(repo, b"w3"), "churn", version="v1.0.0")
    assert [m.latest.version for m in xp.show_models()] == ["v1.0.0"]  # type: ignore[union-attr]
    assert third.tag == "churn@v1.0.0"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Churn"}, "lower-case letters"),
        ({"version": "1.0"}, "must look like v1.2.0"),
        (
            {"artifacts": ("model.bin",)},
            "has no artifact 'model.bin'; it has: model.pkl, notes.txt",
        ),
    ],
)
def test_register_refuses_bad_input(repo: Path, kwargs: dict[str, object], message: str) -> None:
    run_id = make_run(repo)
    args: dict[str, object] = {"name": "churn", **kwargs}
    with pytest.raises(XPError, match=message):
        xp.register_model(run_id, **args)  # type: ignore[arg-type]
    assert git(repo, "tag") == ""


def test_register_refuses_duplicates_and_runs_without_artifacts(repo: Path) -> None:
    run_id = make_run(repo)
    xp.register_model(run_id, "churn", version="v1.0.0")
    with pytest.raises(XPError, match=r"already registered as churn@v1\.0\.0"):
        xp.register_model(run_id, "churn")
    with pytest.raises(XPError, match=r"churn@v1\.0\.0 is registered already"):
        xp.register_model(make_run(repo, b"other"), "churn", version="v1.0.0")
    with xp.start_run() as bare:
        xp.log_metric("m", 1)
    with pytest.raises(XPError, match="has no artifacts to register"):
        xp.register_model(bare.id, "churn")
    with pytest.raises(XPError, match="no run"):
        xp.register_model("nosuchrun", "churn")


def test_assign_moves_a_stage_and_counts_like_gto(repo: Path) -> None:
    a, b = make_run(repo, b"a"), make_run(repo, b"b")
    xp.register_model(a, "churn")
    xp.register_model(b, "churn")
    assert xp.assign_stage("churn", "v0.0.1", "production").tag == "churn#production#1"
    assert xp.assign_stage("churn", "0.0.2", "staging").tag == "churn#staging#2"
    model = xp.show_models("churn")[0]
    assert model.stages == {"production": "v0.0.1", "staging": "v0.0.2"}
    assert xp.assign_stage("churn", "v0.0.2", "production").tag == "churn#production#3"
    assert xp.show_models("churn")[0].stages == {"production": "v0.0.2", "staging": "v0.0.2"}
    assert registry.resolve(find_repo(), "churn@production").run_id == b
    with pytest.raises(XPError, match="already in stage 'production'"):
        xp.assign_stage("churn", "v0.0.2", "production")
    assert xp.unassign_stage("churn", "staging").tag == "churn#staging!#4"
    assert xp.show_models("churn")[0].stages == {"production": "v0.0.2"}
    assert xp.deregister_model("churn", "v0.0.2").tag == "churn@v0.0.2!"
    model = xp.show_models("churn")[0]
    assert model.stages == {"production": "v0.0.1"}  # as GTO: back to the one before
    assert model.latest is not None
    assert model.latest.version == "v0.0.1"


def test_assigning_a_version_that_does_not_exist_is_refused(repo: Path) -> None:
    xp.register_model(make_run(repo), "churn")
    result = CliRunner().invoke(cli, ["model", "assign", "churn", "v9.9.9", "--stage", "prod"])
    assert result.exit_code == 1
    assert result.stderr == "xp: error: churn@v9.9.9 does not exist; registered versions: v0.0.1\n"
    result = CliRunner().invoke(cli, ["model", "assign", "nope", "v0.0.1", "--stage", "prod"])
    assert "no model 'nope'; registered models: churn" in result.stderr
    assert git(repo, "tag") == "churn@v0.0.1\n"


def test_cli_register_assign_show_get(repo: Path, tmp_path: Path) -> None:
    run_id = make_run(repo, b"the model", rmse=0.25)
    runner = CliRunner()
    out = runner.invoke(cli, ["model", "register", "churn", run_id, "--artifact", "model.pkl"])
    assert out.exit_code == 0, out.stderr
    assert "registered churn@v0.0.1" in out.stdout
    out = runner.invoke(cli, ["model", "assign", "churn", "v0.0.1", "--stage", "production"])
    assert out.exit_code == 0, out.stderr
    table = runner.invoke(cli, ["model", "show"]).stdout.splitlines()
    assert table[0].split() == ["name", "latest", "#production", "run", "metrics"]
    assert table[1].split() == ["churn", "v0.0.1", "v0.0.1", run_id, "rmse=0.25"]
    detail = runner.invoke(cli, ["model", "show", "churn"]).stdout
    assert "production" in detail
    assert "model.pkl" in detail
    dest = tmp_path / "deploy"
    out = runner.invoke(cli, ["model", "get", "churn@production", "-o", str(dest)])
    assert out.exit_code == 0, out.stderr
    assert (dest / "model.pkl").read_bytes() == b"the model"
    assert not (dest / "notes.txt").exists()  # only the registered artifact
    out = runner.invoke(cli, ["model", "get", "churn@nostage", "-o", str(dest)])
    assert out.exit_code == 1
    assert "no version in stage 'nostage'; stages: production=v0.0.1" in out.stderr


def test_two_clones_registering_the_same_version_conflict_clearly(tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(bare), str(seed))
    (seed / "train.py").write_text("print(1)\n")
    git(seed, "add", ".")
    git(seed, "commit", "-qm", "init")
    git(seed, "push", "-q", "origin", "HEAD:main")
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    for clone in (alice, bob):
        git(tmp_path, "clone", "-q", str(bare), str(clone))
    run_a = make_run(alice, b"alice's")
    run_b = make_run(bob, b"bob's")
    xp.register_model(run_a, "churn", version="v1.0.0", push="origin", path=alice)
    with pytest.raises(XPError) as err:
        xp.register_model(run_b, "churn", version="v1.0.0", push="origin", path=bob)
    message = str(err.value)
    assert "origin already has tag churn@v1.0.0: someone else registered" in message
    assert "git fetch origin --tags" in message
    assert git(bob, "tag") == ""  # bob's losing tag is gone, so fetching brings alice's
    git(bob, "fetch", "-q", "origin", "--tags")
    assert registry.resolve(find_repo(bob), "churn@v1.0.0").run_id == run_a
    remote_tags = git(bare, "for-each-ref", "--format=%(refname)", "refs/tags")
    assert remote_tags == "refs/tags/churn@v1.0.0\n"
    for clone in (alice, bob):
        fsck(clone)


def test_gto_markers_written_by_others_are_read(repo: Path) -> None:
    """Tags made with plain git in GTO's format (e.g. by GTO itself) count the same."""
    run_id = make_run(repo)
    commit = xp.get_run(run_id).commit
    for tag in ("fraud@v0.1.0", "fraud#prod#1", "fraud#dev#2", "fraud#dev!#3"):
        git(repo, "tag", "-a", tag, "-m", "by gto", commit)
    git(repo, "tag", "fraud@v9.0.0", commit)  # lightweight: GTO ignores these, so do we
    model = xp.show_models("fraud")[0]
    assert list(model.versions) == ["v0.1.0"]
    assert model.stages == {"prod": "v0.1.0"}
    assert xp.assign_stage("fraud", "v0.1.0", "dev").tag == "fraud#dev#4"


@pytest.mark.skipif(shutil.which("gto") is None, reason="GTO is not installed")
def test_gto_reads_xp_tags(repo: Path) -> None:
    xp.register_model(make_run(repo), "churn")
    xp.assign_stage("churn", "v0.0.1", "production")
    out = subprocess.run(
        ["gto", "show", "--json"], cwd=repo, capture_output=True, text=True, check=True
    )
    state = json.loads(out.stdout)
    assert state["churn"]["version"] == "v0.0.1"
    assert state["churn"]["stage"]["production"] == "v0.0.1"
