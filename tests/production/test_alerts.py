"""``xp model check``: thresholds in .xp/config.yaml, breached and not, and the webhook against
a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import xp
from tests.helpers import invoke, model_version, user_error
from xp.production.alerts import Rule, post


class Receiver(ThreadingHTTPServer):
    """A webhook receiver: answers with ``codes`` in turn (then 200), after ``delay`` s."""

    def __init__(self, codes: list[int] | None = None, delay: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.bodies: list[dict[str, object]] = []
        self.codes = list(codes or [])
        self.delay = delay

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Hook(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(json.loads(body))
        time.sleep(self.server.delay)
        code = self.server.codes.pop(0) if self.server.codes else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def configure(root: Path, text: str) -> None:
    (root / ".xp").mkdir(exist_ok=True)
    (root / ".xp" / "config.yaml").write_text(text)


THRESHOLDS = """\
models:
  diabetes:
    production:
      accuracy: [">= 0.85", "within 5% of validation"]
      latency_ms_p95: "<= 50"
      f1: ">= 0.5"
alerts:
  webhook: {url}
  timeout: 2
"""


def test_check_passes_then_fails_and_posts_only_on_breach(repo: Path, receiver: Receiver) -> None:
    model_version(repo, "diabetes", stage="production", metrics={"val_accuracy": 0.9})
    configure(repo, THRESHOLDS.format(url=receiver.url))
    xp.log_production("diabetes", "production", {"accuracy": 0.89, "latency_ms_p95": 38})
    out = invoke("model", "check")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0] == "ok       diabetes@v0.0.1 production: accuracy last 0.89 meets '>= 0.85'"
    assert lines[1].startswith("ok       diabetes@v0.0.1 production: accuracy last 0.89 meets")
    assert "(bound 0.9)" in lines[1]
    assert lines[3] == "no data  diabetes@v0.0.1 production: f1 '>= 0.5': no production points yet"
    assert receiver.bodies == []  # nothing breached: nothing sent

    xp.log_production("diabetes", "production", {"accuracy": 0.84, "latency_ms_p95": 61})
    out = invoke("model", "check")
    assert out.exit_code == 1
    breaches = [line for line in out.stdout.splitlines() if line.startswith("BREACH")]
    assert breaches == [
        "BREACH   diabetes@v0.0.1 production: accuracy last 0.84 breaks '>= 0.85'",
        "BREACH   diabetes@v0.0.1 production: accuracy last 0.84 breaks 'within 5% of"
        " validation' (bound 0.9)",
        "BREACH   diabetes@v0.0.1 production: latency_ms_p95 last 61 breaks '<= 50'",
    ]
    assert "webhook: sent (HTTP 200, 1 attempt(s))" in out.stderr
    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert isinstance(body["text"], str)
    assert "3 threshold(s) breached" in body["text"]
    sent = body["breaches"]
    assert isinstance(sent, list)
    assert [(b["metric"], b["value"], b["version"]) for b in sent] == [
        ("accuracy", 0.84, "v0.0.1"),
        ("accuracy", 0.84, "v0.0.1"),
        ("latency_ms_p95", 61.0, "v0.0.1"),
    ]
    # the mean since the first point still meets the accuracy floor
    mean = xp.check_models(aggregate="mean", since="1d", webhook=False)
    assert [v.status for v in mean.verdicts if v.rule == ">= 0.85"] == ["ok"]
    assert len(receiver.bodies) == 1
    data = json.loads(invoke("model", "check", "--format", "json", "--no-webhook").stdout)
    assert data["ok"] is False
    assert len(receiver.bodies) == 1


def test_webhook_is_retried_once(repo: Path, receiver: Receiver) -> None:
    model_version(repo, "diabetes", stage="production")
    configure(repo, THRESHOLDS.format(url=receiver.url))
    xp.log_production("diabetes", "production", {"latency_ms_p95": 99})
    receiver.codes = [503]
    out = invoke("model", "check")
    assert out.exit_code == 1
    assert "webhook: sent (HTTP 200, 2 attempt(s))" in out.stderr
    assert len(receiver.bodies) == 2
    receiver.codes = [500, 502]
    out = invoke("model", "check")
    assert out.exit_code == 1
    assert "xp: warning: webhook failed after 2 attempt(s): HTTP 502" in out.stderr
    receiver.codes = [404]
    assert post(receiver.url, {"x": 1}, timeout=2).attempts == 1  # a client error: no retry


def test_webhook_times_out_and_retries(receiver: Receiver) -> None:
    receiver.delay = 1.0
    result = post(receiver.url, {"text": "x"}, timeout=0.2, retry_delay=0.0)
    assert (result.sent, result.attempts) == (False, 2)
    assert "timed out" in result.error
    gone = post("http://127.0.0.1:9/nothing", {"text": "x"}, timeout=1, retry_delay=0.0)
    assert (gone.sent, gone.attempts) == (False, 2)
    assert "Connection refused" in gone.error or "ConnectionRefusedError" in gone.error


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('models:\n  diabetes:\n    production:\n      accuracy: "at least 0.85"\n',
         "models.diabetes.production.accuracy: cannot read 'at least 0.85'; write a rule like"),
        ("models:\n  diabetes:\n    production:\n      accuracy: 0.85\n",
         "is a bare number"),
        ('models:\n  diabetes:\n    production:\n      accuracy: ">= 5% of"\n', "cannot read"),
        ("models:\n  diabetes: [1]\n", "models.diabetes must map stage -> metric -> rule"),
        ('models:\n  Diabetes:\n    production:\n      a: ">= 1"\n', "model name 'Diabetes'"),
        ('models:\n  diabetes:\n    production:\n      "a;b": ">= 1"\n', "has characters"),
        ("alerts:\n  webhook: ftp://x\n", "alerts.webhook must be an http(s) URL"),
        ("alerts:\n  timeout: soon\n", "alerts.timeout must be a number of seconds"),
    ],
)  # fmt: skip
def test_malformed_thresholds_get_one_line(repo: Path, config: str, message: str) -> None:
    model_version(repo, "diabetes", stage="production")
    configure(repo, config)
    assert message in user_error(invoke("model", "check"))


def test_rules_and_what_cannot_be_checked(repo: Path) -> None:
    assert Rule.parse(">= 95% of validation", "x").holds(0.86, 0.9)
    assert not Rule.parse(">= 95% of validation", "x").holds(0.85, 0.9)
    assert Rule.parse("within 0.02 of training", "x").holds(0.97, 0.99)
    assert not Rule.parse("within 1% of validation", "x").holds(0.8, 0.9)
    assert not Rule.parse("< 1", "x").holds(float("nan"), None)
    assert Rule.parse("WITHIN  5 %  of  val_acc", "x").ref == "val_acc"
    model_version(repo, "diabetes", stage="production", metrics={"acc": 0.9})
    configure(
        repo,
        "models:\n  diabetes:\n    production:\n      acc: ['within 5% of validation',"
        " 'within 1% of val_acc']\n    staging:\n      acc: '>= 0.1'\n"
        "  churn:\n    production:\n      acc: '>= 0.1'\n",
    )
    xp.log_production("diabetes", "production", {"acc": 0.9})
    result = xp.check_models()
    got = [(v.model, v.stage, v.status, v.detail) for v in result.verdicts]
    assert got == [
        ("diabetes", "production", "ok", "last"),  # validation -> the plain name 'acc'
        (
            "diabetes",
            "production",
            "error",
            "the version's run has no val_acc figure (looked for val_acc)",
        ),
        ("diabetes", "staging", "skipped", "no version is in stage 'staging'"),
        ("churn", "production", "skipped", "no model 'churn' is registered"),
    ]
    assert invoke("model", "check", "diabetes").exit_code == 1  # an error fails the check
    line = user_error(invoke("model", "check", "fraud"))
    assert "has no thresholds for 'fraud'" in line


def test_check_with_nothing_configured(repo: Path) -> None:
    out = invoke("model", "check")
    assert out.exit_code == 0
    assert "no thresholds configured" in out.stdout
