"""Running commands as runs: ``xp run``, ``-p`` overrides, sweeps, reproduce."""
