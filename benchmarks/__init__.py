"""xp's benchmarks: each workload timed for xp and a peer (MLflow, DVC) in one invocation.

Run ``python benchmarks/run.py`` (``--quick`` for a smoke version). How to add a workload:
docs/benchmarks.md.
"""
