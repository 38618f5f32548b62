"""SIGKILL at random moments in the life of a run, of `xp commit` and of `xp gc` (issue 10):
after each kill the next xp command finds everything consistent. The harness and its rules
are benchmarks/sigkill.py's, which runs 100 kills per scenario; here a few each."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.sigkill import SCENARIOS, run_trials


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_sigkill_at_random_moments_leaves_everything_consistent(
    tmp_path: Path, scenario: str
) -> None:
    results = run_trials(tmp_path, scenario, trials=4, seed=sorted(SCENARIOS).index(scenario))
    assert [p for p in results if p] == []
