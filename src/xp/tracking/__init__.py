"""Recording runs: ``Run``, the fluent API, ``xp commit``, crash recovery."""
