"""Models after promotion: what runs where (status, rollback), monitoring points logged
against the deployed version, production next to training figures (perf, diff), alerts on
thresholds (check), and a local prediction endpoint (serve).

Above ``sharing`` (it reads the registry), beside ``execution`` (neither needs the other).
"""
