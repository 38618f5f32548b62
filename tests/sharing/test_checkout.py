"""`xp checkout` and `xp branch` on real repos: files, artifacts, refusals, the saved state."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

import xp
from tests.helpers import git
from xp.cli import cli


def record(repo: Path, lr: float, model: bytes) -> str:
    """A run whose code has params lr, an extra untracked file and model bytes in outputs/."""
    (repo / "params.yaml").write_text(f"lr: {lr}\n")
    (repo / "extra.py").write_text(f"# for lr {lr}\n")
    (repo / "outputs").mkdir(exist_ok=True)
    (repo / "outputs" / "model.pkl").write_bytes(model)
    with xp.start_run() as run:
        xp.log_artifact("outputs/model.pkl")
        xp.log_text("from memory", "notes.txt")
    return str(run.id)


def reset(repo: Path) -> None:
    git(repo, "checkout", "-q", "--", ".")
    (repo / "extra.py").unlink()


def test_checkout_brings_back_code_and_artifacts_and_leaves_head_alone(repo: Path) -> None:
    (repo / ".gitignore").write_text("outputs/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore outputs")
    head = git(repo, "rev-parse", "HEAD")
    run_id = record(repo, 0.5, b"model-0.5")
    reset(repo)
    (repo / "outputs" / "model.pkl").unlink()
    result = CliRunner().invoke(cli, ["checkout", run_id[:8]])
    assert result.exit_code == 0, result.stderr
    assert (repo / "params.yaml").read_text() == "lr: 0.5\n"
    assert (repo / "extra.py").read_text() == "# for lr 0.5\n"
    assert (repo / "outputs" / "model.pkl").read_bytes() == b"model-0.5"
    assert not (repo / ".xp" / "run").exists()
    assert "1 artifact(s) have no work-tree path" in result.stdout
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "diff", "--cached") == ""  # the index is untouched
    assert git(repo, "status", "--porcelain") == " M params.yaml\n?? extra.py\n"


def test_a_dirty_workspace_is_refused_and_nothing_changes(repo: Path) -> None:
    run_id = record(repo, 0.5, b"m")
    reset(repo)
    (repo / "params.yaml").write_text("lr: 0.9  # my edit\n")
    result = CliRunner().invoke(cli, ["checkout", run_id])
    assert result.exit_code == 1
    assert result.stderr.startswith("xp: error: the workspace has changes checkout would")
    assert "(params.yaml, outputs/model.pkl)" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert (repo / "params.yaml").read_text() == "lr: 0.9  # my edit\n"


def test_force_saves_the_workspace_as_a_run_that_checks_out_again(repo: Path) -> None:
    run_id = record(repo, 0.5, b"model-a")
    reset(repo)
    (repo / "params.yaml").write_text("lr: 0.9  # my edit\n")
    (repo / "scratch.txt").write_text("unsaved thoughts\n")
    (repo / "outputs" / "model.pkl").write_bytes(b"precious, in no cache")
    result = CliRunner().invoke(cli, ["checkout", "--force", run_id])
    assert result.exit_code == 0, result.stderr
    saved = result.stderr.split("saved the workspace as run ")[1].split(";")[0]
    assert f"xp checkout {saved}" in result.stderr
    assert (repo / "params.yaml").read_text() == "lr: 0.5\n"
    assert not (repo / "scratch.txt").exists()
    assert (repo / "outputs" / "model.pkl").read_bytes() == b"model-a"
    view = xp.get_run(saved)
    assert view.experiment == "xp-checkout-saves"
    assert view.tags["xp.saved-before-checkout"] == run_id
    # the workspace is exactly what checkout wrote, so no --force is needed to go back
    back = CliRunner().invoke(cli, ["checkout", saved])
    assert back.exit_code == 0, back.stderr
    assert (repo / "params.yaml").read_text() == "lr: 0.9  # my edit\n"
    assert (repo / "scratch.txt").read_text() == "unsaved thoughts\n"
    assert (repo / "outputs" / "model.pkl").read_bytes() == b"precious, in no cache"


def test_checkout_of_something_that_is_not_a_run(repo: Path) -> None:
    result = CliRunner().invoke(cli, ["checkout", "nosuchrun"])
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    result = CliRunner().invoke(cli, ["checkout", "HEAD"])
    assert result.exit_code == 1
    assert "carries no run record" in result.stderr


def test_branch_at_a_run(repo: Path) -> None:
    run_id = record(repo, 0.5, b"m")
    result = CliRunner().invoke(cli, ["branch", run_id, "exp/lr-0.5"])
    assert result.exit_code == 0, result.stderr
    commit = xp.get_run(run_id).commit
    assert git(repo, "rev-parse", "exp/lr-0.5").strip() == commit
    assert git(repo, "show", "exp/lr-0.5:params.yaml") == "lr: 0.5\n"
    assert xp.get_run("exp/lr-0.5").id == run_id  # a branch commit with a record reads as a run
    again = CliRunner().invoke(cli, ["branch", run_id, "exp/lr-0.5"])
    assert (
        again.stderr
        == "xp: error: branch 'exp/lr-0.5' exists already; pick another name or delete it first\n"
    )
    bad = CliRunner().invoke(cli, ["branch", run_id, "no..dots"])
    assert "is not a valid branch name" in bad.stderr


def test_where_artifacts_live_survives_checking_out_an_old_run(repo: Path) -> None:
    (repo / ".xp").mkdir()
    config = repo / ".xp" / "config.yaml"
    config.write_text("# project settings\nparams: [params.yaml]\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "config")
    old = record(repo, 0.5, b"model")  # its snapshot has the config without any remote
    reset(repo)
    result = CliRunner().invoke(
        cli, ["remote", "add", "store", str(repo.parent / "st"), "--default"]
    )
    assert result.exit_code == 0, result.stderr
    text = config.read_text()
    config.write_text(
        text.replace("params: [params.yaml]", "params: [params.yaml, more.yaml]")
        + "cache:\n  link: [copy]  # my choice\n"
    )
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "store and more params")
    result = CliRunner().invoke(cli, ["checkout", old])
    assert result.exit_code == 0, result.stderr
    after = config.read_text()
    assert "params: [params.yaml]\n" in after  # the run's own settings come back
    assert "more.yaml" not in after
    assert "remotes:\n  store:" in after  # where artifacts live stays
    assert "  link: [copy]  # my choice\n" in after  # comments and layout kept
    assert "kept the artifact settings (remotes, default_remote, cache)" in result.stdout
    assert CliRunner().invoke(cli, ["remote", "list"]).stdout.startswith("* store")
