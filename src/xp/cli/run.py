from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.gitstore.repo import GitRepo

if TYPE_CHECKING:
    from xp.execution.sweep import Point, SweepResult


def _sink(kind: str, data: bytes) -> None:
    stream = sys.stdout if kind == "out" else sys.stderr
    stream.buffer.write(data)
    stream.flush()


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-n", "--name", help="Run name (default: the script's, or a generated one).")
@click.option("-e", "--experiment", help="Experiment to group the run under.")
@click.option("-m", "--message", help="A note stored with the run and in its commit message.")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a param in the params file (repeatable; nested.key=v; +new.key=v adds one)."
    " Several values (lr=0.1,0.01) make a sweep.",
)
@click.option(
    "--random", "random_k", type=click.IntRange(min=1), help="Sweep: K random points of the grid."
)
@click.option("--seed", type=int, help="Seed for --random (default: a fresh one, printed).")
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Sweep: run each point N times, each a run of its own: N workers of a search that"
    " coordinates itself (Optuna with a shared storage), on any executor.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Sweep: points run at the same time.",
)
@click.option(
    "--temp",
    is_flag=True,
    help="Run in a temporary checkout of the workspace: your files are never modified.",
)
@click.option(
    "--point",
    type=click.IntRange(min=0),
    help="Sweep: run grid point I alone (0-based, e.g. $SLURM_ARRAY_TASK_ID), in a temporary"
    " checkout: one task of a sweep that another engine schedules.",
)
@click.option(
    "--sweep-id",
    help="Sweep: the id its points share (every task of one distributed sweep passes the same,"
    " e.g. $SLURM_ARRAY_JOB_ID); default: a new one.",
)
@click.option(
    "--run-id",
    metavar="ID",
    help="With --point: the point's run id, chosen by the sweep's driver and the same in every"
    " attempt of the task, so a re-run task never records the point twice.",
)
@click.option(
    "--executor",
    default="local",
    show_default=True,
    metavar="local|slurm|dask://HOST:PORT|ray|ray://HOST:PORT",
    help="Sweep: where points run. slurm submits one job array (sbatch); dask://HOST:PORT runs"
    " each point as a task on that Dask scheduler; ray on a local Ray runtime (the running"
    " cluster when RAY_ADDRESS is set), ray://HOST:PORT through Ray Client. Each point pushes"
    " its run.",
)
@click.option(
    "--dry-run", is_flag=True, help="With --executor slurm: print the job script, submit nothing."
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def run(
    name: str | None,
    experiment: str | None,
    message: str | None,
    params: tuple[str, ...],
    random_k: int | None,
    seed: int | None,
    repeat: int,
    jobs: int,
    temp: bool,
    point: int | None,
    sweep_id: str | None,
    run_id: str | None,
    executor: str,
    dry_run: bool,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND as a run: xp run [-p KEY=VALUE ...] -- python train.py ...

    The script's own xp calls (xp.start_run, xp.log_metric...) log into this run. Output is
    shown live and saved as the artifact logs/xp-run.log; the exit code and duration are
    recorded (non-zero exit: a failed run; Ctrl-C: a killed one). xp run exits with the
    command's exit code. Overrides are written into the params file (and stay there) unless
    --temp or a sweep, which run in temporary checkouts.
    """
    from xp.execution import overrides as ov

    repo = open_repo()
    if executor not in ("local", "slurm"):
        _cluster(repo, executor, list(command), params, sweep_id, point, dry_run, repeat)
        return
    if executor == "slurm" or dry_run:
        _slurm(repo, list(command), params, sweep_id, dry_run, point, executor, repeat)
        return
    parsed = ov.parse(list(params))
    if point is not None:
        from xp.execution.cluster import tether

        tether()
    sweeping = random_k is not None or point is not None or sweep_id is not None or repeat > 1
    if sweeping or temp or any(len(o.values) > 1 for o in parsed):
        single = point is not None or (
            random_k is None and repeat == 1 and all(len(o.values) == 1 for o in parsed)
        )
        _sweep(
            repo,
            list(command),
            name,
            experiment,
            message,
            params,
            random_k,
            seed,
            jobs,
            single,
            point=point,
            sweep_id=sweep_id,
            run_id=run_id,
            repeat=repeat,
        )
        return
    if run_id is not None:
        from xp.errors import InvalidValueError

        raise InvalidValueError("--run-id names one point's run: give --point too")
    from xp.execution.run_command import launch

    result = launch(
        repo,
        command=list(command),
        name=name,
        experiment=experiment,
        message=message,
        params=params,
        sink=_sink,
    )
    for change in result.changes:
        verb = "added" if change.added else f"{change.old!r} ->"
        render.echo(f"xp: {change.file}: {change.key} {verb} {change.new!r}", err=True)
    shown = " ".join(f"{k}={render.number(v, 4)}" for k, v in sorted(result.metrics.items())[:6])
    render.echo(
        f"xp: run {result.run_id} {result.name} {result.status} in {result.duration:.1f}s"
        f" (exit {result.exit_code}) {shown}".rstrip(),
        err=True,
    )
    for warning in result.warnings:
        render.echo(f"xp: warning: {warning}", err=True)
    if result.exit_code != 0 or result.status != "finished":
        sys.exit(result.shell_code if result.status != "killed" or result.exit_code else 130)


def _cluster(
    repo: GitRepo,
    executor: str,
    command: list[str],
    params: tuple[str, ...],
    sweep_id: str | None,
    point: int | None,
    dry_run: bool,
    repeat: int = 1,
) -> None:
    """Dask or Ray: each point a task of the engine, progress as points finish."""
    from xp.errors import InvalidValueError

    if point is not None or dry_run:
        raise InvalidValueError(f"--point and --dry-run do not go with --executor {executor}")

    def progress(line: str) -> None:
        render.echo(line, err=True)

    if executor == "ray" or executor.startswith("ray://"):
        from xp.execution.ray_cluster import run_on_ray as run_on
    else:
        from xp.execution.dask_cluster import run_on_dask as run_on
    result = run_on(
        repo, address=executor, command=command, params=params, sweep_id=sweep_id,
        progress=progress, repeat=repeat,
    )  # fmt: skip
    for index, tail in sorted(result.output.items()):
        render.echo(f"xp: point {index} failed; its task's last lines:", err=True)
        for line in tail.splitlines():
            render.echo(f"    {line}", err=True)
    ok = sum(code == 0 for code in result.status.values())
    render.echo(
        f"sweep {result.job.sweep_id}: {ok}/{result.job.points} finished on {result.engine};"
        f" the runs are on {result.job.remote}: git fetch {result.job.remote} &&"
        f" xp show -w \"tags.xp.sweep = '{result.job.sweep_id}'\""
    )
    if ok != result.job.points:
        sys.exit(1)


def _slurm(
    repo: GitRepo,
    command: list[str],
    params: tuple[str, ...],
    sweep_id: str | None,
    dry_run: bool,
    point: int | None,
    executor: str,
    repeat: int = 1,
) -> None:
    from xp.errors import InvalidValueError
    from xp.execution import slurm

    if executor != "slurm":
        raise InvalidValueError("--dry-run prints a Slurm job script: add --executor slurm")
    if point is not None:
        raise InvalidValueError("--point runs one point here: drop it with --executor slurm")
    job = slurm.plan(repo, command=command, params=params, sweep_id=sweep_id, repeat=repeat)
    if dry_run:
        render.echo(job.script, nl=False, exact=True)
        return
    job = slurm.submit(repo, job, folder=repo.xp_dir / "slurm")
    render.echo(
        f"xp: sweep {job.sweep_id}: {job.points} point(s) submitted as Slurm job {job.job_id};"
        f" each task pushes its run to {job.remote}. Follow them: git fetch {job.remote} &&"
        f" xp show -w \"tags.xp.sweep = '{job.sweep_id}'\"",
        err=True,
    )


def _sweep(
    repo: GitRepo,
    command: list[str],
    name: str | None,
    experiment: str | None,
    message: str | None,
    params: tuple[str, ...],
    random_k: int | None,
    seed: int | None,
    jobs: int,
    single: bool = False,
    *,
    point: int | None = None,
    sweep_id: str | None = None,
    run_id: str | None = None,
    repeat: int = 1,
) -> None:
    from xp.execution.sweep import sweep

    def progress(line: str) -> None:
        render.echo(line, err=True)

    result = sweep(
        repo,
        command=command,
        params=params,
        name=name,
        experiment=experiment,
        message=message,
        random_k=random_k,
        seed=seed,
        jobs=jobs,
        progress=progress,
        point=point,
        sweep_id=sweep_id,
        run_id=run_id,
        repeat=repeat,
    )
    render.echo(_sweep_table(result))
    for done in result.points:
        if done.status != "finished":
            _say_failure(done)
    if single and result.points and result.points[0].result is not None:
        r = result.points[0].result  # --temp: the command's own code, as a plain xp run
        if r.exit_code != 0 or r.status != "finished":
            sys.exit(r.shell_code if r.status != "killed" or r.exit_code else 130)
        return
    if any(p.status != "finished" for p in result.points):
        sys.exit(1)


def _say_failure(point: Point) -> None:
    """A failed point: the tail of its output and where the whole of it is."""
    r = point.result
    if r is None:
        return
    label = ", ".join(f"{k}={v}" for k, v in point.values.items()) or "the command"
    if r.output_tail:
        render.echo(
            f"xp: {label}: {r.status} (exit {r.exit_code}); its last"
            f" {len(r.output_tail)} lines of output:",
            err=True,
        )
        for line in r.output_tail:
            render.echo(f"    {line}", err=True)
    else:
        render.echo(f"xp: {label}: {r.status} (exit {r.exit_code}); it printed nothing", err=True)
    if r.log_file:
        render.echo(
            f"xp: full output: {r.log_file} (or: xp get {r.run_id} logs/xp-run.log -o DIR)",
            err=True,
        )


def _recorded(point: Point, key: str) -> str:
    """The value the run recorded for a swept key (what the script saw, after any casting or
    defaults of its own), and the -p value beside it when the two differ."""
    value = point.values[key]
    asked = f"'{value}'" if isinstance(value, str) else render.number(value, None)
    params = point.result.params if point.result else {}
    if key not in params:
        return render.number(value, None)
    got = params[key]
    same = got == value and type(got) is type(value)
    return render.number(got, None) if same else f"{render.number(got, None)} (-p {asked})"


def _sweep_table(result: SweepResult) -> str:
    """One row per point: the run, its status, the swept values, its metrics."""
    from xp.execution.sweep import SWEEP_TAG

    metrics = sorted({k for p in result.points if p.result for k in p.result.metrics})[:6]
    headers = ["#", "run", "status", *result.keys, *metrics]
    rows = []
    for p in result.points:
        r = p.result
        rows.append(
            [
                str(p.index + 1),
                r.run_id if r else "-",
                p.status,
                *(_recorded(p, k) for k in result.keys),
                *(
                    (render.number(r.metrics[m], 4) if r and m in r.metrics else "-")
                    for m in metrics
                ),
            ]
        )
    ok = sum(p.status == "finished" for p in result.points)
    summary = (
        f"sweep {result.sweep_id}: {ok}/{len(result.points)} finished in {result.duration:.1f}s;"
        f" compare them: xp show -w \"tags.{SWEEP_TAG} = '{result.sweep_id}'\""
    )
    return render.table(headers, rows) + "\n" + summary
