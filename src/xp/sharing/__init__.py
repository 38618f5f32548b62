"""Runs between clones: push/pull, get, rm, checkout/branch, ``xp init``, the registry."""
