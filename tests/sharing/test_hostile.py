"""Run records from other people's clones are data, never code or paths out of the work tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import xp
from tests.helpers import git
from xp.cli import cli
from xp.errors import XPError

EVIL_META = (
    "format: 1\nid: 1nhostile00000a\nname: !!python/object/apply:os.system ['touch PWNED']\n"
)
ESCAPING = (
    "format: 1\nid: 1nhostile00000b\nname: escape\nstatus: finished\n",
    "- path: ../../outside.bin\n  sha256: "
    + "a" * 64
    + "\n  size: 1\n  source: ../../outside.bin\n",
)


def _forge(repo: Path, run_id: str, files: dict[str, str]) -> str:
    """A run commit made with plumbing, as a hostile clone could push it."""
    env = {**os.environ, "GIT_INDEX_FILE": str(repo / ".git" / "forge-index")}
    for path, text in files.items():
        sha = subprocess.run(
            ["git", "hash-object", "-w", "--stdin"],
            cwd=repo,
            input=text,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        subprocess.run(
            ["git", "update-index", "--add", "--cacheinfo", f"100644,{sha},{path}"],
            cwd=repo,
            env=env,
            check=True,
        )
    tree = subprocess.run(
        ["git", "write-tree"], cwd=repo, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    commit = git(repo, "commit-tree", tree, "-m", "xp: forged").strip()
    git(repo, "update-ref", f"refs/xp/runs/{run_id}", commit)
    os.unlink(env["GIT_INDEX_FILE"])
    return commit


def test_yaml_tags_are_not_executed(repo: Path) -> None:
    _forge(repo, "1nhostile00000a", {".xp/run/meta.yaml": EVIL_META})
    with pytest.raises(XPError, match=r"invalid YAML|could not determine a constructor"):
        xp.get_run("1nhostile00000a")
    assert not (repo / "PWNED").exists()
    result = CliRunner().invoke(cli, ["show", "--all"])
    assert result.exit_code == 0  # shown as an error row, never a crash
    assert not (repo / "PWNED").exists()


def test_escaping_artifact_paths_are_refused(repo: Path, tmp_path: Path) -> None:
    meta, artifacts = ESCAPING
    commit = _forge(
        repo, "1nhostile00000b", {".xp/run/meta.yaml": meta, ".xp/run/artifacts.yaml": artifacts}
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["get", "1nhostile00000b", "-o", str(out)])
    assert result.exit_code == 1
    assert "not a clean relative path" in result.stderr
    assert not (tmp_path / "outside.bin").exists()
    # the post-checkout hook refuses the same record
    result = CliRunner().invoke(cli, ["hook", "post-checkout", "HEAD", commit, "1"])
    assert result.exit_code == 1
    assert "xp: error:" in result.stderr
    assert "Traceback" not in result.output
    assert not (repo.parent / "outside.bin").exists()


def test_hostile_record_through_a_real_fetch(repo: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil"
    git(tmp_path, "clone", "-q", str(repo), str(evil))
    _forge(evil, "1nhostile00000a", {".xp/run/meta.yaml": EVIL_META})
    git(repo, "fetch", "-q", str(evil), "+refs/xp/runs/*:refs/xp/remotes/evil/runs/*")
    proc = subprocess.run(
        [sys.executable, "-m", "xp", "show", "--all"], cwd=repo, capture_output=True, text=True
    )
    assert "Traceback" not in proc.stderr
    assert not (repo / "PWNED").exists()


def test_post_checkout_does_not_follow_symlinks_out(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (repo / "outputs").symlink_to(outside)
    meta = "format: 1\nid: 1nhostile00000c\nname: link\nstatus: finished\n"
    artifacts = (
        "- path: model.bin\n  sha256: " + "b" * 64 + "\n  size: 1\n  source: outputs/model.bin\n"
    )
    commit = _forge(
        repo, "1nhostile00000c", {".xp/run/meta.yaml": meta, ".xp/run/artifacts.yaml": artifacts}
    )
    result = CliRunner().invoke(cli, ["hook", "post-checkout", "HEAD", commit, "1"])
    assert result.exit_code == 1
    assert "leads outside the work tree" in result.stderr
    assert not list(outside.iterdir())
