"""Tests of src/xp/cli/."""
