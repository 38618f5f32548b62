"""Tests of src/xp/hooks/."""
