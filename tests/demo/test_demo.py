"""`xp demo`: a real scikit-learn project whose runs are read back from git."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import xp
from tests.helpers import fsck, git, invoke, user_error
from xp.config import load_config
from xp.demo.project import DEMO_SUBJECT, RUNS, make_demo
from xp.gitstore.repo import find_repo


def fake_earlier_demo(path: Path) -> None:
    """What --force looks for: a repo whose first commit is the demo's, plus a read-only file."""
    path.mkdir()
    git(path, "init", "-q")
    (path / "old.txt").write_text("old\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", DEMO_SUBJECT)
    cached = path / ".git" / "xp" / "cache" / "ab" / "blob"
    cached.parent.mkdir(parents=True)
    cached.write_text("x")
    cached.chmod(0o444)


@pytest.mark.slow
def test_demo_records_real_runs(repo: Path) -> None:
    """Default ./xp-demo inside another repo: its own repo, runs readable, fsck clean."""
    result = invoke("demo")
    assert result.exit_code == 0, result.output + result.stderr
    demo = repo / "xp-demo"
    assert (demo / ".git").is_dir()
    assert git(repo, "for-each-ref", "refs/xp/") == ""  # the outer repo got nothing
    assert git(demo, "status", "--porcelain") == ""  # outputs/ and data/ are ignored
    fsck(demo)

    runs = xp.list_runs(path=demo)
    assert len(runs) == len(RUNS)
    baseline = git(demo, "rev-parse", "HEAD").strip()
    assert git(demo, "log", "--format=%s", "-1").strip() == DEMO_SUBJECT
    train_py = (demo / "train.py").read_bytes()
    models = set()
    for ref in runs:
        run = xp.get_run(ref.id, path=demo)
        assert run.status == "finished"
        assert run.meta["baseline"] == baseline
        assert run.meta["command"][0] == "train.py"
        assert run.meta["dirty"] is False
        # the code recorded is the code that ran
        assert git(demo, "cat-file", "blob", f"{ref.ref}:train.py").encode() == train_py
        assert {"model", "max_depth", "n_estimators", "seed", "test_size"} <= set(run.params)
        assert {"rmse", "r2", "train_rmse", "train_seconds"} <= set(run.metrics)
        assert 0.2 < run.metrics["r2"] < 0.7
        rmse = run.series("rmse")
        assert list(rmse["step"])[-1] == run.params["n_estimators"]
        assert len(rmse) == (150 if run.params["model"] == "gb" else 10)
        assert rmse["value"].iloc[-1] == run.metrics["rmse"]
        [model] = run.artifacts
        assert model.path == "model.pkl"
        cached = find_repo(demo).xp_dir / "cache" / "sha256" / model.sha256[:2]
        assert (cached / model.sha256[2:4] / model.sha256).stat().st_size == model.size
        [data] = run.inputs
        assert data.path == "data/diabetes.csv"
        models.add(run.params["model"])
    assert models == {"rf", "gb"}

    out = result.stdout
    assert f"{len(RUNS)} runs recorded" in out
    for ref in runs:
        assert ref.id in out
    # the suggested git commands work as printed
    show = re.search(r"git show (\S+)", out)
    assert show is not None
    assert "rmse:" in git(demo, "show", show.group(1))
    diff = re.search(r"(git diff .*?)\s+#", out)
    assert diff is not None
    assert "max_depth" in git(demo, *shlex.split(diff.group(1))[1:])
    log = git(demo, "log", "--oneline", "--glob=refs/xp/*").splitlines()
    assert len(log) == len(RUNS) + 1
    assert load_config(find_repo(demo)).artifacts == ("outputs/model.pkl",)


@pytest.mark.slow
def test_force_restarts_an_earlier_demo_and_next_steps_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--force replaces an earlier demo; then `python train.py` and `xp commit` work there."""
    demo = tmp_path / "d"
    fake_earlier_demo(demo)
    monkeypatch.chdir(tmp_path)
    message = user_error(invoke("demo", "d"))
    assert "xp demo --force d" in message
    assert (demo / "old.txt").exists()

    result = make_demo("d", force=True)
    assert result.path == demo.resolve()
    assert not (demo / "old.txt").exists()
    assert len(result.runs) == len(RUNS) == len(xp.list_runs(path=demo))
    assert result.best.metrics["rmse"] == min(r.metrics["rmse"] for r in result.runs)

    params = demo / "params.yaml"
    params.write_text(params.read_text().replace("max_depth: 3 ", "max_depth: 4 "))
    proc = subprocess.run([sys.executable, "train.py"], cwd=demo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    new_id = proc.stdout.split()[0]
    run = xp.get_run(new_id, path=demo)
    assert run.params["max_depth"] == 4
    assert run.meta["dirty"] is True
    assert yaml.safe_load(git(demo, "show", f"{run.ref}:params.yaml"))["max_depth"] == 4

    proc = subprocess.run(
        [sys.executable, "-m", "xp", "commit", "-n", "my-run"],
        cwd=demo,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    mine = xp.get_run("my-run", path=demo)
    assert mine.metrics["rmse"] == pytest.approx(run.metrics["rmse"], abs=1e-4)
    assert [a.path for a in mine.artifacts] == ["model.pkl"]
    assert [i.path for i in mine.inputs] == ["data/diabetes.csv"]
    assert mine.inputs[0].sha256 == run.inputs[0].sha256
    fsck(demo)


def test_missing_sklearn_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # `import sklearn` now fails
    message = user_error(invoke("demo", str(tmp_path / "d")))
    assert "pip install 'git-xp[demo]'" in message
    assert not (tmp_path / "d").exists()


def test_non_empty_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine\n")
    message = user_error(invoke("demo", str(tmp_path)))
    assert "not empty" in message
    assert "--force only replaces an earlier xp demo" in user_error(
        invoke("demo", "--force", str(tmp_path))
    )
    assert (tmp_path / "notes.txt").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_other_repo_with_demo_like_files_is_not_an_earlier_demo(tmp_path: Path) -> None:
    """--force trusts only the demo's first commit, not a folder that looks like one."""
    mine = tmp_path / "mine"
    mine.mkdir()
    git(mine, "init", "-q")
    (mine / "train.py").write_text("print('mine')\n")
    git(mine, "add", ".")
    git(mine, "commit", "-qm", "my project")
    user_error(invoke("demo", "--force", str(mine)))
    assert (mine / "train.py").read_text() == "print('mine')\n"
    # a subfolder of a repo whose first commit is the demo's is not a demo either
    earlier = tmp_path / "earlier"
    fake_earlier_demo(earlier)
    (earlier / "sub").mkdir()
    (earlier / "sub" / "f").write_text("x")
    user_error(invoke("demo", "--force", str(earlier / "sub")))
    assert (earlier / "sub" / "f").exists()


def test_file_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert "not a folder" in user_error(invoke("demo", str(tmp_path / "f")))


def test_help_names_the_extra() -> None:
    result = invoke("demo", "--help")
    assert result.exit_code == 0
    assert "git-xp[demo]" in result.stdout
    assert "--force" in result.stdout
