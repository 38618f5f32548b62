"""``xp model status | rollback | observe | import | perf | check | serve``: deployed versions,
their production figures, alerts and a local endpoint (library: ``xp.production``)."""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from xp.cli import render
from xp.cli.common import open_repo

FORMATS = click.Choice(["table", "md", "json"])


def _when(epoch: float | None) -> str:
    return render.local_time(epoch)


def _spec(value: str) -> tuple[str, str]:
    """NAME@STAGE (or NAME#STAGE) -> (name, stage)."""
    from xp.errors import InvalidValueError

    name, sep, stage = value.partition("@") if "@" in value else value.partition("#")
    if not sep or not name or not stage:
        raise InvalidValueError(f"{value!r} must be NAME@STAGE, e.g. diabetes@production")
    return name, stage


@click.command()
@click.argument("name", required=False)
@click.option("--format", "out_format", type=FORMATS, default="table", show_default=True)
@click.option("--history", is_flag=True, help="List every change of each stage too.")
def status(name: str | None, out_format: str, history: bool) -> None:
    """Per model and stage: the version deployed, its run and commit, when and by whom it was
    assigned, the version before it and what `xp model rollback` would assign."""
    from xp.production.status import status as do_status

    rows = do_status(open_repo(), name=name)
    if out_format == "json":
        render.echo(render.to_json([r.to_dict(with_history=history) for r in rows]), exact=True)
        return
    if not rows:
        what = f"{name} has" if name else "no model has"
        render.echo(
            f"{what} no stage assigned yet; assign one with `xp model assign NAME VERSION"
            " --stage STAGE`"
        )
        return
    headers = [
        "model",
        "stage",
        "version",
        "run",
        "commit",
        "since",
        "by",
        "previous",
        "rollback to",
    ]
    table = [
        [
            r.model,
            r.stage,
            r.version or "(empty)",
            r.run_id or "-",
            (r.commit or "-")[:12],
            _when(r.since),
            r.by or "-",
            r.previous or "-",
            r.rollback_to or "-",
        ]
        for r in rows
    ]
    render.echo(
        render.markdown(headers, table) if out_format == "md" else render.table(headers, table)
    )
    if history:
        for r in rows:
            render.echo(f"\n{r.model} {r.stage}:")
            for c in r.history:
                what = c.version or "(empty)"
                how = f"rollback from {c.rollback_from}" if c.rollback_from else c.action
                render.echo(f"  {_when(c.time)}  {what:<10} {how:<22} {c.tag}  {c.tagger}")


@click.command()
@click.argument("name")
@click.option("--stage", required=True, help="The stage to roll back, e.g. production.")
@click.option("--push", metavar="REMOTE", help="Push the new tag to this git remote.")
def rollback(name: str, stage: str, push: str | None) -> None:
    """Put the version NAME had in STAGE before back in it, as a new tag (history is kept).

    Rolling back twice goes two versions back; `xp model assign` picks any version."""
    from xp.production.status import rollback as do_rollback

    result = do_rollback(open_repo(), name=name, stage=stage, push=push)
    share = f"pushed to {push}" if push else f"share it: git push origin {result.tag.tag}"
    render.echo(
        f"{name} {stage}: {result.from_version or '(empty)'} -> {result.to_version};"
        f" tag {result.tag.tag}; {share}"
    )


def _pairs(items: tuple[str, ...], what: str) -> dict[str, str]:
    from xp.errors import InvalidValueError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidValueError(f"{what} {item!r} must be NAME=VALUE, e.g. accuracy=0.91")
        out[key.strip()] = value
    return out


@click.command()
@click.argument("spec", metavar="NAME@STAGE")
@click.argument("metrics", nargs=-1, required=True, metavar="METRIC=VALUE...")
@click.option(
    "--at",
    "window_end",
    help="End of the window observed (ISO 8601 or epoch"
    " seconds; default now). The point goes to the version in the stage then.",
)
@click.option("--version", help="The version observed, when not the one in the stage.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Tag the points (repeatable), e.g. --tag region=eu.",
)
def observe(
    spec: str,
    metrics: tuple[str, ...],
    window_end: str | None,
    version: str | None,
    tags: tuple[str, ...],
) -> None:
    """Record production metrics of the version deployed in a stage (for cron jobs and CI).

    Example: xp model observe diabetes@production accuracy=0.91 latency_ms_p95=38"""
    from xp.production.observe import log_production
    from xp.production.points import parse_number

    name, stage = _spec(spec)
    values = {k: parse_number(k, v) for k, v in _pairs(metrics, "metric").items()}
    result = log_production(
        open_repo(),
        model=name,
        stage=stage,
        metrics=values,
        window_end=window_end,
        tags=_pairs(tags, "tag"),
        version=version,
    )
    render.echo(
        f"recorded {result.points} point(s) for {name}@{','.join(result.versions)} in {stage}"
        f" ({result.ref.rpartition('/')[2]} {result.commit[:12]}); share with git push"
    )


@click.command(name="import")
@click.argument("spec", metavar="NAME@STAGE")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--version",
    help="The version the rows belong to (default: a 'version' column,"
    " else the version in the stage at each row's time).",
)
@click.option(
    "--time-column",
    help="The column with each window's end (default: window_end,"
    " timestamp, time, ts, date or datetime).",
)
def import_(spec: str, path: str, version: str | None, time_column: str | None) -> None:
    """Import production logs from a CSV or Parquet file as monitoring points, in one commit.

    One column per metric (or 'metric' and 'value' columns), tags.<name> columns for tags."""
    from xp.production.observe import import_points

    name, stage = _spec(spec)
    result = import_points(
        open_repo(), model=name, stage=stage, path=path, version=version, time_column=time_column
    )
    render.echo(
        f"imported {result.points} point(s) for {name}@{','.join(result.versions)} in {stage}"
        f" ({result.commit[:12]}); share with git push"
    )


def _num(value: float | None, precision: int = 4) -> str:
    return render.number(value, precision) if value is not None else "-"


def _trend(value: float | None) -> str:
    if value is None:
        return "-"
    text = f"{value:+.3g}"
    return f"{text}/day"


@click.command()
@click.argument("name")
@click.option("--stage", help="Only this stage (default: every stage with points).")
@click.option("--since", help="Only points whose window ended since: 30d, 12h, 2w, or a date.")
@click.option("--format", "out_format", type=FORMATS, default="table", show_default=True)
@click.option("--series", is_flag=True, help="With --format json: every point, for charts.")
def perf(name: str, stage: str | None, since: str | None, out_format: str, series: bool) -> None:
    """Each version's training and validation figures next to its production series: points,
    last, mean, trend per day, per stage and metric (* marks the deployed version)."""
    from xp.production.perf import perf as do_perf

    result = do_perf(open_repo(), name=name, stage=stage, since=since)
    if out_format == "json":
        render.echo(render.to_json(result.to_dict(series=series)), exact=True)
        return
    headers = [
        "version",
        "stage",
        "metric",
        "train",
        "validation",
        "points",
        "last",
        "mean",
        "trend",
        "last window",
    ]
    rows = []
    for r in result.rows:
        p = r.production
        rows.append(
            [
                r.version + ("*" if r.deployed else ""),
                r.stage,
                r.metric or "(no points)",
                _num(r.training),
                _num(r.validation),
                str(p.n) if p else "0",
                _num(p.last) if p else "-",
                _num(p.mean) if p else "-",
                _trend(p.trend_per_day) if p else "-",
                _when(p.last_time / 1000) if p else "-",
            ]
        )
    if not rows:
        render.echo(
            f"{name} has no stage and no production points yet; record some with"
            f" `xp model observe {name}@STAGE metric=value`"
        )
        return
    render.echo(
        render.markdown(headers, rows) if out_format == "md" else render.table(headers, rows)
    )
    if result.invalid:
        render.echo(
            f"note: {result.invalid} unreadable line(s) of fetched monitoring points were skipped",
            err=True,
        )
    if result.newer:
        render.echo(
            f"note: {result.newer} chunk(s) of monitoring points in a format this xp does not"
            " know were skipped; upgrade xp to read them",
            err=True,
        )


@click.command()
@click.argument("name", required=False)
@click.option("--since", help="Judge the mean since then (with --aggregate mean), e.g. 1d.")
@click.option(
    "--aggregate",
    type=click.Choice(["last", "mean"]),
    default="last",
    show_default=True,
    help="Judge the last point, or the mean of the points.",
)
@click.option("--no-webhook", is_flag=True, help="Do not POST to the configured webhook.")
@click.option(
    "--format", "out_format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def check(
    name: str | None, since: str | None, aggregate: str, no_webhook: bool, out_format: str
) -> None:
    """Check the deployed versions against the thresholds in .xp/config.yaml; exit 1 when one
    is breached (for cron or CI), and POST the breaches to alerts.webhook if configured.

    Rules: ">= 0.85", "<= 120% of validation", "within 5% of validation"
    (docs/models-in-production.md)."""
    from xp.production.alerts import check as do_check
    from xp.production.alerts import describe

    result = do_check(
        open_repo(), name=name, since=since, aggregate=aggregate, webhook=not no_webhook
    )
    if out_format == "json":
        render.echo(render.to_json(result.to_dict()), exact=True)
    else:
        labels = {
            "ok": "ok",
            "breach": "BREACH",
            "no data": "no data",
            "skipped": "skipped",
            "error": "ERROR",
        }
        for v in result.verdicts:
            render.echo(f"{labels[v.status]:<8} {describe(v)}")
        if not result.verdicts:
            render.echo(
                'no thresholds configured; add models: NAME: STAGE: METRIC: ">= 0.85"'
                " to .xp/config.yaml"
            )
    hook = result.webhook
    if hook is not None:
        if hook.sent:
            render.echo(f"webhook: sent (HTTP {hook.status}, {hook.attempts} attempt(s))", err=True)
        else:
            render.echo(
                f"xp: warning: webhook failed after {hook.attempts} attempt(s): {hook.error}",
                err=True,
            )
    if result.breaches:
        raise click.exceptions.Exit(1)


@click.command()
@click.argument("spec", metavar="NAME@STAGE|NAME@VERSION")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0: any free port).",
)
@click.option(
    "--window",
    default=60.0,
    show_default=True,
    type=float,
    help="Seconds between request-metric points.",
)
@click.option(
    "--stage",
    help="Log request metrics under this stage (default: the stage in"
    " SPEC; a version SPEC logs nothing without it).",
)
@click.option("--no-log", is_flag=True, help="Do not log request metrics.")
@click.option("--artifact", metavar="PATH", help="The model file, when the version has several.")
@click.option(
    "--trust",
    is_flag=True,
    help="Load the model even though its run was not"
    " recorded in this clone (unpickling runs its code); at a terminal, xp asks.",
)
def serve(
    spec: str,
    host: str,
    port: int,
    window: float,
    stage: str | None,
    no_log: bool,
    artifact: str | None,
    trust: bool,
) -> None:
    """Answer predictions over HTTP for a registered version (scikit-learn/joblib pickles,
    MLflow pyfunc models), logging request counts and latency as its production metrics.

    POST /predict {"instances": [[...], ...]} -> {"predictions": [...]}; GET /health."""
    from xp.production.serve import serving

    def logged(figures: dict[str, float]) -> None:
        render.echo(
            f"logged {int(figures['requests'])} request(s), p95 {figures['latency_ms_p95']:.2f} ms",
            err=True,
        )

    def stop(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    repo = open_repo()
    if not trust and sys.stdin.isatty():  # a person at a terminal can consent here
        from xp.production.trust import version_trust
        from xp.sharing.registry import resolve

        verdict = version_trust(repo, resolve(repo, spec))
        if not verdict.trusted:
            render.echo(f"{verdict.reason}; loading its model runs code it chose.", err=True)
            trust = click.confirm("Load it anyway?", default=False, err=True)
    with serving(
        repo,
        spec=spec,
        host=host,
        port=port,
        window=window,
        stage=stage,
        trust=trust,
        artifact=artifact,
        log=not no_log,
        on_log=logged,
    ) as srv:
        v = srv.loaded.version
        render.echo(
            f"serving {v.name}@{v.version} (run {v.run_id}, {srv.loaded.flavor}:"
            f" {srv.loaded.path.name}) at {srv.url}/predict",
            err=True,
        )
        render.echo(f"  {srv.loaded.trust.reason}", err=True)
        where = f"in {srv.stage} every {window:g} s" if srv.stage else "not logged"
        render.echo(f"  request metrics: {where}; Ctrl-C stops", err=True)
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            render.echo("stopping", err=True)
