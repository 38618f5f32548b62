"""The Python API against real repos: what a training script does."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import xp
from tests.helpers import git
from xp.errors import InvalidKeyError, InvalidValueError, ParamChangedError, XPError


def test_run_is_a_commit_on_the_baseline(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    with xp.start_run(name="baseline", params={"lr": 0.1}, tags={"team": "a"}) as run:
        xp.log_metric("loss", 0.5)
    ref = f"refs/xp/runs/{run.id}"
    assert git(repo, "rev-parse", f"{ref}^").strip() == head
    assert git(repo, "show", f"{ref}:.xp/run/params.yaml") == "lr: 0.1\n"
    assert git(repo, "show", f"{ref}:train.py") == "print('train')\n"
    subject = git(repo, "log", "-1", "--format=%s", ref).strip()
    assert subject == "xp: baseline loss=0.5"
    got = xp.get_run(run.id)
    assert got.status == "finished"
    assert got.tags == {"team": "a"}
    assert got.metrics == {"loss": 0.5}
    assert got.meta["baseline"] == head
    assert got.meta["branch"] == "main"
    assert got.meta["dirty"] is False


def test_user_files_index_and_head_are_untouched(repo: Path) -> None:
    (repo / "train.py").write_text("print('edited')\n")
    (repo / "new.py").write_text("x = 1\n")
    git(repo, "add", "new.py")
    (repo / "untracked.txt").write_text("u\n")
    index_before = (repo / ".git" / "index").read_bytes()
    status_before = git(repo, "status", "--porcelain")
    head_before = (repo / ".git" / "HEAD").read_text()
    with xp.start_run() as run:
        xp.log_param("a", 1)
    assert (repo / ".git" / "index").read_bytes() == index_before
    assert git(repo, "status", "--porcelain") == status_before
    assert (repo / ".git" / "HEAD").read_text() == head_before
    ref = f"refs/xp/runs/{run.id}"
    assert git(repo, "show", f"{ref}:train.py") == "print('edited')\n"
    assert git(repo, "show", f"{ref}:untracked.txt") == "u\n"
    assert xp.get_run(run.id).meta["dirty"] is True


def test_metric_series_steps_and_final_value(repo: Path) -> None:
    with xp.start_run() as run:
        for i in range(5):
            xp.log_metric("train/loss", 1.0 / (i + 1))
        xp.log_metric("acc", 0.1, step=10)
        xp.log_metric("acc", 0.9, step=3)
        xp.log_metrics({"a": 1, "b": 2.5})
    got = xp.get_run(run.id)
    assert got.metrics["train/loss"] == 0.2
    assert got.metrics["acc"] == 0.1  # highest step wins, as in MLflow
    assert got.metrics["a"] == 1
    frame = got.series("train/loss")
    assert list(frame["step"]) == [0, 1, 2, 3, 4]
    assert "a" not in got.series_frame()["metric"].unique()
    assert list(got.series("a")["value"]) == [1]
    tree = git(repo, "ls-tree", "-r", "--name-only", f"refs/xp/runs/{run.id}", ".xp/run/series")
    assert tree.split() == [".xp/run/series/acc.tsv", ".xp/run/series/train/loss.tsv"]


def test_nan_and_inf_are_kept(repo: Path) -> None:
    with xp.start_run() as run:
        xp.log_metric("n", float("nan"))
        xp.log_metric("p", float("inf"))
        xp.log_metric("m", float("-inf"))
    got = xp.get_run(run.id)
    assert math.isnan(got.metrics["n"])
    assert got.metrics["p"] == math.inf
    assert got.metrics["m"] == -math.inf


def test_numpy_like_values_are_numbers(repo: Path) -> None:
    class Scalar:
        def __float__(self) -> float:
            return 0.25

        def item(self) -> float:
            return 0.25

    with xp.start_run() as run:
        xp.log_metric("x", Scalar())  # type: ignore[arg-type]
        xp.log_param("p", Scalar())
    got = xp.get_run(run.id)
    assert got.metrics["x"] == 0.25
    assert got.params["p"] == 0.25


@pytest.mark.parametrize("bad", ["0.5", None, [1.0], b"1"])
def test_non_numeric_metric_is_refused(repo: Path, bad: object) -> None:
    with xp.start_run(), pytest.raises(InvalidValueError, match="must be a number"):
        xp.log_metric("m", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["../x", "a//b", "bad*key", "", "x" * 251])
def test_invalid_keys_are_refused_everywhere(repo: Path, key: str) -> None:
    with xp.start_run():
        for call in (
            lambda: xp.log_metric(key, 1.0),
            lambda: xp.log_param(key, 1),
            lambda: xp.set_tag(key, "v"),
        ):
            with pytest.raises(InvalidKeyError):
                call()


def test_param_cannot_change(repo: Path) -> None:
    with xp.start_run() as run:
        xp.log_param("lr", 0.1)
        xp.log_param("lr", 0.1)  # same value: fine
        with pytest.raises(ParamChangedError, match="cannot change"):
            xp.log_param("lr", 0.2)
    assert xp.get_run(run.id).params == {"lr": 0.1}


def test_long_param_and_tag_values(repo: Path) -> None:
    with xp.start_run():
        xp.log_param("ok", "x" * 6000)
        with pytest.raises(InvalidValueError, match="limit"):
            xp.log_param("long", "x" * 6001)
        with pytest.raises(InvalidValueError, match="limit"):
            xp.set_tag("long", "x" * 8001)


def test_names_with_slash_space_and_unicode(repo: Path) -> None:
    with xp.start_run(name="exp/α β 🚀") as run:
        xp.log_metric("métrique/ü", 1.0)
    got = xp.get_run(run.id)
    assert got.name == "exp/α β 🚀"
    assert got.metrics == {"métrique/ü": 1.0}
    with pytest.raises(InvalidValueError):
        xp.start_run(name="two\nlines")


def test_artifacts_files_folders_text_dict(repo: Path) -> None:
    out = repo / "outputs"
    (out / "sub").mkdir(parents=True)
    (out / "model.bin").write_bytes(b"\0" * 1000)
    (out / "sub" / "plot.png").write_bytes(b"png")
    with xp.start_run() as run:
        xp.log_artifact(out / "model.bin")
        xp.log_artifact("outputs", name="all")
        xp.log_text("hello", "notes/readme.txt")
        xp.log_dict({"b": 1, "a": [1, 2]}, "config.yaml")
        xp.log_dict({"x": 1}, "config.json")
    arts = {a.path: a for a in xp.get_run(run.id).artifacts}
    assert set(arts) == {
        "model.bin",
        "all/model.bin",
        "all/sub/plot.png",
        "notes/readme.txt",
        "config.yaml",
        "config.json",
    }
    assert arts["model.bin"].sha256 == arts["all/model.bin"].sha256
    assert arts["model.bin"].source == "outputs/model.bin"
    assert arts["all/sub/plot.png"].source == "outputs/sub/plot.png"
    assert arts["notes/readme.txt"].source is None
    cache = repo / ".git" / "xp" / "cache" / "sha256"
    blob = cache / arts["config.yaml"].sha256[:2] / arts["config.yaml"].sha256[2:4]
    assert (blob / arts["config.yaml"].sha256).read_bytes() == b"a:\n- 1\n- 2\nb: 1\n"
    stored = list(cache.rglob("*"))
    assert len([p for p in stored if p.is_file()]) == 5  # model.bin stored once


def test_artifact_errors(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x")
    (repo / "m.bin").write_bytes(b"m")
    with xp.start_run():
        with pytest.raises(InvalidValueError, match="does not exist"):
            xp.log_artifact("nope.bin")
        with pytest.raises(InvalidValueError, match="outside the repository"):
            xp.log_artifact(outside)
        with pytest.raises(InvalidValueError, match="outside the repository"):
            xp.log_artifact("../outside.bin")
        for bad in ("../x", "/abs", "a/../../b", ""):
            with pytest.raises(InvalidValueError, match="relative path"):
                xp.log_artifact("m.bin", name=bad)


def test_folder_symlink_escaping_is_refused(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s")
    (repo / "out").mkdir()
    (repo / "out" / "link").symlink_to(tmp_path / "secret")
    with xp.start_run(), pytest.raises(InvalidValueError, match="outside"):
        xp.log_artifact("out")


def test_log_input_versions_data(repo: Path) -> None:
    data = repo / "data"
    data.mkdir()
    (data / "a.csv").write_text("1,2\n")
    (data / "b.csv").write_text("3,4\n")
    with xp.start_run() as r1:
        xp.log_input("data")
        xp.log_input("data/a.csv")
    (data / "b.csv").write_text("3,5\n")
    with xp.start_run() as r2:
        xp.log_input("data")
    in1 = {i.path: i for i in xp.get_run(r1.id).inputs}
    in2 = {i.path: i for i in xp.get_run(r2.id).inputs}
    assert in1["data"].kind == "dir"
    assert in1["data"].files == 2
    assert in1["data"].sha256 != in2["data"].sha256
    assert in1["data/a.csv"].size == 4


def test_nested_runs_and_plain_calls(repo: Path) -> None:
    parent = xp.start_run(name="parent")
    assert xp.active_run().id == parent.id
    with pytest.raises(XPError, match="already active"):
        xp.start_run()
    child = xp.start_run(name="child", nested=True)
    xp.log_metric("c", 1.0)
    xp.end_run()
    assert xp.active_run().id == parent.id
    xp.end_run()
    assert xp.active_run() is None
    assert xp.get_run(child.id).meta["parent"] == parent.id
    assert xp.get_run(parent.id).status == "finished"


def test_log_without_start_run_starts_one(repo: Path) -> None:
    xp.log_metric("x", 1.0)
    run = xp.active_run()
    assert run is not None
    xp.end_run()
    assert xp.get_run(run.id).metrics == {"x": 1.0}


def test_exception_marks_failed_and_ctrl_c_killed(repo: Path) -> None:
    with pytest.raises(RuntimeError), xp.start_run() as failed:
        raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt), xp.start_run() as killed:
        raise KeyboardInterrupt
    assert xp.get_run(failed.id).status == "failed"
    assert xp.get_run(killed.id).status == "killed"
    subject = git(repo, "log", "-1", "--format=%B", f"refs/xp/runs/{failed.id}")
    assert "xp-status: failed" in subject


def test_end_run_with_status_and_logging_after_end(repo: Path) -> None:
    run = xp.start_run()
    xp.end_run("killed")
    assert xp.get_run(run.id).status == "killed"
    with pytest.raises(XPError, match="has ended"):
        run.log_param("a", 1)
    with pytest.raises(InvalidValueError):
        xp.start_run().finish("bogus")
    xp.end_run()


def test_repo_with_no_commits(empty_repo: Path) -> None:
    (empty_repo / "a.py").write_text("a\n")
    with xp.start_run() as run:
        xp.log_metric("m", 1.0)
    assert git(empty_repo, "rev-list", "--count", f"refs/xp/runs/{run.id}").strip() == "1"
    got = xp.get_run(run.id)
    assert got.meta["baseline"] is None
    assert got.meta["dirty"] is True
    assert git(empty_repo, "show", f"refs/xp/runs/{run.id}:a.py") == "a\n"


def test_detached_head(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    with xp.start_run() as run:
        pass
    got = xp.get_run(run.id)
    assert got.meta["branch"] is None
    assert got.meta["baseline"] == git(repo, "rev-parse", "HEAD").strip()


def test_linked_worktree_shares_runs(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(wt))
    (wt / "train.py").write_text("print('feature')\n")
    monkeypatch.chdir(wt)
    with xp.start_run() as run:
        xp.log_metric("m", 2.0)
    assert xp.get_run(run.id).meta["branch"] == "feature"
    assert git(repo, "show", f"refs/xp/runs/{run.id}:train.py") == "print('feature')\n"
    assert (repo / ".git" / "xp").is_dir()


def test_not_a_repo_and_bare_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    with pytest.raises(XPError, match="not a git repository"):
        xp.start_run()
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    monkeypatch.chdir(bare)
    with pytest.raises(XPError, match="bare"):
        xp.start_run()


def test_nan_param_twice_and_bad_timestamp(repo: Path) -> None:
    with xp.start_run() as run:
        xp.log_param("p", float("nan"))
        xp.log_param("p", float("nan"))
        xp.log_metric("m", 1.0, timestamp=1_700_000_000_000)
        xp.log_metric("m", 2.0, timestamp=1_700_000_001_000)
        xp.log_metric("single", 2.0)
        with pytest.raises(InvalidValueError, match="milliseconds"):
            xp.log_metric("m", 1.0, timestamp="now")  # type: ignore[arg-type]
        with pytest.raises(InvalidValueError, match="integer"):
            xp.log_metric("m", 1.0, step=1.5)  # type: ignore[arg-type]
    got = xp.get_run(run.id)
    assert math.isnan(got.params["p"])
    assert got.series("m")["timestamp"].iloc[0].year == 2023
    assert got.series("single")["timestamp"].isna().all()  # one value: no series file, no time


def test_short_runs_write_no_journal_and_survive_git_prune(repo: Path) -> None:
    journal_dir = repo / ".git" / "xp" / "journal"
    with xp.start_run():
        xp.log_metric("m", 1.0)
    assert not journal_dir.exists() or not list(journal_dir.iterdir())
    git(repo, "prune")  # may remove empty objects/xx folders the writer has seen
    for sub in (repo / ".git" / "objects").iterdir():
        if sub.is_dir() and len(sub.name) == 2 and not any(sub.iterdir()):
            sub.rmdir()
    with xp.start_run() as run:
        xp.log_metric("m", 2.0)
    assert xp.get_run(run.id).metrics == {"m": 2.0}


def test_rename_update_param_external_artifact_and_end_time(repo: Path, tmp_path: Path) -> None:
    """What integrations need from a run: W&B's allow_val_change, Comet's set_name,
    checkpoints outside the work tree, an importer's end time."""
    outside = tmp_path / "elsewhere" / "ckpt.bin"
    outside.parent.mkdir()
    outside.write_bytes(b"weights")
    run = xp.start_run().run
    run.set_name("renamed")
    run.log_param("lr", 0.1)
    run.update_param("lr", 0.2)
    with pytest.raises(InvalidValueError, match="outside the repository"):
        run.log_artifact(outside)
    (entry,) = run.log_artifact(outside, "checkpoints/ckpt.bin", external=True)
    assert entry.source is None  # a by-product: checkouts do not put it into the work tree
    with pytest.raises(InvalidValueError):
        run.set_name("two\nlines")
    xp.end_run()
    got = xp.get_run(run.id)
    assert (got.name, got.params) == ("renamed", {"lr": 0.2})
    assert got.meta["warnings"] == ["param 'lr' changed from 0.1 to 0.2 while the run went"]
    assert [a.path for a in got.artifacts] == ["checkpoints/ckpt.bin"]
    from xp.tracking.run import Run

    timed = Run()  # an importer's run: not the active one
    timed.update_header(start_time=1_700_000_000.0)
    timed.finish("finished", end_time=1_700_000_060.5)
    got = xp.get_run(timed.id)
    assert (got.meta["start_time"], got.meta["end_time"]) == (
        "2023-11-14T22:13:20.000Z",
        "2023-11-14T22:14:20.500Z",
    )
    assert got.meta["duration"] == 60.5


def test_log_metrics_at_a_step_is_all_or_none_and_shares_its_time(repo: Path) -> None:
    """A bad value in ``log_metrics(dict, step)`` logs none of the dict (an integration then
    logs each on its own); the points of one call share one time, as MLflow's do."""
    with xp.start_run() as run:
        with pytest.raises(InvalidValueError, match="'b'"):
            run.run.log_metrics({"a": 1.0, "b": "x", "c": 3}, 4)
        assert run.run.state.points == []
        run.run.log_metrics({"a": 0.5, "c": 2**62, "d": float("nan")}, 4)
        run.run.log_metrics({"a": 0.25}, 5)
        points = list(run.run.state.points)
        run.run.log_metric("c", 7)  # the next step after the batch's
    assert [(k, v, s) for k, v, s, _t in points[:2]] == [("a", 0.5, 4), ("c", 2**62, 4)]
    assert points[0][3] is points[1][3] is points[2][3]
    got = xp.get_run(run.id)
    assert list(got.series("a")["step"]) == [4, 5]
    assert list(got.series("a")["value"]) == [0.5, 0.25]
    assert list(got.series("c")["step"]) == [4, 5]
    assert list(got.series("c")["value"]) == [2**62, 7]
    assert math.isnan(got.metrics["d"])


def test_deferred_metrics_are_logged_at_flushes_reads_and_the_end_with_their_time(
    repo: Path,
) -> None:
    """``Run.defer``: a callback holding raw iterations has them logged before every flush,
    live read and the run's end, each at the time it kept (``log_metrics_at``)."""
    held: list[tuple[int, float]] = []
    calls: list[int] = []
    with xp.start_run() as active:
        run = active.run

        def drain() -> None:
            calls.append(len(held))
            while held:
                step, when = held.pop(0)
                run.log_metrics_at({"loss": 1.0 / (step + 1)}, step, when)

        run.defer(drain)
        held.append((0, 1_700_000_000.25))
        run.flush()  # the flusher thread's call
        assert calls == [1]
        held.append((1, 1_700_000_001.5))
        assert [s for s, _v, _t in run.history("loss")] == [0, 1]
        held.append((2, 1_700_000_002.0))
        with pytest.raises(InvalidValueError):
            run.log_metrics_at({"loss": 1.0}, "x", 1.0)  # type: ignore[arg-type]
    assert len(calls) >= 3  # flush, read, end
    got = xp.get_run(active.id)
    assert list(got.series("loss")["step"]) == [0, 1, 2]
    stamps = [t for _s, _v, t in got.record.series["loss"]]
    assert stamps == [1_700_000_000_250, 1_700_000_001_500, 1_700_000_002_000]
    run.undefer(drain)  # once ended: nothing registered, nothing raised


def test_log_metrics_at_refuses_a_time_no_point_can_have_and_the_run_still_flushes(
    repo: Path,
) -> None:
    """A NaN, infinite or out-of-range time is refused at the call, as ``log_metric``'s
    timestamp is: taken, it made every later flush fail and the run stop journaling."""
    with xp.start_run() as active:
        run = active.run
        for bad in (math.nan, math.inf, -math.inf, 1e300, "soon"):
            with pytest.raises(InvalidValueError, match="time for metric 'loss'"):
                run.log_metrics_at({"loss": 1.0}, 0, bad)  # type: ignore[arg-type]
        run.log_metrics_at({"loss": 2.0}, 1, np.float64(1_700_000_000.5))
        run.flush()
        assert run.state.points == []  # journaled: nothing held back
    stamps = [t for _s, _v, t in xp.get_run(active.id).record.series["loss"]]
    assert stamps == [1_700_000_000_500]


def test_log_files_stores_each_as_log_bytes_does(repo: Path) -> None:
    with xp.start_run() as run:
        one = run.run.log_bytes(b"{}\n", "one.json")
        both = run.run.log_files({"a/b.json": b'{"x": 1}\n', "c.json": b"{}\n"})
        with pytest.raises(InvalidValueError, match="relative path"):
            run.run.log_files({"ok.json": b"1", "../out.json": b"2"})
    assert [e.path for e in both] == ["a/b.json", "c.json"]
    assert both[1].sha256 == one[0].sha256
    got = xp.get_run(run.id)
    paths = {e.path for e in got.artifacts}
    assert {"one.json", "a/b.json", "c.json"} <= paths
    assert "ok.json" not in paths
