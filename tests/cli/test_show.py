"""``xp show``: the table, its options and formats, and one-line errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import xp
import xp.cli
from tests.helpers import git


def cli(*args: str, width: int = 200) -> Result:
    return CliRunner().invoke(xp.cli.cli, list(args), env={"COLUMNS": str(width)})


def make_run(name: str, params: dict[str, object], metrics: dict[str, float]) -> str:
    with xp.start_run(name=name) as run:
        xp.log_params(params)
        xp.log_metrics(metrics)
    return str(run.id)


def one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("xp: error: ")
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def three(repo: Path) -> list[str]:
    return [
        make_run("a", {"lr": 0.1, "depth": 3}, {"acc": 0.5}),
        make_run("b", {"lr": 0.2, "depth": 3}, {"acc": 0.9}),
        make_run("c", {"lr": 0.3, "depth": 3}, {"acc": 0.7}),
    ]


def test_table_newest_first_with_fixed_columns(three: list[str]) -> None:
    result = cli("show")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "id",
        "name",
        "status",
        "created",
        "duration",
        "baseline",
        "lr",  # what differs between the runs comes first
        "acc",
        "depth",
    ]
    assert [line.split()[0] for line in lines[1:]] == three[::-1]
    assert "main" in lines[1]  # baseline: the branch


def test_where_sort_limit_and_all(three: list[str]) -> None:
    result = cli("show", "-w", "metrics.acc > 0.6", "-s", "-acc")
    assert [ln.split()[1] for ln in result.stdout.splitlines()[1:]] == ["b", "c"]
    result = cli("show", "-n", "1")
    assert len(result.stdout.splitlines()) == 2
    assert "1 of 3 runs shown" in result.stderr
    assert len(cli("show", "--all").stdout.splitlines()) == 4


def test_columns_only_changed_and_formats(three: list[str]) -> None:
    out = cli("show", "--only-changed").stdout.splitlines()[0].split()
    assert "depth" not in out
    assert "lr" in out
    header = cli("show", "-c", "name,metrics.*").stdout.splitlines()[0].split()
    assert header == ["id", "name", "acc"]
    md = cli("show", "-f", "md").stdout.splitlines()
    assert md[0].startswith("| id | name |")
    assert md[1].startswith("|---|")
    rows = list(csv.reader(io.StringIO(cli("show", "-f", "csv").stdout)))
    assert rows[0][:2] == ["id", "name"]
    assert len(rows) == 4
    tsv = cli("show", "-f", "tsv").stdout.splitlines()
    assert tsv[0].split("\t")[:2] == ["id", "name"]
    data = json.loads(cli("show", "-f", "json").stdout)
    assert [d["name"] for d in data] == ["c", "b", "a"]
    assert data[0]["params"] == {"depth": 3, "lr": 0.3}
    assert data[0]["metrics"] == {"acc": 0.7}


def test_precision_and_nan_inf_huge(repo: Path) -> None:
    make_run("n", {"big": 10**30}, {"x": float("nan"), "y": float("inf"), "z": 1 / 3})
    line = cli("show", "-p", "3").stdout.splitlines()[1]
    assert "0.333" in line
    assert "0.3333" not in line
    assert "nan" in line
    assert "inf" in line
    assert "1000000000000000000000000000000" in cli("show", "-f", "csv").stdout
    data = json.loads(cli("show", "-f", "json").stdout)  # strict JSON: no NaN tokens
    assert data[0]["metrics"] == {"x": None, "y": "inf", "z": pytest.approx(1 / 3)}


def test_fits_the_terminal_with_fifty_params(repo: Path) -> None:
    params = {f"param_{i:02d}": i for i in range(50)}
    make_run("wide", params, {"acc": 0.5})
    make_run("wide2", {**params, "param_07": 99}, {"acc": 0.6})
    result = cli("show", width=100)
    assert result.exit_code == 0
    assert all(len(line) <= 100 for line in result.stdout.splitlines())
    header = result.stdout.splitlines()[0]
    assert "param_07" in header  # the changed param is kept
    assert "acc" in header
    assert "hidden to fit the terminal" in result.stderr


def test_experiment_branch_status_filters(repo: Path) -> None:
    with xp.start_run(name="e1", experiment="exp1"):
        pass
    git(repo, "checkout", "-q", "-b", "feature")
    with xp.start_run(name="f1"):
        pass
    assert [ln.split()[1] for ln in cli("show", "-e", "exp1").stdout.splitlines()[1:]] == ["e1"]
    assert [ln.split()[1] for ln in cli("show", "-b", "feature").stdout.splitlines()[1:]] == ["f1"]
    assert cli("show", "--status", "failed").stderr.startswith("no runs match")
    one_line_error(cli("show", "--status", "done"), "'done' is not one of")


def test_empty_repo_and_rebuild(repo: Path) -> None:
    result = cli("show")
    assert result.exit_code == 0
    assert "no runs yet" in result.stderr
    make_run("x", {}, {})
    assert "x" in cli("show", "--rebuild").stdout


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["-w", "metrics.acc >> 1"], ["position 14"]),
        (["-w", "metrics.acu > 1"], ["did you mean metrics.acc"]),
        (["-s", "metrics.acu"], ["did you mean metrics.acc"]),
        (["-c", "acu"], ["--columns", "did you mean"]),
        (["-c", "nothing*"], ["matches no column"]),
    ],
)
def test_bad_input_is_one_line(three: list[str], args: list[str], needles: list[str]) -> None:
    one_line_error(cli("show", *args), *needles)


def test_thirty_runs_fifteen_params_at_80_columns_show_what_differs(repo: Path) -> None:
    for i in range(30):
        params: dict[str, object] = {f"setting_{j:02d}": "same" for j in range(12)}
        params.update(lr=round(0.01 * (i + 1), 2), depth=i % 5, learning_rate_warmup_steps=i * 10)
        make_run(f"run-{i}", params, {"acc": i / 30, "loss": 1 - i / 30})
    result = cli("show", width=80)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(render_cells(line) <= 80 for line in lines)
    header = lines[0].split()
    assert {"lr", "depth", "acc", "loss"} <= set(header), header
    assert any("…" in h and h.startswith("learn") for h in header), header  # middle-shortened
    assert not any(h.startswith("setting_") for h in header)  # the same in every run
    assert result.stderr.startswith("+"), result.stderr  # hidden columns are counted
    count = int(result.stderr.split()[0].lstrip("+"))
    assert count == 12 + 3  # the 12 unchanged settings and created, duration, baseline
    assert "--columns" in result.stderr
    assert "--format md" in result.stderr


def test_one_row_keeps_its_metrics_at_80_columns(repo: Path) -> None:
    params: dict[str, object] = {f"p{j}": j for j in range(15)}
    make_run("only", params, {"accuracy": 0.9, "loss": 0.1})
    header = cli("show", width=80).stdout.splitlines()[0].split()
    assert "accuracy" in header
    assert "loss" in header


def test_wide_characters_and_emoji_align(repo: Path) -> None:
    make_run("学习率-实验", {"模型": "大"}, {"acc": 0.5})
    make_run("rocket-🚀", {"模型": "小型号"}, {"acc": 0.75})
    make_run("plain", {"模型": "x"}, {"acc": 1.0})
    lines = cli("show", "-c", "name,模型,acc").stdout.splitlines()
    # acc is the last, right-aligned column: every line ends in the same terminal cell.
    assert len({render_cells(line) for line in lines}) == 1, lines
    words = {"学习率-实验": "大", "rocket-🚀": "小型号", "plain": "x"}
    starts = {
        render_cells(line[: line.index(words[name], 16)])
        for line in lines[1:]
        for name in words
        if name in line
    }
    assert len(starts) == 1, lines  # the 模型 column starts in the same cell on every row


def test_limit_zero_says_how_many_runs_there_are(repo: Path) -> None:
    make_run("a", {}, {})
    result = cli("show", "-n", "0")
    assert result.exit_code == 0
    assert "no runs yet" not in result.stderr
    assert "0 of 1 runs shown" in result.stderr


def render_cells(text: str) -> int:
    from xp.cli.render import cells

    return cells(text)


def commit_runs(repo: Path, runs: list[dict[str, object]]) -> None:
    """Runs written as xp writes them, with values the API would refuse (text metrics)."""
    from xp import format as fmt
    from xp.gitstore.repo import find_repo
    from xp.record.model import RunRecord
    from xp.tracking.record_commit import commit_record

    head = git(repo, "rev-parse", "HEAD").strip()
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    for i, spec in enumerate(runs):
        start = 1_700_000_000 + 4000 * i
        meta = {
            "start_time": f"2023-11-14T{10 + i:02d}:13:20.000Z",
            "end_time": f"2023-11-14T{10 + i:02d}:14:50.000Z",
            "duration": [0.5, 61.0, 7300.0, 90000.0, None][i % 5],
            "baseline": head,
            "branch": "main" if i % 2 else None,
        }
        record = RunRecord(
            id=fmt.new_run_id(start),
            name=str(spec.get("name", f"run-{i}")),
            status="finished",
            meta=meta,
            params=spec.get("params", {}),  # type: ignore[arg-type]
            metrics=spec.get("metrics", {}),  # type: ignore[arg-type]
            tags=spec.get("tags", {}),  # type: ignore[arg-type]
        )
        commit_record(find_repo(repo), record, tree, head, start, start + 90)


ODD_RUNS: list[dict[str, object]] = [
    {"params": {"lr": 0.1, "opt": "adam", "n": 3}, "metrics": {"acc": 0.91, "loss": 1e-07}},
    {"params": {"lr": 1e-05, "opt": "0.5", "big": 10**30}, "metrics": {"acc": float("nan")}},
    {"params": {"lr": float("inf"), "flag": True, "none": None}, "metrics": {"acc": float("-inf")}},
    {"params": {"lr": -0.25, "l": [1, 2], "opt": "x" * 40}, "metrics": {"acc": "high", "n": 7}},
    {"name": "tab\tand\nnewline", "params": {"lr": 12345.678}, "tags": {"team": "vision"}},
    {"params": {"n": 123456789012345}, "metrics": {"loss": -3.5e300, "acc": 0.5}},
]


def test_streamed_output_is_the_in_memory_output(repo: Path) -> None:
    """--all streams rows and lays the table out from SQL aggregates; -n holds the rows and
    lays it out from the cells. Both must print the same bytes."""
    commit_runs(repo, ODD_RUNS)
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "update-ref", "refs/xp/runs/0000000000000z", head)  # a run that cannot be read
    for extra in (
        (),
        ("-p", "3"),
        ("-p", "17"),
        ("--only-changed",),
        ("-c", "lr,metrics.*,experiment,user,branch,commit,end_time"),
        ("-w", "metrics.acc > 0"),
        ("-s", "-metrics.acc"),
        ("--status", "invalid"),
        ("-w", "params.lr > 100"),
    ):
        for fmt_args in ((), ("-f", "md"), ("-f", "csv"), ("-f", "tsv"), ("-f", "json")):
            for width in (60, 100, 250):
                args = ("show", *extra, *fmt_args)
                streamed = cli(*args, "--all", width=width)
                held = cli(*args, "-n", "1000", width=width)
                assert streamed.exit_code == held.exit_code == 0, streamed.output
                assert streamed.stdout == held.stdout, (args, width)
                assert streamed.stderr == held.stderr, (args, width)


def fast_import_runs(repo: Path, n: int) -> None:
    """``n`` runs written with git fast-import: the record files xp writes, one ref each."""
    from xp import format as fmt
    from xp.record.build import commit_message
    from xp.record.model import RunRecord

    head = git(repo, "rev-parse", "HEAD").strip()
    parts = []
    for i in range(n):
        start = 1_700_000_000 + 60 * i
        record = RunRecord(
            id=fmt.new_run_id(start),
            name=f"run-{i}",
            status="finished",
            meta={"start_time": "2023-11-14T22:13:20.000Z", "duration": 30.0, "baseline": head},
            params={"lr": 0.001 * (i % 7), "seed": i, "opt": ["adam", "sgd"][i % 2]},
            metrics={"acc": (i % 1000) / 1000, "loss": 1 / (i + 1)},
            tags={"team": "vision"},
        )
        message = commit_message(record).encode()
        parts.append(
            f"commit {fmt.run_ref(record.id)}\ncommitter A <a@b> {start} +0000\n".encode()
            + b"data %d\n%s\nfrom %s\n" % (len(message), message, head.encode())
        )
        for rel, data in sorted(record.to_files().items()):
            path = f"{fmt.RECORD_DIR}/{rel}".encode()
            parts.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path, len(data), data))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(parts), check=True)


def peak_rss_mb(repo: Path, *args: str) -> float:
    """Peak resident memory of ``python -m xp ARGS`` in a child of a fresh interpreter."""
    probe = (
        "import resource, subprocess, sys;"
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, sys.executable, "-m", "xp", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.strip()) / 1024


@pytest.mark.slow
def test_show_all_streams_in_bounded_memory(tmp_path: Path) -> None:
    """30 times the runs, about the same memory: rows are printed as they are read."""
    from xp.query.index.pack import wait_for_packer

    peaks = []
    for n in (1_000, 30_000):
        root = tmp_path / f"runs-{n}"
        root.mkdir()
        git(root, "init", "-q")
        (root / "a.txt").write_text("a\n")
        git(root, "add", ".")
        git(root, "commit", "-qm", "init")
        fast_import_runs(root, n)
        subprocess.run(
            [sys.executable, "-m", "xp", "show"], cwd=root, check=True, capture_output=True
        )
        wait_for_packer(root / ".git" / "xp")  # that show had the 30,000 loose refs packed
        for fmt_args in ((), ("-f", "json")):
            peaks.append((n, fmt_args, peak_rss_mb(root, "show", "--all", *fmt_args)))
    small = {f: mb for n, f, mb in peaks if n == 1_000}
    for _n, fmt_args, mb in peaks:
        # holding 29,000 more rows would take 50+ MB more; streaming takes a few
        assert mb - small[fmt_args] < 25, peaks
