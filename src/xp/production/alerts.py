"""``xp model check``: thresholds from ``.xp/config.yaml`` against the deployed versions'
production figures, and an optional webhook POST when one is breached.

    models:
      diabetes:
        production:
          accuracy: ">= 0.85"                     # an absolute bound
          f1: "within 5% of validation"           # relative to the version's own run
          latency_ms_p95: ["<= 50", "<= 120% of validation"]
    alerts:
      webhook: https://hooks.example.com/T0/B0/X  # or XP_ALERT_WEBHOOK (keep secrets out of git)
      timeout: 5                                  # seconds per attempt; one retry

Rules are checked against the version that holds each stage now, on its last point (or the
mean of the points since ``--since``). No point yet is reported as ``no data``, not a breach.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from xp import format as fmt
from xp.config import load_config
from xp.errors import ConfigError
from xp.gitstore.repo import GitRepo
from xp.production import points as pts
from xp.production.perf import TRAINING_KEYS, VALIDATION_KEYS, parse_since, reference
from xp.sharing import registry

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_BOUND = re.compile(rf"^(>=|<=|>|<|==|!=)\s*({_NUMBER})\s*(?:(%)\s*of\s+(\S+))?$")
_WITHIN = re.compile(rf"^within\s+({_NUMBER})\s*(%)?\s+of\s+(\S+)$", re.IGNORECASE)
_OPS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
RULE_HELP = 'write a rule like ">= 0.85", "<= 120% of validation" or "within 5% of validation"'


@dataclass(frozen=True)
class Rule:
    """One threshold: ``op number``, ``op number% of REF`` or ``within number[%] of REF``.

    REF is ``validation``, ``training`` or the name of a metric of the version's run."""

    text: str
    op: str  # >=, <=, >, <, ==, != or "within"
    number: float
    percent: bool = False
    ref: str | None = None

    @classmethod
    def parse(cls, text: object, where: str) -> Rule:
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            raise ConfigError(f'{where}: {text!r} is a bare number; {RULE_HELP} (e.g. ">= {text}")')
        if not isinstance(text, str):
            raise ConfigError(f"{where}: expected a rule or a list of rules; {RULE_HELP}")
        clean = " ".join(text.split())
        bound = _BOUND.match(clean)
        if bound:
            return cls(clean, bound[1], float(bound[2]), bool(bound[3]), bound[4])
        within = _WITHIN.match(clean)
        if within:
            return cls(clean, "within", float(within[1]), bool(within[2]), within[3])
        raise ConfigError(f"{where}: cannot read {text!r}; {RULE_HELP}")

    def bound(self, ref_value: float | None) -> float:
        if self.ref is None:
            return self.number
        assert ref_value is not None
        return self.number / 100 * ref_value if self.percent else self.number

    def holds(self, value: float, ref_value: float | None) -> bool:
        """Whether ``value`` meets the rule (NaN never does)."""
        if math.isnan(value):
            return False
        if self.op == "within":
            assert ref_value is not None
            tolerance = self.number / 100 * abs(ref_value) if self.percent else self.number
            return abs(value - ref_value) <= tolerance * (1 + 1e-9) + 1e-12  # bound included
        return bool(_OPS[self.op](value, self.bound(ref_value)))


@dataclass(frozen=True)
class Threshold:
    model: str
    stage: str
    metric: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class AlertSettings:
    thresholds: tuple[Threshold, ...]
    webhook: str | None = None
    timeout: float = 5.0


def settings(repo: GitRepo) -> AlertSettings:
    """Thresholds and webhook from ``.xp/config.yaml``; ConfigError names the bad entry."""
    raw = load_config(repo).raw
    where = fmt.CONFIG_PATH
    models = raw.get("models") or {}
    if not isinstance(models, dict):
        raise ConfigError(f"{where}: 'models' must map model -> stage -> metric -> rule")
    found = []
    for model, stages in models.items():
        _name(model, f"{where}: models", "model name")
        if not isinstance(stages, dict):
            raise ConfigError(f"{where}: models.{model} must map stage -> metric -> rule")
        for stage, metrics in stages.items():
            _name(stage, f"{where}: models.{model}", "stage")
            if not isinstance(metrics, dict):
                raise ConfigError(f"{where}: models.{model}.{stage} must map metric -> rule")
            for metric, rules in metrics.items():
                at = f"{where}: models.{model}.{stage}.{metric}"
                try:
                    fmt.validate_key(metric, "metric name")
                except ValueError as exc:
                    raise ConfigError(f"{at}: {exc}") from None
                items = rules if isinstance(rules, list) else [rules]
                if not items:
                    raise ConfigError(f"{at}: no rule; {RULE_HELP}")
                parsed = tuple(Rule.parse(r, at) for r in items)
                found.append(Threshold(model, stage, metric, parsed))
    alerts = raw.get("alerts") or {}
    if not isinstance(alerts, dict):
        raise ConfigError(f"{where}: 'alerts' must be a mapping (webhook, timeout)")
    webhook = os.environ.get("XP_ALERT_WEBHOOK") or alerts.get("webhook")
    if webhook is not None and (
        not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))
    ):
        raise ConfigError(f"{where}: alerts.webhook must be an http(s) URL, got {webhook!r}")
    timeout = alerts.get("timeout", 5)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"{where}: alerts.timeout must be a number of seconds, got {timeout!r}")
    return AlertSettings(tuple(found), webhook or None, float(timeout))


def _name(value: object, where: str, what: str) -> None:
    if not isinstance(value, str) or not registry.NAME_RE.match(value):
        raise ConfigError(
            f"{where}: {what} {value!r} must be lower-case letters, digits, '-' or '/'"
        )


@dataclass(frozen=True)
class Verdict:
    """One rule on one deployed version: ok, breach, no data, or skipped (and why)."""

    model: str
    stage: str
    version: str | None
    run_id: str | None
    metric: str
    rule: str
    status: str  # ok, breach, no data, skipped, error
    value: float | None = None
    bound: float | None = None  # what the value was compared with
    window_end: int | None = None  # ms, of the last point looked at
    points: int = 0
    detail: str = ""


@dataclass
class WebhookResult:
    url: str
    sent: bool = False
    attempts: int = 0
    status: int | None = None
    error: str = ""


@dataclass
class CheckResult:
    verdicts: list[Verdict] = field(default_factory=list)
    webhook: WebhookResult | None = None

    @property
    def breaches(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status in ("breach", "error")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.breaches,
            "verdicts": [asdict(v) for v in self.verdicts],
            "webhook": asdict(self.webhook) if self.webhook else None,
        }


def check(
    repo: GitRepo,
    *,
    name: str | None = None,
    since: str | None = None,
    aggregate: str = "last",
    webhook: bool = True,
) -> CheckResult:
    """Evaluate every configured threshold (of ``name``'s stages only, when given)."""
    from xp.production.perf import _run_metrics

    conf = settings(repo)
    reg = registry.replay(repo)
    since_ms = parse_since(since)
    result = CheckResult()
    cache: dict[str, dict[str, Any]] = {}
    read_cache: dict[tuple[str, str, str], pts.Series] = {}
    chosen = [t for t in conf.thresholds if name is None or t.model == name]
    if name is not None and not chosen:
        raise ConfigError(
            f"{fmt.CONFIG_PATH} has no thresholds for {name!r}; add them under"
            f' models: {name}: <stage>: <metric>: ">= 0.85"'
        )
    for th in chosen:
        model = reg.models.get(th.model)
        base = Verdict(th.model, th.stage, None, None, th.metric, "", "skipped")
        held = model.stages.get(th.stage) if model is not None and model.versions else None
        if model is None or not model.versions or held is None:
            why = (
                f"no model {th.model!r} is registered"
                if model is None or not model.versions
                else f"no version is in stage {th.stage!r}"
            )
            result.verdicts += [replace(base, rule=r.text, detail=why) for r in th.rules]
            continue
        version = model.versions[held]
        key = (th.model, held, th.stage)
        if key not in read_cache:
            read_cache[key] = pts.read_series(
                repo, model=th.model, stage=th.stage, version=held, since=since_ms
            )[0]
        series = sorted(read_cache[key].get((held, th.stage, th.metric), []))
        run_metrics = _run_metrics(repo, version, cache)
        base = replace(base, version=held, run_id=version.run_id)
        for rule in th.rules:
            result.verdicts.append(_judge(base, rule, series, run_metrics, aggregate))
    if webhook and conf.webhook and result.breaches:
        result.webhook = post(conf.webhook, payload(repo, result), timeout=conf.timeout)
    return result


def _judge(
    base: Verdict,
    rule: Rule,
    series: list[tuple[int, float]],
    run_metrics: dict[str, Any],
    aggregate: str,
) -> Verdict:
    base = replace(base, rule=rule.text)
    if not series:
        return replace(base, status="no data", detail="no production points yet")
    ref_value = None
    if rule.ref is not None:
        keys = {"validation": VALIDATION_KEYS, "training": TRAINING_KEYS}.get(
            rule.ref, (rule.ref.replace("{", "{{").replace("}", "}}"),)
        )
        found, value = reference(run_metrics, base.metric, keys)
        if not found:
            looked = ", ".join(k.format(base.metric) for k in keys)
            return replace(
                base,
                status="error",
                points=len(series),
                detail=f"the version's run has no {rule.ref} figure (looked for {looked})",
            )
        ref_value = value
    if aggregate == "mean":
        finite = [v for _t, v in series if math.isfinite(v)]
        value = sum(finite) / len(finite) if finite else math.nan
    else:
        value = series[-1][1]
    ok = rule.holds(value, ref_value)
    return replace(
        base,
        status="ok" if ok else "breach",
        value=value,
        bound=ref_value if rule.op == "within" else rule.bound(ref_value),
        window_end=series[-1][0],
        points=len(series),
        detail=aggregate,
    )


def describe(v: Verdict) -> str:
    """One line for a human (and the webhook's text)."""
    who = f"{v.model}@{v.version or '-'} {v.stage}"
    if v.status in ("skipped", "no data", "error"):
        return f"{who}: {v.metric} {v.rule!r}: {v.detail}"
    verb = "meets" if v.status == "ok" else "breaks"
    what = "mean" if v.detail == "mean" else "last"
    return f"{who}: {v.metric} {what} {v.value:.6g} {verb} {v.rule!r}" + (
        f" (bound {v.bound:.6g})" if v.bound is not None and "of" in v.rule else ""
    )


def payload(repo: GitRepo, result: CheckResult) -> dict[str, Any]:
    breaches = result.breaches
    lines = [describe(v) for v in breaches]
    text = f"xp: {len(breaches)} threshold(s) breached in {repo.worktree.name}:\n" + "\n".join(
        f"- {line}" for line in lines
    )
    return {
        "text": text,  # what Slack, Mattermost and Teams incoming webhooks show
        "repository": repo.worktree.name,
        "breaches": [asdict(v) for v in breaches],
    }


def _finite(value: Any) -> Any:
    """Strict JSON for receivers: NaN becomes null, infinities "inf" / "-inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def post(
    url: str, body: dict[str, Any], *, timeout: float, retry_delay: float = 1.0
) -> WebhookResult:
    """POST ``body`` as JSON; one retry after a timeout, a connection error or a 5xx/429."""
    result = WebhookResult(url=url)
    data = json.dumps(_finite(body), allow_nan=False, default=str).encode()
    for attempt in (1, 2):
        result.attempts = attempt
        request = urllib.request.Request(
            url, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                result.status = response.status
                result.sent, result.error = True, ""
                return result
        except urllib.error.HTTPError as exc:
            result.status, result.error = exc.code, f"HTTP {exc.code} {exc.reason}"
            if exc.code < 500 and exc.code != 429:
                return result
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            result.error = (
                f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
            )
        if attempt == 1:
            time.sleep(retry_delay)
    return result
