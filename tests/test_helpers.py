"""The suite's own process hygiene: what a test starts dies with the test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import alive, spawned, wait_for

STUBBORN = """
import os, signal, subprocess, sys, time
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
kid = subprocess.Popen(
    [sys.executable, "-c", "import os, signal, time; os.setpgrp();"
     " signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"]
)
print(os.getpid(), kid.pid, flush=True)
time.sleep(600)
"""


def _fail_while_running(pids: list[int]) -> None:
    """A test body that starts the stubborn processes, notes their pids and fails."""
    with spawned([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        pids.extend(int(p) for p in proc.stdout.readline().split())
        assert all(alive(p) for p in pids)
        raise RuntimeError("the test failed")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_failing_test_still_kills_children_that_ignore_signals() -> None:
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="the test failed"):
        _fail_while_running(pids)
    assert len(pids) == 2
    wait_for(lambda: not any(alive(p) for p in pids), "the child and its grandchild to die")
