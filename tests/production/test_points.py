"""Monitoring points: ``xp.log_production``, ``xp model observe`` and ``xp model import`` in
real repositories, and two clones exchanging them through a bare remote with plain git."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import xp
from tests.helpers import Team, git, invoke, model_version, user_error, xp_main
from xp.errors import InvalidKeyError, InvalidValueError, ModelNotFoundError
from xp.gitstore.repo import find_repo
from xp.production import points

T0 = 1_790_000_000  # seconds; tags and points in the tests are dated from here


def at(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    monkeypatch.setenv("GIT_COMMITTER_DATE", f"{epoch} +0000")


def read(root: Path, model: str = "diabetes", **kw: str) -> list[points.Point]:
    return points.read(find_repo(root), model=model, **kw).points  # type: ignore[arg-type]


def test_points_go_to_the_version_deployed_at_their_window_end(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, T0)
    model_version(repo, "diabetes", stage="production")
    model_version(repo, "diabetes")
    at(monkeypatch, T0 + 3600)
    xp.assign_stage("diabetes", "v0.0.2", "production")
    run_refs = git(repo, "for-each-ref", "refs/xp/runs", "refs/tags")

    now = xp.log_production(
        "diabetes", "production", {"accuracy": 0.91, "latency_ms_p95": 38}, tags={"region": "eu"}
    )
    assert (now.versions, now.points) == (("v0.0.2",), 2)
    before = xp.log_production(
        model="diabetes",
        stage="production",
        metrics={"accuracy": Decimal("0.8")},
        window_end=dt.datetime.fromtimestamp(T0 + 1800, dt.timezone.utc),
    )
    assert before.versions == ("v0.0.1",)  # the window ended before v0.0.2 was deployed
    forced = xp.log_production("diabetes", "shadow", {"accuracy": 0.7}, version="0.0.2")
    assert forced.versions == ("v0.0.2",)

    got = sorted((p.version, p.stage, p.metric, p.value, p.tags) for p in read(repo))
    assert got == [
        ("v0.0.1", "production", "accuracy", 0.8, ()),
        ("v0.0.2", "production", "accuracy", 0.91, (("region", "eu"),)),
        ("v0.0.2", "production", "latency_ms_p95", 38.0, (("region", "eu"),)),
        ("v0.0.2", "shadow", "accuracy", 0.7, ()),
    ]
    assert next(p for p in read(repo) if p.version == "v0.0.1").window_end == (T0 + 1800) * 1000
    # the model's runs and the registry tags are untouched; one chain ref holds the points
    assert git(repo, "for-each-ref", "refs/xp/runs", "refs/tags") == run_refs
    chains = git(repo, "for-each-ref", "--format=%(refname)", "refs/xp/monitoring").split()
    assert len(chains) == 1
    files = git(repo, "ls-tree", "-r", "--name-only", chains[0]).split()
    assert files == [
        "diabetes/v0.0.1/production/000001.tsv",
        "diabetes/v0.0.2/production/000001.tsv",
        "diabetes/v0.0.2/shadow/000001.tsv",
    ]
    chunk = git(repo, "show", f"{chains[0]}:diabetes/v0.0.2/production/000001.tsv")
    assert chunk.splitlines()[0] == "window_end\tmetric\tvalue\ttags"
    assert chunk.splitlines()[1].split("\t")[1:] == ["accuracy", "0.91", '{"region":"eu"}']
    assert (
        git(repo, "log", "--format=%s", chains[0])
        .splitlines()[0]
        .startswith("xp-monitoring: diabetes@v0.0.2 shadow accuracy=0.7")
    )


def test_observe_on_the_command_line(repo: Path) -> None:
    model_version(repo, "diabetes", stage="production")
    out = invoke(
        "model",
        "observe",
        "diabetes@production",
        "accuracy=0.91",
        "rows=1200",
        "--at",
        "2026-11-29T10:00:00Z",
        "--tag",
        "job=nightly",
    )
    assert out.exit_code == 0, out.stderr
    assert out.stdout.startswith("recorded 2 point(s) for diabetes@v0.0.1 in production")
    found = read(repo)
    assert {p.metric: p.value for p in found} == {"accuracy": 0.91, "rows": 1200.0}
    expected = int(dt.datetime(2026, 11, 29, 10, tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert {p.window_end for p in found} == {expected}
    assert {p.tags for p in found} == {(("job", "nightly"),)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nomodel@production", "a=1"], "no model 'nomodel'; registered models: diabetes"),
        (["diabetes@canary", "a=1"], "diabetes has no version in stage 'canary'"),
        (["diabetes@production", "accuracy=high"], "'high' is not a number"),
        (["diabetes@production", "accuracy"], "must be NAME=VALUE"),
        (["diabetes", "a=1"], "must be NAME@STAGE"),
        (["diabetes@production", "a=1", "--at", "yesterday"], "is not a time"),
        (["diabetes@production", "a=1", "--version", "v9.9.9"], "diabetes@v9.9.9 does not"),
        (["diabetes@production", "a;b=1"], "has characters outside letters"),
        (["diabetes@Prod", "a=1"], "stage 'Prod' must be lower-case"),
    ],
)
def test_observe_refuses_bad_input_in_one_line(repo: Path, args: list[str], message: str) -> None:
    model_version(repo, "diabetes", stage="production")
    assert message in user_error(invoke("model", "observe", *args))
    assert git(repo, "for-each-ref", "refs/xp/monitoring") == ""


def test_log_production_refuses_bad_values_before_writing(repo: Path) -> None:
    model_version(repo, "diabetes", stage="production")
    with pytest.raises(InvalidValueError, match="must be a number, got 'x'"):
        xp.log_production("diabetes", "production", {"accuracy": "x"})
    with pytest.raises(InvalidValueError, match="must be a number, got True"):
        xp.log_production("diabetes", "production", {"ok": True})
    with pytest.raises(InvalidValueError, match="non-empty mapping"):
        xp.log_production("diabetes", "production", {})
    with pytest.raises(InvalidKeyError):
        xp.log_production("diabetes", "production", {"../x": 1})
    with pytest.raises(InvalidValueError, match="after 1970"):
        xp.log_production("diabetes", "production", {"a": 1}, window_end=-5)
    with pytest.raises(ModelNotFoundError, match="had at 2000-01-01T00:00:00Z no version"):
        xp.log_production("diabetes", "staging", {"a": 1}, window_end="2000-01-01")
    assert git(repo, "for-each-ref", "refs/xp/monitoring") == ""


def test_import_wide_and_long_tables_in_one_commit(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, T0)
    model_version(repo, "diabetes", stage="production")
    model_version(repo, "diabetes")
    at(monkeypatch, T0 + 86_400)
    xp.assign_stage("diabetes", "v0.0.2", "production")
    wide = tmp_path / "prod.csv"
    lines = ["window_end,accuracy,metrics.latency_ms_p95,tags.region"]
    for hour in range(48):  # a day on each version
        lines.append(f"{T0 + 1800 + 3600 * hour},{0.9 - hour / 1000},{30 + hour},eu")
    lines.append(f"{T0 + 1800},,99,us")  # an empty cell is skipped
    wide.write_text("\n".join(lines) + "\n")
    out = invoke("model", "import", "diabetes@production", str(wide))
    assert out.exit_code == 0, out.stderr
    assert out.stdout.startswith("imported 97 point(s) for diabetes@v0.0.1,v0.0.2 in production")
    chain = git(repo, "for-each-ref", "--format=%(refname)", "refs/xp/monitoring").strip()
    assert git(repo, "rev-list", "--count", chain).strip() == "1"
    found = read(repo)
    by_version = {v: sum(p.version == v for p in found) for v in ("v0.0.1", "v0.0.2")}
    assert by_version == {"v0.0.1": 49, "v0.0.2": 48}  # windows ending before the assignment
    assert {p.tags for p in found} == {(("region", "eu"),), (("region", "us"),)}

    long = tmp_path / "long.tsv"
    long.write_text(
        "time\tversion\tmetric\tvalue\n2026-11-01T00:00:00Z\tv0.0.1\tauc\t0.8\n"
        "2026-11-02T00:00:00\tv0.0.1\tauc\t0.81\n"
    )
    result = xp.import_production(long, "diabetes", "production")
    assert (result.points, result.versions) == (2, ("v0.0.1",))
    assert sorted(p.value for p in read(repo) if p.metric == "auc") == [0.8, 0.81]


def test_import_reads_parquet_and_chunks_long_series(repo: Path, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    model_version(repo, "diabetes", stage="production")
    n = 1200
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2026-10-01", periods=n, freq="h", tz="UTC"),
            "accuracy": [0.9] * n,
        }
    )
    frame.to_parquet(tmp_path / "logs.parquet")
    result = xp.import_production(tmp_path / "logs.parquet", "diabetes", "production")
    assert result.points == n
    chain = git(repo, "for-each-ref", "--format=%(refname)", "refs/xp/monitoring").strip()
    files = git(repo, "ls-tree", "-r", "--name-only", chain).split()
    assert files == [f"diabetes/v0.0.1/production/00000{i}.tsv" for i in (1, 2, 3)]
    xp.log_production("diabetes", "production", {"accuracy": 0.5})
    assert len(read(repo)) == n + 1
    last = git(repo, "show", f"{chain}:diabetes/v0.0.1/production/000003.tsv")
    assert len(last.splitlines()) == 1 + 201  # the header and the points after 2 x 500


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("window_end,accuracy\n1790000000,0.9\n1790000001,high\n", "is not a number"),
        ("when,accuracy\n1790000000,0.9\n", "no time column"),
        ("window_end,accuracy\n,0.9\n", "row 2: the time is empty"),
        ("window_end\n1790000000\n", "no metric columns"),
        ("window_end,accuracy\nsoon,0.9\n", "row 2: window_end 'soon' is not a time"),
    ],
)
def test_import_refuses_bad_tables_in_one_line(
    repo: Path, tmp_path: Path, content: str, message: str
) -> None:
    model_version(repo, "diabetes", stage="production")
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    line = user_error(invoke("model", "import", "diabetes@production", str(bad)))
    assert message in line
    assert git(repo, "for-each-ref", "refs/xp/monitoring") == ""
    assert "no file" in user_error(invoke("model", "import", "diabetes@production", "nope.csv"))


def test_two_clones_exchange_points_through_plain_git_push_and_fetch(team: Team) -> None:
    a, b = team.a, team.b
    model_version(a, "diabetes", stage="production", metrics={"accuracy": 0.9})
    for clone in (a, b):
        code, _out, err = xp_main("init", cwd=clone)
        assert code == 0, err
    git(a, "push", "-q", "origin", "--tags")
    xp.log_production("diabetes", "production", {"accuracy": 0.91}, path=a)
    git(a, "push", "-q", "origin")  # plain push: the pre-push hook carries runs and points

    git(b, "fetch", "-q", "origin", "--tags")  # plain fetch
    assert [(p.version, p.value) for p in read(b)] == [("v0.0.1", 0.91)]
    xp.log_production("diabetes", "production", {"accuracy": 0.89}, path=b)
    git(b, "push", "-q", "origin")
    git(a, "fetch", "-q", "origin")
    assert sorted(p.value for p in read(a)) == [0.89, 0.91]
    # each clone wrote only its own chain; the other's arrived as a remote copy
    assert len(git(a, "for-each-ref", "refs/xp/monitoring").splitlines()) == 1
    assert len(git(a, "for-each-ref", "refs/xp/remotes/origin/monitoring").splitlines()) == 2
    xp.log_production("diabetes", "production", {"accuracy": 0.88}, path=a)
    git(a, "push", "-q", "origin")  # a fast-forward of a's own chain
    git(b, "fetch", "-q", "origin")
    assert sorted(p.value for p in read(b)) == [0.88, 0.89, 0.91]
    assert len({p.writer for p in read(b)}) == 2


def test_a_forced_fetch_that_winds_the_chain_back_loses_nothing(repo: Path) -> None:
    model_version(repo, "diabetes", stage="production")
    for value in (0.1, 0.2, 0.3):
        xp.log_production("diabetes", "production", {"accuracy": value})
    chain = git(repo, "for-each-ref", "--format=%(refname)", "refs/xp/monitoring").strip()
    # what `git fetch origin '+refs/xp/*:refs/xp/*'` does when the remote has an older tip
    git(repo, "update-ref", chain, f"{chain}~2")
    assert sorted(p.value for p in read(repo)) == [0.1, 0.2, 0.3]  # the reflog still has it
    xp.log_production("diabetes", "production", {"accuracy": 0.4})
    assert sorted(p.value for p in read(repo)) == [0.1, 0.2, 0.3, 0.4]
    assert git(repo, "rev-list", "--count", chain).strip() == "4"


def test_points_of_a_fetched_chain_that_do_not_parse_are_skipped(repo: Path) -> None:
    model_version(repo, "diabetes", stage="production")
    xp.log_production("diabetes", "production", {"accuracy": 0.9})
    chunk = (
        "window_end\tmetric\tvalue\ttags\n1\tacc\tnope\t\nbad line\n2\tacc\t0.5\t[1]\n"
        "3\tacc\t0.7\t\n"
    )
    later = "window_end\tmetric\tvalue\ttags\tunit\n4\tacc\t0.1\t\t%\n"  # a later format
    blob = git(repo, "hash-object", "-w", "--stdin", input_text=chunk).strip()
    blob2 = git(repo, "hash-object", "-w", "--stdin", input_text=later).strip()
    tree = git(
        repo,
        "mktree",
        input_text=f"100644 blob {blob}\t000001.tsv\n100644 blob {blob2}\t000002.tsv\n",
    ).strip()
    for name in ("production", "v0.0.1", "diabetes"):
        tree = git(repo, "mktree", input_text=f"040000 tree {tree}\t{name}\n").strip()
    commit = git(repo, "commit-tree", tree, "-m", "crafted").strip()
    git(repo, "update-ref", "refs/xp/remotes/origin/monitoring/1m8zzzzzzzzzzz", commit)
    # a chain where the model's folder is a file, and one nested deeper than points go
    odd = git(repo, "mktree", input_text=f"100644 blob {blob}\tdiabetes\n").strip()
    odd_commit = git(repo, "commit-tree", odd, "-m", "crafted").strip()
    git(repo, "update-ref", "refs/xp/remotes/origin/monitoring/1m8yyyyyyyyyyy", odd_commit)
    found = points.read(find_repo(repo), model="diabetes")
    assert sorted(p.value for p in found.points) == [0.7, 0.9]
    assert found.invalid == 3
    assert found.newer == 1
    assert found.chains == 3
    perf = xp.model_performance("diabetes")  # the fast reader falls back on the careful one
    assert {(r.metric, r.production.n if r.production else 0) for r in perf.rows} == {
        ("accuracy", 1),
        ("acc", 1),
    }
    assert (perf.invalid, perf.newer) == (3, 1)


WRITER = """
import sys, xp
for i in range(int(sys.argv[1])):
    xp.log_production("diabetes", "production", {"n": float(i)}, tags={"proc": sys.argv[2]})
"""


def test_concurrent_writers_in_one_clone_lose_no_point(repo: Path) -> None:
    model_version(repo, "diabetes", stage="production")
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, "15", str(i)], cwd=repo) for i in range(4)
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    found = read(repo)
    assert len(found) == 60
    for i in range(4):
        mine = [p.value for p in found if p.tags == (("proc", str(i)),)]
        assert sorted(mine) == [float(n) for n in range(15)]
    chain = git(repo, "for-each-ref", "--format=%(refname)", "refs/xp/monitoring").strip()
    assert git(repo, "rev-list", "--count", chain).strip() == "60"


def test_xp_push_and_pull_carry_monitoring_points_too(team: Team) -> None:
    a, b = team.a, team.b
    model_version(a, "diabetes", stage="production")
    # Without the pre-push hook's help, so that xp push is what carries the points here.
    env = {**os.environ, "XP_SKIP_PUSH": "1"}
    subprocess.run(["git", "push", "-q", "origin", "--tags"], cwd=a, env=env, check=True)
    xp.log_production("diabetes", "production", {"accuracy": 0.9}, path=a)
    code, out, err = xp_main("push", cwd=a)
    assert code == 0, err
    assert "monitoring points: 1 chain(s) pushed" in out
    git(b, "fetch", "-q", "origin", "refs/tags/*:refs/tags/*")  # the tags alone
    code, out, err = xp_main("pull", cwd=b)
    assert code == 0, err
    assert "monitoring points: 1 chain(s) new or updated" in out
    assert [p.value for p in read(b)] == [0.9]
    xp.log_production("diabetes", "production", {"accuracy": 0.8}, path=a)
    code, out, _err = xp_main("push", cwd=a)  # no new run: the points alone go
    assert "monitoring points: 1 chain(s) pushed" in out
    assert xp_main("pull", cwd=b)[0] == 0
    assert sorted(p.value for p in read(b)) == [0.8, 0.9]
